"""Lifecycles of the network's stateful things, declared as data.

The device lifecycle is the one connectivity platforms share (test → inventory →
activation-ready → active → suspended → deactivated → retired); the network server only asks
whether a device is ``active`` before it accepts a frame. Business activation (BSS) and fraud
suspension (MSS) drive the other moves through the same table.
"""

from __future__ import annotations

from satiot.core.lifecycle import Lifecycle

_OPS = frozenset({"operator-admin", "business", "noc"})
_CUSTOMER = frozenset({"customer-admin"})
_SUSPENDERS = frozenset({"operator-admin", "business", "compliance", "noc"})

DEVICE = Lifecycle(
    name="device",
    states=(
        "test",
        "inventory",
        "activation-ready",
        "active",
        "suspended",
        "deactivated",
        "retired",
    ),
    initial="active",
    transitions={
        ("test", "inventory"): _OPS,
        ("inventory", "activation-ready"): _OPS | _CUSTOMER,
        ("activation-ready", "inventory"): _OPS,
        # Service starts only under a signed contract (activation, or the operator's staff),
        # and a suspension is lifted by the operator or through the subscription, which knows
        # who suspended it and why: a customer cannot switch its own traffic back on here.
        ("activation-ready", "active"): _OPS,
        ("active", "suspended"): _SUSPENDERS | _CUSTOMER,
        ("suspended", "active"): _OPS,
        ("active", "deactivated"): _OPS | _CUSTOMER,
        ("suspended", "deactivated"): _OPS | _CUSTOMER,
        ("deactivated", "active"): _OPS,
        ("deactivated", "retired"): _OPS,
    },
)

#: States a customer may give a device it registers itself: it carries traffic only once
#: activated under a contract.
DEVICE_CUSTOMER_INITIAL = frozenset({"test", "inventory"})

#: States in which the network server takes a device's frames.
DEVICE_TRAFFIC_STATES = frozenset({"active"})

DOWNLINK = Lifecycle(
    name="downlink",
    states=(
        "queued",
        "scheduled",
        "on-satellite",
        "sent",
        "acknowledged",
        "expired",
        "failed",
        "cancelled",
    ),
    initial="queued",
    transitions={
        ("queued", "scheduled"): frozenset(),
        ("scheduled", "queued"): frozenset(),  # its plan lapsed; plan again
        ("scheduled", "on-satellite"): frozenset(),
        ("on-satellite", "sent"): frozenset(),
        ("sent", "acknowledged"): frozenset(),
        ("queued", "expired"): frozenset(),
        ("scheduled", "expired"): frozenset(),
        ("on-satellite", "expired"): frozenset(),
        ("scheduled", "failed"): frozenset(),
        ("on-satellite", "failed"): frozenset(),
        ("sent", "failed"): frozenset(),  # confirmed, and never acknowledged
        ("queued", "cancelled"): frozenset({"operator-admin", "customer-admin", "customer-user"}),
        ("scheduled", "cancelled"): frozenset(
            {"operator-admin", "customer-admin", "customer-user"}
        ),
    },
)

#: Downlink states that still hold a place in the device's queue.
DOWNLINK_PENDING_STATES = frozenset({"queued", "scheduled", "on-satellite"})
#: Downlink states nothing moves out of ("sent" is final too for an unconfirmed downlink).
DOWNLINK_FINAL_STATES = frozenset({"acknowledged", "expired", "failed", "cancelled"})

DELIVERY = Lifecycle(
    name="delivery",
    states=("pending", "delivered", "dead"),
    initial="pending",
    transitions={
        ("pending", "delivered"): frozenset(),
        ("pending", "dead"): frozenset(),
        ("dead", "pending"): frozenset({"operator-admin", "noc", "customer-admin"}),  # replay
    },
)

INTEGRATION = Lifecycle(
    name="integration",
    states=("active", "disabled"),
    initial="active",
    transitions={
        ("active", "disabled"): frozenset({"operator-admin", "customer-admin"}),
        ("disabled", "active"): frozenset({"operator-admin", "customer-admin"}),
    },
)
