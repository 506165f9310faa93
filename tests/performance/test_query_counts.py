"""SQL statements per request, pinned: a list must not grow an N+1 as pages get longer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from satiot.core.auth.roles import Role


@contextmanager
def count_queries(engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn, _cursor, statement, _params, _context, _many) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _queries_for(client, ctx, url: str, headers: dict[str, str]) -> int:
    with count_queries(ctx.db.engine) as seen:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return len(seen)


def test_listing_users_costs_the_same_queries_for_5_or_30_rows(client, ctx, world):
    tenant = world.tenant()
    for _ in range(30):
        world.user(tenant, Role.CUSTOMER_USER)
    headers = world.admin_headers()
    small = _queries_for(client, ctx, "/api/v1/users?limit=5", headers)
    large = _queries_for(client, ctx, "/api/v1/users?limit=30", headers)
    # authenticate: key by prefix, its tenant, its user; then one page query
    assert small == large == 4


def test_listing_api_keys_and_tenants_is_one_query_after_authentication(client, ctx, world):
    headers = world.admin_headers()
    for _ in range(20):
        world.tenant()
    assert _queries_for(client, ctx, "/api/v1/tenants?limit=20", headers) == 4
    assert _queries_for(client, ctx, "/api/v1/api-keys?limit=20", headers) == 4


def test_creating_a_user_writes_in_a_bounded_number_of_statements(client, ctx, world):
    headers = world.admin_headers()
    body = {"username": "pinned", "password": "long-enough-password", "role": "noc"}
    with count_queries(ctx.db.engine) as seen:
        response = client.post("/api/v1/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    # auth (3), tenant, username check, insert user, then at commit: events head + event row,
    # audit head + audit hash + audit row
    assert len(seen) == 11, [q.split()[0] + " " + q.split()[2] for q in seen]


def test_business_figures_cost_seven_queries_whatever_the_business(ctx, world):
    """The dashboard's business row is aggregates only: more customers, orders or bills do
    not add statements (one each for customers, contracts, orders, subscriptions, bills,
    prepaid balances, and for billing staff the latest month-end job)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from satiot.web.views import business_figures
    from tests.bss.billing_world import USCCS, offering, price, sent_bill_for, shop

    viewer = SimpleNamespace(principal=world.system, audience="operator", now=ctx.clock.now)

    def cost() -> tuple[int, list[str]]:
        with ctx.db.read() as s, count_queries(ctx.db.engine) as seen:
            shown = business_figures.figures(s, viewer)  # type: ignore[arg-type]
        return len(seen), [f.value for f in shown]

    empty, values = cost()
    for uscc in USCCS:
        made = shop(world, uscc=uscc)
        plan = offering(ctx, "Plan", [price("recurring", 1_000_000)])
        sent_bill_for(world, made.tenant.id)  # its device takes the shop's first DevEUI
        made.n[0] += 1
        for _ in range(3):
            made.device(plan, datetime(2026, 10, 1, tzinfo=UTC))
    full, grown = cost()
    assert empty == full == 7
    assert grown != values  # the same statements, now counting something


def test_listing_jobs_costs_the_same_queries_for_2_or_20_rows(client, ctx, world):
    from satiot.bss import billing_jobs
    from satiot.core import jobs

    with ctx.db.write() as s:
        for year in range(2001, 2021):
            params = {"period": f"{year}-01"}
            jobs.submit(
                s, world.system, billing_jobs.BILL_RUN, params, key=str(year), at=ctx.clock.now()
            )
    headers = world.admin_headers()
    small = _queries_for(client, ctx, "/api/v1/jobs?limit=2", headers)
    large = _queries_for(client, ctx, "/api/v1/jobs?limit=20", headers)
    # authenticate (3), then one page query: what each job did is read from its own row
    assert small == large == 4
