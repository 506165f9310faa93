"""The migrations build exactly the schema the models describe, on the suite's backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from satiot.bss.ledger_models import BalanceEntry
from satiot.bss.models import (
    BillingAccount,
    Contract,
    Customer,
    ProductOffering,
    Subscription,
    UsageRecord,
)
from satiot.core import migrate
from satiot.core.db import Database
from satiot.core.models import Tenant
from satiot.network.models import DestinationPolicy, Device
from satiot.schema import metadata
from tests.conftest import pg_database


def test_models_and_migrations_agree(migrated_db):
    with migrated_db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata()
        )
    assert diff == [], f"models differ from migrations; generate a revision: {diff}"


def test_database_is_at_the_newest_revision(migrated_db):
    engine = migrated_db.engine
    assert migrate.current_revision(engine) == migrate.head_revision(engine)


@pytest.fixture
def scratch_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database of the suite's backend, for migrating step by step."""
    if request.config.getoption("--db") == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    with pg_database(f"satiot_scratch_{uuid.uuid4().hex[:8]}") as url:
        yield url


def _usage(conn, record_id: uuid.UUID, event_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    row = {
        "id": record_id,
        "event_id": event_id,
        "tenant_id": tenant_id,
        "dev_eui": "70B3D57ED0000001",
        "kind": "uplink",
        "bytes": 10,
        "billable_bytes": 10,
        "period": "2026-11",
        "occurred_at": datetime(2026, 11, 3, tzinfo=UTC),
        "charge_micros": 0,
        "state": "rated",
    }
    conn.execute(insert(UsageRecord.__table__).values(**row))


def test_0010_names_old_usage_records_by_their_event_and_keeps_them_so(scratch_url):
    database = Database.connect(scratch_url)
    try:
        migrate.upgrade(database.engine, "0009")
        tenant_id, old_id, event_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with database.engine.begin() as conn:
            conn.execute(
                insert(Tenant.__table__).values(
                    id=tenant_id,
                    slug="old",
                    name="Old",
                    kind="customer",
                    status="active",
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
            _usage(conn, old_id, event_id, tenant_id)  # rated before ids followed events
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            ids = conn.execute(select(UsageRecord.id, UsageRecord.event_id)).all()
        assert ids == [(event_id, event_id)]
        with pytest.raises(IntegrityError), database.engine.begin() as conn:
            _usage(conn, uuid.uuid4(), uuid.uuid4(), tenant_id)
        with pytest.raises(IntegrityError), database.engine.begin() as conn:
            _usage(conn, event_id, event_id, tenant_id)  # the same event rated twice
    finally:
        database.dispose()


def _tenant(conn, slug: str) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    conn.execute(
        insert(Tenant.__table__).values(
            id=tenant_id, slug=slug, name=slug, kind="customer", status="active",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )  # fmt: skip
    return tenant_id


def _customer(conn, tenant_id: uuid.UUID, uscc: str) -> uuid.UUID:
    customer_id = uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    conn.execute(
        insert(Customer.__table__).values(
            id=customer_id, tenant_id=tenant_id, name="Co", uscc=uscc, uscc_check_ok=True,
            org_type="enterprise", industry="G", province="11", address="", legal_rep_name="A",
            legal_rep_id="x", agent_name="B", agent_id="y", agent_phone="", status="validated",
            risk_status="passed", risk_findings=[], created_at=at, updated_at=at,
        )
    )  # fmt: skip
    return customer_id


def _contract(conn, tenant_id, customer_id, number, version, status, allow, supersedes=None):
    contract_id = uuid.uuid4()
    at = datetime(2026, 2, version, tzinfo=UTC)
    conn.execute(
        insert(Contract.__table__).values(
            id=contract_id, tenant_id=tenant_id, customer_id=customer_id, number=number,
            version=version, supersedes_id=supersedes, scenario="maritime",
            scenario_description="", allowed_models=["M"], max_devices=1, quota_action="notify",
            destination_allow_list=allow, service_area=["11"], offering_ids=[],
            stop_at_zero_balance=False, status=status,
            signed_at=None if status == "draft" else at, created_at=at,
        )
    )  # fmt: skip
    return contract_id


def test_0011_gives_each_tenant_that_signed_the_allow_list_in_force(scratch_url):
    database = Database.connect(scratch_url)
    try:
        migrate.upgrade(database.engine, "0010")
        with database.engine.begin() as conn:
            a, b, c = (_tenant(conn, s) for s in ("a", "b", "c"))
            ca, cb, cc = (_customer(conn, t, f"USCC{n}") for n, t in enumerate((a, b, c)))
            v1 = _contract(conn, a, ca, "SC-1", 1, "signed", ["old.example.com"])
            _contract(conn, a, ca, "SC-1", 2, "signed", ["iot.example.com"], supersedes=v1)
            _contract(conn, a, ca, "SC-2", 1, "signed", ["203.0.113.0/24", "iot.example.com"])
            _contract(conn, b, cb, "SC-3", 1, "terminated", ["gone.example.com"])
            _contract(conn, c, cc, "SC-4", 1, "draft", ["draft.example.com"])
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            rows = conn.execute(
                select(
                    DestinationPolicy.tenant_id, DestinationPolicy.entries, DestinationPolicy.source
                )
            ).all()
        assert {r.tenant_id: (r.entries, r.source) for r in rows} == {
            a: (["203.0.113.0/24", "iot.example.com"], "SC-1 v2, SC-2 v1"),
            b: ([], ""),  # its only contract ended: nowhere
        }  # c never signed: not restricted
    finally:
        database.dispose()


def test_0014_keeps_usage_records_rated_before_it_and_their_rules(scratch_url):
    database = Database.connect(scratch_url)
    try:
        migrate.upgrade(database.engine, "0013")
        with database.engine.begin() as conn:
            tenant_id = _tenant(conn, "t")
            event_id = uuid.uuid4()
            _usage(conn, event_id, event_id, tenant_id)
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            kept = conn.execute(select(UsageRecord.id, UsageRecord.tenant_id)).all()
        assert kept == [(event_id, tenant_id)]
        keys = inspect(database.engine).get_foreign_keys("usage_records")
        assert [k["referred_table"] for k in keys] == ["customer_bills"]  # only the bill's
        with pytest.raises(IntegrityError), database.engine.begin() as conn:
            _usage(conn, event_id, event_id, tenant_id)  # the same event rated twice
        with pytest.raises(IntegrityError), database.engine.begin() as conn:
            _usage(conn, uuid.uuid4(), uuid.uuid4(), tenant_id)  # id and event must agree
        options = inspect(database.engine).get_table_options("usage_counters")
        if database.engine.dialect.name == "postgresql":
            assert options.get("postgresql_with") == {"fillfactor": "50"}
        else:
            assert "postgresql_with" not in options  # a PostgreSQL storage setting only
    finally:
        database.dispose()


def _device(conn, tenant_id: uuid.UUID, n: int, status: str) -> uuid.UUID:
    device_id = uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    conn.execute(
        insert(Device.__table__).values(
            id=device_id, tenant_id=tenant_id, dev_eui=f"70B3D57ED000000{n}", dev_addr=n,
            name="", status=status, nwk_s_key_sealed=bytes(48), app_s_key_sealed=bytes(48),
            kek_id="k1", f_cnt_down=0, priority=0, created_at=at, updated_at=at,
        )
    )  # fmt: skip
    return device_id


def test_0020_dates_active_devices_from_their_subscriptions(scratch_url):
    database = Database.connect(scratch_url)
    try:
        migrate.upgrade(database.engine, "0019")
        activated = [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 9, 5, tzinfo=UTC)]
        with database.engine.begin() as conn:
            tenant_id = _tenant(conn, "t")
            customer_id = _customer(conn, tenant_id, "USCC1")
            contract_id = _contract(conn, tenant_id, customer_id, "SC-1", 1, "signed", [])
            account_id, offering_id = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                insert(BillingAccount.__table__).values(
                    id=account_id, tenant_id=tenant_id, customer_id=customer_id, name="A",
                    payment_mode="postpaid", status="active", created_at=activated[0],
                )
            )  # fmt: skip
            conn.execute(
                insert(ProductOffering.__table__).values(
                    id=offering_id, code="O", version=1, name="O", lifecycle_status="Active",
                    created_at=activated[0],
                )
            )  # fmt: skip
            active, bare, stored = (
                _device(conn, tenant_id, n, status)
                for n, status in enumerate(("active", "active", "inventory"))
            )
            # The device active now was activated twice (its first subscription ended); the
            # one in inventory had a subscription that ended.
            for device_id, n, at, status in (
                (active, 0, activated[0], "terminated"),
                (active, 0, activated[1], "active"),
                (stored, 2, activated[0], "terminated"),
            ):
                conn.execute(
                    insert(Subscription.__table__).values(
                        id=uuid.uuid4(), tenant_id=tenant_id, customer_id=customer_id,
                        billing_account_id=account_id, contract_id=contract_id,
                        offering_id=offering_id, device_id=device_id,
                        dev_eui=f"70B3D57ED000000{n}", terminal_model="M", status=status,
                        created_at=at, activated_at=at,
                    )
                )  # fmt: skip
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            since = dict(conn.execute(select(Device.id, Device.active_since)).all())
        # The latest activation; none without a subscription, or when not active now.
        assert since == {active: activated[1], bare: None, stored: None}
    finally:
        database.dispose()


def test_0026_opens_the_ledger_of_each_prepaid_balance_it_finds(scratch_url):
    database = Database.connect(scratch_url)
    try:
        migrate.upgrade(database.engine, "0025")
        at = datetime(2026, 11, 1, tzinfo=UTC)
        with database.engine.begin() as conn:
            tenant_id = _tenant(conn, "t")
            customer_id = _customer(conn, tenant_id, "USCC1")
            ids = {}
            for name, mode, balance in (
                ("in credit", "prepaid", 12_340_000),
                ("overdrawn", "prepaid", -5_000),
                ("empty", "prepaid", 0),
                ("postpaid", "postpaid", 0),
            ):
                ids[name] = uuid.uuid4()
                conn.execute(
                    insert(BillingAccount.__table__).values(
                        id=ids[name], tenant_id=tenant_id, customer_id=customer_id, name=name,
                        payment_mode=mode, status="active", balance_micros=balance,
                        created_at=at,
                    )
                )  # fmt: skip
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            rows = conn.execute(
                select(
                    BalanceEntry.billing_account_id,
                    BalanceEntry.kind,
                    BalanceEntry.amount_micros,
                    BalanceEntry.balance_micros,
                    BalanceEntry.tenant_id,
                )
            ).all()
        # what each balance held, so that an account's entries add up to its balance
        assert sorted(rows, key=lambda r: r[2]) == [
            (ids["overdrawn"], "opening", -5_000, -5_000, tenant_id),
            (ids["in credit"], "opening", 12_340_000, 12_340_000, tenant_id),
        ]
    finally:
        database.dispose()
