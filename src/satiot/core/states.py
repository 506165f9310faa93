"""Lifecycles of the shared kernel's own stateful things."""

from __future__ import annotations

from satiot.core.lifecycle import Lifecycle, transitions

_ADMINS = ("operator-admin", "business")

TENANT = Lifecycle(
    name="tenant",
    states=("active", "suspended", "closed"),
    initial="active",
    transitions=transitions(
        [
            ("active", "suspended"),
            ("suspended", "active"),
            ("active", "closed"),
            ("suspended", "closed"),
        ],
        _ADMINS,
    ),
)

USER = Lifecycle(
    name="user",
    states=("active", "disabled"),
    initial="active",
    transitions=transitions(
        [("active", "disabled"), ("disabled", "active")], (*_ADMINS, "customer-admin")
    ),
)

#: A background job (:mod:`satiot.core.jobs`). Only the runner moves it: a job left
#: ``running`` by a runner that died is taken again (``running`` to ``running``).
JOB = Lifecycle(
    name="job",
    states=("queued", "running", "succeeded", "failed"),
    initial="queued",
    transitions=transitions(
        [
            ("queued", "running"),
            ("running", "running"),
            ("running", "succeeded"),
            ("running", "failed"),
        ],
        (),
    ),
)
