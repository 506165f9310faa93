"""Lifecycles of the OSS inventory, declared as data.

The number lifecycle is the one MIIT numbering rules imply: a cancelled number rests in
quarantine (at least 90 days) before it can be handed out again; only the system moves it into
and out of quarantine, so no person can shorten the rest.
"""

from __future__ import annotations

from satiot.core.lifecycle import Lifecycle

_ADMIN = frozenset({"operator-admin"})
_BUSINESS = frozenset({"operator-admin", "business"})
_SUSPENDERS = frozenset({"operator-admin", "business", "compliance", "noc"})

NUMBER = Lifecycle(
    name="number",
    states=("available", "reserved", "active", "suspended", "cancelled", "quarantine"),
    initial="available",
    transitions={
        ("available", "reserved"): _BUSINESS,  # allocation
        ("reserved", "available"): _BUSINESS,  # an unused reservation is released
        ("reserved", "active"): _BUSINESS,  # activation
        ("active", "suspended"): _SUSPENDERS,
        ("suspended", "active"): _BUSINESS,
        ("active", "cancelled"): _BUSINESS,
        ("suspended", "cancelled"): _BUSINESS,
        ("cancelled", "quarantine"): frozenset(),  # at once, on cancel
        ("quarantine", "available"): frozenset(),  # the recycling job, once the rest is over
    },
)

#: Numbers held by a customer (the report's "allocated").
NUMBER_ALLOCATED_STATES = frozenset({"reserved", "active", "suspended"})
#: Numbers resting before reuse (the report's "quarantined").
NUMBER_RESTING_STATES = frozenset({"cancelled", "quarantine"})

TERMINAL_MODEL = Lifecycle(
    name="terminal-model",
    states=("listed", "withdrawn"),
    initial="listed",
    transitions={
        ("listed", "withdrawn"): _BUSINESS,
        ("withdrawn", "listed"): _BUSINESS,
    },
)

HANDLE = Lifecycle(
    name="handle",
    states=("active", "suspended", "migrated", "retired"),
    initial="active",
    transitions={
        ("active", "suspended"): _SUSPENDERS,
        ("suspended", "active"): _BUSINESS,
        ("active", "migrated"): _BUSINESS,  # user migration when the trial ends
        ("suspended", "migrated"): _BUSINESS,
        ("active", "retired"): _BUSINESS,
        ("suspended", "retired"): _BUSINESS,
        ("migrated", "retired"): _BUSINESS | _ADMIN,
    },
)
