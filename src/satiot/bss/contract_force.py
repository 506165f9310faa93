"""Which version of a contract is in force, and what it allows a device to do.

A contract is a series of versions under one number. A signed version stays ``signed`` when a
newer one is signed (the record of what applied until then) but is then *superseded*; the
version in force is the newest signed one of its number that is neither superseded nor
terminated. Activation asks :func:`check_activation_allowed`; orders and the console ask
:func:`contract_in_force`. Both are re-exported by :mod:`satiot.bss.contracts`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.bss.customers import get_customer
from satiot.bss.models import Contract, Subscription
from satiot.core.errors import Conflict, NotFound
from satiot.network import destinations

#: Subscription states in service: they count against a contract's device limit.
IN_SERVICE_STATES = ("active", "suspended", "pendingTerminate")


class ContractNotFound(NotFound):
    slug = "contract-not-found"
    title = "Contract not found"


class ActivationNotAllowed(Conflict):
    """Activation asked for a device the customer's contract in force does not cover."""

    slug = "activation-not-allowed"
    title = "No contract in force covers this activation"


def get_contract(session: Session, contract_id: uuid.UUID) -> Contract:
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise ContractNotFound(f"contract {contract_id} not found")
    return contract


def versions_of(session: Session, contract: Contract) -> list[Contract]:
    """Every version under the contract's number, oldest first."""
    stmt = select(Contract).where(
        Contract.number == contract.number, Contract.customer_id == contract.customer_id
    )
    return list(session.scalars(stmt.order_by(Contract.version)))


def superseded_by(session: Session, contract: Contract) -> Contract | None:
    """The signed version that replaced this one, if any (it stays so even if terminated)."""
    return session.scalar(
        select(Contract).where(
            Contract.supersedes_id == contract.id, Contract.signed_at.is_not(None)
        )
    )


def is_in_force(session: Session, contract: Contract) -> bool:
    return contract.status == "signed" and superseded_by(session, contract) is None


def contracts_in_force(session: Session, customer_id: uuid.UUID) -> list[Contract]:
    """The customer's contracts in force (one per number), most recently signed first."""
    signed = list(
        session.scalars(
            select(Contract)
            .where(Contract.customer_id == customer_id, Contract.signed_at.is_not(None))
            .order_by(Contract.signed_at.desc(), Contract.version.desc())
        )
    )
    replaced = {c.supersedes_id for c in signed if c.supersedes_id is not None}
    return [c for c in signed if c.status == "signed" and c.id not in replaced]


def contract_in_force(
    session: Session, customer_id: uuid.UUID, number: str | None = None
) -> Contract | None:
    """The customer's contract in force (under ``number`` if given; else the one signed most
    recently), or None: no service may be activated without one."""
    for contract in contracts_in_force(session, customer_id):
        if number is None or contract.number == number:
            return contract
    return None


def _in_service(session: Session, version_ids: list[uuid.UUID]) -> int:
    count = session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.contract_id.in_(version_ids),
            Subscription.status.in_(IN_SERVICE_STATES),
        )
    )
    return int(count or 0)


def check_activation_allowed(
    session: Session, contract: Contract, terminal_model: str, scenario: str
) -> Contract:
    """The version in force of ``contract``'s number, if it covers a device of
    ``terminal_model`` used for ``scenario`` and has room for one more device in service.

    Raises :class:`ActivationNotAllowed`. Call it before the subscription goes into service
    (the device limit counts subscriptions already active, suspended or terminating).
    """
    prefix = "no activation without a signed contract that covers the device's model and scenario"
    current = contract_in_force(session, contract.customer_id, contract.number)
    if current is None:
        raise ActivationNotAllowed(
            f"{prefix}: {contract.number} has no version in force ({contract.status})"
        )
    customer = get_customer(session, current.customer_id)
    if customer.status != "validated":
        raise ActivationNotAllowed(f"{prefix}: customer {customer.name} is {customer.status}")
    if terminal_model not in current.allowed_models:
        raise ActivationNotAllowed(
            f"{prefix}: model {terminal_model!r} is not among {current.number}'s models "
            f"({', '.join(current.allowed_models)})",
            field="terminal_model",
        )
    if scenario != current.scenario:
        raise ActivationNotAllowed(
            f"{prefix}: {current.number} covers scenario {current.scenario}, not {scenario}",
            field="scenario",
        )
    versions = [v.id for v in versions_of(session, current)]
    if _in_service(session, versions) >= current.max_devices:
        raise ActivationNotAllowed(
            f"{current.number} allows at most {current.max_devices} devices in service",
            field="max_devices",
        )
    return current


def sync_destinations(session: Session, customer_id: uuid.UUID, *, at: datetime) -> None:
    """Give the network the union of the allow-lists of the customer's contracts in force
    (directional access): called whenever a version is signed or a contract ends, so delivery
    follows the contract without the network reading the business layer."""
    session.flush()
    customer = get_customer(session, customer_id)
    in_force = contracts_in_force(session, customer_id)
    entries = {entry for contract in in_force for entry in contract.destination_allow_list}
    source = ", ".join(sorted(f"{c.number} v{c.version}" for c in in_force))
    destinations.set_policy(session, customer.tenant_id, entries, source=source[:500], at=at)
