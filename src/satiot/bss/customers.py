"""Onboarding enterprise customers under their real names, and verifying them.

A customer is an enterprise or institution (the notice's service objects) and owns one tenant:
:func:`onboard` creates both in the caller's transaction, so a refusal leaves neither. Every
identity it records is checked first (:mod:`satiot.bss.realname`); a credit code whose check
character fails is accepted into ``manual-review`` rather than refused, because real early
codes do fail it.

Verification moves the customer through :data:`satiot.bss.states.CUSTOMER`: ``validated``
needs the business licence and the ID copies on file (and, from manual review, a compliance
officer); ``closed`` needs every subscription ended. Each change is audited with who and why.
Resident ID numbers are personal data: the audit log and events carry them masked.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satiot.bss import realname
from satiot.bss.models import Customer, CustomerDocument, Subscription
from satiot.bss.states import CUSTOMER
from satiot.core.auth.principal import Principal
from satiot.core.auth.users import SLUG_RE, create_tenant
from satiot.core.changes import record_change
from satiot.core.days import business_day
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import unsafe_character
from satiot.core.models import Tenant

#: The business day (birth-date checks, contract years) is China's: UTC+8.

#: Subscription states that no longer hold a service (closing a customer needs all ended).
ENDED_SUBSCRIPTION_STATES = ("terminated", "cancelled", "aborted")


class CustomerNotFound(NotFound):
    slug = "customer-not-found"
    title = "Customer not found"


@dataclass(frozen=True)
class Person:
    """A natural person named in the real-name record: legal representative or agent."""

    name: str
    resident_id: str


@dataclass(frozen=True)
class Application:
    """What an operator enters to onboard a customer (see :func:`onboard`)."""

    name: str
    uscc: str
    organization_type: str
    industry: str
    province: str
    legal_representative: Person
    agent: Person
    agent_phone: str
    address: str = ""
    tenant_slug: str | None = None


@dataclass(frozen=True)
class Checked:
    """An application whose every field passed its check, in canonical form."""

    name: str
    code: realname.CreditCode
    organization_type: str
    industry: str
    province: str
    address: str
    legal_representative: Person
    agent: Person
    agent_phone: str
    tenant_slug: str | None


def check_application(app: Application, *, at: datetime) -> Checked:
    """Every field checked, in the order a form shows them; InvalidInput names the first bad
    one and why."""
    today = business_day(at)
    name = realname.check_name(app.name, "name", max_length=200)
    code = realname.check_uscc(app.uscc, "uscc")
    people = []
    for role, person in (("legal_representative", app.legal_representative), ("agent", app.agent)):
        people.append(
            Person(
                realname.check_name(person.name, f"{role}.name"),
                realname.check_resident_id(person.resident_id, f"{role}.resident_id", today=today),
            )
        )
    address = (app.address or "").strip()
    if len(address) > 500:
        raise InvalidInput("address: at most 500 characters", field="address")
    # One line, printed on invoices and the contract: no control or directional override
    # characters, as for the names above (an empty address stays allowed).
    unsafe = unsafe_character(address)
    if unsafe is not None:
        raise InvalidInput(f"address: {unsafe}", field="address")
    slug = app.tenant_slug.strip().lower() if app.tenant_slug else None
    if slug is not None and not SLUG_RE.fullmatch(slug):
        raise InvalidInput(
            "tenant_slug: lowercase letters, digits and hyphens, 1-63 characters",
            field="tenant_slug",
        )
    return Checked(
        name=name,
        code=code,
        organization_type=realname.check_organization_type(app.organization_type),
        industry=realname.check_industry(app.industry),
        province=realname.check_province(app.province),
        address=address,
        legal_representative=people[0],
        agent=people[1],
        agent_phone=realname.check_phone(app.agent_phone, "agent.phone"),
        tenant_slug=slug,
    )


def region_mismatch(customer: Customer) -> str | None:
    """Why the credit code's region disagrees with the declared province, if it does.

    Not an error (a company may move), but a risk finding and a warning shown to staff.
    """
    coded = customer.uscc[2:4]
    if coded == customer.province:
        return None
    return (
        f"the credit code was issued in {realname.province_label(coded)} but the declared "
        f"province is {realname.province_label(customer.province)}"
    )


def customer_view(customer: Customer) -> dict[str, Any]:
    """What the audit log and events record: resident IDs masked, never in full."""
    return {
        "name": customer.name,
        "uscc": customer.uscc,
        "uscc_check_ok": customer.uscc_check_ok,
        "organization_type": customer.org_type,
        "industry": customer.industry,
        "province": customer.province,
        "legal_representative": customer.legal_rep_name,
        "legal_representative_id": realname.mask_resident_id(customer.legal_rep_id),
        "agent": customer.agent_name,
        "agent_id": realname.mask_resident_id(customer.agent_id),
        "status": customer.status,
        "region_warning": region_mismatch(customer),
    }


def _derived_slug(session: Session, checked: Checked) -> str:
    """A slug from the name when it is Latin enough, else from the credit code (unique)."""
    base = re.sub(r"[^a-z0-9]+", "-", checked.name.lower()).strip("-")[:50].strip("-")
    if len(base) >= 3 and session.scalar(select(Tenant.id).where(Tenant.slug == base)) is None:
        return base
    return f"c-{checked.code.value.lower()}"


def _tenant_for(
    session: Session,
    principal: Principal,
    checked: Checked,
    tenant_id: uuid.UUID | None,
    at: datetime,
) -> Tenant:
    if tenant_id is None:
        slug = checked.tenant_slug or _derived_slug(session, checked)
        return create_tenant(session, principal, slug=slug, name=checked.name, at=at)
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    if tenant.kind != "customer":
        raise InvalidInput("the operator's own tenant is not a customer", field="tenant_id")
    if session.scalar(select(Customer.id).where(Customer.tenant_id == tenant.id)) is not None:
        raise Conflict(f"tenant {tenant.slug} already has a customer record", field="tenant_id")
    return tenant


def onboard(
    session: Session,
    principal: Principal,
    app: Application,
    *,
    at: datetime,
    tenant_id: uuid.UUID | None = None,
) -> Customer:
    """Record a customer and create its tenant (or attach it to an existing customer tenant
    that has no customer yet, ``tenant_id``), in the caller's transaction.

    Starts ``initialized``, or ``manual-review`` when the credit code fails its check
    character. A credit code already on record is a Conflict.
    """
    checked = check_application(app, at=at)
    taken = session.scalar(select(Customer.id).where(Customer.uscc == checked.code.value))
    if taken is not None:
        raise Conflict(
            f"a customer with credit code {checked.code.value} is already on record",
            field="uscc",
        )
    tenant = _tenant_for(session, principal, checked, tenant_id, at)
    customer = Customer(
        tenant_id=tenant.id,
        name=checked.name,
        uscc=checked.code.value,
        uscc_check_ok=checked.code.check_ok,
        org_type=checked.organization_type,
        industry=checked.industry,
        province=checked.province,
        address=checked.address,
        legal_rep_name=checked.legal_representative.name,
        legal_rep_id=checked.legal_representative.resident_id,
        agent_name=checked.agent.name,
        agent_id=checked.agent.resident_id,
        agent_phone=checked.agent_phone,
        status="initialized" if checked.code.check_ok else "manual-review",
        risk_status="pending",
        risk_findings=[],
        created_at=at,
        updated_at=at,
    )
    session.add(customer)
    try:
        session.flush()
    except IntegrityError:  # a concurrent onboarding of the same code won the race
        raise Conflict(
            f"a customer with credit code {checked.code.value} is already on record",
            field="uscc",
        ) from None
    view = customer_view(customer)
    record_change(
        session,
        principal,
        at=at,
        action="customer.created",
        target=("customer", customer.id),
        tenant_id=tenant.id,
        after=view,
        reason=None if checked.code.check_ok else "credit code fails its check character",
        payload={"status": customer.status, "uscc": customer.uscc, "tenant_id": str(tenant.id)},
    )
    return customer


def get_customer(session: Session, customer_id: uuid.UUID) -> Customer:
    """The customer, if the session may see it (a customer's session sees only its own)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"customer {customer_id} not found")
    return customer


def customer_of_tenant(session: Session, tenant_id: uuid.UUID) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.tenant_id == tenant_id))


