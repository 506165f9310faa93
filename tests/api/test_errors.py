"""Bad input of every kind: a clear problem+json answer, and nothing changed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from satiot.core.auth.roles import Role
from satiot.server import build_app
from tests.api.conftest import assert_problem, bearer, unchanged
from tests.factories import PASSWORD

JSON = {"content-type": "application/json"}


@pytest.fixture
def admin(world):
    return world.admin_headers()


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"username": "bob",', "{'single': 'quotes'}", "nul\x00l", "[1,]"])
def test_malformed_json_is_400(client, ctx, admin, raw):
    with unchanged(ctx):
        r = client.post("/api/v1/users", content=raw, headers=admin | JSON)
        assert_problem(r, 400, "malformed-json")


def _field_errors(body):
    return {".".join(e["loc"]) for e in body["errors"]}


def test_wrong_types_are_422_naming_the_field(client, ctx, admin):
    body = {"username": 123, "password": ["not", "a", "string"], "role": "customer-user"}
    with unchanged(ctx):
        r = client.post("/api/v1/users", json=body, headers=admin)
        problem = assert_problem(r, 422, "validation-error")
    assert {"body.username", "body.password"} <= _field_errors(problem)
    assert "username" in problem["detail"]


def test_wrong_enum_value_is_422(client, ctx, admin, world):
    user = world.user(world.tenant(), Role.CUSTOMER_USER)
    with unchanged(ctx):
        r = client.patch(f"/api/v1/users/{user.id}", json={"status": "asleep"}, headers=admin)
        problem = assert_problem(r, 422, "validation-error")
    assert "body.status" in _field_errors(problem)


def test_unknown_field_is_422(client, ctx, admin):
    with unchanged(ctx):
        r = client.post(
            "/api/v1/tenants", json={"slug": "acme", "name": "Acme", "plan": "gold"}, headers=admin
        )
        problem = assert_problem(r, 422, "validation-error")
    assert "body.plan" in _field_errors(problem)


def test_missing_required_field_is_422(client, ctx, admin):
    with unchanged(ctx):
        r = client.post("/api/v1/tenants", json={"slug": "acme"}, headers=admin)
        problem = assert_problem(r, 422, "validation-error")
    assert "body.name" in _field_errors(problem)


def test_body_of_wrong_json_type_is_422(client, ctx, admin):
    with unchanged(ctx):
        r = client.post("/api/v1/tenants", json=["slug", "acme"], headers=admin)
        assert_problem(r, 422, "validation-error")


def test_empty_body_is_422(client, ctx, admin):
    with unchanged(ctx):
        r = client.post("/api/v1/tenants", headers=admin)
        assert_problem(r, 422, "validation-error")


def _big_tenant(settings) -> bytes:
    return json.dumps({"slug": "big", "name": "x" * (settings.max_body_bytes + 10)}).encode()


def test_declared_oversized_body_is_413(client, ctx, admin, settings):
    raw = _big_tenant(settings)
    with unchanged(ctx):
        r = client.post("/api/v1/tenants", content=raw, headers=admin | JSON)
        problem = assert_problem(r, 413, "payload-too-large")
    assert problem["max_bytes"] == settings.max_body_bytes


def test_streamed_oversized_body_is_413(client, ctx, admin, settings):
    raw = _big_tenant(settings)

    def chunks():
        for i in range(0, len(raw), 4096):
            yield raw[i : i + 4096]

    with unchanged(ctx):
        r = client.post("/api/v1/tenants", content=chunks(), headers=admin | JSON)
        assert "content-length" not in r.request.headers
        assert r.request.headers.get("transfer-encoding") == "chunked"
        assert_problem(r, 413, "payload-too-large")


def test_streamed_body_under_the_limit_is_accepted(client, admin, counts):
    raw = json.dumps({"slug": "streamed", "name": "Streamed"}).encode()
    before = counts()["tenants"]
    r = client.post("/api/v1/tenants", content=iter([raw[:10], raw[10:]]), headers=admin | JSON)
    assert r.status_code == 201, r.text
    assert counts()["tenants"] == before + 1


# -- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/tenants"),
        ("DELETE", "/api/v1/api-keys/018f0000-0000-7000-8000-000000000000"),
        ("GET", "/api/v1/audit"),
    ],
)
def test_missing_authorization_is_401(client, ctx, world, method, path):
    with unchanged(ctx):
        r = client.request(
            method, path, json={"slug": "x", "name": "X"} if method == "POST" else None
        )
        assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "sk_abc_def",
        "Bearer garbage",
        "Bearer sk_nounderscores",
        "Bearer sk_abcdef123456_unknownsecretvalue",
        "Bearer at_unknowntokenvalue",
    ],
)
def test_malformed_or_unknown_credential_is_401(client, ctx, world, header):
    with unchanged(ctx):
        r = client.get("/api/v1/me", headers={"Authorization": header})
        assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_tampered_key_with_real_prefix_is_401(client, world):
    key = world.key(world.admin)
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_problem(client.get("/api/v1/me", headers=bearer(forged)), 401, "unauthenticated")


def test_revoked_key_is_401(client, ctx, world):
    key = world.key(world.admin)
    key_id = client.get("/api/v1/me", headers=bearer(key)).json()
    listed = client.get("/api/v1/api-keys", headers=bearer(key)).json()["items"]
    assert key_id and len(listed) == 1
    assert (
        client.delete(
            f"/api/v1/api-keys/{listed[0]['id']}", headers=world.admin_headers()
        ).status_code
        == 204
    )
    with unchanged(ctx):
        assert_problem(client.get("/api/v1/me", headers=bearer(key)), 401, "unauthenticated")


def test_expired_key_is_401(client, ctx, world, clock):
    key = world.key(world.admin, expires_at=clock.now() + timedelta(hours=1))
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    clock.advance(timedelta(minutes=59))
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    clock.advance(timedelta(minutes=1, seconds=1))
    with unchanged(ctx):
        body = assert_problem(client.get("/api/v1/me", headers=bearer(key)), 401, "unauthenticated")
    assert "expired" in body["detail"]


def test_expired_bearer_token_is_401(client, ctx, world, clock, settings):
    r = client.post(
        "/api/v1/auth/token", data={"username": world.admin.username, "password": PASSWORD}
    )
    token = r.json()["access_token"]
    clock.advance(settings.access_token_ttl_s - 1)
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    clock.advance(2)
    with unchanged(ctx):
        assert_problem(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthenticated")


def test_disabled_users_key_and_token_are_401(client, ctx, world):
    tenant = world.tenant()
    user = world.user(tenant, Role.CUSTOMER_ADMIN)
    key = world.key(user)
    token = client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": PASSWORD}
    ).json()["access_token"]
    for cred in (key, token):
        assert client.get("/api/v1/me", headers=bearer(cred)).status_code == 200
    r = client.patch(
        f"/api/v1/users/{user.id}", json={"status": "disabled"}, headers=world.admin_headers()
    )
    assert r.status_code == 200, r.text
    with unchanged(ctx):
        for cred in (key, token):
            assert_problem(client.get("/api/v1/me", headers=bearer(cred)), 401, "unauthenticated")


def test_suspended_tenants_key_is_401(client, ctx, world):
    tenant = world.tenant()
    key = world.key(world.user(tenant, Role.CUSTOMER_ADMIN))
    r = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"status": "suspended"}, headers=world.admin_headers()
    )
    assert r.status_code == 200, r.text
    assert_problem(client.get("/api/v1/me", headers=bearer(key)), 401, "unauthenticated")


def test_scope_not_covering_the_call_is_403_naming_the_scope(client, ctx, world):
    key = world.key(world.admin, scopes=["users:read"])
    assert client.get("/api/v1/users", headers=bearer(key)).status_code == 200
    with unchanged(ctx):
        r = client.post(
            "/api/v1/users",
            headers=bearer(key),
            json={"username": "newbie", "password": PASSWORD, "role": "noc"},
        )
        body = assert_problem(r, 403, "forbidden")
    assert body["required_scope"] == "users:write"
    assert "users:write" in body["detail"]


# -- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/users", "/nothing/here"])
def test_unknown_route_is_404_problem(client, world, path):
    assert_problem(client.get(path, headers=world.admin_headers()), 404, "not-found")


def test_wrong_method_is_405_problem(client, ctx, admin):
    with unchanged(ctx):
        r = client.put("/api/v1/users", json={}, headers=admin)
        assert_problem(r, 405, "method-not-allowed")
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["allow"].split(",")}


@pytest.mark.parametrize(
    "path", ["/api/v1/users/not-a-uuid", "/api/v1/api-keys/123", "/api/v1/tenants/%20"]
)
def test_non_uuid_path_parameter_is_422(client, world, path):
    body = assert_problem(client.get(path, headers=world.admin_headers()), 422, "validation-error")
    assert body["errors"][0]["loc"][0] == "path"


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=ten", "status=sleeping", "tenant_id=nope"]
)
def test_bad_query_parameter_is_422(client, world, query):
    body = assert_problem(
        client.get(f"/api/v1/users?{query}", headers=world.admin_headers()), 422, "validation-error"
    )
    assert body["errors"][0]["loc"][0] == "query"


def test_unknown_query_parameter_is_422_naming_it_and_what_the_list_takes(client, world):
    """A misspelt filter must not read as the filtered list: here every user would come back."""
    world.user(world.tenant(), Role.CUSTOMER_USER)
    r = client.get("/api/v1/users?stauts=disabled&limit=5", headers=world.admin_headers())
    body = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["query", "stauts"]]
    assert body["detail"].startswith("query.stauts: unknown query parameter")
    assert "status" in body["detail"] and "limit" in body["detail"]
    two = client.get("/api/v1/users?b=1&a=2", headers=world.admin_headers())
    assert [e["loc"] for e in two.json()["errors"]] == [["query", "a"], ["query", "b"]]
    fine = client.get("/api/v1/users?status=active&limit=5", headers=world.admin_headers())
    assert fine.status_code == 200


def _api_gets(client) -> list[tuple[str, str, list[str]]]:  # type: ignore[no-untyped-def]
    """Every GET of the API as (path, a URL for it, its query parameter names), read from the
    OpenAPI document; path parameters become any text (their names)."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (
            path,
            path.replace("{", "").replace("}", ""),
            [p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"],
        )
        for path, item in paths.items()
        if path.startswith("/api/v1/") and "get" in item
    ]


