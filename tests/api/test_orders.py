"""The product-order API: JSON and CSV orders, rejection with per-item errors, idempotency,
fulfilment after the answer, cancellation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from satiot.core.auth.roles import Role
from satiot.network.models import Device
from tests.api.conftest import assert_problem, unchanged
from tests.bss.order_world import CSV_HEADER, MODEL, Terminal, shop, terminal
from tests.bss.test_orders import all_counts

API = "/api/v1/product-orders"


def add_item(t: Terminal, offering: str = "SAT-BUNDLE-100", **terminal_fields) -> dict:
    return {
        "action": "add",
        "productOffering": {"id": offering},
        "terminal": {
            "imei": t.imei,
            "devEui": t.dev_eui,
            "terminalModel": "TQ-M100",
            "devAddr": t.dev_addr,
            "nwkSKey": t.nwk_s_key,
            "appSKey": t.app_s_key,
        }
        | terminal_fields,
    }


def test_a_customer_admin_orders_and_the_order_is_fulfilled(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    t1, t2 = terminal(), terminal()
    body = {"externalId": "PO-1", "productOrderItem": [add_item(t1), add_item(t2, "SAT-MSG")]}
    r = client.post(API, headers=headers | {"Idempotency-Key": "po-1"}, json=body)
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["state"] == "acknowledged" and placed["externalId"] == "PO-1"
    assert t1.nwk_s_key not in r.text and "sealed" not in r.text
    # The order was fulfilled after the answer.
    done = client.get(f"{API}/{placed['id']}", headers=headers).json()
    assert done["state"] == "completed", done
    assert done["itemStates"] == {"completed": 2}
    items = done["productOrderItem"]
    assert [i["terminal"]["devEui"] for i in items] == [t1.dev_eui, t2.dev_eui]
    assert items[0]["terminal"] == {
        "devEui": t1.dev_eui,
        "imei": t1.imei,
        "terminalModel": "TQ-M100",
        "scenario": "environmental-monitoring",
        "devAddr": t1.dev_addr,
    }
    assert all(i["subscriptionId"] for i in items)
    assert t1.nwk_s_key not in client.get(f"{API}/{placed['id']}", headers=headers).text
    # A repeat with the same key creates nothing new.
    before = all_counts(ctx)
    again = client.post(API, headers=headers | {"Idempotency-Key": "po-1"}, json=body)
    assert again.status_code == 201 and again.json()["id"] == placed["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert all_counts(ctx) == before
    listed = client.get(API, headers=headers).json()["items"]
    assert [(o["id"], o["itemStates"]) for o in listed] == [(placed["id"], {"completed": 2})]
    # A customer user reads orders but may not place them.
    reader = world.headers(world.user(s.tenant, Role.CUSTOMER_USER))
    assert client.get(f"{API}/{placed['id']}", headers=reader).status_code == 200
    assert_problem(client.post(API, headers=reader, json=body), 403, "forbidden")


def test_a_bad_order_is_rejected_item_by_item_and_creates_nothing(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    good = terminal()
    body = {
        "productOrderItem": [
            add_item(good),
            add_item(terminal(), imei="354178036859788"),
            add_item(terminal(), "NO-SUCH-OFFERING"),
            add_item(terminal(), terminalModel="TQ-UNKNOWN"),
        ]
    }
    before = all_counts(ctx)
    r = client.post(API, headers=headers, json=body)
    problem = assert_problem(r, 422, "order-rejected")
    found = {(e["item"], e["field"]) for e in problem["errors"]}
    assert {
        (1, "terminal.imei"),
        (2, "productOffering.id"),
        (3, "terminal.terminalModel"),
    } <= found
    assert 0 not in {e["item"] for e in problem["errors"]}
    assert "nothing was applied" in problem["detail"]
    assert all_counts(ctx) == before


def test_staff_order_for_a_named_customer(client, ctx, world):
    s = shop(ctx, world)
    staff = world.headers(world.user(world.operator, Role.BUSINESS))
    body = {"productOrderItem": [add_item(terminal())]}
    problem = assert_problem(client.post(API, headers=staff, json=body), 422, "invalid-input")
    assert problem["field"] == "customer_id"
    r = client.post(API, headers=staff, json=body | {"customerId": str(s.customer_id)})
    assert r.status_code == 201, r.text
    assert "(user:" in r.json()["placedBy"]


def test_a_pending_order_can_be_cancelled_until_it_starts(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    start = (ctx.clock.now() + timedelta(days=2)).isoformat()
    body = {"requestedStartDate": start, "productOrderItem": [add_item(terminal())]}
    placed = client.post(API, headers=headers, json=body).json()
    assert client.get(f"{API}/{placed['id']}", headers=headers).json()["state"] == "pending"
    r = client.post(f"{API}/{placed['id']}/cancel", headers=headers, json={"reason": "changed"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert r.json()["productOrderItem"][0]["state"] == "cancelled"
    r = client.post(f"{API}/{placed['id']}/cancel", headers=headers, json={})
    assert_problem(r, 409, "illegal-transition")
    done = client.post(API, headers=headers, json={"productOrderItem": [add_item(terminal())]})
    r = client.post(f"{API}/{done.json()['id']}/cancel", headers=headers, json={})
    assert_problem(r, 409, "illegal-transition")


def test_sales_staff_hold_and_release_a_pending_order(client, ctx, world):
    s = shop(ctx, world)
    customer = world.headers(s.admin)
    staff = world.headers(world.user(world.operator, Role.BUSINESS))
    start = (ctx.clock.now() + timedelta(days=2)).isoformat()
    body = {"requestedStartDate": start, "productOrderItem": [add_item(terminal())]}
    placed = client.post(API, headers=customer, json=body).json()
    assert_problem(client.post(f"{API}/{placed['id']}/hold", headers=customer, json={}), 403)
    r = client.post(f"{API}/{placed['id']}/hold", headers=staff, json={"reason": "documents"})
    assert r.status_code == 200 and r.json()["state"] == "held", r.text
    r = client.post(f"{API}/{placed['id']}/release", headers=staff, json={})
    assert r.status_code == 200 and r.json()["state"] == "pending", r.text
    assert_problem(client.post(f"{API}/{placed['id']}/release", headers=staff, json={}), 409)


def test_a_csv_with_bad_rows_is_refused_whole(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    rows = [terminal().csv_row() for _ in range(4)]
    rows[1] = rows[1].replace("TQ-M100", "")
    rows[2] = rows[2].replace(",", ",,", 1)
    csv_text = "\n".join([CSV_HEADER, *rows]) + "\n"
    before = all_counts(ctx)
    r = client.post(
        f"{API}/csv", headers=headers, files={"file": ("o.csv", csv_text.encode(), "text/csv")}
    )
    problem = assert_problem(r, 422, "order-rejected")
    assert [(e["line"], e["column"]) for e in problem["errors"]] == [
        (3, "terminal_model"),
        (4, ""),
    ]
    assert all_counts(ctx) == before


def test_a_good_csv_makes_one_order_with_one_item_per_row(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin) | {"Content-Type": "text/csv", "Idempotency-Key": "csv-1"}
    data = ("\ufeff" + "\n".join([CSV_HEADER, *(terminal().csv_row() for _ in range(3))])).encode()
    r = client.post(f"{API}/csv", headers=headers, content=data, params={"externalId": "B-1"})
    assert r.status_code == 201, r.text
    placed = r.json()
    assert (placed["source"], placed["externalId"], len(placed["productOrderItem"])) == (
        "csv",
        "B-1",
        3,
    )
    assert [i["index"] for i in placed["productOrderItem"]] == [2, 3, 4]
    again = client.post(f"{API}/csv", headers=headers, content=data, params={"externalId": "B-1"})
    assert again.json()["id"] == placed["id"]
    done = client.get(f"{API}/{placed['id']}", headers=world.headers(s.admin)).json()
    assert done["state"] == "completed"
    r = client.post(
        f"{API}/csv", headers=world.headers(s.admin) | {"Content-Type": "image/png"}, content=b"x"
    )
    assert_problem(r, 415, "unsupported-media-type")


def test_the_template_filled_in_is_an_order(client, ctx, world):
    """The empty order names every column; a row that fills in only what an add needs (the
    other cells empty, as a spreadsheet saves them) is ordered as it is."""
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    r = client.get(f"{API}/csv-template", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="satiot-order.csv"' in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbfaction,imei,dev_eui,") and r.content.endswith(b"\r\n")
    header = r.content[3:].decode().strip().split(",")
    t = terminal()
    cells = {
        "imei": t.imei,
        "dev_eui": t.dev_eui,
        "terminal_model": MODEL,
        "offering": "SAT-BUNDLE-100",
        "dev_addr": t.dev_addr,
        "nwk_s_key": t.nwk_s_key,
        "app_s_key": t.app_s_key,
    }
    row = ",".join(cells.get(name, "") for name in header)
    placed = client.post(
        f"{API}/csv",
        headers=headers | {"Content-Type": "text/csv"},
        content=r.content + row.encode() + b"\r\n",
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["productOrderItem"][0]["action"] == "add"
    with unchanged(ctx):
        empty = client.post(
            f"{API}/csv", headers=headers | {"Content-Type": "text/csv"}, content=r.content
        )
    assert "header but no rows" in assert_problem(empty, 422)["errors"][0]["reason"]


def test_a_start_date_without_a_zone_is_422_not_500(client, ctx, world):
    s = shop(ctx, world)
    headers = world.headers(s.admin)
    body = {"requestedStartDate": "2030-01-01T00:00:00", "productOrderItem": [add_item(terminal())]}
    before = all_counts(ctx)
    assert_problem(client.post(API, headers=headers, json=body), 422, "validation-error")
    assert all_counts(ctx) == before
    body["requestedStartDate"] = "2030-01-01T00:00:00+08:00"
    r = client.post(API, headers=headers, json=body)
    assert r.status_code == 201 and r.json()["state"] == "pending", r.text


def test_a_gb18030_csv_is_read_when_its_encoding_is_named(client, ctx, world):
    """Excel on Chinese Windows saves "CSV" in GB18030 (GBK): the charset of the body, or the
    ``encoding`` parameter, names it; unnamed, the refusal says what the file reads as."""
    s = shop(ctx, world)
    headers = world.headers(s.admin)

    def gbk_file() -> tuple[list[Terminal], bytes]:
        made = [terminal() for _ in range(2)]
        rows = [f"{t.csv_row()},黑龙江 气象站 {i}" for i, t in enumerate(made)]
        return made, "\n".join([CSV_HEADER + ",name", *rows]).encode("gb18030") + b"\n"

    before = all_counts(ctx)
    _, data = gbk_file()
    r = client.post(f"{API}/csv", headers=headers | {"Content-Type": "text/csv"}, content=data)
    problem = assert_problem(r, 422, "order-rejected")
    assert [e["line"] for e in problem["errors"]] == [2, 3]
    assert "it reads as GB18030 (GBK)" in problem["errors"][0]["reason"]
    for content_type, params, status, slug in (
        ("text/csv; charset=latin-1", {}, 415, "unsupported-media-type"),
        ("text/csv", {"encoding": "latin-1"}, 422, "validation-error"),
    ):
        r = client.post(
            f"{API}/csv",
            headers=headers | {"Content-Type": content_type},
            content=data,
            params=params,
        )
        assert_problem(r, status, slug)
    assert all_counts(ctx) == before

    made, data = gbk_file()
    r = client.post(
        f"{API}/csv", headers=headers | {"Content-Type": 'text/csv; charset="GBK"'}, content=data
    )
    assert r.status_code == 201, r.text
    made2, data2 = gbk_file()
    r = client.post(
        f"{API}/csv",
        headers=headers,
        files={"file": ("o.csv", data2, "text/csv")},
        params={"encoding": "gb18030"},
    )
    assert r.status_code == 201, r.text
    with ctx.db.read() as session:
        names = dict(
            session.execute(
                select(Device.dev_eui, Device.name).where(
                    Device.dev_eui.in_([t.dev_eui for t in made + made2])
                )
            ).all()
        )
    assert sorted(names.values()) == [
        "黑龙江 气象站 0",
        "黑龙江 气象站 0",
        "黑龙江 气象站 1",
        "黑龙江 气象站 1",
    ]
