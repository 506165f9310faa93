"""Two tenants for the route walkers: B holds one of everything the API names in a path (users,
keys, a device with an uplink and a queued command, a webhook owed a message, a real-name
customer with documents, account and contract, a sent bill, an order, a number and its handle),
and A holds the credentials that must not reach any of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from satiot.network import frames
from tests.api.conftest import bearer
from tests.factories import PASSWORD, World
from tests.network.delivery_support import deliveries, emit_uplink, fan_out
from tests.network.ingest_helpers import rec

API = "/api/v1"
MARKER = "zebra-marker-5e1f"


@dataclass
class TenantB:
    tenant_id: uuid.UUID
    user_ids: list[uuid.UUID]
    usernames: list[str]
    key_ids: list[uuid.UUID]
    key_prefixes: list[str]
    secrets: list[str]
    extra: list[str] = field(default_factory=list)
    #: More path parameters naming B's things (or the operator's, for operator-only routes).
    more_paths: dict[str, str] = field(default_factory=dict)
    #: B's own customer-admin credential.
    own_headers: dict[str, str] = field(default_factory=dict)

    def path_values(self) -> dict[str, str]:
        """Path parameter name -> a value naming one of B's things."""
        return {
            "tenant_id": str(self.tenant_id),
            "user_id": str(self.user_ids[0]),
            "key_id": str(self.key_ids[0]),
        } | self.more_paths

    def markers(self) -> set[str]:
        return (
            {
                str(self.tenant_id),
                MARKER,
                *self.usernames,
                *self.key_prefixes,
                *self.secrets,
                *self.extra,
            }
            | {str(u) for u in self.user_ids}
            | {str(k) for k in self.key_ids}
        )


def build_two_tenants(
    client: TestClient, world: World, ctx: AppContext
) -> tuple[TenantB, dict[str, dict[str, str]]]:
    """Tenant A (the caller) and tenant B (the target) with users, keys, tokens and history:
    B's ids for every path parameter of the API, and A's credentials by name."""
    a = world.tenant("alpha")
    a_admin = world.user(a, Role.CUSTOMER_ADMIN, "a-admin")
    a_user = world.user(a, Role.CUSTOMER_USER, "a-user")
    b = world.tenant("bravo", name=f"Bravo {MARKER}")
    b_admin = world.user(b, Role.CUSTOMER_ADMIN, "b-admin-zebra")
    b_user = world.user(b, Role.CUSTOMER_USER, "b-user-zebra")
    b_key = world.key(b_admin)
    bh = bearer(b_key)
    # B's own activity through the API: a user (with an idempotency record), keys, a revoked
    # key, a disabled user, a bearer token. All of it leaves audit entries and events in B.
    r = client.post(
        f"{API}/users",
        headers=bh | {"Idempotency-Key": "b-1"},
        json={"username": "b-made-zebra", "password": PASSWORD, "role": "customer-user"},
    )
    assert r.status_code == 201, r.text
    made = r.json()["id"]
    r = client.post(
        f"{API}/api-keys", headers=bh, json={"name": f"b key {MARKER}", "user_id": str(b_user.id)}
    )
    assert r.status_code == 201, r.text
    second = r.json()
    r = client.post(f"{API}/api-keys", headers=bh, json={"name": "doomed"})
    doomed = r.json()
    assert client.delete(f"{API}/api-keys/{doomed['id']}", headers=bh).status_code == 204
    assert (
        client.patch(
            f"{API}/users/{made}", headers=bh, json={"status": "disabled", "reason": MARKER}
        ).status_code
        == 200
    )
    token = client.post(
        f"{API}/auth/token", data={"username": b_admin.username, "password": PASSWORD}
    ).json()["access_token"]
    keys = client.get(f"{API}/api-keys?include_revoked=true", headers=bh).json()["items"]
    assert len(keys) == 3
    first_key = next(k for k in keys if k["id"] not in (second["id"], doomed["id"]))
    tb = TenantB(
        tenant_id=b.id,
        user_ids=[b_user.id, b_admin.id, uuid.UUID(made)],
        usernames=[b_admin.username, b_user.username, "b-made-zebra"],
        key_ids=[uuid.UUID(k["id"]) for k in (first_key, second, doomed)],
        key_prefixes=[k["prefix"] for k in keys],
        secrets=[b_key, second["secret"], token],
        extra=["bravo"],
        more_paths=oss_inventory_of(world, b.id),
        own_headers=bh,
    )
    tb.extra += [tb.more_paths["number"], tb.more_paths["handle"]]
    tb.more_paths |= _b_integration_with_a_delivery(client, ctx, tb, bh)
    device, station_id, station_key = _b_device_with_an_uplink(client, world, bh)
    # Stations are the operator's, not B's: customers must not reach their routes at all.
    tb.more_paths |= {"dev_eui": device["dev_eui"], "station_id": station_id}
    tb.secrets += [device["nwk_s_key"], device["app_s_key"], station_key]
    tb.extra.append(device["dev_eui"])
    tb.more_paths |= _b_customer(world, tb)
    tb.more_paths |= _b_sent_bill(world, tb)
    tb.more_paths |= _b_order(world, tb)
    tb.more_paths["job_id"] = _b_job(world, tb)
    tb.extra.append(tb.more_paths["job_id"])
    tb.more_paths["downlink_id"] = _b_downlink(client, bh, device["dev_eui"])
    tb.extra.append(tb.more_paths["downlink_id"])
    tb.more_paths["usage_id"] = _b_usage(world, tb)
    tb.extra.append(tb.more_paths["usage_id"])
    a_token = client.post(
        f"{API}/auth/token", data={"username": a_admin.username, "password": PASSWORD}
    ).json()["access_token"]
    callers = {
        "customer-admin key": bearer(world.key(a_admin)),
        "customer-user key": bearer(world.key(a_user)),
        "customer-admin token": bearer(a_token),
    }
    return tb, callers