def test_a_nul_in_any_query_value_is_422_naming_it(client, world):
    """PostgreSQL cannot take NUL in text: a filter compared in SQL, or a parameter an order
    keeps (``externalId`` of a CSV order, whose request model refused it as a 500), would
    fail past the edge. Every GET's every query parameter, and that POST, are refused first."""
    admin = world.admin_headers()
    checked = 0
    for path, url, names in _api_gets(client):
        for name in names:
            r = client.get(url, params={name: "a\x00b"}, headers=admin)
            body = assert_problem(r, 422, "validation-error")
            assert ["query", name] in [e["loc"] for e in body["errors"]], (path, name)
            checked += 1
    assert checked > 30
    r = client.post(
        "/api/v1/product-orders/csv",
        params={"externalId": "po\x00"},
        headers=admin | {"Content-Type": "text/csv"},
        content=b"dev_eui,terminal_model,offering\n",
    )
    body = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["query", "externalId"]]
    assert "NUL" in body["detail"]


def test_every_api_route_takes_the_query_parameters_its_openapi_declares(client, world):
    """The names allowed are read from each route's declarations: for every GET of the API,
    each parameter the OpenAPI document lists passes this check (whatever its value then
    does), and a name it does not list is refused."""
    admin = world.admin_headers()
    checked = 0
    for path, url, names in _api_gets(client):
        for name in names:
            r = client.get(url, params={name: "x"}, headers=admin)
            errors = r.json().get("errors", []) if r.status_code == 422 else []
            assert ["query", name] not in [e["loc"] for e in errors if "unknown" in e["msg"]]
        refused = client.get(url, params={"no_such_filter": "1"}, headers=admin)
        if refused.status_code != 404 or "unknown query parameter" in refused.text:
            body = assert_problem(refused, 422, "validation-error")
            assert ["query", "no_such_filter"] in [e["loc"] for e in body["errors"]], path
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("cursor", ["garbage!!", "eyJ4IjogMX0", "eyJrIjogIm5vdC1hLXV1aWQifQ"])
def test_forged_cursor_is_422(client, world, cursor):
    r = client.get(f"/api/v1/users?cursor={cursor}", headers=world.admin_headers())
    assert_problem(r, 422, "invalid-input")


