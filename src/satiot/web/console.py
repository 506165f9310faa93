"""Console routes (filled in by the console module)."""

from __future__ import annotations

from fastapi import FastAPI

from satiot.api.context import AppContext


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Attach the console's pages and static files to ``app``."""
