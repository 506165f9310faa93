"""The console in a real browser: headless Chromium driven by Playwright.

The test walks the main path an operator takes (tests.web.browser runs the server and checks
that the page never reaches any host but it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import PASSWORD
from tests.web.browser import browser_page, live_server, screenshot

__all__ = ["live_server"]  # the fixture, imported for this module's tests

pytestmark = pytest.mark.browser


def test_operator_walks_the_console(live_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with browser_page(live_server) as page:
        # Signed out, the dashboard sends us to the login form.
        page.goto(f"{live_server}/")
        assert urlsplit(page.url).path == "/login"
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        expect(page.locator(".flash-error")).to_contain_text("Wrong username or password")
        screenshot(page, tmp_path / "login.png")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")

        # The dashboard.
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator(".section-label")).to_have_text("Operator console")
        expect(page.locator("#audit-status")).to_contain_text("OK")
        screenshot(page, tmp_path / "dashboard.png", full_page=True)

        # Users & API keys: create a user.
        page.click("nav >> text=Users & API keys")
        expect(page.locator("h1")).to_have_text("Users & API keys")
        form = page.locator("#create-user")
        form.locator("input[name=username]").fill("grace")
        form.locator("input[name=display_name]").fill("Grace Hopper")
        form.locator("select[name=role]").select_option("noc")
        form.locator("input[name=password]").fill("a-long-password")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash-success")).to_have_text("User grace created.")
        expect(page.locator("#users-table")).to_contain_text("Grace Hopper")

        # Create an API key; its secret is shown once.
        keys = page.locator("#create-key")
        keys.locator("input[name=name]").fill("browser-key")
        keys.locator("input[value='users:read']").check()
        keys.locator("input[value='api-keys:read']").check()
        keys.locator("button[type=submit]").click()
        secret = page.locator("#secret").inner_text().strip()
        assert secret.startswith("sk_")
        expect(page.locator(".flash-warn")).to_contain_text("only time it is shown")
        screenshot(page, tmp_path / "key-created.png")
        page.click("text=Done — back to Users & API keys")
        assert secret not in page.content()
        row = page.locator("tr.key-row", has_text="browser-key")
        expect(row).to_contain_text("active")
        screenshot(page, tmp_path / "access.png", full_page=True)

        # Revoke it.
        row.locator("button", has_text="Revoke").click()
        expect(page.locator(".flash-success")).to_contain_text("revoked")
        expect(page.locator("tr.key-row", has_text="browser-key")).to_contain_text("revoked")

        # Sign out: the console is closed again.
        page.click("#logout")
        assert urlsplit(page.url).path == "/login"
        page.goto(f"{live_server}/access")
        assert urlsplit(page.url).path == "/login"

    assert (tmp_path / "dashboard.png").stat().st_size > 0
    assert (tmp_path / "access.png").stat().st_size > 0
    print(f"screenshots in {tmp_path}")
