"""Service contracts: drafted, signed electronically, amended by new versions, terminated.

The notice (III.3) lets an operator activate service only after signing a contract with the
user, and the anti-fraud rules make the contract fix the scenario, the terminal models, the
quotas and the destinations (:mod:`satiot.bss.contract_terms`). A contract is a series of
versions under one number: version 1 is drafted for a validated customer; an amendment drafts
version n+1 from the version in force; signing n+1 supersedes n, which stays ``signed`` as the
record of what applied until then, while only the newest signed version is *in force*.

Numbers come from the gap-free series ``SC-<year>-<6 digits>`` (:mod:`.contract_numbers`).

Other modules call :func:`contract_in_force` and :func:`check_activation_allowed`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.bss import contract_render
from satiot.bss.contract_force import (
    ActivationNotAllowed,
    ContractNotFound,
    check_activation_allowed,
    contract_in_force,
    contracts_in_force,
    get_contract,
    is_in_force,
    superseded_by,
    sync_destinations,
    versions_of,
)
from satiot.bss.contract_numbers import take_number
from satiot.bss.contract_terms import ContractTerms, normalise
from satiot.bss.customers import get_customer
from satiot.bss.models import (
    Contract,
    Customer,
    ProductOffering,
    ProductOfferingPrice,
    Subscription,
)
from satiot.bss.realname import check_name
from satiot.bss.states import CONTRACT
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput
from satiot.core.models import Tenant
from satiot.oss.models import TerminalModel

__all__ = [
    "ActivationNotAllowed",
    "ContractNotFound",
    "amend",
    "check_activation_allowed",
    "contract_in_force",
    "contracts_in_force",
    "draft",
    "get_contract",
    "is_in_force",
    "render_contract",
    "sign",
    "superseded_by",
    "terminate",
    "versions_of",
]

#: Subscriptions in any of these states no longer hold anything of the contract.
ENDED_STATES = ("terminated", "cancelled", "aborted")

TERMS_FIELDS = tuple(f.name for f in dataclasses.fields(ContractTerms))


def contract_view(contract: Contract) -> dict[str, Any]:
    """The fields the audit log records."""
    return {
        "number": contract.number,
        "version": contract.version,
        "status": contract.status,
        "customer_id": str(contract.customer_id),
        "supersedes_id": str(contract.supersedes_id) if contract.supersedes_id else None,
        **{name: _jsonable(getattr(contract, name)) for name in TERMS_FIELDS},
        "rendered_sha256": contract.rendered_sha256,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return value


def terms_of(contract: Contract) -> ContractTerms:
    """A stored contract's terms (to amend them)."""
    values = {name: getattr(contract, name) for name in TERMS_FIELDS}
    values |= {
        "allowed_models": tuple(contract.allowed_models),
        "destination_allow_list": tuple(contract.destination_allow_list),
        "service_area": tuple(contract.service_area),
        "offering_ids": tuple(uuid.UUID(str(i)) for i in contract.offering_ids),
    }
    return ContractTerms(**values)


def _check_models(session: Session, names: tuple[str, ...]) -> None:
    found = {
        m.name: m.status
        for m in session.scalars(select(TerminalModel).where(TerminalModel.name.in_(names)))
    }
    for name in names:
        if name not in found:
            raise InvalidInput(
                f"allowed_models: terminal model {name!r} is not on the licence register",
                field="allowed_models",
            )
        if found[name] != "listed":
            raise InvalidInput(
                f"allowed_models: terminal model {name!r} is {found[name]}",
                field="allowed_models",
            )


def tariffs(
    session: Session, offering_ids: list[str] | tuple[uuid.UUID, ...], *, launched: bool
) -> list[contract_render.Tariff]:
    """The disclosed offerings with their prices, in the contract's order. With ``launched``,
    each must be ``Active`` (a tariff the customer can actually choose today)."""
    result = []
    for raw in offering_ids:
        offering_id = uuid.UUID(str(raw))
        offering = session.get(ProductOffering, offering_id)
        if offering is None:
            raise InvalidInput(
                f"offering_ids: offering {offering_id} is not in the catalog",
                field="offering_ids",
            )
        if launched and offering.lifecycle_status != "Active":
            raise InvalidInput(
                f"offering_ids: {offering.code} version {offering.version} is "
                f"{offering.lifecycle_status}; only Active offerings can be offered",
                field="offering_ids",
            )
        prices = session.scalars(
            select(ProductOfferingPrice)
            .where(ProductOfferingPrice.offering_id == offering.id)
            .order_by(ProductOfferingPrice.id)
        )
        result.append(contract_render.Tariff(offering, list(prices)))
    return result