def live_subscriptions(session: Session, customer_id: uuid.UUID) -> int:
    """How many of the customer's subscriptions still hold a service."""
    count = session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.customer_id == customer_id,
            Subscription.status.not_in(ENDED_SUBSCRIPTION_STATES),
        )
    )
    return int(count or 0)


def required_documents(customer: Customer) -> tuple[str, ...]:
    """The documents verification needs: the licence and the ID copies of both people (one
    copy when the agent is the legal representative)."""
    if customer.agent_id == customer.legal_rep_id:
        return ("business-licence", "legal-rep-id")
    return ("business-licence", "legal-rep-id", "agent-id")


def document_kinds_on_file(session: Session, customer_id: uuid.UUID) -> set[str]:
    rows = session.scalars(
        select(CustomerDocument.kind).where(CustomerDocument.customer_id == customer_id).distinct()
    )
    return set(rows)


def missing_documents(session: Session, customer: Customer) -> list[str]:
    on_file = document_kinds_on_file(session, customer.id)
    return [kind for kind in required_documents(customer) if kind not in on_file]


def change_status(
    session: Session,
    principal: Principal,
    customer_id: uuid.UUID,
    status: str,
    *,
    at: datetime,
    reason: str | None,
) -> Customer:
    """Move a customer along its lifecycle; the preconditions of the target state apply."""
    customer = get_customer(session, customer_id)
    CUSTOMER.check(customer.status, status, principal.role)
    if status in ("manual-review", "closed") and not (reason or "").strip():
        raise InvalidInput(f"say why the customer goes to {status}", field="reason")
    if status == "validated":
        missing = missing_documents(session, customer)
        if missing:
            raise Conflict(
                f"customer {customer.name} cannot be validated: missing {', '.join(missing)}",
                missing_documents=missing,
            )
    if status == "closed":
        live = live_subscriptions(session, customer.id)
        if live:
            raise Conflict(
                f"customer {customer.name} still has {live} subscription(s) in service: "
                "terminate them before closing",
                live_subscriptions=live,
            )
    before = customer_view(customer)
    customer.status = status
    customer.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="customer.status-changed",
        target=("customer", customer.id),
        tenant_id=customer.tenant_id,
        before=before,
        after=customer_view(customer),
        reason=reason,
        payload={"status": status, "previous": before["status"]},
    )
    return customer
