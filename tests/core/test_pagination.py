"""Cursor pagination walks every row exactly once, in order, over real rows."""

from __future__ import annotations

import base64
import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from satiot.core import audit
from satiot.core.errors import InvalidInput
from satiot.core.models import AuditEntry, Tenant, User
from satiot.core.pagination import decode_cursor, encode_cursor, paginate

_counter = itertools.count()

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _walk(db, stmt, key, limit, descending):
    seen, cursor, pages = [], None, 0
    while True:
        with db.read() as s:
            page = paginate(s, stmt, key, cursor=cursor, limit=limit, descending=descending)
        assert len(page.items) <= limit
        seen.extend(getattr(r, key.key) for r in page.items)
        pages += 1
        assert pages <= 200, "pagination does not terminate"
        if page.next_cursor is None:
            return seen, pages
        assert len(page.items) == limit
        cursor = page.next_cursor


@PROPERTY
@given(n=st.integers(0, 120), limit=st.integers(1, 25), descending=st.booleans())
def test_walking_audit_entries_by_seq(db, clock, n, limit, descending):
    tag = f"page-{next(_counter)}"
    with db.write() as s:
        for i in range(n):
            audit.record(
                s, at=clock.now(), actor="t", action="a", target_type=tag, target_id=str(i)
            )
    with db.read() as s:
        expected = list(s.scalars(select(AuditEntry.seq).where(AuditEntry.target_type == tag)))
    stmt = select(AuditEntry).where(AuditEntry.target_type == tag)
    seen, pages = _walk(db, stmt, AuditEntry.seq, limit, descending)
    assert seen == sorted(expected, reverse=descending)
    assert len(seen) == n
    assert pages == max(1, -(-n // limit))


@PROPERTY
@given(n=st.integers(0, 120), limit=st.integers(1, 25), descending=st.booleans())
def test_walking_users_by_uuid(db, clock, n, limit, descending):
    slug = f"page-{next(_counter)}"
    with db.write() as s:
        tenant = Tenant(
            slug=slug, name=slug, kind="customer", status="active", created_at=clock.now()
        )
        s.add(tenant)
        s.flush()
        s.add_all(
            User(
                tenant_id=tenant.id,
                username=f"{slug}-{i}",
                role="customer-user",
                password_hash="x",
                status="active",
                created_at=clock.now(),
            )
            for i in range(n)
        )
    with db.read() as s:
        expected = list(s.scalars(select(User.id).where(User.tenant_id == tenant.id)))
    stmt = select(User).where(User.tenant_id == tenant.id)
    seen, _ = _walk(db, stmt, User.id, limit, descending)
    assert seen == sorted(expected, reverse=descending)
    assert len(set(seen)) == n


def test_pages_are_stable_under_inserts(db, clock):
    def add(k):
        with db.write() as s:
            for i in range(k):
                audit.record(
                    s, at=clock.now(), actor="t", action="a", target_type="x", target_id=str(i)
                )

    add(5)
    stmt = select(AuditEntry)
    with db.read() as s:
        first = paginate(s, stmt, AuditEntry.seq, cursor=None, limit=3)
    add(2)  # arrives while the client is paging
    with db.read() as s:
        second = paginate(s, stmt, AuditEntry.seq, cursor=first.next_cursor, limit=10)
    assert [r.seq for r in first.items] == [1, 2, 3]
    assert [r.seq for r in second.items] == [4, 5, 6, 7]
    assert second.next_cursor is None


def test_cursor_round_trips():
    u = uuid.uuid4()
    assert decode_cursor(encode_cursor(u)) == str(u)
    assert decode_cursor(encode_cursor(42)) == 42
    assert "=" not in encode_cursor("x" * 7)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE = [
    "!!!not-base64!!!",
    "e30",  # {}
    _b64(b"not json"),
    _b64(b"[1, 2]"),
    _b64(b"\xff\xfe"),
    _b64(b'"k"'),
]


@pytest.mark.parametrize("cursor", GARBAGE)
def test_garbage_cursor_is_invalid_input(db, cursor):
    with db.read() as s, pytest.raises(InvalidInput) as info:
        paginate(s, select(AuditEntry), AuditEntry.seq, cursor=cursor, limit=5)
    assert info.value.extensions["field"] == "cursor"


@pytest.mark.parametrize(
    "key,value",
    [
        ("seq", "abc"),
        ("seq", None),
        ("seq", 1.5),
        ("seq", True),
        ("seq", [1]),
        ("id", "not-a-uuid"),
        ("id", 12),
    ],
)
def test_cursor_of_the_wrong_type_is_invalid_input(db, key, value):
    model_key = AuditEntry.seq if key == "seq" else User.id
    stmt = select(AuditEntry) if key == "seq" else select(User)
    with db.read() as s, pytest.raises(InvalidInput):
        paginate(s, stmt, model_key, cursor=encode_cursor(value), limit=5)


def test_limit_must_be_positive(db):
    with db.read() as s, pytest.raises(InvalidInput, match="limit"):
        paginate(s, select(AuditEntry), AuditEntry.seq, cursor=None, limit=0)