def test_unhandled_error_is_500_problem_without_traceback(ctx, world, caplog):
    app = build_app(ctx)

    def explode() -> None:
        raise RuntimeError("secret-internal-detail at /srv/satiot/db.py line 42")

    app.add_api_route("/api/v1/explode", explode, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/explode")
    body = assert_problem(r, 500, "internal-error")
    assert "secret-internal-detail" not in r.text
    assert "db.py" not in r.text
    assert body["instance"] == "/api/v1/explode"
    # ...but it is logged for the operator.
    assert any("secret-internal-detail" in str(rec.exc_info) for rec in caplog.records)


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/tenants", {"slug": "nul", "name": "Nul\u0000Co"}),
        (
            "/api/v1/users",
            {
                "username": "nul-user",
                "password": "correct-horse\u0000battery",
                "role": "noc",
                "display_name": "a\u0000b",
            },
        ),
    ],
)
def test_nul_characters_are_refused_not_a_server_error(client, ctx, admin, path, body):
    """PostgreSQL cannot store NUL in text; the answer must be a 422, the same on SQLite."""
    with unchanged(ctx):
        assert_problem(client.post(path, json=body, headers=admin), 422)


def test_nul_in_query_or_form_is_not_a_server_error(client, ctx, admin):
    with unchanged(ctx):
        r = client.get("/api/v1/audit?target_type=a%00b", headers=admin)
        assert r.status_code == 200 or assert_problem(r, 422)
        r = client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x" * 12})
        assert r.status_code in (400, 422)
        assert_problem(r, r.status_code)


