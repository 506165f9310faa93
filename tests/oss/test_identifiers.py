"""Device handles: the validator, the device template, binding, updates, deletion, resolving."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from satiot.core.errors import Conflict, IllegalTransition, InvalidInput
from satiot.core.models import AuditEntry
from satiot.oss import identifiers
from satiot.oss.identifiers import (
    HANDLE_RE,
    HandleExists,
    HandleNotFound,
    InvalidHandle,
    create_handle,
    delete_handle,
    resolve,
    update_handle,
    validate_handle,
)
from tests.oss.helpers import IMEI, PREFIX, record

NUMBER = "1410123400000"


@pytest.mark.parametrize(
    "handle", ["88.608.8899/META_zj02", "88.1021.150/002", "86.100.1/x", "88.1/" + "a" * 250]
)
def test_published_and_valid_handles(handle):
    assert validate_handle(handle) == handle


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "89.1/x",
        "88/x",
        "88./x",
        "88.608.8899/",
        "88.608.8899/a b",
        "88.608-1/x",
        "88.608.8899",
        "x88.1/a",
        "88.1/" + "a" * 251,
    ],
)
def test_invalid_handles(handle):
    with pytest.raises(InvalidHandle):
        validate_handle(handle)


@given(st.from_regex(HANDLE_RE, fullmatch=True))
def test_every_handle_of_the_shape_up_to_255_is_accepted(text):
    if len(text) <= 255:
        assert validate_handle(text) == text
    else:
        with pytest.raises(InvalidHandle):
            validate_handle(text)


@given(st.text(alphabet="868.1aZ/ _\t", max_size=20))
def test_the_validator_accepts_exactly_the_shape(text):
    expected = len(text) <= 255 and re.fullmatch(r"(?:86|88)(?:\.[0-9A-Za-z]+)+/\S{1,255}", text)
    if expected:
        assert validate_handle(text) == text
    else:
        with pytest.raises(InvalidHandle):
            validate_handle(text)


def _create(db, world, clock, number=NUMBER, tenant=None, **kw):
    with db.write() as s:
        return create_handle(
            s,
            world.system,
            prefix=PREFIX,
            record=record(number, **kw),
            tenant_id=tenant,
            at=clock.now(),
        )


def test_a_handle_carries_the_device_template(db, world, clock):
    t = world.tenant()
    h = _create(db, world, clock, tenant=t.id, iccid="8986001234567890120", imsi="460001234567890")
    assert h.handle.startswith(PREFIX + "/") and h.terminal_id == IMEI and h.iot_number == NUMBER
    with db.read() as s:
        values = {v.idx: v for v in identifiers.values_of(s, h.id)}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "handle.created")).one()
    assert {i: (v.type, v.value, v.public) for i, v in values.items()} == {
        1: ("TERMINAL_ID", IMEI, False),
        2: ("MODEL", "TQ-M100", True),
        3: ("LICENCE_NO", "00-B182-228209", True),
        4: ("IOT_NUMBER", NUMBER, False),
        5: ("ICCID", "8986001234567890120", False),
        6: ("IMSI", "460001234567890", False),
        7: ("CREDIT_CODE", "91110000600037341L", False),
        8: ("STATUS", "active", True),
    }
    assert (
        entry.tenant_id == t.id
        and entry.target_id == h.handle
        and entry.after["terminal_id"] == IMEI
    )
    assert identifiers.value_json(values[2]) == {
        "index": 2,
        "type": "MODEL",
        "data": {"format": "string", "value": "TQ-M100"},
        "ttl": 86400,
        "timestamp": "2026-11-25T08:00:00Z",
    }


def test_a_dev_eui_terminal_and_an_explicit_suffix(db, world, clock):
    h = _create(db, world, clock, terminal_id="70-b3-d5-7e-d0-00-00-01")
    assert h.terminal_id == "70B3D57ED0000001"
    with db.write() as s:
        named = create_handle(
            s,
            world.system,
            prefix=PREFIX,
            record=record("1410123400001", terminal_id="490154203237518"),
            tenant_id=None,
            at=clock.now(),
            suffix="META_zj02",
        )
    assert named.handle == "88.608.8899/META_zj02"
    with pytest.raises(HandleExists), db.write() as s:
        create_handle(
            s,
            world.system,
            prefix=PREFIX,
            record=record("1410123400002", terminal_id="356938035643809"),
            tenant_id=None,
            at=clock.now(),
            suffix="META_zj02",
        )


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"terminal_id": "354178036859788"}, "imei"),
        ({"terminal_id": "ABC"}, "terminal_id"),
        ({"licence_number": "B182"}, "licence_number"),
        ({"credit_code": "9111000060003IOZSV"}, "credit_code"),
        ({"iccid": "8986001234567890123"}, "iccid"),
        ({"iccid": "89" + "\u0663" * 18}, "iccid"),  # Arabic-Indic digits passed isdigit()
        ({"imsi": "12345"}, "imsi"),
    ],
)
def test_bad_records_are_refused(db, world, clock, kw, field):
    with pytest.raises(InvalidInput) as info:
        _create(db, world, clock, **kw)
    assert info.value.extensions["field"] == field


def test_a_failed_credit_code_check_is_accepted_for_manual_review(db, world, clock):
    _create(db, world, clock, credit_code="91350100M0001TGQXM")


def test_terminal_and_number_are_bound_one_to_one(db, world, clock):
    first = _create(db, world, clock)
    with pytest.raises(Conflict, match="terminal 354178036859789 is already bound"):
        _create(db, world, clock, number="1410123400001")
    with pytest.raises(Conflict, match="IoT number 1410123400000 is already bound"):
        _create(db, world, clock, terminal_id="490154203237518")
    # Retiring the handle releases both bindings.
    with db.write() as s:
        update_handle(
            s, world.system, first.handle, at=clock.now(), status="retired", reason="scrapped"
        )
    second = _create(db, world, clock)
    assert second.handle != first.handle


def test_status_changes_update_the_status_value(db, world, clock):
    h = _create(db, world, clock)
    later = clock.advance(60)
    with db.write() as s:
        update_handle(
            s, world.system, h.handle, at=later, status="suspended", reason="fraud case 7"
        )
    with db.read() as s:
        status = next(v for v in identifiers.values_of(s, h.id) if v.type == "STATUS")
        model = next(v for v in identifiers.values_of(s, h.id) if v.type == "MODEL")
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "handle.status-changed")
        ).one()
    assert (status.value, status.timestamp) == ("suspended", later)
    assert model.timestamp != later, "unchanged values keep their timestamp"
    assert entry.reason == "fraud case 7" and entry.before["status"] == "active"
    for target in ("migrated", "retired"):
        with db.write() as s:
            update_handle(s, world.system, h.handle, at=clock.now(), status=target)
    with pytest.raises(Conflict, match="retired"), db.write() as s:
        update_handle(s, world.system, h.handle, at=clock.now(), status="active")


def test_illegal_handle_transition(db, world, clock):
    h = _create(db, world, clock)
    with db.write() as s:
        update_handle(s, world.system, h.handle, at=clock.now(), status="migrated")
    with pytest.raises(IllegalTransition), db.write() as s:
        update_handle(s, world.system, h.handle, at=clock.now(), status="active")


def test_record_changes_move_the_number_binding(db, world, clock):
    h = _create(db, world, clock)
    with db.write() as s:
        update_handle(s, world.system, h.handle, at=clock.now(), iot_number="1410123400009")
        assert identifiers.handle_for_terminal(s, IMEI).iot_number == "1410123400009"
    with pytest.raises(InvalidInput, match="unknown"), db.write() as s:
        update_handle(s, world.system, h.handle, at=clock.now(), colour="red")
    with db.write() as s:  # no change, no audit entry
        update_handle(s, world.system, h.handle, at=clock.now(), iot_number="1410123400009")
    with db.read() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.target_type == "handle")
        ).all()
    assert actions == ["handle.created", "handle.updated"]


def test_delete_removes_the_handle_and_audits(db, world, clock):
    h = _create(db, world, clock)
    with db.write() as s:
        delete_handle(s, world.system, h.handle, at=clock.now(), reason="registered by mistake")
    with pytest.raises(HandleNotFound), db.read() as s:
        identifiers.find_handle(s, h.handle)
    with db.read() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "handle.deleted")).one()
    assert entry.before["terminal_id"] == IMEI and entry.reason == "registered by mistake"


def test_resolve_filters_like_the_handle_proxy(db, world, clock):
    h = _create(db, world, clock)
    with db.read() as s:

        def idx(**kw):
            return [v.idx for v in resolve(s, h.handle, **kw).values]

        assert idx() == [2, 3, 8]
        assert idx(public_only=False) == [1, 2, 3, 4, 7, 8]
        assert idx(types=["model"]) == [2]
        assert idx(types=["STATUS."]) == [8]
        assert idx(types=["MODEL"], indexes=[8]) == [2, 8]
        assert idx(indexes=[1]) == []
        assert idx(indexes=[1], public_only=False) == [1]
        assert idx(types=["NOPE"]) == []
        with pytest.raises(HandleNotFound):
            resolve(s, PREFIX + "/none")
        with pytest.raises(InvalidHandle):
            resolve(s, "nonsense")
