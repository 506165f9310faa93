"""Roles and scopes, declared as data.

A scope names one permission on one area (``users:write``). A role is a set of scopes plus
whether it sees every tenant (the operator's staff and the regulator) or only its own (the
customers). An API key carries a subset of its owner's scopes, never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from satiot.core.errors import InvalidInput, PermissionDenied


class Role(StrEnum):
    OPERATOR_ADMIN = "operator-admin"
    NOC = "noc"
    BUSINESS = "business"
    BILLING = "billing"
    COMPLIANCE = "compliance"
    CUSTOMER_ADMIN = "customer-admin"
    CUSTOMER_USER = "customer-user"
    REGULATOR = "regulator"
    GROUND_STATION = "ground-station"


SCOPES: dict[str, str] = {
    "tenants:read": "See tenants",
    "tenants:write": "Create and change tenants",
    "users:read": "See users",
    "users:write": "Create, change and disable users",
    "api-keys:read": "See API keys",
    "api-keys:write": "Create and revoke API keys",
    "audit:read": "Read the audit log",
    "events:read": "Read the event log and consumer positions",
    "devices:read": "See devices and their sessions (never their keys)",
    "devices:write": "Create devices and change their state",
    "uplinks:read": "Read devices' messages",
    "downlinks:read": "See downlink queues",
    "downlinks:write": "Queue, cancel and flush downlinks",
    "integrations:read": "See integrations and their delivery logs",
    "integrations:write": "Create and change integrations; replay dead letters",
    "ground-stations:read": "See ground stations",
    "ground-stations:write": "Register ground stations and issue their keys",
    "receptions:write": "Post receptions and downlink receipts as a ground station",
    "terminal-models:read": "See licensed terminal models",
    "terminal-models:write": "Record, renew and withdraw terminal models and their licences",
    "numbers:read": "See IoT number blocks, numbers and the numbering report",
    "numbers:write": "Configure number blocks; allocate numbers and move them along their life",
    "identifiers:read": "Resolve every value of a device handle, not only the public ones",
    "identifiers:write": "Create, change and retire device handles",
    "customers:read": "See customers' real-name records and documents",
    "customers:write": "Onboard customers, file documents, verify and assess risk",
    "contracts:read": "See contracts and what was signed",
    "contracts:write": "Draft, sign, amend and terminate contracts",
    "catalog:read": "See product offerings and prices",
    "catalog:write": "Design, launch and retire offerings",
    "orders:read": "See product orders",
    "orders:write": "Place and cancel orders, including CSV bulk orders",
    "subscriptions:read": "See subscribed devices and their bindings",
    "subscriptions:write": "Activate, suspend, resume and terminate subscriptions",
    "usage:read": "See rated usage and allowance counters",
    "bills:read": "See bills, invoices and payments",
    "bills:write": "Run bills, validate and send invoices, record payments",
    "notices:write": "Choose when an account is warned (a prepaid balance running low)",
}

_BSS_READ = {
    "customers:read",
    "contracts:read",
    "catalog:read",
    "orders:read",
    "subscriptions:read",
    "usage:read",
    "bills:read",
}
_SALES_WRITE = {
    "customers:write",
    "contracts:write",
    "catalog:write",
    "orders:write",
    "subscriptions:write",
}
#: What a customer sees of its own business records; an administrator may also order.
_CUSTOMER_BSS = {
    "customers:read",
    "contracts:read",
    "catalog:read",
    "orders:read",
    "subscriptions:read",
    "usage:read",
    "bills:read",
}

_OSS_READ = {"terminal-models:read", "numbers:read", "identifiers:read"}
_OSS_WRITE = {"terminal-models:write", "numbers:write", "identifiers:write"}

ALL_SCOPES = frozenset(SCOPES)

_NETWORK_READ = {
    "devices:read",
    "uplinks:read",
    "downlinks:read",
    "integrations:read",
    "ground-stations:read",
}
#: What every customer user may do with its own tenant's devices and messages.
_CUSTOMER_NETWORK = {
    "devices:read",
    "uplinks:read",
    "downlinks:read",
    "downlinks:write",
    "integrations:read",
}


@dataclass(frozen=True)
class RoleSpec:
    """What a role may do and how far it sees."""

    role: Role
    label: str
    scopes: frozenset[str]
    all_tenants: bool
    operator_staff: bool


def _spec(role: Role, label: str, scopes: set[str], *, all_tenants: bool) -> RoleSpec:
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise ValueError(f"role {role} names unknown scopes {sorted(unknown)}")
    staff = all_tenants and role is not Role.REGULATOR
    return RoleSpec(role, label, frozenset(scopes), all_tenants, staff)


ROLES: dict[Role, RoleSpec] = {
    spec.role: spec
    for spec in (
        _spec(Role.OPERATOR_ADMIN, "Operator administrator", set(ALL_SCOPES), all_tenants=True),
        _spec(
            Role.NOC,
            "Network operations",
            {
                "tenants:read",
                "events:read",
                *_NETWORK_READ,
                "ground-stations:write",
                *_OSS_READ,
                "subscriptions:read",
            },
            all_tenants=True,
        ),
        _spec(
            Role.BUSINESS,
            "Business operations",
            {
                "tenants:read",
                "tenants:write",
                "users:read",
                "users:write",
                *_OSS_READ,
                *_OSS_WRITE,
                *_BSS_READ,
                *_SALES_WRITE,
                "notices:write",
                "devices:read",
            },
            all_tenants=True,
        ),
        _spec(
            Role.BILLING,
            "Billing",
            {"tenants:read", *_BSS_READ, "bills:write", "notices:write"},
            all_tenants=True,
        ),
        _spec(
            Role.COMPLIANCE,
            "Compliance",
            {
                "tenants:read",
                "users:read",
                "audit:read",
                "events:read",
                "devices:read",
                *_OSS_READ,
                *_BSS_READ,
                "customers:write",
                "subscriptions:write",
            },
            all_tenants=True,
        ),
        _spec(
            Role.CUSTOMER_ADMIN,
            "Customer administrator",
            {
                "tenants:read",
                "users:read",
                "users:write",
                "api-keys:read",
                "api-keys:write",
                *_CUSTOMER_NETWORK,
                "devices:write",
                "integrations:write",
                *_CUSTOMER_BSS,
                "orders:write",
                "subscriptions:write",
                "notices:write",
            },
            all_tenants=False,
        ),
        _spec(
            Role.CUSTOMER_USER,
            "Customer user",
            {"tenants:read", *_CUSTOMER_NETWORK, *_CUSTOMER_BSS},
            all_tenants=False,
        ),
        _spec(
            Role.REGULATOR,
            "Regulator (read-only)",
            {
                "tenants:read",
                "audit:read",
                "devices:read",
                "ground-stations:read",
                *_OSS_READ,
                "customers:read",
                "contracts:read",
                "subscriptions:read",
            },
            all_tenants=True,
        ),
        _spec(Role.GROUND_STATION, "Ground station", {"receptions:write"}, all_tenants=False),
    )
}

#: Roles a user in the operator's own tenant may hold, and roles a customer's user may hold.
OPERATOR_ROLES = frozenset(
    r for r, s in ROLES.items() if s.all_tenants and r is not Role.GROUND_STATION
)
CUSTOMER_ROLES = frozenset({Role.CUSTOMER_ADMIN, Role.CUSTOMER_USER})

#: The operator's machines act as its staff or as a ground station; a customer's as its users.
MACHINE_ROLES = {"operator": OPERATOR_ROLES | {Role.GROUND_STATION}, "customer": CUSTOMER_ROLES}
PERSON_ROLES = {"operator": OPERATOR_ROLES, "customer": CUSTOMER_ROLES}


def check_grant(granted_by: Role, tenant_kind: str, role: Role, *, machine: bool = False) -> None:
    """Whether ``granted_by`` may give ``role`` to a person (or, with ``machine``, a key that
    belongs to no user) in a tenant of ``tenant_kind``: a customer's roles never reach past
    its tenant, and only an operator administrator grants an operator role."""
    allowed = (MACHINE_ROLES if machine else PERSON_ROLES).get(tenant_kind, frozenset())
    if role not in allowed:
        raise InvalidInput(
            f"role {role.value!r} cannot be held in a {tenant_kind} tenant"
            + (" by a machine key" if machine else "")
            + f" (allowed: {', '.join(sorted(r.value for r in allowed))})",
            field="role",
        )
    if role in OPERATOR_ROLES and granted_by is not Role.OPERATOR_ADMIN:
        raise PermissionDenied("only an operator administrator grants operator roles")
