"""The console's navigation, declared as data in one place.

Each page names the scopes that open it and the audiences it is meant for, so the menu for a
person is a filter over this list rather than a template full of role checks. Items may be
declared before their page exists: :func:`visible_items` drops any whose path no route serves,
so the menu never links to a 404.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role

Audience = Literal["operator", "customer", "regulator"]

#: The small label at the top of the menu that tells a person which view they are in.
SECTION_LABELS: dict[Audience, str] = {
    "operator": "Operator console",
    "customer": "Customer portal",
    "regulator": "Regulator view",
}


@dataclass(frozen=True)
class NavItem:
    """One menu entry. ``required_scopes`` is any-of; empty means every signed-in person."""

    label: str
    path: str
    required_scopes: frozenset[str]
    audiences: frozenset[Audience]

    def allows(self, principal: Principal, audience: Audience) -> bool:
        if audience not in self.audiences:
            return False
        return not self.required_scopes or bool(self.required_scopes & principal.scopes)


def _item(label: str, path: str, scopes: Iterable[str], audiences: Iterable[Audience]) -> NavItem:
    return NavItem(label, path, frozenset(scopes), frozenset(audiences))


EVERYONE: tuple[Audience, ...] = ("operator", "customer", "regulator")

NAVIGATION: tuple[NavItem, ...] = (
    _item("Dashboard", "/", (), EVERYONE),
    _item("Messages", "/messages", ("uplinks:read",), ("operator", "customer")),
    _item("Devices", "/devices", ("devices:read",), EVERYONE),
    _item(
        "Ground stations", "/ground-stations", ("ground-stations:read",), ("operator", "regulator")
    ),
    _item("Integrations", "/integrations", ("integrations:read",), ("operator", "customer")),
    _item("Customers", "/customers", ("customers:read",), ("operator", "regulator")),
    _item("Our company", "/customers", ("customers:read",), ("customer",)),
    _item("Contracts", "/contracts", ("contracts:read",), EVERYONE),
    _item("Catalog", "/catalog", ("catalog:read",), ("operator", "customer")),
    _item("Orders", "/orders", ("orders:read",), ("operator", "customer")),
    _item("Subscriptions", "/subscriptions", ("subscriptions:read",), EVERYONE),
    _item("Usage", "/usage", ("usage:read",), ("operator", "customer")),
    _item("Invoices", "/invoices", ("bills:read",), ("operator", "customer")),
    _item("Payments", "/payments", ("bills:read",), ("operator", "customer")),
    _item("Billing accounts", "/billing-accounts", ("bills:read",), ("operator", "customer")),
    _item("Bill runs", "/bill-runs", ("bills:read",), ("operator",)),
    _item(
        "Terminal models",
        "/terminal-models",
        ("terminal-models:read",),
        ("operator", "regulator"),
    ),
    _item("Number blocks", "/number-blocks", ("numbers:read",), ("operator", "regulator")),
    _item("Handles", "/handles", ("identifiers:read",), ("operator", "regulator")),
    _item("Users & API keys", "/access", ("users:read", "api-keys:read"), ("operator", "customer")),
    _item("Tenants", "/tenants", ("tenants:write",), ("operator",)),
    _item("Event log", "/events", ("events:read",), ("operator",)),
    _item("Audit log", "/audit", ("audit:read",), ("operator", "regulator")),
)


def audience_of(role: Role) -> Audience:
    """Which console a role sees: the operator's staff, a customer, or the regulator."""
    if role is Role.REGULATOR:
        return "regulator"
    if ROLES[role].operator_staff:
        return "operator"
    return "customer"


def visible_items(
    principal: Principal, existing_paths: Collection[str], items: Iterable[NavItem] = NAVIGATION
) -> list[NavItem]:
    """The menu for ``principal``: items its scopes open, for its audience, that exist."""
    audience = audience_of(principal.role)
    return [i for i in items if i.path in existing_paths and i.allows(principal, audience)]
