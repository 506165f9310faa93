"""Terminal models and licences: validators, admissibility, the daily re-check."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from satiot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from satiot.core.models import AuditEntry
from satiot.oss import terminals
from satiot.oss.models import TerminalModel
from satiot.oss.terminals import (
    LICENCE_RE,
    ModelNotAdmissible,
    check_model_admissible,
    create_model,
    licence_watch,
    update_model,
    validate_imei,
    validate_licence_number,
)
from tests.oss.helpers import IMEI, IMEI_BAD_CHECK, model_spec

# -- validators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["00-B182-228209", " 00-b182-228209 ", "17-0000-000001"])
def test_licence_numbers_of_the_observed_shape_pass(text):
    assert validate_licence_number(text) == text.strip().upper()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00B182228209",
        "0-B182-228209",
        "00-B18-228209",
        "00-B182-22820",
        "00-B1#2-228209",
        "00-B182-2282090",
        "aa-B182-228209",
        "00–B182–228209",
    ],
)
def test_malformed_licence_numbers_are_refused(text):
    with pytest.raises(InvalidInput, match="licence number"):
        validate_licence_number(text)


@given(st.from_regex(LICENCE_RE, fullmatch=True))
def test_every_licence_of_the_shape_is_accepted(text):
    assert validate_licence_number(text) == text


@given(st.text(alphabet="0123456789ABZ-ab #", max_size=16))
def test_the_validator_accepts_exactly_the_shape(text):
    canonical = text.strip().upper()
    if re.fullmatch(r"\d{2}-[0-9A-Z]{4}-\d{6}", canonical):
        assert validate_licence_number(text) == canonical
    else:
        with pytest.raises(InvalidInput):
            validate_licence_number(text)


def test_the_published_imei_is_valid_with_or_without_separators():
    assert validate_imei(IMEI) == IMEI
    assert validate_imei("35-417803-685978-9") == IMEI
    assert terminals.tac_of(IMEI) == "35417803"


@pytest.mark.parametrize(
    "text", [IMEI_BAD_CHECK, "35417803685978", "3541780368597890", "35417803685978X", ""]
)
def test_bad_imeis_are_refused(text):
    with pytest.raises(InvalidInput, match="IMEI"):
        validate_imei(text)


# -- records ------------------------------------------------------------------------------------


def test_create_records_and_audits(db, world, clock):
    with db.write() as s:
        m = create_model(s, world.system, model_spec(tacs=("35417803",)), at=clock.now())
    with db.read() as s:
        row = s.get(TerminalModel, m.id)
        assert row is not None and row.status == "listed" and row.tacs == ["35417803"]
        audit = s.scalars(select(AuditEntry).where(AuditEntry.target_id == str(m.id))).all()
        assert [a.action for a in audit] == ["terminal-model.created"]
        assert audit[0].after["licence_number"] == "00-B182-228209"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "TQ-M100"}, "name"),
        ({"name": "other", "licence": "00-B182-228209"}, "licence_number"),
    ],
)
def test_names_and_licence_numbers_are_unique(db, world, clock, change, field):
    with db.write() as s:
        create_model(s, world.system, model_spec(), at=clock.now())
    with pytest.raises(Conflict) as info, db.write() as s:
        create_model(
            s,
            world.system,
            model_spec(licence="01-AAAA-000001")
            if field == "name"
            else model_spec(name=change["name"]),
            at=clock.now(),
        )
    assert info.value.extensions["field"] == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"expires_on": date(2025, 3, 1)}, "expires_on"),
        ({"manufacturer": "  "}, "manufacturer"),
        ({"tacs": ("1234",)}, "tacs"),
        ({"licence_number": "B182-228209"}, "licence_number"),
        ({"name": "TQ\x00M100"}, "name"),
        ({"applicant": "Maker \x1b[31mred"}, "applicant"),
        ({"equipment_name": "module\nsecond line"}, "equipment_name"),
        ({"manufacturer": "Ma\x85ker"}, "manufacturer"),
        ({"tacs": tuple(f"{n:08d}" for n in range(terminals.MAX_TACS + 1))}, "tacs"),
        ({"issued_on": date(2026, 11, 26)}, "issued_on"),  # the clock says 2026-11-25
    ],
)
def test_invalid_specs_store_nothing(db, world, clock, kw, field):
    with pytest.raises(InvalidInput) as info, db.write() as s:
        create_model(s, world.system, model_spec(**kw), at=clock.now())
    assert info.value.extensions["field"] == field
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(TerminalModel)) == 0


def test_as_many_tacs_as_the_api_takes_are_recorded(db, world, clock):
    from satiot.api.terminal_models import TerminalModelIn, TerminalModelPatch

    for body in (TerminalModelIn, TerminalModelPatch):
        assert [m.max_length for m in body.model_fields["tacs"].metadata] == [terminals.MAX_TACS]
    tacs = tuple(f"{n:08d}" for n in range(terminals.MAX_TACS))
    with db.write() as s:
        assert len(create_model(s, world.system, model_spec(tacs=tacs), at=clock.now()).tacs) == 100


def test_a_licence_issued_today_in_beijing_is_not_in_the_future(db, world, clock):
    """At 01:00 in Beijing on the 26th it is still the 25th in UTC."""
    clock.set(datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    with db.write() as s:
        m = create_model(s, world.system, model_spec(issued_on=date(2026, 11, 26)), at=clock.now())
    assert m.issued_on == date(2026, 11, 26)
    with pytest.raises(InvalidInput) as info, db.write() as s:
        create_model(
            s,
            world.system,
            model_spec("TQ-M200", "00-B182-228210", issued_on=date(2026, 11, 27)),
            at=clock.now(),
        )
    assert info.value.extensions["field"] == "issued_on"


def test_a_renewal_may_not_be_issued_in_the_future_but_history_stays(db, world, clock):
    with db.write() as s:
        m = create_model(s, world.system, model_spec(), at=clock.now())
    with pytest.raises(InvalidInput, match="after today") as info, db.write() as s:
        update_model(s, world.system, m.id, {"issued_on": date(2027, 1, 1)}, at=clock.now())
    assert info.value.extensions["field"] == "issued_on"
    # A stored issue date is not re-judged by a later change (here: a clock set back).
    clock_before_issue = datetime(2025, 1, 1, tzinfo=UTC)
    with db.write() as s:
        update_model(s, world.system, m.id, {"status": "withdrawn"}, at=clock_before_issue)
    with db.read() as s:
        row = s.get(TerminalModel, m.id)
        assert row is not None and row.status == "withdrawn"


def test_update_renews_a_licence_and_audits_before_and_after(db, world, clock):
    with db.write() as s:
        m = create_model(s, world.system, model_spec(), at=clock.now())
    with db.write() as s:
        update_model(
            s,
            world.system,
            m.id,
            {"licence_number": "00-B182-999999", "expires_on": date(2031, 1, 1)},
            at=clock.now(),
            reason="renewed",
        )
    with db.read() as s:
        row = s.get(TerminalModel, m.id)
        assert row is not None and row.licence_number == "00-B182-999999"
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "terminal-model.updated")
        ).one()
        assert (
            entry.before["expires_on"] == "2028-02-29" and entry.after["expires_on"] == "2031-01-01"
        )
        assert entry.reason == "renewed"


def test_noc_may_not_withdraw_a_model(db, world, clock):
    from satiot.core.auth.principal import Principal
    from satiot.core.auth.roles import ROLES, Role

    noc = Principal(world.operator.id, Role.NOC, ROLES[Role.NOC].scopes, None, "n", "system")
    with db.write() as s:
        m = create_model(s, world.system, model_spec(), at=clock.now())
    with pytest.raises(PermissionDenied), db.write() as s:
        update_model(s, noc, m.id, {"status": "withdrawn"}, at=clock.now())


# -- admissibility --------------------------------------------------------------------------------


@pytest.fixture
def listed(db, world, clock):
    with db.write() as s:
        return create_model(s, world.system, model_spec(tacs=("35417803",)), at=clock.now())


def test_a_listed_model_with_a_valid_licence_is_admissible(db, listed):
    with db.read() as s:
        for key in (listed.id, "TQ-M100"):
            assert check_model_admissible(s, key, on=date(2026, 6, 1)).id == listed.id
        # Both ends of the licence's validity count.
        check_model_admissible(s, "TQ-M100", on=date(2025, 3, 1))
        check_model_admissible(s, "TQ-M100", on=date(2028, 2, 29), imei=IMEI)


@pytest.mark.parametrize(
    ("key", "on", "imei", "words"),
    [
        ("TQ-NOPE", date(2026, 6, 1), None, "holds no network-access licence"),
        ("TQ-M100", date(2028, 3, 1), None, "expired on 2028-02-29"),
        ("TQ-M100", date(2025, 2, 28), None, "valid only from 2025-03-01"),
        ("TQ-M100", date(2026, 6, 1), "490154203237518", "is not a TQ-M100 terminal"),
    ],
)
def test_inadmissible_models_are_refused_clearly(db, listed, key, on, imei, words):
    with pytest.raises(ModelNotAdmissible, match=words) as info, db.read() as s:
        check_model_admissible(s, key, on=on, imei=imei)
    assert info.value.slug == "model-not-admissible"


def test_a_withdrawn_model_is_not_admissible(db, world, clock, listed):
    with db.write() as s:
        update_model(s, world.system, listed.id, {"status": "withdrawn"}, at=clock.now())
    with pytest.raises(ModelNotAdmissible, match="withdrawn"), db.read() as s:
        check_model_admissible(s, "TQ-M100", on=date(2026, 6, 1))


def test_a_bad_imei_is_refused_at_admission(db, listed):
    with pytest.raises(InvalidInput, match="IMEI"), db.read() as s:
        check_model_admissible(s, "TQ-M100", on=date(2026, 6, 1), imei=IMEI_BAD_CHECK)


def test_get_model_not_found(db):
    with pytest.raises(NotFound), db.read() as s:
        terminals.get_model(s, "nothing")


# -- daily re-check --------------------------------------------------------------------------------


def test_licence_watch_lists_expired_and_expiring_listed_models(db, world, clock):
    day = date(2026, 11, 25)
    with db.write() as s:
        for i, (expires, status) in enumerate(
            [
                (day - timedelta(days=1), "listed"),
                (day, "listed"),
                (day + timedelta(days=30), "listed"),
                (day + timedelta(days=31), "listed"),
                (day - timedelta(days=5), "withdrawn"),
            ]
        ):
            m = create_model(
                s,
                world.system,
                model_spec(
                    name=f"m{i}",
                    licence=f"00-AAAA-00000{i}",
                    issued_on=date(2024, 1, 1),
                    expires_on=expires,
                ),
                at=clock.now(),
            )
            if status == "withdrawn":
                update_model(s, world.system, m.id, {"status": "withdrawn"}, at=clock.now())
    with db.read() as s:
        watch = licence_watch(s, on=day, within_days=30)
    assert [m.name for m in watch.expired] == ["m0"]
    assert [m.name for m in watch.expiring] == ["m1", "m2"]
    with pytest.raises(InvalidInput), db.read() as s:
        licence_watch(s, on=day, within_days=-1)


# -- the API agrees --------------------------------------------------------------------------------


def test_the_api_refuses_a_licence_issued_in_the_future(client, ctx, world):
    from tests.api.conftest import assert_problem, unchanged
    from tests.api.test_terminal_models import MODEL

    admin = world.admin_headers()
    with unchanged(ctx):
        r = client.post(
            "/api/v1/terminal-models", json=MODEL | {"issued_on": "2026-11-26"}, headers=admin
        )
    assert assert_problem(r, 422, "invalid-input")["field"] == "issued_on"
    created = client.post("/api/v1/terminal-models", json=MODEL, headers=admin)
    assert created.status_code == 201, created.text
    r = client.patch(
        f"/api/v1/terminal-models/{created.json()['id']}",
        json={"issued_on": "2999-01-01", "expires_on": "2999-12-31"},
        headers=admin,
    )
    assert assert_problem(r, 422, "invalid-input")["field"] == "issued_on"


def test_the_api_refuses_control_characters_past_nul(client, ctx, world):
    from tests.api.conftest import assert_problem, unchanged
    from tests.api.test_terminal_models import MODEL

    admin = world.admin_headers()
    with unchanged(ctx):
        r = client.post(
            "/api/v1/terminal-models", json=MODEL | {"manufacturer": "Maker\x1b[31m"}, headers=admin
        )
    problem = assert_problem(r, 422, "invalid-input")
    assert problem["field"] == "manufacturer" and "U+001B" in problem["detail"]
