"""Text longer than its column is refused at flush, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from satiot.core import migrate
from satiot.core.db import Database
from satiot.core.errors import InvalidInput
from satiot.core.ids import new_id
from satiot.core.lengths import unsafe_character
from satiot.core.models import Tenant

AT = datetime(2026, 11, 27, tzinfo=UTC)


def _tenant(slug: str, name: str) -> Tenant:
    return Tenant(slug=slug, name=name, kind="customer", status="active", created_at=AT)


def _names(db: Database) -> dict[str, str]:
    with db.read() as s:
        return {t.slug: t.name for t in s.scalars(select(Tenant).where(Tenant.kind == "customer"))}


def test_a_new_row_with_text_too_long_is_refused_naming_the_field(db: Database):
    with pytest.raises(InvalidInput) as refused, db.write() as s:
        s.add(_tenant("wordy", "x" * 201))
    assert refused.value.detail == "name is 201 characters; at most 200"
    assert refused.value.extensions == {"field": "name", "entity": "Tenant"}
    assert "wordy" not in _names(db)


def test_a_change_that_makes_text_too_long_is_refused_and_the_row_keeps_its_value(db: Database):
    with db.write() as s:
        s.add(_tenant("acme", "Acme"))
    with pytest.raises(InvalidInput, match="name is 250 characters"), db.write() as s:
        tenant = s.scalars(select(Tenant).where(Tenant.slug == "acme")).one()
        tenant.status = "suspended"  # a change that fits, flushed with the one that does not
        tenant.name = "y" * 250
    assert _names(db) == {"acme": "Acme"}
    with db.read() as s:
        assert s.scalars(select(Tenant.status).where(Tenant.slug == "acme")).one() == "active"


def test_the_limit_counts_characters_not_bytes(db: Database):
    """Two hundred Chinese characters are 600 bytes of UTF-8 and fit a 200-character column,
    as PostgreSQL's ``varchar(200)`` counts them."""
    name = "卫星物联网" * 40
    with db.write() as s:
        s.add(_tenant("han", name))
        s.add(_tenant("edge", "z" * 200))
    assert _names(db) == {"han": name, "edge": "z" * 200}


def test_rows_stored_before_the_check_can_still_change_other_columns(tmp_path):
    """SQLite kept over-long text before this check: such a row is not refused for a value
    that the change does not touch."""
    db = Database.connect(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db.engine)
        with db.write() as s:
            s.connection().exec_driver_sql(
                "INSERT INTO tenants (id, slug, name, kind, status, created_at) VALUES "
                f"('{new_id().hex}', 'old', '{'o' * 300}', 'customer', 'active', '2026-01-01')"
            )
        with db.write() as s:
            s.scalars(select(Tenant).where(Tenant.slug == "old")).one().status = "suspended"
        with pytest.raises(InvalidInput, match="slug is 64 characters"), db.write() as s:
            s.scalars(select(Tenant).where(Tenant.slug == "old")).one().slug = "s" * 64
        with db.read() as s:
            old = s.scalars(select(Tenant).where(Tenant.slug == "old")).one()
            assert (old.status, len(old.name)) == ("suspended", 300)
    finally:
        db.dispose()


# -- what a name may hold ------------------------------------------------------------------

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@given(st.text())
def test_unsafe_character_names_exactly_controls_and_directional_overrides(text: str):
    bad = [c for c in text if unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS]
    found = unsafe_character(text)
    if not bad:
        assert found is None
    else:
        assert found is not None and f"U+{ord(bad[0]):04X}" in found


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u061c"])
def test_implicit_direction_marks_are_allowed(mark: str):
    assert unsafe_character(f"\u0634\u0631\u0643\u0629{mark} Acme") is None
