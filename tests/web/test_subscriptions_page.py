"""The Subscriptions page's moves: a customer is offered only what it may do, and everyone
sees who suspended a device."""

from __future__ import annotations

from fastapi.testclient import TestClient

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one
from tests.factories import World
from tests.web.console_helpers import signed_in


def test_a_customer_is_offered_resume_only_for_suspensions_it_made(
    client: TestClient, ctx: AppContext, world: World
):
    from satiot.bss.subscriptions import suspend_subscription
    from tests.bss.test_activation import customer_admin

    s = shop(ctx, world)
    own, operators = sorted((activate_one(s, terminal()) for _ in range(2)), key=lambda x: x.id)
    with ctx.db.write() as session:
        now = ctx.clock.now()
        suspend_subscription(session, customer_admin(s), own.id, "winter", now)
        suspend_subscription(session, world.system, operators.id, "fraud review", now)
    signed_in(client, s.admin.username)
    html = client.get("/subscriptions").text
    assert f"/subscriptions/{own.id}/resume" in html
    assert f"/subscriptions/{operators.id}/resume" not in html
    assert f"/subscriptions/{operators.id}/terminate" in html  # still the customer's to end
    row = html.split(f'data-id="{operators.id}"', 1)[1].split("</tr>", 1)[0]
    assert "suspended by the operator; only the operator can resume it" in row
    # the operator's staff see the same origin, and may resume it
    client.cookies.clear()
    signed_in(client, world.user(world.operator, Role.OPERATOR_ADMIN, "boss").username)
    staff = client.get("/subscriptions").text
    assert f"/subscriptions/{operators.id}/resume" in staff
    assert "suspended by the operator" in staff
