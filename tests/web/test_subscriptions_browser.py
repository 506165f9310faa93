"""The Subscriptions page's moves in a real browser: one reason box per row, a button per
move, each button posting its own move (headless Chromium against uvicorn)."""

from __future__ import annotations

import pytest

from satiot.api.context import AppContext
from satiot.bss.models import Customer, Subscription
from tests.bss.order_world import shop, terminal
from tests.bss.test_orders import fulfil, place
from tests.factories import World
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser

#: How many lines an element's text takes.
LINES = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


def test_each_button_of_a_row_makes_its_own_move_with_the_rows_reason(
    live_server: str, ctx: AppContext, world: World
) -> None:
    from playwright.sync_api import expect

    s = shop(ctx, world)
    first, second = terminal(), terminal()
    placed = place(s, s.add(first, 0), s.add(second, 1))
    assert fulfil(s, placed.id) == "completed"
    with ctx.db.write() as session:
        subs = {sub.imei: sub.id for sub in session.query(Subscription)}
        # Names as a Chinese operator's customers have them: long, and wrapping.
        session.get(Customer, s.customer_id).name = "内蒙古草原智慧牧业科技发展有限责任公司"
    with admin_console(live_server) as page:
        page.goto(f"{live_server}/subscriptions")
        row = page.locator(f'tr[data-id="{subs[first.imei]}"]')
        # Both moves of an active subscription fit beside one reason box.
        expect(row.locator("form.move-form")).to_have_count(1)
        expect(row.get_by_role("button")).to_have_text(["Suspend", "Terminate"])
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "subscriptions.png")
        wrap = page.locator("#subscriptions .table-wrap")
        overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0, f"the table is {overflow} px wider than its card"
        # An offering's code breaks at no hyphen ("SAT-" / "BUNDLE-" / "100 v1").
        assert row.locator("td.offering").evaluate(LINES) == 1

        row.get_by_placeholder("Why").fill("device stolen")
        row.get_by_role("button", name="Terminate").click()
        expect(page.locator(".flash")).to_contain_text("terminated")
        row = page.locator(f'tr[data-id="{subs[first.imei]}"]')
        expect(row.locator(".badge")).to_have_text("terminated")
        expect(row).to_contain_text("device stolen")

        page.goto(f"{live_server}/subscriptions")  # the answer showed the moved one alone
        other = page.locator(f'tr[data-id="{subs[second.imei]}"]')
        other.get_by_placeholder("Why").fill("seasonal pause")
        other.get_by_role("button", name="Suspend").click()
        other = page.locator(f'tr[data-id="{subs[second.imei]}"]')
        expect(other.locator(".badge")).to_have_text("suspended")
        expect(other.get_by_role("button")).to_have_text(["Resume", "Terminate"])
