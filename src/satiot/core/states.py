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