def test_the_openapi_document_declares_the_errors_the_api_returns(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, op in (
        ("/api/v1/users", "post"),
        ("/api/v1/bills/{bill_id}/send", "post"),
        ("/api/v1/subscriptions/{subscription_id}/suspend", "post"),
        ("/api/v1/tenants/{tenant_id}", "patch"),
    ):
        assert "409" in paths[path][op]["responses"], (op, path)
    handle_422 = paths["/api/handles/{handle}"]["get"]["responses"]["422"]["content"]
    assert "application/problem+json" in handle_422
    assert "404" in paths["/problems/{slug}"]["get"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "415" in paths["/api/v1/product-orders/csv"]["post"]["responses"]
    token_400 = paths["/api/v1/auth/token"]["post"]["responses"]["400"]["content"]
    assert "application/problem+json" in token_400
    name = spec["components"]["schemas"]["DevicePatch"]["properties"]["name"]
    assert name.get("type") == "string" and "anyOf" not in name  # a null is refused


def test_an_uploaded_file_is_held_to_the_upload_limit_not_the_body_limit(
    client, ctx, admin, settings, monkeypatch
):
    # A 10,000-row order or a long suspend/resume file is larger than any JSON request.
    line = "0011223344556677,suspend,winter\n"
    rows = ("device,action,reason\n" + line * (settings.max_body_bytes // len(line) + 1)).encode()
    assert settings.max_body_bytes < len(rows) < settings.max_upload_bytes
    csv = admin | {"Content-Type": "text/csv"}
    with unchanged(ctx):  # read and refused line by line (an unknown device), not for its size
        r = client.post("/api/v1/subscriptions/status-csv", content=rows, headers=csv)
        assert_problem(r, 422, "status-import-rejected")
        as_json = client.post("/api/v1/tenants", content=rows, headers=admin | JSON)
        problem = assert_problem(as_json, 413, "payload-too-large")
        assert problem["max_bytes"] == settings.max_body_bytes
    monkeypatch.setattr(ctx.settings, "max_upload_bytes", len(rows) - 1)
    with unchanged(ctx):
        r = client.post("/api/v1/subscriptions/status-csv", content=rows, headers=csv)
        assert assert_problem(r, 413, "payload-too-large")["max_bytes"] == len(rows) - 1
