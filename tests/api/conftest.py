"""Helpers shared by the API tests: problem+json checks and "nothing changed" snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from satiot.api.context import AppContext

#: The tables whose row counts tell whether a request changed anything.
COUNTED = (
    "tenants",
    "users",
    "api_keys",
    "access_tokens",
    "audit_log",
    "events",
    "idempotency_records",
)


def row_counts(ctx: AppContext) -> dict[str, int]:
    with ctx.db.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()) for t in COUNTED
        }


@contextmanager
def unchanged(ctx: AppContext) -> Iterator[None]:
    """Assert that the block leaves every counted table exactly as large as it found it."""
    before = row_counts(ctx)
    yield
    assert row_counts(ctx) == before


def assert_problem(r: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """``r`` is an RFC 9457 problem with ``status`` (and type ``/problems/<slug>``)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    for member in ("type", "title", "status", "detail"):
        assert member in body, f"problem lacks {member!r}: {body}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    assert "Traceback" not in r.text
    return body


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def counts(ctx: AppContext) -> Any:
    return lambda: row_counts(ctx)


@pytest.fixture
def billed(
    client: httpx.Client, world: Any, ctx: AppContext
) -> tuple[Any, dict[str, str], dict[str, str]]:
    """One customer with one device at ¥100 a month and ¥0.01 a message that sent one message
    in November, the clock at 1 December: (shop, billing clerk's headers, customer's)."""
    from datetime import UTC, datetime

    from satiot.core.auth.roles import Role
    from tests.bss.billing_world import offering, price, rate_all, shop, uplink

    s = shop(world)
    off = offering(
        ctx, "Tianqi Basic", [price("recurring", 100_000_000), price("per-message", 10_000)]
    )
    sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    uplink(ctx, sub, 10, datetime(2026, 11, 5, tzinfo=UTC))
    rate_all(ctx)
    ctx.clock.set(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    clerk = world.headers(world.user(world.operator, Role.BILLING, "clerk"))
    customer = world.headers(world.user(s.tenant, Role.CUSTOMER_ADMIN))
    return s, clerk, customer


def run_november(client: httpx.Client, clerk: dict[str, str]) -> dict[str, Any]:
    """Run November's bills as the clerk; the run's answer."""
    r = client.post("/api/v1/bill-runs", headers=clerk, json={"period": "2026-11"})
    assert r.status_code == 201, r.text
    return dict(r.json())