def _b_integration_with_a_delivery(client, ctx, tb, bh) -> dict[str, str]:
    """B's webhook (its url carries the marker, its secret must never show) owed one message."""
    hook_secret = f"b-hook-secret-{MARKER}"
    r = client.post(
        f"{API}/integrations",
        headers=bh,
        json={"kind": "webhook", "url": f"https://{MARKER}.example/hook", "secret": hook_secret},
    )
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    emit_uplink(ctx, tb.tenant_id, "70b3d57ed00b0001", 1)
    fan_out(ctx)
    (owed,) = deliveries(ctx, uuid.UUID(hook))
    tb.secrets.append(hook_secret)
    tb.extra += [hook, str(owed.id)]
    return {"integration_id": hook, "delivery_id": str(owed.id)}


def _b_device_with_an_uplink(client, world, bh):
    """B's device, provisioned by B, with one message posted by an operator's ground station."""
    device = {
        "dev_eui": "70B3D57EBBBB0001",
        "dev_addr": "26BBBB01",
        "nwk_s_key": "B0" * 16,
        "app_s_key": "B1" * 16,
        "name": f"meter {MARKER}",
    }
    r = client.post(f"{API}/devices", headers=bh | {"Idempotency-Key": "b-dev"}, json=device)
    assert r.status_code == 201, r.text
    for status in ("activation-ready", "active"):  # the operator puts it in service
        r = client.post(
            f"{API}/devices/{device['dev_eui']}/status",
            headers=world.admin_headers(),
            json={"status": status},
        )
        assert r.status_code == 200, r.text
    r = client.post(
        f"{API}/ground-stations",
        headers=world.admin_headers(),
        json={"name": "Walker GS", "lat": 40.0, "lon": 116.0},
    )
    assert r.status_code == 201, r.text
    station_id, station_key = r.json()["id"], r.json()["api_key"]
    phy = frames.encode(
        mtype=frames.MType.UNCONFIRMED_UP,
        dev_addr=0x26BBBB01,
        f_cnt32=1,
        f_port=1,
        payload=MARKER.encode(),
        nwk_s_key=bytes.fromhex(device["nwk_s_key"]),
        app_s_key=bytes.fromhex(device["app_s_key"]),
    )
    r = client.post(
        f"{API}/ground-stations/{station_id}/receptions",
        headers=bearer(station_key),
        json={"receptions": [rec(phy)]},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    return device, station_id, station_key


def _b_downlink(client, bh, dev_eui: str) -> str:
    """A command B queued for its device (B's device has no position: it stays queued)."""
    r = client.post(
        f"{API}/devices/{dev_eui}/downlinks",
        headers=bh | {"Idempotency-Key": "b-downlink"},
        json={"payload": "AQI=", "f_port": 7, "expires_at": "2026-11-26T08:00:00Z"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _b_customer(world, tb) -> dict[str, str]:
    """B's real-name record (onboarded by the operator's staff for B's tenant) with its
    documents, a billing account and a signed contract."""
    from satiot.bss import documents

    ready = world.customer(tb.tenant_id, name=f"Bravo {MARKER}")
    with world.ctx.db.read() as s:
        doc = documents.document_page(s, ready.customer_id, cursor=None, limit=1).items[0]
    found = {
        "customer_id": str(ready.customer_id),
        "contract_id": str(ready.contract_id),
        "document_id": str(doc.id),
        "account_id": str(ready.account_id),
    }
    tb.extra += [*found.values(), ready.uscc, ready.contract_number]
    return found


def _b_sent_bill(world, tb) -> dict[str, str]:
    """B's October bill, sent, with its bill run (the operator's) and B's billing account
    and subscription (reused from B's customer record when it has one)."""
    from tests.bss.billing_world import sent_bill_for

    found = sent_bill_for(world, tb.tenant_id)
    tb.extra += list(found.values())
    return {k: v for k, v in found.items() if k not in tb.more_paths}


def _b_usage(world, tb) -> str:
    """A rated usage record of B's subscription (as rating writes one: named by its event)."""
    from satiot.bss.models import Subscription, UsageRecord
    from satiot.core.ids import new_id

    sub_id = uuid.UUID(tb.more_paths["subscription_id"])
    at = world.ctx.clock.now()
    with world.ctx.db.write() as s:
        sub = s.get(Subscription, sub_id)
        assert sub is not None
        record = UsageRecord(
            id=(usage_id := new_id()), event_id=usage_id, tenant_id=tb.tenant_id,
            dev_eui=sub.dev_eui, subscription_id=sub.id, billing_account_id=sub.billing_account_id,
            offering_id=sub.offering_id, kind="uplink", bytes=12, billable_bytes=12,
            period="2026-11", occurred_at=at, charge_micros=20_000, state="rated",
        )  # fmt: skip
        s.add(record)
    return str(usage_id)


def _b_job(world, tb) -> str:
    """A job queued in B, as its administrator's (B's own, which B may read)."""
    from satiot.bss import billing_jobs
    from satiot.core import jobs
    from satiot.core.auth.principal import Principal
    from satiot.core.auth.roles import ROLES

    asker = Principal(
        tb.tenant_id,
        Role.CUSTOMER_ADMIN,
        ROLES[Role.CUSTOMER_ADMIN].scopes,
        tb.user_ids[1],
        "b-admin-zebra",
        "session",
    )
    with world.ctx.db.write() as s:
        job = jobs.submit(
            s, asker, billing_jobs.BILL_RUN, {"period": "2026-11"}, key=f"walk:{MARKER}",
            at=world.ctx.clock.now(),
        )  # fmt: skip
        return str(job.id)


def _b_order(world, tb) -> dict[str, str]:
    """B's product order (pending: it starts tomorrow), and an offering still in design (the
    operator's, which a customer never sees, so it answers like a missing one)."""
    from dataclasses import replace
    from datetime import timedelta

    from satiot.bss import catalog
    from satiot.bss.catalog_seed import DEFAULT_CATALOG
    from satiot.bss.models import Contract, Customer, ProductOrder, ProductOrderItem

    at = world.ctx.clock.now()
    with world.ctx.db.write() as s:
        customer = s.scalar(select(Customer).where(Customer.tenant_id == tb.tenant_id))
        contract = s.scalar(select(Contract).where(Contract.tenant_id == tb.tenant_id))
        draft = catalog.create_offering(
            s, world.system, replace(DEFAULT_CATALOG[0], code="WALK-DRAFT"), at=at
        )
        order = ProductOrder(
            tenant_id=tb.tenant_id,
            customer_id=customer.id,
            contract_id=contract.id,
            billing_account_id=uuid.UUID(tb.more_paths["account_id"]),
            state="pending",
            source="api",
            external_id=f"PO-{MARKER}",
            placed_by="user:b-admin-zebra",
            requested_start_at=at + timedelta(days=1),
            created_at=at,
        )
        s.add(order)
        s.flush()
        s.add(
            ProductOrderItem(
                tenant_id=tb.tenant_id,
                order_id=order.id,
                line=0,
                action="add",
                offering_id=draft.id,
                terminal={"dev_eui": "70B3D57EBBBB0002", "terminal_model": "TQ-ZEBRA"},
                state="acknowledged",
            )
        )
    tb.extra.append(str(order.id))
    return {"order_id": str(order.id), "offering_id": str(draft.id)}


def oss_inventory_of(world, tenant_id: uuid.UUID) -> dict[str, str]:
    """A number allocated to the tenant and the handle binding it to a terminal; the
    operator's terminal model and number block they come from."""
    from datetime import date

    from satiot.oss import identifiers, number_blocks, numbering, terminals

    at = world.ctx.clock.now()
    with world.ctx.db.write() as s:
        model = terminals.create_model(
            s,
            world.system,
            terminals.TerminalModelSpec(
                "TQ-ZEBRA",
                "Satellite IoT module",
                "Maker",
                "Maker",
                "00-B182-228209",
                date(2025, 1, 1),
                date(2028, 1, 1),
            ),
            at=at,
        )
        spec = number_blocks.BlockSpec("walk", "141012345", "satellite IoT", "national")
        block = number_blocks.create_block(s, world.system, spec, at=at)
        number = numbering.allocate(s, world.system, tenant_id=tenant_id, at=at).number
        record = identifiers.DeviceRecord(
            "354178036859789", model.name, model.licence_number, number, "91110000600037341L"
        )
        handle = identifiers.create_handle(
            s, world.system, prefix="88.608.8899", record=record, tenant_id=tenant_id, at=at
        ).handle
    return {
        "model_id": str(model.id),
        "block_id": str(block.id),
        "number": number,
        "handle": handle,
    }
