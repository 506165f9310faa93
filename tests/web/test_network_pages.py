"""The console's network pages: messages, devices, ground stations, integrations, dashboard.

Every page is read through the caller's tenant-scoped session, so these tests sign in as
operator staff, as each customer and as the regulator, and check who sees what.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.core.clock import ManualClock
from satiot.network.destinations import set_policy
from satiot.network.models import Delivery, Downlink
from satiot.web.views import devices as devices_view
from tests.factories import World
from tests.network.ingest_helpers import post, rec
from tests.web.console_helpers import signed_in
from tests.web.network_data import NetworkWorld, build


@pytest.fixture
def net(ctx: AppContext, world: World) -> NetworkWorld:
    return build(ctx, world)


def _as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    return signed_in(client, username)


# ---- messages -------------------------------------------------------------------------------


def test_staff_see_every_tenants_messages_with_their_route(client: TestClient, net: NetworkWorld):
    _as(client, "admin")
    html = client.get("/messages").text
    assert net.a.device.dev_eui in html and net.b.device.dev_eui in html
    assert "Acme Logistics" in html and "Bolt Logistics" in html  # the tenant column
    assert "ca fe 00" in html  # payload in hex
    assert "TQ-A01" in html and "Kashgar" in html  # via satellite → station
    assert '<script src="/static/messages.js" defer></script>' in html
    assert re.search(r'id="fig-minute">\s*6<', html) and re.search(r'id="fig-hour">\s*6<', html)


def test_a_customer_sees_only_its_own_messages(client: TestClient, net: NetworkWorld):
    _as(client, "acme-user")
    html = client.get("/messages").text
    assert net.a.device.dev_eui in html
    assert net.b.device.dev_eui not in html and "Bolt" not in html
    assert "<th>Tenant</th>" not in html
    feed = client.get("/messages/feed").json()
    assert {r["dev_eui"] for r in feed["rows"]} == {net.a.device.dev_eui}
    assert feed["figures"] == {"last_minute": 3, "last_hour": 3}


def test_the_feed_returns_only_what_is_newer(
    client: TestClient, ctx: AppContext, net: NetworkWorld, clock: ManualClock
):
    _as(client, "admin")
    first = client.get("/messages/feed").json()
    assert len(first["rows"]) == 6 and first["with_tenant"] is True
    assert client.get(f"/messages/feed?after={first['newest']}").json()["rows"] == []
    clock.advance(120)
    dev = net.b.device
    post(ctx, net.station_id, [rec(dev.frame(200, b"\x07"), at=clock.now())])
    newer = client.get(f"/messages/feed?after={first['newest']}").json()
    assert [(r["dev_eui"], r["f_cnt"], r["payload"]) for r in newer["rows"]] == [
        (dev.dev_eui, 200, "07")
    ]
    assert newer["rows"][0]["tenant"] == "Bolt Logistics"
    assert newer["figures"] == {"last_minute": 1, "last_hour": 7}
    assert newer["newest"] == newer["rows"][0]["id"]
    # A cursor that is not an id is ignored rather than an error.
    assert len(client.get("/messages/feed?after=nonsense").json()["rows"]) == 7


def test_messages_need_a_signed_in_person_with_uplinks_read(client: TestClient, net: NetworkWorld):
    client.cookies.clear()
    response = client.get("/messages/feed", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    _as(client, "miit")  # the regulator reads devices, not message content
    assert client.get("/messages").status_code == 403
    assert client.get("/messages/feed").status_code == 403


# ---- devices --------------------------------------------------------------------------------


def test_device_list_is_scoped_searchable_and_paged(
    client: TestClient, net: NetworkWorld, monkeypatch: pytest.MonkeyPatch
):
    _as(client, "bolt-admin")
    html = client.get("/devices").text
    assert net.b.device.dev_eui in html and net.a.device.dev_eui not in html
    _as(client, "admin")
    html = client.get("/devices").text
    assert net.a.device.dev_eui in html and net.b.device.dev_eui in html
    row = html.split(f'data-dev-eui="{net.a.device.dev_eui}"', 1)[1].split("</tr>", 1)[0]
    assert "Acme Logistics" in row and ">3<" in row and ">1<" in row  # uplinks, waiting
    found = client.get(f"/devices?q={net.b.device.dev_eui}").text
    assert net.b.device.dev_eui in found and net.a.device.dev_eui not in found
    monkeypatch.setattr(devices_view, "PAGE_SIZE", 1)
    first = client.get("/devices").text
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link
    second = client.get(next_link.group(1).replace("&amp;", "&")).text
    assert net.b.device.dev_eui in second and net.a.device.dev_eui not in second
    assert client.get("/devices?after=forged").status_code == 422


def test_the_device_list_counts_the_last_days_uplinks(
    client: TestClient, net: NetworkWorld, clock: ManualClock
):
    _as(client, "admin")

    def uplinks() -> str:
        _as(client, "admin")  # a console session lasts less than a day
        html = client.get("/devices").text
        row = html.split(f'data-dev-eui="{net.a.device.dev_eui}"', 1)[1].split("</tr>", 1)[0]
        return re.findall(r'<td class="num">([^<]*)</td>', row)[0]

    assert "Uplinks, 24 h" in client.get("/devices").text
    assert uplinks() == "3"
    clock.advance(23 * 3600)
    assert uplinks() == "3"
    clock.advance(2 * 3600)  # a day and an hour later
    assert uplinks() == "0"


def test_the_device_list_finds_silent_devices_and_exports_them(
    client: TestClient, ctx: AppContext, net: NetworkWorld, clock: ManualClock
):
    from tests.network.test_device_export import devices as make_devices

    now = clock.now()
    quiet, never = make_devices(ctx, net.a.tenant_id, [now - timedelta(days=8), None])
    _as(client, "acme-user")
    page = client.get("/devices?silent=7").text
    assert quiet in page and never in page and net.a.device.dev_eui not in page
    assert '<option value="7" selected>' in page
    (export,) = re.findall(r'<a href="([^"]+)" class="btn btn-quiet" id="devices-export"', page)
    assert unescape(export) == "/devices/export.csv?silent=7"
    data = client.get(unescape(export))
    assert data.status_code == 200 and data.content.startswith(b"\xef\xbb\xbf")
    lines = data.content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [quiet, never]
    assert len(client.get("/devices/export.csv").content.splitlines()) == 1 + 3
    everything = client.get("/devices?silent=bogus").text  # not a choice: no filter
    assert net.a.device.dev_eui in everything and quiet in everything
    assert "No device matches and has been silent" not in client.get("/devices?silent=1").text
    empty = client.get("/devices?q=FFFF&silent=30").text
    assert "No device matches “FFFF” and has been silent for 30 days." in empty


def test_device_page_shows_uplinks_and_the_downlink_queue(client: TestClient, net: NetworkWorld):
    _as(client, "acme-user")
    html = client.get(f"/devices/{net.a.device.dev_eui.lower()}").text
    assert 'id="downlinks"' in html and 'data-status="scheduled"' in html
    assert "TQ-A04" in html and "in 95 min" in html  # estimated delivery
    assert "01 02 03" in html
    assert 'id="uplinks"' in html and html.count("ca fe 0") == 3
    assert "Active since" in html.split('id="device-active-since"', 1)[1].split("</div>", 1)[0]


def test_a_customer_cannot_open_another_tenants_device(client: TestClient, net: NetworkWorld):
    _as(client, "acme-admin")
    response = client.get(f"/devices/{net.b.device.dev_eui}")
    assert response.status_code == 404
    assert "ca fe" not in response.text and net.b.device.dev_eui in response.text


def test_the_regulator_sees_devices_but_not_their_messages(client: TestClient, net: NetworkWorld):
    _as(client, "miit")
    html = client.get(f"/devices/{net.a.device.dev_eui}").text
    assert "Acme Logistics" in html
    assert 'id="uplinks"' not in html and 'id="downlinks"' not in html


# ---- ground stations ------------------------------------------------------------------------


def test_ground_stations_show_traffic_and_keys(client: TestClient, net: NetworkWorld):
    _as(client, "noc")
    html = client.get("/ground-stations").text
    row = html.split('data-name="Kashgar"', 1)[1].split("</tr>", 1)[0]
    assert ">6<" in row  # receptions in the last hour
    assert "issued" in row and "sk_" in row and "just now" in row
    _as(client, "acme-admin")
    assert client.get("/ground-stations").status_code == 403


def test_ground_stations_show_how_full_the_coming_passes_are(
    client: TestClient, ctx: AppContext, net: NetworkWorld
):
    """Acme's and Bolt's commands ride the same pass of TQ-A04 over Kashgar: one window
    with two commands; with room for two and one held for priority it is full."""
    _as(client, "noc")
    html = client.get("/ground-stations").text
    (row,) = [r.split("</tr>", 1)[0] for r in html.split('class="load-row"')[1:]]
    assert 'data-station="Kashgar" data-satellite="TQ-A04"' in row
    assert "2 / 1,000" in row and "0 %" in row
    ctx.settings = ctx.settings.model_copy(
        update={"downlink_loads_per_pass": 2, "downlink_emergency_reserve": 0.5}
    )
    row = client.get("/ground-stations").text.split('class="load-row"')[1].split("</tr>")[0]
    assert "2 / 2" in row and ">full<" in row
    ctx.settings = ctx.settings.model_copy(update={"downlink_loads_per_pass": 3})
    row = client.get("/ground-stations").text.split('class="load-row"')[1].split("</tr>")[0]
    assert "2 / 3" in row and ">reserve only<" in row
    with ctx.db.write() as s:
        for d in s.scalars(select(Downlink)):
            d.status = "on-satellite"
    assert "No commands are planned on a coming pass." in client.get("/ground-stations").text


# ---- integrations ---------------------------------------------------------------------------


def _delivery(ctx: AppContext, delivery_id) -> Delivery:
    with ctx.db.read() as s:
        found = s.scalar(select(Delivery).where(Delivery.id == delivery_id))
        assert found is not None
        return found


def test_customer_sees_its_integrations_and_dead_letters(client: TestClient, net: NetworkWorld):
    _as(client, "acme-admin")
    html = client.get("/integrations").text
    assert "acme backend" in html and "bolt" not in html
    assert "HTTP 503 from acme.example.com" in html and "dead letter" in html
    dead = client.get("/integrations?status=dead").text
    assert dead.count('class="delivery-row"') == 1 and "Replay" in dead


def test_the_allow_list_and_integrations_off_it_are_shown(
    client: TestClient, ctx: AppContext, net: NetworkWorld
):
    """Acme's contract now lists only iot.example.com: its webhook at acme.example.com is
    marked, and Acme sees what its contract allows; Bolt is unrestricted and sees no list."""
    with ctx.db.write() as s:
        set_policy(
            s, net.a.tenant_id, ["iot.example.com"], source="SC-2026-000007 v2", at=ctx.clock.now()
        )
    _as(client, "acme-admin")
    html = client.get("/integrations").text
    assert "Your contract (SC-2026-000007 v2) allows delivery to:" in html
    assert "<code>iot.example.com</code>" in html
    assert html.count("off the allow-list</span>") == 1
    assert "is not on the destination allow-list of SC-2026-000007 v2" in html
    _as(client, "bolt-admin")
    html = client.get("/integrations").text
    assert 'id="allow-list"' not in html and "off the allow-list</span>" not in html
    _as(client, "admin")
    assert client.get("/integrations").text.count("off the allow-list</span>") == 1
    with ctx.db.write() as s:
        set_policy(s, net.a.tenant_id, [], source="", at=ctx.clock.now())
    _as(client, "acme-user")
    assert "<strong>nowhere</strong> (no contract in force)" in client.get("/integrations").text


def test_replaying_a_dead_letter(client: TestClient, ctx: AppContext, net: NetworkWorld):
    token = _as(client, "acme-admin")
    url = f"/integrations/{net.a.integration_id}/deliveries/{net.a.dead_letter_id}/replay"
    # Without the form's token nothing changes.
    assert client.post(url, data={"back": "/integrations"}).status_code == 403
    assert _delivery(ctx, net.a.dead_letter_id).status == "dead"
    response = client.post(
        url,
        data={"csrf_token": token, "back": "/integrations?status=dead"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/integrations?status=dead"
    replayed = _delivery(ctx, net.a.dead_letter_id)
    assert replayed.status == "pending" and replayed.attempts == 0
    page = client.get("/integrations").text
    assert "queued for delivery again" in page


def test_a_customer_cannot_replay_another_tenants_dead_letter(
    client: TestClient, ctx: AppContext, net: NetworkWorld
):
    token = _as(client, "acme-admin")
    url = f"/integrations/{net.b.integration_id}/dead-letters/replay"
    response = client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert "not found" in client.get("/integrations").text
    assert _delivery(ctx, net.b.dead_letter_id).status == "dead"


def test_a_customer_user_reads_the_log_but_cannot_replay(
    client: TestClient, ctx: AppContext, net: NetworkWorld
):
    token = _as(client, "acme-user")
    html = client.get("/integrations").text
    assert "HTTP 503" in html and "Replay" not in html
    url = f"/integrations/{net.a.integration_id}/dead-letters/replay"
    assert client.post(url, data={"csrf_token": token}).status_code == 403
    assert _delivery(ctx, net.a.dead_letter_id).status == "dead"


def test_replaying_all_dead_letters(client: TestClient, ctx: AppContext, net: NetworkWorld):
    token = _as(client, "admin")
    url = f"/integrations/{net.b.integration_id}/dead-letters/replay"
    response = client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert "1 dead letter queued for delivery again." in client.get("/integrations").text
    assert _delivery(ctx, net.b.dead_letter_id).status == "pending"
    assert _delivery(ctx, net.a.dead_letter_id).status == "dead"


# ---- dashboard ------------------------------------------------------------------------------


def test_dashboard_shows_the_networks_figures(client: TestClient, net: NetworkWorld):
    _as(client, "admin")
    html = client.get("/").text
    for label in ("Uplinks / hour", "Devices active", "Dead letters"):
        assert label in html
    assert re.search(r"Uplinks / hour</div>\s*<div class=\"figure-value\">6<", html)
    assert re.search(r"Dead letters</div>\s*<div class=\"figure-value\">2<", html)
    _as(client, "bolt-admin")
    html = client.get("/").text
    assert re.search(r"Uplinks / hour</div>\s*<div class=\"figure-value\">3<", html)
    assert re.search(r"Dead letters</div>\s*<div class=\"figure-value\">1<", html)
    _as(client, "miit")
    html = client.get("/").text
    assert "Devices active" in html and "Uplinks / hour" not in html


def test_dashboard_counts_a_tenants_silent_devices(
    client: TestClient, ctx: AppContext, net: NetworkWorld, clock: ManualClock
):
    from tests.network.test_device_export import devices as make_devices

    now = clock.now()
    make_devices(ctx, net.a.tenant_id, [now - timedelta(days=8), None])
    make_devices(ctx, net.a.tenant_id, [None], status="inventory")  # not expected to talk
    _as(client, "acme-user")
    html = client.get("/").text
    assert re.search(r"Silent devices</div>\s*<div class=\"figure-value\">2<", html), html
    assert 'href="/devices?silent=7"' in html and "active, no uplink for 7 days" in html
    _as(client, "bolt-admin")
    html = client.get("/").text
    assert re.search(r"Silent devices</div>\s*<div class=\"figure-value\">0<", html)
    assert "every active device was heard in the last 7 days" in html


def test_id_floor_bounds_the_ids_minted_since_a_time():
    from datetime import UTC, datetime, timedelta

    from satiot.core.ids import new_id
    from satiot.web.views.network_rows import ID_CLOCK_MARGIN, id_floor

    minted = new_id()
    now = datetime.now(UTC)
    assert id_floor(now) < minted  # minted just now: inside the window
    assert id_floor(now - timedelta(hours=1)) < minted
    assert id_floor(now + ID_CLOCK_MARGIN + timedelta(seconds=5)) > minted
    assert id_floor(datetime(1970, 1, 1, tzinfo=UTC)).int >> 80 == 0


def test_an_emergency_priority_device_is_marked_in_the_list_and_on_its_page(
    client: TestClient, ctx: AppContext, world: World, net: NetworkWorld
):
    from satiot.network.devices import PRIORITY_EMERGENCY, set_device_priority

    _as(client, "acme-user")
    page = client.get(f"/devices/{net.a.device.dev_eui}").text
    assert 'id="device-priority"' in page and "badge-emergency" not in page
    with ctx.db.write() as s:
        set_device_priority(
            s, world.system, net.a.device.id, PRIORITY_EMERGENCY, at=ctx.clock.now(), reason="t"
        )
    page = client.get(f"/devices/{net.a.device.dev_eui}").text
    facts = page.split('id="device-priority"', 1)[1].split("</div>", 1)[0]
    assert "badge-emergency" in facts and "emergency" in facts
    listing = client.get("/devices").text
    row = listing.split(f'data-dev-eui="{net.a.device.dev_eui}"', 1)[1].split("</tr>", 1)[0]
    assert "badge-emergency" in row
