"""Liveness, readiness, metrics, the OpenAPI document and the problem-type pages."""

from __future__ import annotations

import re

import pytest
from fastapi.openapi.models import OpenAPI

from satiot.api import problems
from satiot.core import events
from tests.api.conftest import assert_problem


def test_healthz_needs_no_credential(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_reports_database_and_migrations(client, world):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


def test_metrics_count_requests_by_route_template(client, ctx, world):
    headers = world.admin_headers()
    user_path = f"/api/v1/users/{world.admin.id}"
    for _ in range(2):
        assert client.get(user_path, headers=headers).status_code == 200
    client.get("/api/v1/nowhere", headers=headers)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    body = r.text
    line = re.search(
        r'^satiot_http_requests_total\{method="GET",route="/api/v1/users/\{user_id\}",'
        r'status="200"\} (\S+)$',
        body,
        re.M,
    )
    assert line and float(line.group(1)) == 2.0, body
    assert str(world.admin.id) not in body  # never the raw path
    assert "/api/v1/nowhere" not in body
    assert 'route="unmatched"' in body or 'status="404"' in body
    assert "satiot_http_request_duration_seconds_bucket" in body
    # What FastAPI does not route itself is named by the mount or route that took it.
    for path in ("/static/console.css", "/openapi.json"):
        assert client.get(path).status_code == 200
    body = client.get("/metrics").text
    for route in ("/static/{path}", "/openapi.json"):
        assert f'route="{route}",status="200"}} 1.0' in body, body
    assert 'route="unmatched",status="200"' not in body
    with ctx.db.read() as s:
        head = events.head(s)
    assert head > 0
    assert re.search(rf"^satiot_event_log_head {float(head)}$", body, re.M), body


def test_openapi_is_valid_and_documents_problems(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    OpenAPI.model_validate(spec)
    assert spec["openapi"].startswith("3.")
    ops = [
        (p, m, op)
        for p, item in spec["paths"].items()
        if p.startswith("/api/v1")
        for m, op in item.items()
    ]
    assert len(ops) >= 16
    for path, method, op in ops:
        for code in ("401", "422"):
            assert code in op["responses"], f"{method} {path} lacks {code}"
            assert "application/problem+json" in op["responses"][code]["content"], (
                f"{method} {path} {code} is not documented as problem+json"
            )
    assert all(
        p.startswith(("/api/v1", "/api/handles/", "/healthz", "/readyz", "/metrics", "/problems"))
        for p in spec["paths"]
    ), "console pages must stay out of the API document"


def test_docs_page_is_served_with_no_asset_from_another_host(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "http://" not in r.text and "https://" not in r.text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in r.text
        assert client.get(asset).status_code == 200


@pytest.mark.parametrize("slug", sorted(problems.CATALOG))
def test_every_problem_type_is_documented(client, slug):
    r = client.get(f"/problems/{slug}")
    assert r.status_code == 200
    assert r.json()["type"] == f"/problems/{slug}"
    assert r.json()["title"] and r.json()["description"]


def test_unknown_problem_type_is_404(client):
    assert_problem(client.get("/problems/no-such-thing"), 404, "not-found")


def test_an_app_pointed_at_another_context_serves_that_contexts_limit_and_metrics(app, ctx, world):
    """Nothing is captured when the app is built: after ``use_context`` the body limit and
    the request counts are the new context's, and the old context's registry counts nothing
    more."""
    from fastapi.testclient import TestClient
    from prometheus_client import generate_latest

    from satiot.api.app import use_context
    from satiot.api.context import AppContext

    other = AppContext(
        settings=ctx.settings.model_copy(update={"max_body_bytes": 1000}),
        db=ctx.db,
        clock=ctx.clock,
    )
    use_context(app, other)
    with TestClient(app) as c:
        r = c.post("/api/v1/users", content=b"x" * 2000, headers=world.admin_headers())
        assert_problem(r, 413, "payload-too-large")
        assert r.json()["max_bytes"] == 1000
        assert c.get("/healthz").status_code == 200
        body = c.get("/metrics").text
    assert 'route="/healthz",status="200"} 1.0' in body
    assert "satiot_http_requests_total" not in generate_latest(ctx.registry).decode()
    use_context(app, ctx)  # the first context again: 64 KiB
    with TestClient(app) as c:
        r = c.post("/api/v1/users", content=b"x" * 2000, headers=world.admin_headers())
    assert r.status_code == 422  # read, and refused as JSON, not for its size
