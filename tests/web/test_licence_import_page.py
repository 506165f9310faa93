"""The Terminal models page's licence list import: every bad line shown, nothing imported;
a good list recorded once however often the form is sent; the empty lists to download."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from satiot.api.context import AppContext
from satiot.core.auth.roles import Role
from satiot.oss.models import TerminalModel
from tests.factories import World
from tests.oss.test_licence_list import CSV
from tests.web.console_helpers import signed_in


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


def _models(ctx: AppContext) -> int:
    with ctx.db.read() as s:
        return s.scalar(select(func.count()).select_from(TerminalModel)) or 0


def _import(client: TestClient, csrf: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/terminal-models/import",
        data={"csrf_token": csrf, **form},
        files={"file": ("models.csv", data, "text/csv")},
        follow_redirects=False,
    )


def test_a_bad_list_shows_every_bad_line_and_a_good_one_imports_once(
    client: TestClient, ctx: AppContext, world: World
):
    csrf = _as(client, "admin")
    page = client.get("/terminal-models").text
    assert 'id="licence-upload"' in page and 'href="/terminal-models/template.csv"' in page
    bad = (
        CSV
        + "TQ-M300,x,y,z,BAD,2025-01-01,2026-01-01,\n"
        + "TQ-M400,x,y,z,00-B182-228212,2025-13-01,2026-01-01,\n"
    )
    r = _import(client, csrf, bad.encode())
    assert r.status_code == 422
    lines = re.findall(r'<tr class="import-error"><td class="num">(\d+)</td>', r.text)
    assert lines == ["4", "5"], r.text
    assert "2 lines cannot be imported; nothing was imported." in r.text and "not a date" in r.text
    assert _models(ctx) == 0

    key = re.search(r'name="form_key" value="([^"]+)"', client.get("/terminal-models").text)
    assert key is not None
    r = _import(client, csrf, CSV.encode(), form_key=key[1])
    assert r.status_code == 303 and r.headers["location"] == "/terminal-models"
    html = client.get("/terminal-models").text
    assert "Licence list imported: 2 created, 0 updated, 0 unchanged." in html
    assert html.count('class="model-row') == 2
    again = _import(client, csrf, CSV.encode(), form_key=key[1])
    assert again.status_code == 303 and "sent already" in client.get("/terminal-models").text
    assert _models(ctx) == 2


def test_a_gbk_list_imports_when_its_encoding_is_chosen(
    client: TestClient, ctx: AppContext, world: World
):
    csrf = _as(client, "admin")
    maker = "北京天星物联科技有限公司"
    data = CSV.replace("Maker,Maker", f"{maker},{maker}").encode("gbk")
    refused = _import(client, csrf, data)
    assert refused.status_code == 422 and "it reads as GB18030 (GBK)" in refused.text
    unknown = _import(client, csrf, data, encoding="big5")
    assert unknown.status_code == 422 and "unknown encoding" in unknown.text
    assert _models(ctx) == 0
    assert _import(client, csrf, data, encoding="gb18030").status_code == 303
    assert maker in client.get("/terminal-models").text


def test_who_sees_the_form_and_the_empty_lists(client: TestClient, ctx: AppContext, world: World):
    world.user(world.operator, Role.NOC, "noc1")
    csrf = _as(client, "noc1")
    page = client.get("/terminal-models").text
    assert 'id="licence-upload"' not in page and "import a licence list or with" in page
    assert _import(client, csrf, CSV.encode()).status_code == 403
    assert _models(ctx) == 0
    r = client.get("/terminal-models/template.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbfname,equipment_name,")
    assert "attachment" in r.headers["content-disposition"]
    world.user(world.tenant(), Role.CUSTOMER_ADMIN, "cadmin")
    _as(client, "cadmin")
    assert client.get("/terminal-models/template.csv").status_code == 403
    orders = client.get("/orders")
    assert 'href="/orders/template.csv"' in orders.text
    template = client.get("/orders/template.csv")
    assert template.status_code == 200 and template.content.startswith(b"\xef\xbb\xbfaction,")
