"""Property: whatever JSON arrives, the API answers 201 or a problem, never a 500, and a
rejected request creates nothing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

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