def _checked_terms(session: Session, terms: ContractTerms) -> ContractTerms:
    terms = normalise(terms)
    _check_models(session, terms.allowed_models)
    tariffs(session, terms.offering_ids, launched=True)
    return terms


def _require_validated(customer: Customer, doing: str) -> None:
    if customer.status != "validated":
        raise Conflict(
            f"{doing} needs a validated customer: {customer.name} is {customer.status}",
            customer_status=customer.status,
        )


def _new_version(
    customer: Customer, terms: ContractTerms, *, number: str, version: int, at: datetime
) -> Contract:
    return Contract(
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        number=number,
        version=version,
        scenario=terms.scenario,
        scenario_description=terms.scenario_description,
        allowed_models=list(terms.allowed_models),
        max_devices=terms.max_devices,
        monthly_messages_per_device=terms.monthly_messages_per_device,
        monthly_bytes_per_device=terms.monthly_bytes_per_device,
        quota_action=terms.quota_action,
        destination_allow_list=list(terms.destination_allow_list),
        service_area=list(terms.service_area),
        offering_ids=[str(i) for i in terms.offering_ids],
        stop_at_zero_balance=terms.stop_at_zero_balance,
        status=CONTRACT.initial,
        created_at=at,
    )


def draft(
    session: Session,
    principal: Principal,
    customer_id: uuid.UUID,
    terms: ContractTerms,
    *,
    at: datetime,
) -> Contract:
    """Draft version 1 of a new contract for a validated customer."""
    terms = normalise(terms)
    customer = get_customer(session, customer_id)
    _require_validated(customer, "a contract")
    terms = _checked_terms(session, terms)
    contract = _new_version(customer, terms, number=take_number(session, at), version=1, at=at)
    session.add(contract)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="contract.drafted",
        target=("contract", contract.id),
        tenant_id=contract.tenant_id,
        after=contract_view(contract),
        payload={"number": contract.number, "version": 1, "customer_id": str(customer.id)},
    )
    return contract


