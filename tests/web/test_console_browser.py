"""The console in a real browser: headless Chromium driven by Playwright.

The app runs under uvicorn on a free loopback port in a background thread, against the same
test database and pinned clock as the rest of the suite. The test walks the main path an
operator takes and checks that the page never reaches any host but the test server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from satiot.api.context import AppContext
from satiot.server import build_app
from tests.factories import PASSWORD, World

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(ctx: AppContext, world: World) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(
        build_app(ctx),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the console test server did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def test_operator_walks_the_console(live_server: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` to run browser tests")
    from playwright.sync_api import expect, sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("request", lambda request: requests.append(request.url))

            # Signed out, the dashboard sends us to the login form.
            page.goto(f"{live_server}/")
            assert urlsplit(page.url).path == "/login"
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "wrong-password")
            page.click("button[type=submit]")
            expect(page.locator(".flash-error")).to_contain_text("Wrong username or password")
            page.screenshot(path=str(tmp_path / "login.png"))
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")

            # The dashboard.
            expect(page.locator("h1")).to_have_text("Dashboard")
            expect(page.locator(".section-label")).to_have_text("Operator console")
            expect(page.locator("#audit-status")).to_contain_text("OK")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

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
            page.screenshot(path=str(tmp_path / "key-created.png"))
            page.click("text=Done — back to Users & API keys")
            assert secret not in page.content()
            row = page.locator("tr.key-row", has_text="browser-key")
            expect(row).to_contain_text("active")
            page.screenshot(path=str(tmp_path / "access.png"), full_page=True)

            # Revoke it.
            row.locator("button", has_text="Revoke").click()
            expect(page.locator(".flash-success")).to_contain_text("revoked")
            expect(page.locator("tr.key-row", has_text="browser-key")).to_contain_text("revoked")

            # Sign out: the console is closed again.
            page.click("#logout")
            assert urlsplit(page.url).path == "/login"
            page.goto(f"{live_server}/access")
            assert urlsplit(page.url).path == "/login"
        finally:
            browser.close()

    foreign = {urlsplit(u).netloc for u in requests} - {urlsplit(live_server).netloc}
    assert not foreign, f"the console reached other hosts: {sorted(foreign)}"
    assert (tmp_path / "dashboard.png").stat().st_size > 0
    assert (tmp_path / "access.png").stat().st_size > 0
    print(f"screenshots in {tmp_path}")
