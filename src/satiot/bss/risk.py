"""Risk assessment of a customer before any order (Anti-Telecom-Fraud Law art. 12).

The rule set is data (:data:`RULES`): each rule has a code, a weight and whether it blocks on
its own; a check function per code decides whether it applies and says why. An assessment is
the findings, their summed score and a verdict: it passes when no blocking rule applies and the
score stays below :data:`PASS_BELOW`. The latest assessment is kept on the customer (who
assessed, when, the findings) and every assessment is audited, so the history is in the audit
log. :func:`require_order_ready` is the gate the orders module calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.bss import realname
from satiot.bss.customers import (
    document_kinds_on_file,
    get_customer,
    region_mismatch,
    required_documents,
)
from satiot.bss.models import Customer
from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.days import business_day
from satiot.core.errors import Conflict


@dataclass(frozen=True)
class RiskRule:
    code: str
    weight: int
    description: str
    #: A blocking rule fails the assessment whatever the score.
    blocking: bool = False


#: The rules, in the order findings are listed. Weights are the operator's to tune.
RULES: tuple[RiskRule, ...] = (
    RiskRule(
        "documents-missing",
        50,
        "The business licence or an ID copy is not on file",
        blocking=True,
    ),
    RiskRule(
        "authorisation-letter-missing",
        50,
        "The agent is not the legal representative and no authorisation letter is on file",
        blocking=True,
    ),
    RiskRule(
        "credit-code-check-failed",
        30,
        "The credit code fails its check character (real early codes do: compare the licence)",
    ),
    RiskRule(
        "credit-code-region-mismatch",
        20,
        "The credit code's region differs from the declared province",
    ),
    RiskRule(
        "industry-outside-service-objects",
        40,
        "The industry is not among the notice's service objects (GB/T 4754 A-D, G, N, S)",
    ),
    RiskRule(
        "recent-closure",
        60,
        "Another customer with the same legal representative was closed recently",
    ),
    RiskRule(
        "agent-acts-for-many",
        20,
        "The agent already signed up several other customers",
    ),
    RiskRule(
        "legal-representative-minor",
        50,
        "The legal representative is under 18",
        blocking=True,
    ),
)
RULES_BY_CODE = {rule.code: rule for rule in RULES}

#: An assessment passes with a score below this (and no blocking finding).
PASS_BELOW = 50
#: How far back a closure of a related customer counts.
RECENT_CLOSURE = timedelta(days=180)
#: How many other customers one agent may represent before it is a finding.
AGENT_CUSTOMERS_LIMIT = 3


class CustomerNotReady(Conflict):
    """An order was asked for a customer that is not validated or has not passed risk."""

    slug = "customer-not-ready"
    title = "Customer not ready for orders"


@dataclass(frozen=True)
class Finding:
    code: str
    weight: int
    blocking: bool
    description: str
    detail: str

    def stored(self) -> str:
        """How the customer row keeps it (``code: detail``)."""
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class Assessment:
    findings: tuple[Finding, ...]
    score: int
    passed: bool
    assessed_at: datetime | None
    assessed_by: str | None

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


Check = Callable[[Session, Customer, datetime], str | None]


def _documents(session: Session, customer: Customer, at: datetime) -> str | None:
    on_file = document_kinds_on_file(session, customer.id)
    missing = [k for k in required_documents(customer) if k not in on_file]
    return f"not on file: {', '.join(missing)}" if missing else None


def _authorisation(session: Session, customer: Customer, at: datetime) -> str | None:
    if customer.agent_id == customer.legal_rep_id:
        return None
    if "authorisation-letter" in document_kinds_on_file(session, customer.id):
        return None
    return f"agent {customer.agent_name} acts without an authorisation letter on file"


def _check_failed(session: Session, customer: Customer, at: datetime) -> str | None:
    if customer.uscc_check_ok:
        return None
    return f"{customer.uscc} fails its check character"


def _region(session: Session, customer: Customer, at: datetime) -> str | None:
    return region_mismatch(customer)


def _industry(session: Session, customer: Customer, at: datetime) -> str | None:
    if customer.industry in realname.SERVICE_OBJECT_INDUSTRIES:
        return None
    name = realname.INDUSTRIES.get(customer.industry, "?")
    return f"industry {customer.industry} ({name})"


def _recent_closure(session: Session, customer: Customer, at: datetime) -> str | None:
    stmt = select(Customer.name, Customer.updated_at).where(
        Customer.id != customer.id,
        Customer.status == "closed",
        Customer.legal_rep_id == customer.legal_rep_id,
        Customer.updated_at >= at - RECENT_CLOSURE,
    )
    closed = session.execute(stmt.order_by(Customer.updated_at.desc())).first()
    if closed is None:
        return None
    return f"{closed.name}, with the same legal representative, closed {closed.updated_at:%Y-%m-%d}"


def _agent_many(session: Session, customer: Customer, at: datetime) -> str | None:
    others = session.scalar(
        select(func.count(Customer.id)).where(
            Customer.id != customer.id, Customer.agent_id == customer.agent_id
        )
    )
    if int(others or 0) < AGENT_CUSTOMERS_LIMIT:
        return None
    return f"the agent is on record for {others} other customers"


def _minor(session: Session, customer: Customer, at: datetime) -> str | None:
    born = realname.birth_date(customer.legal_rep_id)
    today = business_day(at)
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return None if age >= 18 else f"born {born.isoformat()}, aged {age}"


CHECKS: dict[str, Check] = {
    "documents-missing": _documents,
    "authorisation-letter-missing": _authorisation,
    "credit-code-check-failed": _check_failed,
    "credit-code-region-mismatch": _region,
    "industry-outside-service-objects": _industry,
    "recent-closure": _recent_closure,
    "agent-acts-for-many": _agent_many,
    "legal-representative-minor": _minor,
}


def evaluate(session: Session, customer: Customer, at: datetime) -> Assessment:
    """Run every rule against the customer as it is now; records nothing."""
    findings = []
    for rule in RULES:
        detail = CHECKS[rule.code](session, customer, at)
        if detail is not None:
            findings.append(
                Finding(rule.code, rule.weight, rule.blocking, rule.description, detail)
            )
    score = sum(f.weight for f in findings)
    passed = score < PASS_BELOW and not any(f.blocking for f in findings)
    return Assessment(tuple(findings), score, passed, None, None)


def assess(
    session: Session, principal: Principal, customer_id: uuid.UUID, *, at: datetime
) -> Assessment:
    """Assess the customer, keep the result on its record and audit it."""
    customer = get_customer(session, customer_id)
    if customer.status == "closed":
        raise Conflict(f"customer {customer.name} is closed")
    result = evaluate(session, customer, at)
    before = _risk_view(customer)
    customer.risk_status = result.status
    customer.risk_score = result.score
    customer.risk_findings = [f.stored() for f in result.findings]
    customer.risk_assessed_at = at
    customer.risk_assessed_by = principal.actor
    customer.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="customer.risk-assessed",
        target=("customer", customer.id),
        tenant_id=customer.tenant_id,
        before=before,
        after=_risk_view(customer),
        payload={"risk_status": result.status, "score": result.score},
    )
    return latest(customer)


def _risk_view(customer: Customer) -> dict[str, Any]:
    return {
        "risk_status": customer.risk_status,
        "score": customer.risk_score,
        "findings": list(customer.risk_findings or []),
    }


def latest(customer: Customer) -> Assessment:
    """The customer's latest assessment as kept on its record (``pending``: none yet)."""
    findings = []
    for stored in customer.risk_findings or []:
        code, _, detail = stored.partition(": ")
        rule = RULES_BY_CODE.get(code, RiskRule(code, 0, code))
        findings.append(Finding(code, rule.weight, rule.blocking, rule.description, detail))
    return Assessment(
        tuple(findings),
        customer.risk_score or 0,
        customer.risk_status == "passed",
        customer.risk_assessed_at,
        customer.risk_assessed_by,
    )


def order_blocker(status: str, risk_status: str) -> str | None:
    """Why a customer in these states may not order, in a few words (None: it may), for lists
    that offer only the customers an order can name."""
    if status != "validated":
        return f"{status}, not validated"
    if risk_status != "passed":
        return "no risk assessment yet" if risk_status == "pending" else f"risk {risk_status}"
    return None


def require_order_ready(session: Session, customer_id: uuid.UUID) -> Customer:
    """The customer, if it may order: validated, and its latest risk assessment passed.

    Raises :class:`CustomerNotReady` (409) saying which condition fails, or NotFound.
    """
    customer = get_customer(session, customer_id)
    if order_blocker(customer.status, customer.risk_status) is None:  # the one gate
        return customer
    if customer.status != "validated":
        raise CustomerNotReady(
            f"customer {customer.name} is {customer.status}: only a validated customer may order",
            customer_status=customer.status,
        )
    state = "none yet" if customer.risk_status == "pending" else customer.risk_status
    raise CustomerNotReady(
        f"a risk assessment must pass before any order (customer {customer.name}: "
        f"latest assessment {state})",
        risk_status=customer.risk_status,
    )
