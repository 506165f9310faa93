"""The tenant-isolation route walker.

Every route of the application is called by tenant A's credentials, aimed at tenant B's things:
B's ids in the path, in ``tenant_id``/``user_id`` body fields and query parameters. Whatever the
route, A must learn nothing of B (no B identifier, username or marker in any answer beyond what
A itself sent, and no answer that differs from the one for an id that does not exist) and
change nothing of B (every row of every tenant-scoped table is compared before and after).

Routes are discovered from the application, so a route added later is walked automatically. A
route with a path parameter the walker does not know fails the test: extend ``path_values``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from satiot.schema import metadata
from satiot.server import build_app
from tests.api.tenant_world import API, TenantB, build_two_tenants

#: Public routes: no credential, no tenant data. Everything else is walked.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/problems/{slug}",
    f"{API}/auth/token",
    # Handle resolution is public like a Handle proxy; without identifiers:read it serves only
    # public values (model, licence, status). tests/api/test_handle_api.py checks that a
    # customer of another tenant learns nothing more.
    "/api/handles/{handle}",
}


def is_console(route: Any) -> bool:
    """Console pages (HTML, covered by tests/web); a console JSON route under /api is walked."""
    module = getattr(route.endpoint, "__module__", "") or ""
    return module.startswith("satiot.web") and not route.path.startswith("/api/")


#: Body fields and query parameters that name a tenant's things get B's values.
def field_values(b: TenantB) -> dict[str, str]:
    return {
        "tenant_id": str(b.tenant_id),
        "user_id": str(b.user_ids[0]),
        "key_id": str(b.key_ids[0]),
    }


def random_values(values: dict[str, str]) -> dict[str, str]:
    return {k: str(uuid.uuid4()) for k in values}


def tenant_rows(ctx: Any, tenant_id: uuid.UUID) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table that belongs to the tenant (and the tenant's own row)."""
    snap: dict[str, list[tuple[str, ...]]] = {}
    with ctx.db.engine.connect() as conn:
        for table in metadata().sorted_tables:
            if "tenant_id" in table.c:
                where = table.c.tenant_id == tenant_id
            elif table.name == "tenants":
                where = table.c.id == tenant_id
            else:
                continue
            rows = conn.execute(select(table).where(where)).all()
            snap[table.name] = sorted(tuple(repr(v) for v in row) for row in rows)
    return snap


@pytest.fixture
def two_tenants(client, world, ctx):
    return build_two_tenants(client, world, ctx)


# -- request synthesis --------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def minimal(
    schema: dict[str, Any], spec: dict[str, Any], ids: dict[str, str], name: str = ""
) -> Any:
    """A minimal value valid for ``schema``, with ``ids`` in fields of those names."""
    schema = _resolve(schema, spec)
    if name in ids:
        return ids[name]
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            options = [o for o in schema[combo] if _resolve(o, spec).get("type") != "null"]
            return minimal(options[0], spec, ids, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        body = {k: minimal(props[k], spec, ids, k) for k in schema.get("required", [])}
        body |= {k: ids[k] for k in props if k in ids}
        return body
    if kind == "array":
        return [
            minimal(schema.get("items", {}), spec, ids) for _ in range(schema.get("minItems", 0))
        ]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date-time":
            return "2099-01-01T00:00:00Z"
        if fmt == "email" or "@" in schema.get("pattern", ""):
            return "walker@example.org"
        low, high = schema.get("minLength", 1), schema.get("maxLength", 64)
        return ("walker" + "x" * low)[: max(low, min(high, 12))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    return None


@dataclass
class Walked:
    method: str
    path: str
    status: int
    targets_b: bool


def discover(app: Any) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """(method, path, route) for every route to walk, and the skipped routes' paths."""
    walk, skipped = [], []
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, Mount):
            assert isinstance(route.app, StaticFiles), (
                f"mount {route.path} is not static files: extend the walker to reach inside it"
            )
            skipped.append(route.path)
            continue
        # OpenAPI writes a {name:path} parameter as {name}: walk and report it that way.
        path = re.sub(r"{(\w+):\w+}", r"{\1}", rc.path)
        if path in PUBLIC or is_console(rc):
            skipped.append(path)
            continue
        assert isinstance(route, APIRoute), (
            f"route {rc.path} is a {type(route).__name__}: is it public (add it to PUBLIC, "
            f"with a reason) or should it be an API route?"
        )
        walk.extend((m, path, rc) for m in sorted(rc.methods or ()))
    return walk, skipped


def fill_path(path: str, values: dict[str, str]) -> str:
    params = re.findall(r"{(\w+)(?::\w+)?}", path)
    unknown = [p for p in params if p not in values]
    assert not unknown, (
        f"route {path} has path parameter(s) {unknown} that the isolation walker cannot fill "
        f"with a tenant-B value: extend TenantB.path_values() in {__file__}"
    )
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], path)


def request_for(
    spec: dict[str, Any], method: str, path: str, path_values: dict[str, str], ids: dict[str, str]
) -> tuple[str, dict[str, str], Any]:
    op = spec["paths"].get(path, {}).get(method.lower(), {})
    params = {
        p["name"]: ids[p["name"]]
        for p in op.get("parameters", [])
        if p.get("in") == "query" and p["name"] in ids
    }
    body = None
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = minimal(content["application/json"]["schema"], spec, ids)
    return fill_path(path, path_values), params, body


def _scrub(text: str, values: list[str]) -> str:
    for v in values:
        text = text.replace(v, "<id>")
    return text


