"""The whole business path, end to end, checked against an independent recomputation.

An enterprise is onboarded and verified and signs its contract; it orders 1,000 terminals by
CSV (built from the digital twin's own terminal sessions, so the keys match what the twin
transmits with) on three offerings; they are activated; the twin runs a simulated day and its
ground stations' receptions go through the network server's ingest entry point; the rating
consumer rates the accepted uplinks; the month is billed. The invoice must equal what plain
Python computes from the stored ``Uplink`` rows and the price table — without rating code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.bss import accounts, contracts, customers, risk
from satiot.bss.bill_statement import device_usage
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import (
    BillLine,
    Customer,
    CustomerBill,
    ProductOffering,
    ProductOfferingPrice,
    Subscription,
    UsageRecord,
)
from satiot.core.auth.roles import Role
from satiot.core.consumers import registered
from satiot.core.events import consume_batch
from satiot.network import ground_stations
from satiot.network.ingest import ingest
from satiot.network.models import Uplink
from satiot.network.receptions import Reception
from satiot.network.scenario import constellation, load_scenario
from satiot.network.twin import TwinRun
from satiot.server import build_app
from tests.bss.onboarding_world import application, file_all_documents, terms
from tests.bss.order_world import CSV_HEADER, MODEL, imei, operator_inventory
from tests.network.test_scenario import tiny, write

pytestmark = pytest.mark.slow

ORDERS = "/api/v1/product-orders"
ORDERS_CSV = f"{ORDERS}/csv"

START = datetime(2026, 11, 10, tzinfo=UTC)
BEIJING = ZoneInfo("Asia/Shanghai")
#: (offering code, terminals, seconds between messages, payload bytes)
FLEETS = (
    ("SAT-BUNDLE-100", 60, 600.0, 24),  # ~144 a day each: past the pooled 100-message bundle
    ("SAT-MSG", 470, 7200.0, 20),
    ("SAT-BYTE", 470, 7200.0, 6),  # under the 10-byte minimum
)


class Collect:
    def __init__(self) -> None:
        self.by_station: dict[str, list[Reception]] = defaultdict(list)

    def __call__(self, station: str, receptions: Sequence[Reception]) -> None:
        self.by_station[station].extend(receptions)


def _scenario(tmp_path):
    base = tiny()["fleets"][0]
    fleets = [
        dict(base, name=code.lower(), count=n, message_interval_s=gap, payload_bytes=size)
        for code, n, gap, size in FLEETS
    ]
    doc = tiny(start=START.isoformat().replace("+00:00", "Z"), fleets=fleets)
    scenario, folder = load_scenario(write(tmp_path, doc))
    return scenario, constellation(scenario, folder)


def _onboard(world, offering_ids):
    """Real-name onboarding, verification, risk, account and a signed contract."""
    system, at = world.system, world.ctx.clock.now()
    with world.ctx.db.write() as s:
        customer = customers.onboard(s, system, application(901), at=at)
    file_all_documents(world, customer.id)
    with world.ctx.db.write() as s:
        customers.change_status(s, system, customer.id, "validated", at=at, reason="documents ok")
        assert risk.assess(s, system, customer.id, at=at).passed
        account = accounts.open_account(s, system, customer.id, payment_mode="postpaid", at=at)
        contract = contracts.draft(
            s,
            system,
            customer.id,
            terms(MODEL, offering_ids[0], offering_ids=tuple(offering_ids), max_devices=1000),
            at=at,
        )
        contracts.sign(s, system, contract.id, signer_name="Zhang Wei", signer_role="CEO", at=at)
        return customer.id, account.id


def _csv(twin) -> str:
    rows = [CSV_HEADER]
    index = 0
    for code, n, _, _ in FLEETS:
        for _ in range(n):
            t = twin.population.session(index)
            rows.append(
                f"{imei(700_000 + index)},{t.dev_eui},{MODEL},{code},{t.dev_addr:08X},"
                f"{t.nwk_s_key.hex().upper()},{t.app_s_key.hex().upper()}"
            )
            index += 1
    return "\n".join(rows) + "\n"


def _round_fen(micros: Decimal) -> int:
    return int((micros / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10_000


def _expected_total(session, account_id) -> tuple[int, int, int, int]:
    """The bill recomputed from Uplink rows and the price table, in plain Python: its total,
    the uplinks it charges, their charges before rounding and the fees before rounding."""
    subs = session.execute(
        select(Subscription.dev_eui, Subscription.offering_id, Subscription.activated_at).where(
            Subscription.billing_account_id == account_id
        )
    ).all()
    offering_of = {dev: off for dev, off, _ in subs}
    prices = defaultdict(list)
    for p in session.scalars(select(ProductOfferingPrice)):
        prices[p.offering_id].append(p)
    first, after = datetime(2026, 11, 1, tzinfo=BEIJING), datetime(2026, 12, 1, tzinfo=BEIJING)
    lines: dict[tuple[str, object], Decimal] = defaultdict(Decimal)
    for _, off, activated in subs:  # recurring (prorated by days) and one-time charges
        days = (after.date() - max(activated.astimezone(BEIJING).date(), first.date())).days
        for p in prices[off]:
            if p.kind == "recurring":  # per device, rounded half-up to the micro-yuan
                share = (Decimal(p.amount_micros * days) / 30).quantize(Decimal(1), ROUND_HALF_UP)
                lines[("recurring", p.id)] += share
            elif p.kind == "one-time" and activated >= first:
                lines[("one-time", p.id)] += p.amount_micros
    uplinks = session.execute(select(Uplink.dev_eui, Uplink.payload, Uplink.received_at)).all()
    counted: dict[object, int] = defaultdict(int)  # messages per pool
    devices_on = defaultdict(int)
    for _, off, _ in subs:
        devices_on[off] += 1
    usage: dict[object, int] = defaultdict(int)
    for dev, payload, received in sorted(uplinks, key=lambda u: u[2]):
        if not first <= received < after:
            continue
        off = offering_of[dev]
        billable = len(payload)
        for p in prices[off]:
            if p.kind == "per-byte" and p.applies_to in ("all", "uplink"):
                billable = max(billable, p.min_billable_bytes)
        pool = sum(p.allowance_messages for p in prices[off] if p.kind == "recurring")
        free = pool > 0 and counted[off] < pool * devices_on[off]
        counted[off] += 1
        for p in prices[off]:
            if p.applies_to not in ("all", "uplink"):
                continue
            if p.kind == "per-message" and not free:
                usage[off] += p.amount_micros
            elif p.kind == "per-byte":
                usage[off] += p.amount_micros * billable
    subtotal = sum(_round_fen(Decimal(v)) for v in lines.values())
    subtotal += sum(_round_fen(Decimal(v)) for v in usage.values() if v)
    tax = _round_fen(Decimal(subtotal) * 600 / 10_000)
    charged = len([u for u in uplinks if first <= u[2] < after])
    return subtotal + tax, charged, sum(usage.values()), int(sum(lines.values()))


def test_onboard_order_activate_fly_rate_and_bill_a_month(ctx, world, tmp_path):
    ctx.clock.set(datetime(2026, 11, 9, 3, tzinfo=UTC))
    catalog = operator_inventory(ctx, world)
    offering_ids = [catalog[code] for code, *_ in FLEETS]
    customer_id, account_id = _onboard(world, offering_ids)
    scenario, tles = _scenario(tmp_path)
    twin = TwinRun(scenario, tles, hours=24.0)

    # The customer's administrator orders the twin's 1,000 terminals by CSV through the API;
    # the order is fulfilled (activated) right after the answer. The same upload again with
    # the same Idempotency-Key creates nothing new.
    with ctx.db.read() as s:
        tenant_id = s.get(Customer, customer_id).tenant_id
    admin = world.headers(world.user(tenant_id, Role.CUSTOMER_ADMIN))
    upload = admin | {"Content-Type": "text/csv", "Idempotency-Key": "fleet-2026-11"}
    with TestClient(build_app(ctx)) as client:
        placed = client.post(ORDERS_CSV, content=_csv(twin).encode(), headers=upload)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        order = client.get(f"{ORDERS}/{order_id}", headers=admin).json()
        assert order["state"] == "completed", order["state"]
        again = client.post(ORDERS_CSV, content=_csv(twin).encode(), headers=upload)
        assert again.headers.get("Idempotent-Replayed") == "true"
    with ctx.db.read() as s:
        subs = s.scalars(select(Subscription).where(Subscription.customer_id == customer_id)).all()
    # one device, one code, one number: 1,000 terminals, numbers and handles, none shared
    assert len(subs) == 1_000 and {sub.status for sub in subs} == {"active"}
    for identity in ("imei", "dev_eui", "iot_number", "handle"):
        assert len({getattr(sub, identity) for sub in subs} - {None}) == 1_000, identity

    # A simulated day: the stations' receptions go through ingest, in time order.
    stations = {}
    with ctx.db.write() as s:
        for gs in scenario.ground_stations:
            stations[gs.name] = ground_stations.register_station(
                s,
                world.system,
                name=gs.name,
                lat=gs.lat,
                lon=gs.lon,
                alt_m=gs.alt_m,
                min_elevation_deg=gs.min_elevation_deg,
                antennas=gs.antennas,
                at=ctx.clock.now(),
            ).station.id
    sink = Collect()
    report = twin.run(sink)
    assert report.delivered > 5_000
    accepted = 0
    for name, receptions in sink.by_station.items():
        receptions.sort(key=lambda r: r.received_at)
        for i in range(0, len(receptions), 500):
            batch = receptions[i : i + 500]
            result = ingest(
                ctx.db,
                stations[name],
                [r.to_json() for r in batch],
                kek=ctx.kek,
                at=batch[-1].received_at + timedelta(seconds=1),
                fcnt_window=ctx.settings.fcnt_window,
            )
            assert not result.rejected, result.rejected[:3]
            accepted += result.accepted

    # Rating: the registered consumer, batch after batch, until the log is drained.
    rating = registered()["bss.rating"]
    while consume_batch(ctx.db, rating, ctx.clock):
        pass

    ctx.clock.set(datetime(2026, 12, 1, 2, tzinfo=UTC))
    settings = RunSettings(600, "SAT", 30, "Asia/Shanghai")
    with ctx.db.write() as s:
        run = run_bills(s, world.system, "2026-11", at=ctx.clock.now(), settings=settings)
    assert run.bills == 1

    with ctx.db.read() as s:
        bill = s.scalar(select(CustomerBill).where(CustomerBill.billing_account_id == account_id))
        expected_total, uplinks, usage_micros, fee_micros = _expected_total(s, account_id)
        rated = s.scalar(select(func.count()).select_from(UsageRecord))
        billed = s.scalar(
            select(func.count()).select_from(UsageRecord).where(UsageRecord.bill_id == bill.id)
        )
        usage_lines = s.scalars(
            select(BillLine).where(BillLine.bill_id == bill.id, BillLine.kind == "usage")
        ).all()
        names = dict(s.execute(select(ProductOffering.id, ProductOffering.code)).all())
    assert uplinks == accepted > 5_000
    assert rated == billed == uplinks  # every accepted uplink rated once, and billed
    assert sum(ln.quantity for ln in usage_lines) == uplinks
    assert bill.total_micros == expected_total, (bill.total_micros, expected_total)
    assert len(names) >= 3 and bill.usage_micros > 0

    # The bill's device statement: each device's messages and bytes as the network accepted
    # them, and fees and charges that add up to the bill's lines before it rounded them.
    with ctx.db.read() as s:
        size = func.sum(func.length(Uplink.payload))
        sent = s.execute(select(Uplink.dev_eui, func.count(), size).group_by(Uplink.dev_eui)).all()
        statement, after = [], None
        while page := device_usage(s, bill.id, after=after):
            statement += page
            after = page[-1].subscription_id
    assert {d.dev_eui: (d.uplink_messages, d.bytes) for d in statement} == {
        dev: (n, size) for dev, n, size in sent
    }
    assert sum(d.charge_micros for d in statement) == usage_micros
    assert sum(d.recurring_micros + d.one_time_micros for d in statement) == fee_micros
