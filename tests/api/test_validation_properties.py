"""Property: whatever JSON arrives, the API answers 201 or a problem, never a 500, and a
rejected request creates nothing."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, ValidationError

from satiot.api.common import Input
from tests.api.conftest import row_counts

FIELDS = ["username", "password", "role", "tenant_id", "display_name", "email", "slug", "name"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "customer-user",
            "noc",
            "operator-admin",
            "acme",
            "a@b",
            "correct-horse-battery",
            "00000000-0000-0000-0000-000000000000",
            "nul\x00char",
        ]
    )
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=12,
)
#: Bodies that look like the real thing far more often than chance would make them.
NEAR_VALID = st.fixed_dictionaries(
    {
        "username": st.from_regex(r"[a-z0-9][a-z0-9._-]{1,12}", fullmatch=True) | SCALARS,
        "password": st.text(min_size=10, max_size=20) | SCALARS,
        "role": st.sampled_from(["noc", "business", "customer-user"]) | SCALARS,
        "slug": st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True) | SCALARS,
        "name": st.text(min_size=1, max_size=20) | SCALARS,
    },
    optional={
        "tenant_id": SCALARS,
        "email": SCALARS | st.emails(),
        "display_name": st.text(max_size=30) | SCALARS,
        "unknown": SCALARS,
    },
)
BODIES = st.one_of(JSON_VALUES, NEAR_VALID, NEAR_VALID)

GROWS = {"/api/v1/users": "users", "/api/v1/tenants": "tenants"}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(sorted(GROWS)), value=BODIES)
def test_random_json_never_breaks_the_api(client, ctx, world, path, value):
    headers = getattr(world, "_hypothesis_headers", None)
    if headers is None:
        headers = world._hypothesis_headers = world.admin_headers()
    if isinstance(value, dict) and "slug" in value and "username" in value:
        keep = ("slug", "name") if path.endswith("tenants") else ("username", "password", "role")
        value = {
            k: v
            for k, v in value.items()
            if k in keep or k not in ("slug", "name", "username", "password", "role")
        }
    raw = json.dumps(value)  # may contain NaN/Infinity, which is not JSON
    before = row_counts(ctx)
    r = client.post(path, content=raw, headers=headers | {"content-type": "application/json"})
    after = row_counts(ctx)
    event(f"{path} -> {r.status_code}")
    assert r.status_code < 500, r.text
    if r.status_code == 201:
        assert after[GROWS[path]] == before[GROWS[path]] + 1
        assert after["audit_log"] == before["audit_log"] + 1
    else:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        problem = r.json()
        assert {"type", "title", "status", "detail"} <= set(problem)
        assert problem["status"] == r.status_code
        assert after == before, (r.status_code, r.text)


class _Shapes(Input):
    ratio: float | None = None
    count: int = 0
    amount: Decimal | None = None
    on: date | None = None
    at: AwareDatetime | None = None
    flag: bool = False
    either: int | bool | None = None


@given(
    field=st.sampled_from(["ratio", "count", "amount"]),
    value=st.booleans(),
)
def test_true_or_false_is_not_a_number(field: str, value: bool):
    """Lax parsing would store 1 or 0: a client that sent a boolean meant something else."""
    with pytest.raises(ValidationError, match="must be a number, not true or false"):
        _Shapes.model_validate_json(json.dumps({field: value}))


@given(field=st.sampled_from(["on", "at"]), value=st.integers(-(10**12), 10**12) | st.floats())
def test_a_number_is_not_a_date_or_time(field: str, value: float):
    """Lax parsing would read it as seconds or days since 1970."""
    with pytest.raises(ValidationError, match="ISO-8601"):
        _Shapes.model_validate({field: value})


def test_what_each_field_takes_is_unchanged():
    body = {"ratio": 3, "count": 5, "amount": "1.50", "on": "2026-11-01"}
    body |= {"at": "2026-11-01T08:00:00+08:00", "flag": True, "either": True}
    got = _Shapes.model_validate_json(json.dumps(body))
    assert (got.ratio, got.count, got.amount) == (3.0, 5, Decimal("1.50"))
    assert got.on == date(2026, 11, 1)
    assert got.at is not None and got.at.utcoffset() is not None
    assert got.flag is True and got.either is True