def walk(
    app: Any, headers: dict[str, str], b: TenantB
) -> tuple[list[Walked], list[str], list[str]]:
    """Call every route as ``headers`` aimed at B; return the calls, failures and skips."""
    spec = app.openapi()
    routes, skipped = discover(app)
    ids, path_values = field_values(b), b.path_values()
    markers = b.markers()
    walked: list[Walked] = []
    failures: list[str] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, _route in routes:
            url, params, body = request_for(spec, method, path, path_values, ids)
            r = client.request(method, url, params=params, json=body, headers=headers)
            sent = url + json.dumps(params) + json.dumps(body)
            seen = r.text + json.dumps(dict(r.headers))
            leaked = sorted(m for m in markers if m in seen and m not in sent)
            where = f"{method} {url} {params or ''} {body or ''} -> {r.status_code}"
            if r.status_code >= 500:
                failures.append(f"{where}: server error {r.text}")
            if leaked:
                failures.append(f"{where}: reveals tenant B's {leaked}: {r.text[:300]}")
            targets_b = url != path or any(v in sent for v in ids.values())
            if url != path and 200 <= r.status_code < 300:
                failures.append(f"{where}: succeeded on tenant B's resource: {r.text[:300]}")
            # The answer about B's thing must be the answer about a thing that does not exist.
            if targets_b:
                fake_path, fake_ids = random_values(path_values), random_values(ids)
                url2, params2, body2 = request_for(spec, method, path, fake_path, fake_ids)
                r2 = client.request(method, url2, params=params2, json=body2, headers=headers)
                if r.status_code != r2.status_code:
                    failures.append(
                        f"{where}: tells B's thing from a missing one "
                        f"({r.status_code} vs {r2.status_code} for random ids)"
                    )
                elif r.status_code >= 400:
                    one = _scrub(r.text, [*path_values.values(), *ids.values()])
                    two = _scrub(r2.text, [*fake_path.values(), *fake_ids.values()])
                    if one != two:
                        failures.append(
                            f"{where}: answers differ for B's and random ids: {one} vs {two}"
                        )
            walked.append(Walked(method, path, r.status_code, targets_b))
    return walked, failures, skipped


@pytest.mark.parametrize(
    "caller", ["customer-admin key", "customer-user key", "customer-admin token"]
)
def test_no_route_reveals_or_changes_another_tenants_data(ctx, client, two_tenants, caller):
    b, callers = two_tenants
    before = tenant_rows(ctx, b.tenant_id)
    assert all(
        before[t] for t in ("tenants", "users", "api_keys", "access_tokens", "audit_log", "events")
    ), "tenant B must hold data in every kernel table"
    walked, failures, skipped = walk(client.app, callers[caller], b)

    summary = "\n".join(f"  {w.method:6} {w.path:40} {w.status}" for w in walked)
    print(
        f"\nisolation walk as {caller}: {len(walked)} calls; skipped {sorted(set(skipped))}\n"
        f"{summary}"
    )
    assert not failures, f"as {caller}:\n" + "\n".join(failures)
    assert tenant_rows(ctx, b.tenant_id) == before, "tenant B's rows changed"

    # The walk cannot silently walk nothing: it covers every operation the API documents.
    spec = client.app.openapi()
    documented = {
        (m.upper(), p)
        for p, ops in spec["paths"].items()
        for m in ops
        if p.startswith(API) and p not in PUBLIC
    }
    walked_ops = {(w.method, w.path) for w in walked}
    assert documented <= walked_ops, f"not walked: {sorted(documented - walked_ops)}"
    assert len(walked) >= len(documented) >= 16
    assert sum(w.targets_b for w in walked) >= 8


def test_walker_catches_a_leaky_route(ctx, two_tenants):
    """A route that reads around the tenant scope is reported, so the walker can fail."""
    app = build_app(ctx)  # its own: the routes added here must not outlive the test
    b, callers = two_tenants
    from satiot.core.models import User

    def leaky_user(user_id: uuid.UUID) -> dict[str, str]:
        with ctx.db.read() as session:  # deliberately unscoped
            user = session.get(User, user_id)
            return {"username": user.username if user else ""}

    def leaky_list(tenant_id: uuid.UUID | None = None) -> dict[str, str]:
        return {"seen": "b-user-zebra"}

    app.add_api_route(f"{API}/leaky/{{user_id}}", leaky_user, methods=["GET"])
    app.add_api_route(f"{API}/leaky", leaky_list, methods=["GET"])
    walked, failures, _ = walk(app, callers["customer-admin key"], b)
    assert {("GET", f"{API}/leaky/{{user_id}}"), ("GET", f"{API}/leaky")} <= {
        (w.method, w.path) for w in walked
    }
    text = "\n".join(failures)
    assert f"GET {API}/leaky/{b.user_ids[0]}" in text and "succeeded on tenant B" in text
    assert "reveals tenant B's ['b-user-zebra']" in text


def test_walker_fails_on_an_unknown_path_parameter():
    with pytest.raises(AssertionError, match=r"extend TenantB\.path_values"):
        fill_path("/api/v1/widgets/{widget_id}", {"user_id": "x"})


def test_walker_synthesises_valid_bodies(ctx, world):
    """The generated bodies pass validation, so the walk reaches the handlers, not just 422s."""
    app = build_app(ctx)
    spec = app.openapi()
    ids = {"tenant_id": str(world.operator.id), "user_id": str(world.admin.id)}
    body = minimal(
        spec["paths"][f"{API}/users"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ],
        spec,
        ids,
    )
    assert set(body) >= {"username", "password", "role", "tenant_id"}
    with TestClient(app) as client:
        r = client.post(f"{API}/users", json=body | {"role": "noc"}, headers=world.admin_headers())
    assert r.status_code == 201, r.text
