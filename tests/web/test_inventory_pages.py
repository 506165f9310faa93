"""The console's OSS inventory pages: terminal models with expired licences flagged, number
blocks with allocated, quarantined and free counts, handles with their node state; filters,
pagination, and who may see them (operator staff and the regulator, not customers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss.models import Subscription
from satiot.core.auth.roles import Role
from satiot.oss import numbering, terminals
from satiot.oss.identifiers import create_handle
from satiot.oss.models import Handle
from satiot.oss.number_blocks import create_block
from satiot.web.views import inventory
from tests.bss.billing_world import offering, price, shop
from tests.factories import World
from tests.oss.helpers import IMEI, PREFIX, block_spec, model_spec, record
from tests.web.console_helpers import signed_in

DEV_EUI = "0011223344556677"


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _row(html: str, css_class: str, marker: str) -> str:
    """The table row of ``css_class`` that contains ``marker``."""
    for chunk in html.split(f'class="{css_class}')[1:]:
        row = chunk.split("</tr>", 1)[0]
        if marker in row:
            return row
    raise AssertionError(f"no {css_class} row with {marker!r}")


@dataclass
class Inventory:
    tenant_name: str
    registered: str
    pending: str
    failed: str
    subscription: Subscription


@pytest.fixture
def inv(ctx: AppContext, world: World) -> Inventory:
    now, system = ctx.clock.now(), world.system  # 2026-11-25
    with ctx.db.write() as s:
        terminals.create_model(s, system, model_spec(), at=now)
        terminals.create_model(
            s,
            system,
            model_spec(
                "OLD-1",
                "00-A111-111111",
                manufacturer="Legacy Radio Ltd",
                expires_on=date(2026, 10, 1),
            ),
            at=now,
        )
        terminals.create_model(
            s, system, model_spec("SOON-2", "00-C222-222222", expires_on=date(2027, 1, 15)), at=now
        )
        gone = terminals.create_model(s, system, model_spec("GONE-3", "00-D333-333333"), at=now)
        terminals.update_model(s, system, gone.id, {"status": "withdrawn"}, at=now)
        create_block(s, system, block_spec(), at=now)
        create_block(s, system, block_spec("b2", "14101235", purpose="trials"), at=now)
    owner = shop(world, name="Handles Co")
    with ctx.db.write() as s:
        numbers = [
            numbering.allocate(s, system, tenant_id=owner.tenant.id, at=now, block="b1").number
            for _ in range(3)
        ]
        numbering.transition(s, system, numbers[0], "active", at=now)
        numbering.transition(s, system, numbers[2], "active", at=now)
        numbering.transition(s, system, numbers[2], "cancelled", at=now)
        handles = [
            create_handle(
                s,
                system,
                prefix=PREFIX,
                record=record(n, terminal_id=t),
                tenant_id=owner.tenant.id,
                at=now,
            )
            for n, t in ((numbers[0], IMEI), (numbers[1], DEV_EUI))
        ]
        third = numbering.allocate(s, system, tenant_id=owner.tenant.id, at=now, block="b2").number
        handles.append(
            create_handle(
                s,
                system,
                prefix=PREFIX,
                record=record(third, terminal_id="00112233445566AA"),
                tenant_id=None,
                at=now,
            )
        )
        s.flush()
        handles[0].registered_at = now
        handles[2].node_error = "node refused: 401 unauthorised"
        names = [h.handle for h in handles]
    off = offering(ctx, "Plan", [price("recurring", 1_000_000)])
    sub = owner.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    with ctx.db.write() as s:
        row = s.get(Subscription, sub.id)
        assert row is not None
        row.handle = names[0]
    return Inventory(owner.tenant.name, names[0], names[1], names[2], sub)


def test_terminal_models_flag_expired_licences(client: TestClient, world: World, inv: Inventory):
    world.user(world.operator, Role.NOC, "noc1")
    _as(client, "noc1")
    html = client.get("/terminal-models").text
    assert 'href="/terminal-models"' in html and html.count('class="model-row') == 4
    old = _row(html, "model-row", "OLD-1")
    assert "licence-expired" in old and "badge-expired" in old and "2026-10-01" in old
    assert "Legacy Radio Ltd" in old and "00-A111-111111" in old
    assert "51 days left" in _row(html, "model-row", "SOON-2")
    fine = _row(html, "model-row", "TQ-M100")
    assert "licence-expired" not in fine and "days left" not in fine and "listed" in fine
    assert "withdrawn" in _row(html, "model-row", "GONE-3")

    expired = client.get("/terminal-models?licence=expired").text
    assert "OLD-1" in expired and "TQ-M100" not in expired and "SOON-2" not in expired
    assert "SOON-2" in client.get("/terminal-models?licence=expiring").text
    withdrawn = client.get("/terminal-models?status=withdrawn").text
    assert "GONE-3" in withdrawn and "OLD-1" not in withdrawn
    found = client.get("/terminal-models?q=legacy").text
    assert "OLD-1" in found and "TQ-M100" not in found
    assert "No terminal model matches." in client.get("/terminal-models?q=nothing-like-it").text


def test_terminal_models_paginate(
    client: TestClient, world: World, inv: Inventory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(inventory, "PAGE", 3)
    _as(client, "admin")
    first = client.get("/terminal-models").text
    assert first.count('class="model-row') == 3 and 'rel="next"' in first
    next_url = first.split('<div class="pager"><a href="', 1)[1].split('"', 1)[0]
    second = client.get(next_url.replace("&amp;", "&")).text
    assert second.count('class="model-row') == 1 and 'rel="next"' not in second
    forged = client.get("/terminal-models?after=not-a-cursor").text
    assert "flash-error" in forged and forged.count('class="model-row') == 3


def test_number_blocks_show_allocated_quarantined_and_free(
    client: TestClient, world: World, inv: Inventory
):
    _as(client, "admin")
    html = client.get("/number-blocks").text
    assert 'href="/number-blocks"' in html
    b1 = _row(html, "block-row", "satellite IoT terminals")
    cells = [c.split("<", 1)[0] for c in b1.split('<td class="num">')[1:]]
    # size, allocated (reserved + active), quarantined (the cancelled one), free
    assert cells == ["100,000", "2", "1", "99,997"]
    assert "1 active" in b1 and "<code>14101234</code>" in b1
    assert "1410123400000" in b1 and "1410123499999" in b1
    b2 = _row(html, "block-row", "trials")
    assert [c.split("<", 1)[0] for c in b2.split('<td class="num">')[1:]] == [
        "100,000",
        "1",
        "0",
        "99,999",
    ]
    filtered = client.get("/number-blocks?q=14101235").text
    assert "trials" in filtered and "satellite IoT terminals" not in filtered


def test_handles_show_binding_and_node_state(
    client: TestClient, ctx: AppContext, world: World, inv: Inventory
):
    world.user(world.operator, Role.COMPLIANCE, "auditor")
    _as(client, "auditor")
    html = client.get("/handles").text
    assert html.count('class="handle-row"') == 3
    registered = _row(html, "handle-row", inv.registered)
    assert "badge-registered" in registered and "2026-11-25 08:00 UTC" in registered
    assert IMEI in registered and inv.tenant_name in registered
    assert f"/subscriptions?id={inv.subscription.id}" in registered
    assert inv.subscription.dev_eui in registered
    assert "badge-pending" in _row(html, "handle-row", inv.pending)
    assert "no identification node is configured" in html  # pending stays pending here
    failed = _row(html, "handle-row", inv.failed)
    assert "badge-failed" in failed and "node refused: 401 unauthorised" in failed

    for node, wanted in (
        ("failed", inv.failed),
        ("pending", inv.pending),
        ("registered", inv.registered),
    ):
        page = client.get(f"/handles?node={node}").text
        assert page.count('class="handle-row"') == 1 and wanted in page, node
    by_terminal = client.get(f"/handles?q={DEV_EUI[:10]}").text
    assert by_terminal.count('class="handle-row"') == 2  # both DevEUIs start alike
    assert client.get("/handles?status=retired").text.count('class="handle-row"') == 0
    ctx.settings.handle_node_url = "https://user:secret@node.example:8443/api"
    note = client.get("/handles").text
    assert "reach the identification node (https://node.example:8443)" in note
    assert "secret" not in note


def test_inventory_is_not_for_customers(
    client: TestClient, ctx: AppContext, world: World, inv: Inventory
):
    with ctx.db.read() as s:
        tenant_id = s.scalar(select(Handle.tenant_id).where(Handle.handle == inv.registered))
    assert tenant_id is not None
    world.user(tenant_id, Role.CUSTOMER_ADMIN, "cust")
    world.user(world.operator, Role.REGULATOR, "miit")
    _as(client, "cust")
    home = client.get("/").text
    for path in ("/terminal-models", "/number-blocks", "/handles"):
        assert f'href="{path}"' not in home
        r = client.get(path)
        assert r.status_code == 403 and "Not allowed" in r.text, path
        assert inv.registered not in r.text
    _as(client, "miit")  # the regulator reads the register, as through the API
    home = client.get("/").text
    for path in ("/terminal-models", "/number-blocks", "/handles"):
        assert f'href="{path}"' in home
        assert client.get(path).status_code == 200
