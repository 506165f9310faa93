"""The Messages page in a real browser: new messages appear without reloading the page.

Headless Chromium via Playwright against uvicorn on a free port (the ``live_server`` fixture of
the console's browser test), with traffic ingested while the page is open. Screenshots of the
network pages are written to /tmp/satiot-screens for a person to look at.
"""

from __future__ import annotations

import pytest

from satiot.api.context import AppContext
from satiot.core.clock import ManualClock
from tests.factories import World
from tests.network.ingest_helpers import post, rec
from tests.web.browser import SCREENS, admin_console, live_server, screenshot
from tests.web.network_data import NetworkWorld, build

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


@pytest.fixture
def net(ctx: AppContext, world: World) -> NetworkWorld:
    return build(ctx, world)


def test_new_messages_appear_without_a_reload(
    live_server: str, net: NetworkWorld, ctx: AppContext, clock: ManualClock
) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        screenshot(page, SCREENS / "dashboard.png", full_page=True)

        page.click("nav >> text=Messages")
        expect(page.locator("h1")).to_have_text("Messages")
        rows = page.locator("#messages-body tr")
        expect(rows).to_have_count(6)
        expect(page.locator("#fig-hour")).to_have_text("6")
        page.evaluate("window.__notReloaded = true")

        # A ground station delivers a new message while the page is open.
        clock.advance(30)
        dev = net.b.device
        frame = dev.frame(300, bytes.fromhex("0badc0de"))
        post(ctx, net.station_id, [rec(frame, satellite="TQ-B07", at=clock.now())])
        expect(rows).to_have_count(7, timeout=15_000)
        newest = rows.first
        expect(newest).to_contain_text(dev.dev_eui)
        expect(newest).to_contain_text("0b ad c0 de")
        expect(newest).to_contain_text("TQ-B07")
        expect(newest).to_contain_text("Bolt Logistics")
        expect(page.locator("#fig-hour")).to_have_text("7")
        assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"
        expect(page.locator("#live-status")).not_to_have_class("live live-problem")
        screenshot(page, SCREENS / "messages.png", full_page=True)

        # The other network pages, for the eye.
        page.click(f"#messages-body tr >> nth=0 >> text={dev.dev_eui}")
        expect(page.locator("#device-facts")).to_contain_text(dev.dev_eui)
        expect(page.locator("#downlinks")).to_contain_text("scheduled")
        screenshot(page, SCREENS / "device.png", full_page=True)
        page.click("nav >> text=Devices")
        expect(page.locator("#devices-table")).to_contain_text(net.a.device.dev_eui)
        screenshot(page, SCREENS / "devices.png", full_page=True)
        page.click("nav >> text=Ground stations")
        expect(page.locator("#stations-table")).to_contain_text("Kashgar")
        screenshot(page, SCREENS / "ground-stations.png", full_page=True)
        page.click("nav >> text=Integrations")
        page.locator("tr.delivery-row", has_text="acme").first.locator("button").click()
        expect(page.locator(".flash-success")).to_contain_text("queued for delivery again")
        screenshot(page, SCREENS / "integrations.png", full_page=True)

    assert not problems, f"the browser reported: {problems}"
