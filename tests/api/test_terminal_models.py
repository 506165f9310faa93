"""Terminal models through the API: record, renew, withdraw, the licence watch, roles."""

from __future__ import annotations

from satiot.core.auth.roles import Role
from tests.api.conftest import assert_problem, unchanged

MODEL = {
    "name": "TQ-M100",
    "equipment_name": "Satellite IoT module",
    "manufacturer": "Example Devices Co.",
    "applicant": "Example Devices Co.",
    "licence_number": "00-B182-228209",
    "issued_on": "2025-03-01",
    "expires_on": "2026-12-01",
    "tacs": ["35417803"],
}


def test_record_read_renew_withdraw(client, ctx, world):
    admin = world.admin_headers()
    r = client.post("/api/v1/terminal-models", json=MODEL, headers=admin)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["status"] == "listed" and m["tacs"] == ["35417803"]
    with unchanged(ctx):
        dup = client.post(
            "/api/v1/terminal-models",
            json=MODEL | {"licence_number": "00-B182-000001"},
            headers=admin,
        )
    assert assert_problem(dup, 409, "conflict")["field"] == "name"
    bad = client.post(
        "/api/v1/terminal-models",
        json=MODEL | {"name": "x", "licence_number": "B182-228209"},
        headers=admin,
    )
    assert_problem(bad, 422, "validation-error")
    backwards = client.post(
        "/api/v1/terminal-models",
        json=MODEL | {"name": "x", "licence_number": "00-B182-000002", "expires_on": "2024-01-01"},
        headers=admin,
    )
    assert assert_problem(backwards, 422, "invalid-input")["field"] == "expires_on"

    watch = client.get("/api/v1/terminal-models/licence-watch?within_days=30", headers=admin).json()
    assert [x["name"] for x in watch["expiring"]] == ["TQ-M100"] and watch["expired"] == []
    r = client.patch(
        f"/api/v1/terminal-models/{m['id']}",
        json={"expires_on": "2029-12-01", "reason": "renewed"},
        headers=admin,
    )
    assert r.json()["expires_on"] == "2029-12-01"
    watch = client.get(
        "/api/v1/terminal-models/licence-watch?within_days=30&on=2030-01-01", headers=admin
    ).json()
    assert [x["name"] for x in watch["expired"]] == ["TQ-M100"]

    r = client.delete(f"/api/v1/terminal-models/{m['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    listed = client.get("/api/v1/terminal-models?status=listed", headers=admin).json()["items"]
    assert listed == []
    assert (
        client.get(f"/api/v1/terminal-models/{m['id']}", headers=admin).json()["status"]
        == "withdrawn"
    )
    r = client.patch(f"/api/v1/terminal-models/{m['id']}", json={"status": "listed"}, headers=admin)
    assert r.json()["status"] == "listed"


def test_roles(client, world):
    admin = world.admin_headers()
    client.post("/api/v1/terminal-models", json=MODEL, headers=admin)
    for role in (Role.REGULATOR, Role.COMPLIANCE, Role.NOC):
        h = world.headers(world.user(world.operator, role))
        assert client.get("/api/v1/terminal-models", headers=h).status_code == 200
        assert_problem(
            client.post("/api/v1/terminal-models", json=MODEL | {"name": "y"}, headers=h), 403
        )
    business = world.headers(world.user(world.operator, Role.BUSINESS))
    r = client.post(
        "/api/v1/terminal-models",
        json=MODEL | {"name": "y", "licence_number": "01-AAAA-000001"},
        headers=business,
    )
    assert r.status_code == 201
    customer = world.headers(world.user(world.tenant(), Role.CUSTOMER_USER))
    assert_problem(client.get("/api/v1/terminal-models", headers=customer), 403)
    assert_problem(
        client.get("/api/v1/terminal-models/01234567-89ab-7def-8123-456789abcdef", headers=admin),
        404,
    )


def test_licence_watch_at_the_end_of_the_calendar_is_not_a_server_error(client, world):
    admin = world.admin_headers()
    assert client.post("/api/v1/terminal-models", json=MODEL, headers=admin).status_code == 201
    url = "/api/v1/terminal-models/licence-watch?on=9999-12-31&within_days=1"
    r = client.get(url, headers=admin)
    assert r.status_code == 200, r.text
    assert [m["name"] for m in r.json()["expired"]] == [MODEL["name"]]


def test_licence_numbers_and_tacs_take_ascii_digits_only(client, ctx, world):
    """Other scripts' digits are digits to a plain regular expression, not to the register."""
    admin = world.admin_headers()
    for bad in (
        {"licence_number": "\u0660\u0660-B182-\u0662\u0662\u0668\u0662\u0660\u0669"},
        {"tacs": ["\uff13\uff15\uff14\uff11\uff17\uff18\uff10\uff13"]},
    ):
        with unchanged(ctx):
            r = client.post("/api/v1/terminal-models", json=MODEL | bad, headers=admin)
        assert_problem(r, 422, "validation-error")


def test_a_licence_date_given_as_a_number_is_refused(client, ctx, world):
    """``0`` is not 1 January 1970 to a person filling in a licence."""
    admin = world.admin_headers()
    with unchanged(ctx):
        r = client.post("/api/v1/terminal-models", json=MODEL | {"issued_on": 0}, headers=admin)
    problem = assert_problem(r, 422, "validation-error")
    assert "ISO-8601" in problem["detail"]


# -- licence lists ---------------------------------------------------------------------------------


def test_a_licence_list_imports_and_a_replay_imports_nothing_twice(client, ctx, world):
    from tests.oss.test_licence_list import CSV

    admin = world.admin_headers() | {"Content-Type": "text/csv"}
    r = client.post("/api/v1/terminal-models/csv", content=CSV, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 2, "updated": 0, "unchanged": 0}
    again = client.post("/api/v1/terminal-models/csv", content=CSV, headers=admin)
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 2}
    keyed = admin | {"Idempotency-Key": "list-2026-01"}
    renewed = CSV.replace("2028-02-29,\n", "2029-01-01,\n")
    first = client.post("/api/v1/terminal-models/csv", content=renewed, headers=keyed)
    with unchanged(ctx):
        replay = client.post("/api/v1/terminal-models/csv", content=renewed, headers=keyed)
    assert first.json() == replay.json() == {"created": 0, "updated": 1, "unchanged": 1}
    names = {
        m["name"] for m in client.get("/api/v1/terminal-models", headers=admin).json()["items"]
    }
    assert names == {"TQ-M100", "TQ-M200"}


