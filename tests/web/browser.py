"""What the console's browser tests share: a live server, a headless Chromium page, a sign-in.

The app runs under uvicorn on a free loopback port in a background thread, against the same
test database and pinned clock as the rest of the suite. Every page records the URLs it
requests, and leaving :func:`browser_page` checks that none went to another host: the console
must work with no internet.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.factories import PASSWORD, World

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
SCREENS = Path(tempfile.gettempdir()) / "satiot-screens"


def screenshot(page: Any, path: Path, *, full_page: bool = False) -> None:
    """Save what the page shows (for a person to look at; no test asserts on the picture).
    Chromium now and then refuses a capture on a loaded machine ("Unable to capture
    screenshot"); the picture is taken again once after a moment instead of failing the test
    whose assertions all passed."""
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(path), full_page=full_page)
    except Error as exc:
        if "Unable to capture screenshot" not in str(exc):
            raise
        page.wait_for_timeout(500)
        page.screenshot(path=str(path), full_page=full_page)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(app: FastAPI, world: World) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(
        app,
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


@contextmanager
def browser_page(live_server: str, problems: list[str] | None = None) -> Iterator[Page]:
    """A fresh headless Chromium page; on leaving, no request may have left the test server.
    ``problems`` collects the page's console errors and warnings and uncaught exceptions."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    SCREENS.mkdir(exist_ok=True)
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            if problems is not None:
                page.on(
                    "console",
                    lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
                )
                page.on("pageerror", lambda exc: problems.append(str(exc)))
            yield page
        finally:
            browser.close()
    foreign = {urlsplit(u).netloc for u in requests} - {urlsplit(live_server).netloc}
    assert not foreign, f"the console reached other hosts: {sorted(foreign)}"


@contextmanager
def admin_console(live_server: str, problems: list[str] | None = None) -> Iterator[Page]:
    """:func:`browser_page`, signed in as the operator's administrator, on the dashboard."""
    from playwright.sync_api import expect

    with browser_page(live_server, problems) as page:
        page.goto(f"{live_server}/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Dashboard")
        yield page
