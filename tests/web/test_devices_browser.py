"""The Devices page's Silent filter and export in a real browser (headless Chromium against
uvicorn): the filter bar fits on one line, the filter keeps the silent devices, and Export
CSV downloads what it shows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from satiot.api.context import AppContext
from tests.factories import World
from tests.network.test_device_export import devices
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser

#: How many lines a flex bar's children take: children whose vertical spans overlap share one.
ONE_LINE = """f => {
  const spans = [...f.children].filter(c => c.offsetParent !== null)
    .map(c => c.getBoundingClientRect()).sort((a, b) => a.top - b.top);
  let lines = 0, bottom = -Infinity;
  for (const r of spans) { if (r.top >= bottom) { lines += 1; bottom = r.bottom; }
                           else { bottom = Math.max(bottom, r.bottom); } }
  return lines;
}"""


def test_the_silent_filter_and_its_export(live_server: str, ctx: AppContext, world: World) -> None:
    from playwright.sync_api import expect

    now = ctx.clock.now()
    tenant = world.tenant()
    recent, quiet, never = devices(ctx, tenant.id, [now, now - timedelta(days=9), None])
    problems: list[str] = []
    with admin_console(live_server, problems) as page:
        page.click("nav >> text=Devices")
        bar = page.locator("form.filter-bar")
        screenshot(page, SCREENS / "devices.png")
        rows_of_bar = bar.evaluate(ONE_LINE)
        assert rows_of_bar == 1, "search, filter and buttons share one line at 1360 px"
        page.select_option("#device-silent", "7")
        page.click("form.filter-bar button[type=submit]")
        rows = page.locator("#devices-table tr.device-row")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-dev-eui", quiet)
        expect(page.locator("#device-silent")).to_have_value("7")
        screenshot(page, SCREENS / "devices-silent.png", full_page=True)
        with page.expect_download() as download:
            page.click("#devices-export")
        saved = download.value
        assert saved.suggested_filename.startswith("satiot-devices-")
        lines = Path(saved.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert [line.split(",")[0] for line in lines[1:]] == [quiet, never]
        assert recent not in "".join(lines)
    assert problems == []
