"""The licence list import in a real browser (headless Chromium against uvicorn): a file chosen
in the form, every bad line shown in a table that fits the page, then the list imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from satiot.api.context import AppContext
from tests.factories import World
from tests.oss.test_licence_list import CSV
from tests.web.browser import SCREENS, admin_console, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_a_list_is_corrected_and_imported_from_the_page(
    live_server: str, ctx: AppContext, world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    bad = tmp_path / "models.csv"
    bad.write_text(
        CSV
        + "TQ-M300,Satellite IoT module,Maker,Maker,BAD,2025-01-01,2026-01-01,\n"
        + "TQ-M400,Satellite IoT module,Maker,Maker,00-B182-228212,2025-13-01,2026-01-01,\n"
    )
    with admin_console(live_server) as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{live_server}/terminal-models")
        page.set_input_files("#licence-upload input[type=file]", str(bad))
        page.click("#licence-upload button[type=submit]")
        rows = page.locator("#import-errors tr.import-error")
        expect(rows).to_have_count(2)
        assert rows.nth(0).inner_text().startswith("4")
        assert "not a date" in rows.nth(1).inner_text()
        wrap = page.locator("#licence-import .table-wrap")
        overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0, f"the table is {overflow} px wider than its card"
        SCREENS.mkdir(parents=True, exist_ok=True)
        screenshot(page, SCREENS / "licence-import.png", full_page=True)
        expect(page.locator("tr.model-row")).to_have_count(0)

        good = tmp_path / "fixed.csv"
        good.write_text(CSV)
        page.set_input_files("#licence-upload input[type=file]", str(good))
        page.click("#licence-upload button[type=submit]")
        expect(page.locator("tr.model-row")).to_have_count(2)
        expect(page.locator(".flash-success")).to_contain_text("2 created")
        expect(page.locator("#import-errors")).to_have_count(0)
