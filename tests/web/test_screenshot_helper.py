"""The browser tests' screenshot helper: a capture Chromium refuses once is taken again; any
other failure still fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error

from tests.web.browser import screenshot


class FlakyPage:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.taken: list[tuple[str, bool]] = []
        self.waited = 0

    def screenshot(self, *, path: str, full_page: bool) -> None:
        if self.failures:
            raise Error(self.failures.pop(0))
        self.taken.append((path, full_page))

    def wait_for_timeout(self, ms: Any) -> None:
        self.waited += int(ms)


def test_a_refused_capture_is_taken_again_once(tmp_path: Path) -> None:
    page = FlakyPage(["Protocol error (Page.captureScreenshot): Unable to capture screenshot"])
    screenshot(page, tmp_path / "a.png", full_page=True)
    assert page.taken == [(str(tmp_path / "a.png"), True)] and page.waited == 500


def test_other_failures_and_a_second_refusal_fail(tmp_path: Path) -> None:
    with pytest.raises(Error, match="Target closed"):
        screenshot(FlakyPage(["Target closed"]), tmp_path / "b.png")
    twice = ["Unable to capture screenshot"] * 2
    with pytest.raises(Error, match="Unable to capture"):
        screenshot(FlakyPage(twice), tmp_path / "c.png")