def amend(
    session: Session,
    principal: Principal,
    contract_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    at: datetime,
) -> Contract:
    """Draft version n+1 from the version in force, with ``changes`` to its terms."""
    unknown = sorted(set(changes) - set(TERMS_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a term of a contract", field=unknown[0])
    current = get_contract(session, contract_id)
    if not is_in_force(session, current):
        raise Conflict(
            f"only the version in force can be amended: {current.number} version "
            f"{current.version} is {current.status}"
            + (" and superseded" if current.status == "signed" else "")
        )
    versions = versions_of(session, current)
    if versions[-1].status == "draft":
        raise Conflict(
            f"{current.number} version {versions[-1].version} is already drafted: sign or "
            "terminate it first",
            draft_id=str(versions[-1].id),
        )
    customer = get_customer(session, current.customer_id)
    _require_validated(customer, "an amendment")
    terms = _checked_terms(session, dataclasses.replace(terms_of(current), **dict(changes)))
    contract = _new_version(
        customer, terms, number=current.number, version=versions[-1].version + 1, at=at
    )
    contract.supersedes_id = current.id
    session.add(contract)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="contract.drafted",
        target=("contract", contract.id),
        tenant_id=contract.tenant_id,
        before=contract_view(current),
        after=contract_view(contract),
        payload={
            "number": contract.number,
            "version": contract.version,
            "supersedes_id": str(current.id),
            "customer_id": str(customer.id),
        },
    )
    return contract


def operator_name(session: Session) -> str | None:
    """The operator's name as its tenant records it (None if the session cannot see it)."""
    return session.scalar(select(Tenant.name).where(Tenant.kind == "operator"))


def render_contract(session: Session, contract: Contract, operator: str | None = None) -> str:
    """The contract's text from its current data (what signing would store)."""
    customer = get_customer(session, contract.customer_id)
    name = operator or operator_name(session) or "the operator"
    disclosed = tariffs(session, contract.offering_ids, launched=False)
    return contract_render.render(contract, customer, name, disclosed)


def sign(
    session: Session,
    principal: Principal,
    contract_id: uuid.UUID,
    *,
    signer_name: str,
    signer_role: str,
    at: datetime,
) -> Contract:
    """Record the customer's electronic signature of this version's text.

    The text is rendered now, stored, and its SHA-256 recorded with the signer, their role,
    the time and the principal who recorded it. Signing version n+1 supersedes version n.
    """
    contract = get_contract(session, contract_id)
    CONTRACT.check(contract.status, "signed", principal.role)
    name = check_name(signer_name, "signer_name")
    role = check_name(signer_role, "signer_role")
    customer = get_customer(session, contract.customer_id)
    _require_validated(customer, "signing")
    latest = versions_of(session, contract)[-1]
    if latest.id != contract.id:
        raise Conflict(f"version {latest.version} of {contract.number} is newer than this one")
    previous = None
    if contract.supersedes_id is not None:
        previous = get_contract(session, contract.supersedes_id)
        if not is_in_force(session, previous):
            raise Conflict(
                f"{previous.number} version {previous.version} is no longer in force "
                f"({previous.status}): draft a new contract instead"
            )
    _checked_terms(session, terms_of(contract))
    text = render_contract(session, contract)
    before = contract_view(contract)
    contract.rendered_text = text
    contract.rendered_sha256 = contract_render.sha256_text(text)
    contract.signer_name, contract.signer_role = name, role
    contract.signed_at, contract.signed_by = at, principal.actor
    contract.status = "signed"
    record_change(
        session,
        principal,
        at=at,
        action="contract.signed",
        target=("contract", contract.id),
        tenant_id=contract.tenant_id,
        before=before,
        after=contract_view(contract) | {"signer_name": name, "signer_role": role},
        payload={
            "number": contract.number,
            "version": contract.version,
            "customer_id": str(contract.customer_id),
            "sha256": contract.rendered_sha256,
        },
    )
    if previous is not None:
        record_change(
            session,
            principal,
            at=at,
            action="contract.superseded",
            target=("contract", previous.id),
            tenant_id=previous.tenant_id,
            after={"superseded_by": str(contract.id), "version": contract.version},
            reason=f"version {contract.version} signed",
        )
    sync_destinations(session, contract.customer_id, at=at)
    return contract


def _holding(session: Session, version_ids: list[uuid.UUID]) -> int:
    count = session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.contract_id.in_(version_ids),
            Subscription.status.not_in(ENDED_STATES),
        )
    )
    return int(count or 0)


def terminate(
    session: Session,
    principal: Principal,
    contract_id: uuid.UUID,
    *,
    reason: str,
    at: datetime,
) -> Contract:
    """End a draft, or the version in force once no subscription under its number remains."""
    contract = get_contract(session, contract_id)
    CONTRACT.check(contract.status, "terminated", principal.role)
    if not (reason or "").strip():
        raise InvalidInput("reason: say why the contract ends", field="reason")
    if contract.status == "signed":
        newer = superseded_by(session, contract)
        if newer is not None:
            raise Conflict(
                f"version {contract.version} was superseded by version {newer.version}: "
                "terminate the version in force"
            )
        holding = _holding(session, [v.id for v in versions_of(session, contract)])
        if holding:
            raise Conflict(
                f"{holding} subscription(s) still depend on {contract.number}: terminate them "
                "first",
                subscriptions=holding,
            )
    before = contract_view(contract)
    contract.status = "terminated"
    contract.terminated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="contract.terminated",
        target=("contract", contract.id),
        tenant_id=contract.tenant_id,
        before=before,
        after=contract_view(contract),
        reason=reason.strip(),
        payload={"number": contract.number, "version": contract.version},
    )
    if before["status"] == "signed":
        sync_destinations(session, contract.customer_id, at=at)
    return contract
