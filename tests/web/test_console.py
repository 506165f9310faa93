"""The console through HTTP: sessions, CSRF, navigation per role, users and API keys."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from satiot.core.models import AccessToken, ApiKey, AuditEntry, User
from satiot.web.views import access
from tests.factories import PASSWORD, World
from tests.web.console_helpers import csrf, login, signed_in


def _count(ctx: AppContext, model: type[User] | type[ApiKey]) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# ---- sessions -------------------------------------------------------------------------------


def test_login_sets_http_only_session_and_redirects(
    client: TestClient, world: World, ctx: AppContext
):
    response = login(client, "admin", next_path="/access")
    assert response.status_code == 303
    assert response.headers["location"] == "/access"
    cookie = response.headers["set-cookie"]
    assert "satiot_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie
    with ctx.db.read() as s:
        admin = s.get(User, world.admin.id)
        assert admin is not None and admin.last_login_at == ctx.clock.now()
        token = s.scalars(select(AccessToken)).one()
        assert token.kind == "session" and token.csrf_token
    page = client.get("/")
    assert page.status_code == 200
    assert "Dashboard" in page.text


def test_secure_cookie_when_configured(client: TestClient, world: World, ctx: AppContext):
    ctx.settings.cookie_secure = True
    response = login(client, "admin")
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_401_without_cookie(client: TestClient, world: World):
    response = login(client, "admin", password="not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_user_gets_the_same_answer(client: TestClient, world: World):
    response = login(client, "nobody")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text


def test_pages_redirect_to_login_when_signed_out(client: TestClient, world: World):
    for path in ("/", "/access", "/access?tenant=x"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    response = client.get("/access", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/access"
    form = client.get(response.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/access"' in form.text


def test_expired_session_redirects(client: TestClient, world: World, ctx: AppContext, clock):
    signed_in(client, "admin")
    clock.advance(ctx.settings.session_ttl_s + 1)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_open_redirect_is_refused(client: TestClient, world: World):
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "evil"):
        response = login(client, "admin", next_path=evil)
        assert response.status_code == 303
        assert response.headers["location"] == "/", evil


def test_login_from_another_origin_is_refused(client: TestClient, world: World):
    response = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_logout_revokes_the_session(client: TestClient, world: World, ctx: AppContext):
    token = signed_in(client, "admin")
    cookie = client.cookies.get("satiot_session")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    with ctx.db.read() as s:
        assert s.scalars(select(AccessToken)).one().revoked_at == ctx.clock.now()
    # The old cookie, replayed, no longer opens anything.
    client.cookies.clear()
    client.cookies.set("satiot_session", cookie)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_without_csrf_keeps_the_session(client: TestClient, world: World, ctx: AppContext):
    signed_in(client, "admin")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


# ---- security headers and static files ----------------------------------------------------


def test_security_headers_on_console_responses(client: TestClient, world: World):
    for response in (
        client.get("/login"),
        client.get("/", follow_redirects=False),
        client.get("/static/console.css"),
    ):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"


def test_a_browser_that_mistypes_an_address_gets_a_console_page(client: TestClient, world: World):
    """A stale bookmark or a typo showed a raw problem+json body in the browser."""
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    r = client.get("/dashboard", headers=html, follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "There is no page at /dashboard." in r.text and 'href="/login"' in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    signed_in(client, "admin")
    r = client.get("/invoicez", headers=html)
    assert r.status_code == 404 and "There is no page at /invoicez." in r.text
    assert 'href="/invoices"' in r.text  # the navigation, signed in
    # The API, its documents and callers that do not ask for HTML keep problem+json.
    for path, headers in (("/api/v1/nope", html), ("/problems/nope", html), ("/dashboard", {})):
        r = client.get(path, headers=headers)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/problem+json"), path
    assert (
        client.post("/dashboard", headers=html)
        .headers["content-type"]
        .startswith("application/problem+json")
    )


def test_every_command_a_page_names_exists():
    """Empty states told operators to run `satiot terminal-models import` and `satiot numbers
    load-blocks`, neither of which existed. Each `<code>satiot …</code>` in a template must
    name a command that answers --help (its arguments, in capitals or with a dot, dropped)."""
    from typer.testing import CliRunner

    from satiot.cli import app
    from satiot.web.rendering import TEMPLATES_DIR

    named = set()
    for template in TEMPLATES_DIR.glob("*.html"):
        for text in re.findall(r"<code>satiot ([^<]+)</code>", template.read_text()):
            words = []
            for word in text.split():
                if word.startswith("-") or "." in word or not word.islower():
                    break
                words.append(word)
            named.add(tuple(words))
    assert ("terminals", "import") in named and ("numbers", "blocks", "load") in named
    for words in sorted(named):
        ran = CliRunner().invoke(app, [*words, "--help"])
        assert ran.exit_code == 0, f"satiot {' '.join(words)}: {ran.output}"


def test_api_is_left_without_console_csp(client: TestClient):
    assert "content-security-policy" not in client.get("/healthz").headers


def test_static_css_is_served(client: TestClient):
    response = client.get("/static/console.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".sidebar" in response.text


def test_pages_load_nothing_from_elsewhere(client: TestClient, world: World):
    signed_in(client, "admin")
    for path in ("/login", "/", "/access"):
        html = client.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        assert "<script" not in html


def test_console_is_not_in_openapi(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/login" not in paths and "/access" not in paths


# ---- navigation and dashboard per audience ------------------------------------------------


def _nav(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)"', nav)


def test_navigation_differs_per_audience(client: TestClient, world: World):
    tenant = world.tenant()
    world.user(tenant, Role.CUSTOMER_ADMIN, "cadmin")
    world.user(tenant, Role.CUSTOMER_USER, "cuser")
    world.user(world.operator, Role.REGULATOR, "miit")
    world.user(world.operator, Role.NOC, "noc1")
    seen = {}
    for username, label in [
        ("admin", "Operator console"),
        ("cadmin", "Customer portal"),
        ("cuser", "Customer portal"),
        ("miit", "Regulator view"),
        ("noc1", "Operator console"),
    ]:
        client.cookies.clear()
        signed_in(client, username)
        html = client.get("/").text
        assert f">{label}<" in html, username
        seen[username] = _nav(html)
    network = ["/messages", "/devices", "/ground-stations", "/integrations"]
    business = [
        "/customers",
        "/contracts",
        "/catalog",
        "/orders",
        "/subscriptions",
        "/usage",
        "/invoices",
    ]
    billing = ["/payments", "/billing-accounts", "/bill-runs"]
    inventory = ["/terminal-models", "/number-blocks", "/handles"]
    assert seen["admin"] == ["/", *network, *business, *billing, *inventory, "/access"]
    customer = [
        "/", "/messages", "/devices", "/integrations", *business, "/payments", "/billing-accounts",
    ]  # fmt: skip
    assert seen["cadmin"] == [*customer, "/access"]
    assert seen["cuser"] == customer
    assert seen["miit"] == [
        "/",
        "/devices",
        "/ground-stations",
        "/customers",
        "/contracts",
        "/subscriptions",
        *inventory,
    ]
    assert seen["noc1"] == ["/", *network, "/subscriptions", *inventory]


def test_operator_dashboard_shows_platform_health(client: TestClient, world: World):
    world.tenant()
    signed_in(client, "admin")
    html = client.get("/").text
    assert "Tenants" in html and "Active API keys" in html
    assert re.search(r"\b1 customer\s*<", html)  # one customer tenant, said as one
    assert 'id="event-head"' in html
    assert 'badge-ok badge-big">OK<' in html
    assert "entries verified; whole chain walked" in html


def test_dashboard_shows_broken_audit_chain(client: TestClient, world: World, ctx: AppContext):
    with ctx.db.write() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).first()
        assert entry is not None
        entry.actor = "someone-else"
    signed_in(client, "admin")
    assert ">BROKEN<" in client.get("/").text


def test_customer_dashboard_shows_own_tenant(client: TestClient, world: World):
    mine = world.tenant("acme", "Acme Logistics")
    world.tenant("other", "Other Corp")
    world.user(mine, Role.CUSTOMER_ADMIN, "cadmin")
    signed_in(client, "cadmin")
    html = client.get("/").text
    assert "Acme Logistics" in html and "Other Corp" not in html
    assert "Audit chain" not in html and "event-head" not in html


def test_regulator_dashboard(client: TestClient, world: World):
    world.tenant()
    world.user(world.operator, Role.REGULATOR, "miit")
    signed_in(client, "miit")
    html = client.get("/").text
    assert "Tenants" in html and "Audit chain" in html
    assert "Active API keys" not in html
    assert client.get("/access").status_code == 403


# ---- users ---------------------------------------------------------------------------------


def _user_form(token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "username": "alice",
        "display_name": "Alice Liu",
        "role": "customer-user",
        "password": "long-enough-pw",
    } | fields


def test_create_user_through_the_form(client: TestClient, world: World, ctx: AppContext):
    tenant = world.tenant("acme")
    token = signed_in(client, "admin")
    response = client.post(
        "/access/users", data=_user_form(token, tenant_id=str(tenant.id)), follow_redirects=False
    )
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "User alice created." in page.text
    assert "<code>alice</code>" in page.text
    with ctx.db.read() as s:
        alice = s.scalars(select(User).where(User.username == "alice")).one()
        assert alice.tenant_id == tenant.id and alice.display_name == "Alice Liu"
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "user.created", AuditEntry.target_id == str(alice.id)
            )
        ).one()
        assert entry.actor == "user:admin"


def test_create_user_without_csrf_is_refused(client: TestClient, world: World, ctx: AppContext):
    signed_in(client, "admin")
    before = _count(ctx, User)
    for token in (None, "wrong-token"):
        data = _user_form("", tenant_id=str(world.operator.id), role="noc")
        if token is None:
            del data["csrf_token"]
        else:
            data["csrf_token"] = token
        response = client.post("/access/users", data=data)
        assert response.status_code == 403
        assert "nothing was changed" in response.text
    assert _count(ctx, User) == before


def test_refused_user_keeps_values_but_not_password(
    client: TestClient, world: World, ctx: AppContext
):
    tenant = world.tenant("acme")
    token = signed_in(client, "admin")
    before = _count(ctx, User)
    # noc is an operator role: a customer tenant cannot hold it.
    response = client.post(
        "/access/users",
        data=_user_form(
            token, tenant_id=str(tenant.id), role="noc", username="bob", display_name="Bob B"
        ),
    )
    assert response.status_code == 422
    assert "cannot be held in a customer tenant" in response.text
    assert 'value="bob"' in response.text and 'value="Bob B"' in response.text
    assert "long-enough-pw" not in response.text
    assert _count(ctx, User) == before
    # A short password and a taken username are refused the same way.
    short = client.post(
        "/access/users", data=_user_form(token, tenant_id=str(tenant.id), password="short")
    )
    assert short.status_code == 422 and "at least 10" in short.text
    taken = client.post(
        "/access/users", data=_user_form(token, username="admin", tenant_id=str(tenant.id))
    )
    assert taken.status_code == 409
    assert _count(ctx, User) == before


def test_disable_and_enable_user(client: TestClient, world: World, ctx: AppContext):
    tenant = world.tenant()
    bob = world.user(tenant, Role.CUSTOMER_USER, "bob")
    token = signed_in(client, "admin")
    page = client.post(
        f"/access/users/{bob.id}/status", data={"csrf_token": token, "status": "disabled"}
    )
    assert page.status_code == 200 and "User bob disabled." in page.text
    with ctx.db.read() as s:
        assert s.get(User, bob.id).status == "disabled"  # type: ignore[union-attr]
    assert login(client, "bob").status_code == 401
    signed_in(client, "admin")
    page = client.post(
        f"/access/users/{bob.id}/status", data={"csrf_token": csrf(client), "status": "active"}
    )
    assert "User bob enabled." in page.text


def test_cannot_disable_yourself(client: TestClient, world: World):
    token = signed_in(client, "admin")
    response = client.post(
        f"/access/users/{world.admin.id}/status", data={"csrf_token": token, "status": "disabled"}
    )
    assert response.status_code == 409
    assert "your own status" in response.text


def test_customer_admin_sees_only_its_tenant(client: TestClient, world: World):
    acme, other = world.tenant("acme"), world.tenant("other")
    world.user(acme, Role.CUSTOMER_ADMIN, "acme-admin")
    stranger = world.user(other, Role.CUSTOMER_ADMIN, "other-admin")
    world.key(stranger)
    signed_in(client, "acme-admin")
    html = client.get("/access").text
    assert "acme-admin" in html
    assert "other-admin" not in html and "<code>admin</code>" not in html
    assert 'id="tenant-filter"' not in html  # no tenant column or filter for a customer
    assert "No API keys here." in html
    assert 'value="noc"' not in html  # only customer roles are offered


def test_customer_admin_cannot_reach_another_tenant(
    client: TestClient, world: World, ctx: AppContext
):
    acme, other = world.tenant("acme"), world.tenant("other")
    world.user(acme, Role.CUSTOMER_ADMIN, "acme-admin")
    stranger = world.user(other, Role.CUSTOMER_USER, "stranger")
    world.key(stranger)
    token = signed_in(client, "acme-admin")
    response = client.post(
        f"/access/users/{stranger.id}/status", data={"csrf_token": token, "status": "disabled"}
    )
    assert response.status_code == 404
    with ctx.db.read() as s:
        key = s.scalars(select(ApiKey)).one()
    response = client.post(f"/access/keys/{key.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 404
    # A tenant_id naming another tenant is ignored: the user lands in the admin's own tenant.
    client.post("/access/users", data=_user_form(token, tenant_id=str(other.id)))
    with ctx.db.read() as s:
        assert s.get(User, stranger.id).status == "active"  # type: ignore[union-attr]
        assert s.get(ApiKey, key.id).revoked_at is None  # type: ignore[union-attr]
        alice = s.scalars(select(User).where(User.username == "alice")).one()
        assert alice.tenant_id == acme.id


def test_operator_filters_by_tenant(client: TestClient, world: World):
    acme, other = world.tenant("acme"), world.tenant("other")
    world.user(acme, Role.CUSTOMER_USER, "acme-user")
    world.user(other, Role.CUSTOMER_USER, "other-user")
    signed_in(client, "admin")
    everyone = client.get("/access").text
    assert "acme-user" in everyone and "other-user" in everyone
    filtered = client.get(f"/access?tenant={acme.id}").text
    assert "acme-user" in filtered and "other-user" not in filtered


def test_users_are_paginated(client: TestClient, world: World, monkeypatch):
    monkeypatch.setattr(access, "PAGE_SIZE", 2)
    tenant = world.tenant()
    for i in range(4):
        world.user(tenant, Role.CUSTOMER_USER, f"pager{i}")
    signed_in(client, "admin")
    seen: list[str] = []
    url = "/access"
    for _ in range(5):
        html = client.get(url).text
        seen += re.findall(r"<code>((?:admin|pager\d))</code>", html)
        match = re.search(r'href="([^"]+)" rel="next" class="next-users"', html)
        if not match:
            break
        url = match.group(1).replace("&amp;", "&")
    assert seen == ["admin", "pager0", "pager1", "pager2", "pager3"]


def test_users_page_needs_scope(client: TestClient, world: World):
    world.user(world.operator, Role.NOC, "noc1")
    token = signed_in(client, "noc1")
    assert client.get("/access").status_code == 403
    response = client.post("/access/users", data=_user_form(token))
    assert response.status_code == 403


def test_compliance_reads_users_without_forms(client: TestClient, world: World):
    world.user(world.operator, Role.COMPLIANCE, "auditor")
    token = signed_in(client, "auditor")
    html = client.get("/access").text
    assert 'id="users-table"' in html
    assert 'id="create-user"' not in html and 'id="keys"' not in html
    assert client.post("/access/users", data=_user_form(token)).status_code == 403


# ---- API keys ------------------------------------------------------------------------------


def test_key_secret_is_shown_once(client: TestClient, world: World, ctx: AppContext):
    token = signed_in(client, "admin")
    response = client.post(
        "/access/keys",
        data={
            "csrf_token": token,
            "name": "fleet",
            "scopes": ["users:read", "tenants:read"],
            "expires": "2027-01-31",
        },
    )
    assert response.status_code == 201
    secret = re.search(r'<pre class="secret" id="secret"[^>]*>(sk_[^<]+)</pre>', response.text)
    assert secret, response.text
    assert "only time it is shown" in response.text
    assert response.headers["cache-control"] == "no-store"
    listing = client.get("/access").text
    assert secret.group(1) not in listing
    with ctx.db.read() as s:
        key = s.scalars(select(ApiKey)).one()
    assert f"sk_{key.prefix}_" in listing
    assert key.scopes == ["tenants:read", "users:read"]
    assert key.expires_at is not None and key.expires_at.isoformat().startswith("2027-01-31")
    # The key works against the API.
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert me.status_code == 200


def test_key_form_refusals_keep_values(client: TestClient, world: World, ctx: AppContext):
    token = signed_in(client, "admin")
    none_chosen = client.post("/access/keys", data={"csrf_token": token, "name": "k1"})
    assert none_chosen.status_code == 422 and "at least one scope" in none_chosen.text
    assert 'value="k1"' in none_chosen.text
    past = client.post(
        "/access/keys",
        data={"csrf_token": token, "name": "k2", "scopes": ["users:read"], "expires": "2020-01-01"},
    )
    assert past.status_code == 422 and "future" in past.text
    assert 'value="users:read" checked' in past.text
    assert _count(ctx, ApiKey) == 0


def test_customer_key_scopes_are_limited(client: TestClient, world: World, ctx: AppContext):
    tenant = world.tenant()
    world.user(tenant, Role.CUSTOMER_ADMIN, "cadmin")
    token = signed_in(client, "cadmin")
    html = client.get("/access").text
    assert 'value="api-keys:write"' in html and 'value="audit:read"' not in html
    response = client.post(
        "/access/keys", data={"csrf_token": token, "name": "sneaky", "scopes": ["audit:read"]}
    )
    assert response.status_code == 403
    assert _count(ctx, ApiKey) == 0


def test_revoke_key(client: TestClient, world: World, ctx: AppContext):
    world.key(world.admin)
    token = signed_in(client, "admin")
    with ctx.db.read() as s:
        key = s.scalars(select(ApiKey)).one()
    assert client.post(f"/access/keys/{key.id}/revoke", data={}).status_code == 403
    page = client.post(f"/access/keys/{key.id}/revoke", data={"csrf_token": token})
    assert page.status_code == 200
    assert "revoked." in page.text and 'badge-revoked">revoked<' in page.text
    with ctx.db.read() as s:
        assert s.get(ApiKey, key.id).revoked_at == ctx.clock.now()  # type: ignore[union-attr]
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "api-key.revoked")
            )
            == 1
        )


def test_csrf_token_with_non_ascii_characters_is_refused_not_a_500(
    client: TestClient, world: World, ctx: AppContext
):
    token = signed_in(client, "admin")
    before = _count(ctx, User)
    for forged in ("é" * len(token), "\u0661\u0662\u0663", token[:-1] + "²"):
        data = _user_form("mallory", tenant_id=str(world.operator.id), role="noc")
        data["csrf_token"] = forged
        response = client.post("/access/users", data=data)
        assert response.status_code == 403
        assert "nothing was changed" in response.text
    assert _count(ctx, User) == before


def test_an_address_or_form_that_does_not_parse_is_a_console_page(
    client: TestClient, world: World, ctx: AppContext
):
    """The console answers with a page naming the field, as for its other refusals; the API
    keeps answering problem+json."""
    token = signed_in(client, "admin")
    before = _count(ctx, AuditEntry)
    r = client.post("/invoices/not-a-bill/validate", data={"csrf_token": token})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "Not accepted" in r.text and "Nothing was changed" in r.text
    assert "bill_id: Input should be a valid UUID" in r.text
    assert _count(ctx, AuditEntry) == before
    api = client.get("/api/v1/bills/not-a-bill", headers=world.admin_headers())
    assert api.status_code == 422
    assert api.headers["content-type"] == "application/problem+json"
