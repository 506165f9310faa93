"""Lifecycles of business things, declared as data (TM Forum state names where one exists)."""

from __future__ import annotations

from satiot.core.lifecycle import Lifecycle

_SALES = frozenset({"operator-admin", "business"})
_COMPLIANCE = frozenset({"operator-admin", "compliance"})
_BILLING = frozenset({"operator-admin", "billing"})
_SYSTEM: frozenset[str] = frozenset()

#: TMF632 organisation states, plus manual review for a failed credit-code check character.
CUSTOMER = Lifecycle(
    name="customer",
    states=("initialized", "manual-review", "validated", "closed"),
    initial="initialized",
    transitions={
        ("initialized", "validated"): _SALES | _COMPLIANCE,
        ("initialized", "manual-review"): _SALES | _COMPLIANCE,
        ("manual-review", "validated"): _COMPLIANCE,
        ("manual-review", "closed"): _SALES | _COMPLIANCE,
        ("initialized", "closed"): _SALES | _COMPLIANCE,
        ("validated", "closed"): _SALES | _COMPLIANCE,
    },
)

CONTRACT = Lifecycle(
    name="contract",
    states=("draft", "signed", "terminated"),
    initial="draft",
    transitions={
        ("draft", "signed"): _SALES,
        ("signed", "terminated"): _SALES | _COMPLIANCE,
        ("draft", "terminated"): _SALES,
    },
)

#: TMF620 lifecycleStatus.
OFFERING = Lifecycle(
    name="product-offering",
    states=("In design", "Active", "Retired"),
    initial="In design",
    transitions={
        ("In design", "Active"): _SALES,
        ("Active", "Retired"): _SALES,
    },
)

#: TMF622 productOrder states.
ORDER = Lifecycle(
    name="product-order",
    states=(
        "acknowledged",
        "rejected",
        "pending",
        "held",
        "inProgress",
        "cancelled",
        "completed",
        "failed",
        "partial",
    ),
    initial="acknowledged",
    transitions={
        ("acknowledged", "rejected"): _SYSTEM,
        ("acknowledged", "inProgress"): _SYSTEM,
        ("acknowledged", "pending"): _SYSTEM,
        ("acknowledged", "cancelled"): _SALES | {"customer-admin"},
        ("pending", "inProgress"): _SYSTEM,
        ("pending", "held"): _SALES,
        ("held", "pending"): _SALES,
        ("pending", "cancelled"): _SALES | {"customer-admin"},
        ("held", "cancelled"): _SALES | {"customer-admin"},
        ("inProgress", "completed"): _SYSTEM,
        ("inProgress", "failed"): _SYSTEM,
        ("inProgress", "partial"): _SYSTEM,
    },
)

#: States of one order item (TMF622 productOrderItem states, the ones an item here takes):
#: each item is fulfilled in a savepoint of its own, so it is either done or failed, never half.
ORDER_ITEM = Lifecycle(
    name="product-order-item",
    states=("acknowledged", "completed", "failed", "cancelled"),
    initial="acknowledged",
    transitions={
        ("acknowledged", "completed"): _SYSTEM,
        ("acknowledged", "failed"): _SYSTEM,
        ("acknowledged", "cancelled"): _SYSTEM,
    },
)

#: Orders whose items may still be fulfilled, and those no longer open to change.
ORDER_OPEN_STATES = frozenset({"acknowledged", "pending", "held", "inProgress"})
ORDER_FINAL_STATES = frozenset({"rejected", "cancelled", "completed", "failed", "partial"})

#: TMF637 product (subscription) states.
SUBSCRIPTION = Lifecycle(
    name="subscription",
    states=(
        "created",
        "pendingActive",
        "active",
        "suspended",
        "pendingTerminate",
        "terminated",
        "cancelled",
        "aborted",
    ),
    initial="created",
    transitions={
        ("created", "pendingActive"): _SYSTEM,
        ("created", "cancelled"): _SALES | {"customer-admin"},
        ("pendingActive", "active"): _SALES | {"customer-admin"},
        ("pendingActive", "aborted"): _SYSTEM,
        ("active", "suspended"): _SALES | _COMPLIANCE | _BILLING | {"noc", "customer-admin"},
        ("suspended", "active"): _SALES | _COMPLIANCE | {"customer-admin"},
        ("active", "pendingTerminate"): _SALES | {"customer-admin"},
        ("suspended", "pendingTerminate"): _SALES | _COMPLIANCE | {"customer-admin"},
        ("pendingTerminate", "terminated"): _SYSTEM,
    },
)

#: Subscriptions that hold their identities (IMEI, DevEUI, number, handle) and count against
#: the contract's device limit (see ``models.LIVE_SUBSCRIPTION_SQL``).
SUBSCRIPTION_LIVE_STATES = frozenset(
    {"created", "pendingActive", "active", "suspended", "pendingTerminate"}
)

#: TMF678 customerBill states.
BILL = Lifecycle(
    name="customer-bill",
    states=("new", "onHold", "validated", "sent", "partiallyPaid", "settled"),
    initial="new",
    transitions={
        ("new", "onHold"): _BILLING,
        ("onHold", "new"): _BILLING,
        ("new", "validated"): _BILLING,
        # Taken back before it is sent (a doubt found while releasing a run): held, it can be
        # adjusted and validated again; once sent, only a credit note corrects it.
        ("validated", "onHold"): _BILLING,
        ("validated", "sent"): _BILLING,
        ("sent", "partiallyPaid"): _SYSTEM,
        ("sent", "settled"): _SYSTEM,
        ("partiallyPaid", "settled"): _SYSTEM,
    },
)