def test_a_bad_licence_list_names_every_line_and_imports_none(client, ctx, world):
    from tests.oss.test_licence_list import CSV

    admin = world.admin_headers()
    text = (
        CSV
        + "TQ-M300,x,y,z,BAD,2025-01-01,2026-01-01,\n"
        + "TQ-M400,x,y,z,00-B182-228212,2025-13-01,2026-01-01,\n"
    )
    with unchanged(ctx):
        r = client.post(
            "/api/v1/terminal-models/csv",
            files={"file": ("models.csv", text.encode(), "text/csv")},
            headers=admin,
        )
    body = assert_problem(r, 422, "licence-list-rejected")
    assert [(e["line"], e["column"]) for e in body["errors"]] == [
        (4, "licence_number"),
        (5, "issued_on"),
    ]
    assert body["detail"].startswith(
        "2 lines cannot be imported; nothing was imported. First, line 4:"
    )
    assert client.get("/problems/licence-list-rejected").status_code == 200


def test_a_licence_list_in_gbk_reads_with_its_charset_named(client, world):
    from tests.oss.test_licence_list import CSV

    maker = "北京天星物联科技有限公司"
    data = CSV.replace("Maker,Maker", f"{maker},{maker}").encode("gbk")
    admin = world.admin_headers()
    plain = client.post(
        "/api/v1/terminal-models/csv", content=data, headers=admin | {"Content-Type": "text/csv"}
    )
    (error,) = assert_problem(plain, 422, "licence-list-rejected")["errors"]
    assert error["line"] == 2 and "it reads as GB18030 (GBK)" in error["reason"]
    assert_problem(
        client.post(
            "/api/v1/terminal-models/csv",
            content=data,
            headers=admin | {"Content-Type": "text/csv; charset=big5"},
        ),
        415,
    )
    r = client.post(
        "/api/v1/terminal-models/csv",
        content=data,
        headers=admin | {"Content-Type": "text/csv; charset=GBK"},
    )
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    listed = client.get("/api/v1/terminal-models", headers=admin).json()["items"]
    assert {m["manufacturer"] for m in listed} == {maker}
    workbook = client.post(
        "/api/v1/terminal-models/csv?encoding=gb18030",
        content=b"PK\x03\x04" + bytes(40),
        headers=admin | {"Content-Type": "application/octet-stream"},
    )
    assert "Excel workbook" in assert_problem(workbook, 422)["errors"][0]["reason"]
    assert_problem(
        client.post("/api/v1/terminal-models/csv", json={"csv": "x"}, headers=admin), 415
    )


def test_the_licence_list_template_and_who_may_import(client, world):
    from tests.oss.test_licence_list import CSV

    noc = world.headers(world.user(world.operator, Role.NOC))
    r = client.get("/api/v1/terminal-models/csv-template", headers=noc)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="satiot-licence-list.csv"' in r.headers["content-disposition"]
    header = "name,equipment_name,manufacturer,applicant,licence_number,issued_on,expires_on,tacs"
    assert r.content == b"\xef\xbb\xbf" + header.encode() + b"\r\n"
    assert_problem(
        client.post(
            "/api/v1/terminal-models/csv",
            content=CSV,
            headers=noc | {"Content-Type": "text/csv"},
        ),
        403,
    )
    customer = world.headers(world.user(world.tenant(), Role.CUSTOMER_USER))
    assert_problem(client.get("/api/v1/terminal-models/csv-template", headers=customer), 403)
