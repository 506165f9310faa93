"""Lifecycles as data: declared moves are allowed for their roles, everything else refused."""

from __future__ import annotations

import pytest

from satiot.core import states
from satiot.core.auth.roles import Role
from satiot.core.errors import IllegalTransition, PermissionDenied
from satiot.core.lifecycle import Lifecycle, transitions

LIFECYCLES = [states.TENANT, states.USER]
ALL_ROLES = [r.value for r in Role]


def _declared():
    for lc in LIFECYCLES:
        for (src, dst), roles in lc.transitions.items():
            yield pytest.param(lc, src, dst, roles, id=f"{lc.name}:{src}->{dst}")


def _undeclared():
    for lc in LIFECYCLES:
        for src in lc.states:
            for dst in lc.states:
                if (src, dst) not in lc.transitions:
                    yield pytest.param(lc, src, dst, id=f"{lc.name}:{src}->{dst}")


def test_kernel_lifecycles_are_what_the_console_offers():
    assert states.TENANT.initial == "active"
    assert set(states.TENANT.transitions) == {
        ("active", "suspended"),
        ("suspended", "active"),
        ("active", "closed"),
        ("suspended", "closed"),
    }
    assert states.TENANT.targets("closed") == []
    assert states.USER.initial == "active"
    assert set(states.USER.transitions) == {("active", "disabled"), ("disabled", "active")}
    # Customers manage their own users, not tenants.
    assert "customer-admin" in states.USER.transitions[("active", "disabled")]
    assert "customer-admin" not in states.TENANT.transitions[("active", "suspended")]


@pytest.mark.parametrize("lc,src,dst,roles", list(_declared()))
def test_declared_transition_allowed_for_its_roles_only(lc, src, dst, roles):
    assert roles, "every kernel transition names who may make it"
    for role in ALL_ROLES:
        if role in roles:
            lc.check(src, dst, role)
        else:
            with pytest.raises(PermissionDenied, match=role):
                lc.check(src, dst, role)
    lc.check(src, dst, None)  # the system itself


@pytest.mark.parametrize("lc,src,dst", list(_undeclared()))
def test_undeclared_transition_is_illegal_and_names_allowed_targets(lc, src, dst):
    for role in [None, *ALL_ROLES]:
        with pytest.raises(IllegalTransition) as info:
            lc.check(src, dst, role)
    message = str(info.value)
    allowed = lc.targets(src)
    assert f"'{src}'" in message and f"'{dst}'" in message
    assert f"allowed: {', '.join(allowed) or 'none'}" in message
    assert info.value.extensions == {"current": src, "target": dst}
    assert info.value.status == 409 and info.value.slug == "illegal-transition"


def test_unknown_target_state_is_illegal():
    with pytest.raises(IllegalTransition, match="'deleted' is not a state"):
        states.USER.check("active", "deleted", "operator-admin")


def test_lifecycle_rejects_unknown_states():
    with pytest.raises(ValueError, match="initial state 'new'"):
        Lifecycle("thing", ("a", "b"), "new")
    with pytest.raises(ValueError, match="c names an unknown state"):
        Lifecycle("thing", ("a", "b"), "a", transitions([("a", "c")], ["noc"]))
    with pytest.raises(ValueError, match="unknown state"):
        Lifecycle("thing", ("a", "b"), "a", transitions([("x", "b")], ["noc"]))


def test_transitions_helper_gives_each_pair_the_same_roles():
    table = transitions([("a", "b"), ("b", "a")], ["noc", "noc", "billing"])
    assert table == {
        ("a", "b"): frozenset({"noc", "billing"}),
        ("b", "a"): frozenset({"noc", "billing"}),
    }
    lc = Lifecycle("thing", ("a", "b", "c"), "a", table)
    assert lc.targets("a") == ["b"]
    assert lc.targets("c") == []
    system_only = Lifecycle("sys", ("a", "b"), "a", transitions([("a", "b")], []))
    system_only.check("a", "b")
    with pytest.raises(PermissionDenied):
        system_only.check("a", "b", "operator-admin")


def test_only_the_job_runner_moves_a_job():
    """A job's state is the runner's record of its work: no role moves it, and a finished job
    stays finished (a job left running by a runner that died is taken again)."""
    job = states.JOB
    for (src, dst), roles in job.transitions.items():
        assert roles == frozenset()
        job.check(src, dst, None)
        for role in ALL_ROLES:
            with pytest.raises(PermissionDenied):
                job.check(src, dst, role)
    assert job.targets("succeeded") == job.targets("failed") == []
    assert job.targets("running") == ["running", "succeeded", "failed"]
    with pytest.raises(IllegalTransition, match="allowed: running"):
        job.check("queued", "succeeded", None)
