"""The console's suspend/resume file: reached from the Subscriptions page by those who may
suspend; a bad file shows every bad line and changes nothing; a good one is applied once
however often the form is sent; readers cannot use it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss.models import Subscription
from satiot.core.auth.roles import Role
from tests.bss.order_world import shop, terminal
from tests.bss.test_activation import activate_one
from tests.factories import World
from tests.web.console_helpers import signed_in


def _upload(client: TestClient, csrf: str, data: bytes, **form: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/subscriptions/status-import",
        data={"csrf_token": csrf, **form},
        files={"file": ("devices.csv", data, "text/csv")},
        follow_redirects=False,
    )


def _statuses(ctx: AppContext) -> list[str]:
    with ctx.db.read() as s:
        return list(s.scalars(select(Subscription.status).order_by(Subscription.id)))


def test_a_file_of_devices_is_checked_whole_and_applied_once(
    client: TestClient, ctx: AppContext, world: World
):
    s = shop(ctx, world)
    subs = sorted((activate_one(s, terminal()) for _ in range(2)), key=lambda x: x.id)
    csrf = signed_in(client, s.admin.username)
    assert 'href="/subscriptions/status-import"' in client.get("/subscriptions").text
    page = client.get("/subscriptions/status-import").text
    assert 'id="status-upload"' in page
    template = client.get("/subscriptions/status-import/template.csv")
    assert template.content == b"\xef\xbb\xbfdevice,action,reason\r\n"

    bad = f"device,action,reason\n{subs[0].dev_eui},suspend,winter\n{subs[1].imei},stop,winter\n"
    r = _upload(client, csrf, bad.encode())
    assert r.status_code == 422
    assert re.findall(r'<tr class="status-error"><td class="num">(\d+)</td>', r.text) == ["3"]
    assert "line 3: action must be suspend or resume; nothing was changed" in r.text
    assert _statuses(ctx) == ["active", "active"]

    good = "device,action,reason\n" + "".join(f"{x.iot_number},suspend,winter\n" for x in subs)
    key = re.search(r'name="form_key" value="([^"]+)"', page)
    assert key is not None
    r = _upload(client, csrf, good.encode(), form_key=key[1])
    assert r.status_code == 303 and r.headers["location"] == "/subscriptions"
    assert "File applied: 2 devices suspended, 0 resumed." in client.get("/subscriptions").text
    assert _statuses(ctx) == ["suspended", "suspended"]
    again = _upload(client, csrf, good.encode(), form_key=key[1])  # the same form sent twice
    assert again.status_code == 303 and "sent already" in client.get("/subscriptions").text
    fresh = _upload(client, csrf, good.encode())  # the same file in a new form
    assert fresh.status_code == 303
    told = client.get("/subscriptions").text
    assert "0 devices suspended, 0 resumed; 2 lines already so." in told


def test_readers_cannot_suspend_from_a_file(client: TestClient, ctx: AppContext, world: World):
    s = shop(ctx, world)
    sub = activate_one(s, terminal())
    reader = world.user(s.tenant, Role.CUSTOMER_USER, "reader")
    csrf = signed_in(client, reader.username)
    assert 'href="/subscriptions/status-import"' not in client.get("/subscriptions").text
    assert client.get("/subscriptions/status-import").status_code == 403
    r = _upload(client, csrf, f"device,action,reason\n{sub.dev_eui},suspend,x\n".encode())
    assert r.status_code == 403 and _statuses(ctx) == ["active"]


def test_the_identification_node_hears_of_each_change_made_in_the_console(
    client: TestClient, ctx: AppContext, world: World
):
    from tests.oss.fake_node import FakeNode

    s = shop(ctx, world)
    one, two = (activate_one(s, terminal()) for _ in range(2))
    csrf = signed_in(client, s.admin.username)
    with FakeNode() as node:
        ctx.settings.handle_node_url, ctx.settings.handle_node_token = node.url, node.token

        def status(handle: str) -> str:
            values = [v for v in node.records[handle] if v["type"] == "STATUS"]
            return str(values[0]["data"]["value"])

        r = client.post(
            f"/subscriptions/{one.id}/suspend",
            data={"csrf_token": csrf, "reason": "lost"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert status(one.handle) == "suspended"
        ctx.clock.advance(60)  # a change after the node's last copy
        r = _upload(client, csrf, f"device,action,reason\n{two.dev_eui},suspend,winter\n".encode())
        assert r.status_code == 303
        assert status(two.handle) == "suspended"


def test_a_long_file_is_queued_and_the_page_follows_its_job(
    client: TestClient, ctx: AppContext, world: World, monkeypatch
):
    from satiot.bss import status_import
    from satiot.core import jobs
    from satiot.web.views import status_import as view

    monkeypatch.setattr(view, "MAX_ROWS", 2)  # "long": more than two lines
    monkeypatch.setattr(status_import, "MAX_ROWS", 2)
    s = shop(ctx, world)
    subs = [activate_one(s, terminal()) for _ in range(3)]
    csrf = signed_in(client, s.admin.username)
    winter = "device,action,reason\n" + "".join(f"{x.dev_eui},suspend,winter\n" for x in subs)
    r = _upload(client, csrf, winter.encode())
    assert r.status_code == 303 and r.headers["location"] == "/subscriptions/status-import"
    page = client.get("/subscriptions/status-import").text
    assert "File checked: 3 lines queued, applied 2 at a time" in page
    assert '<meta http-equiv="refresh" content="3">' in page  # while the job waits
    row = re.search(r'<tr class="job-row".*?</tr>', page, re.S)
    assert row is not None and "Suspend/resume 3 devices from a file" in row[0]
    assert "badge-queued" in row[0]
    assert _statuses(ctx) == ["active"] * 3

    jobs.run_pending(ctx.db, ctx.clock, ctx.settings)
    page = client.get("/subscriptions/status-import").text
    assert 'http-equiv="refresh"' not in page
    row = re.search(r'<tr class="job-row".*?</tr>', page, re.S)
    assert row is not None and "badge-succeeded" in row[0]
    assert "3 suspended, 0 resumed, 0 already so" in row[0] and "3 / 3" in row[0]
    assert _statuses(ctx) == ["suspended"] * 3
    other = shop(ctx, world)  # another customer's page does not show it
    signed_in(client, other.admin.username)
    assert 'class="job-row"' not in client.get("/subscriptions/status-import").text
