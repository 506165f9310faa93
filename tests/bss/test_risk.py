"""Risk assessment: the rule set, the verdict, what is recorded, and the gate before orders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from satiot.bss import customers, documents, risk
from satiot.bss.models import Customer
from satiot.core.errors import Conflict, NotFound
from satiot.core.models import AuditEntry
from tests.bss.onboarding_world import (
    LEGAL_REP_ID,
    PDF,
    application,
    file_all_documents,
    uscc_for,
)


def onboard(world, app=None) -> Customer:
    with world.ctx.db.write() as s:
        return customers.onboard(s, world.system, app or application(), at=world.ctx.clock.now())


def assess(world, customer_id) -> risk.Assessment:
    with world.ctx.db.write() as s:
        return risk.assess(s, world.system, customer_id, at=world.ctx.clock.now())


def codes(result: risk.Assessment) -> list[str]:
    return [f.code for f in result.findings]


def test_rules_are_data_with_a_check_each():
    assert set(risk.CHECKS) == {r.code for r in risk.RULES}
    assert all(r.weight > 0 and r.description for r in risk.RULES)


def test_a_clean_customer_with_its_documents_passes(world):
    customer = onboard(world)
    file_all_documents(world, customer.id)
    result = assess(world, customer.id)
    assert result.passed and result.score == 0 and result.findings == ()
    assert result.assessed_by == "system:cli" and result.assessed_at == world.ctx.clock.now()


def test_missing_documents_block(world):
    customer = onboard(world)
    result = assess(world, customer.id)
    assert not result.passed
    assert codes(result) == ["documents-missing", "authorisation-letter-missing"]
    assert "business-licence, legal-rep-id, agent-id" in result.findings[0].detail


def test_an_agent_without_an_authorisation_letter_blocks(world):
    customer = onboard(world)
    with world.ctx.db.write() as s:
        for kind in ("business-licence", "legal-rep-id", "agent-id"):
            documents.file_document(
                s,
                world.system,
                customer.id,
                kind=kind,
                filename="x.pdf",
                content=PDF,
                at=world.ctx.clock.now(),
            )
    result = assess(world, customer.id)
    assert codes(result) == ["authorisation-letter-missing"] and not result.passed


def test_the_legal_representative_as_agent_needs_no_letter(world):
    customer = onboard(world, application(agent=customers.Person("Zhang Wei", LEGAL_REP_ID)))
    with world.ctx.db.write() as s:
        for kind in ("business-licence", "legal-rep-id"):
            documents.file_document(
                s,
                world.system,
                customer.id,
                kind=kind,
                filename="x.pdf",
                content=PDF,
                at=world.ctx.clock.now(),
            )
    assert assess(world, customer.id).passed


def test_findings_add_up_to_the_verdict(world):
    # A failed check character alone (30) passes; with a region mismatch (20) it reaches 50.
    alone = onboard(world, application(1, uscc="91350100M0001TGQXM", province="35"))
    file_all_documents(world, alone.id)
    result = assess(world, alone.id)
    assert codes(result) == ["credit-code-check-failed"] and result.passed and result.score == 30
    both = onboard(world, application(2, uscc="91110000600037341N", province="12"))
    file_all_documents(world, both.id)
    result = assess(world, both.id)
    assert codes(result) == ["credit-code-check-failed", "credit-code-region-mismatch"]
    assert result.score == 50 and not result.passed


def test_an_industry_outside_the_service_objects_is_a_finding(world):
    bank = onboard(world, application(industry="J"))
    file_all_documents(world, bank.id)
    result = assess(world, bank.id)
    assert codes(result) == ["industry-outside-service-objects"] and result.passed
    assert "Finance" in result.findings[0].detail


def test_a_recent_closure_with_the_same_legal_representative(world, ctx, clock):
    closed = onboard(world)
    with ctx.db.write() as s:
        customers.change_status(s, world.system, closed.id, "closed", at=clock.now(), reason="x")
    clock.advance(timedelta(days=30))
    again = onboard(world, application(2, uscc=uscc_for(2)))
    file_all_documents(world, again.id)
    result = assess(world, again.id)
    assert codes(result) == ["recent-closure"] and not result.passed
    clock.advance(risk.RECENT_CLOSURE)
    assert assess(world, again.id).passed


def test_an_agent_on_record_for_many_customers(world):
    made = [onboard(world, application(n, uscc=uscc_for(n))) for n in range(1, 5)]
    file_all_documents(world, made[-1].id)
    result = assess(world, made[-1].id)
    assert codes(result) == ["agent-acts-for-many"]
    assert result.findings[0].detail == "the agent is on record for 3 other customers"


def test_a_minor_legal_representative_blocks(world):
    minor = "11010520100101001"
    from stdnum.cn import ric

    minor += ric.calc_check_digit(minor + "0")
    customer = onboard(world, application(legal_representative=customers.Person("Kid", minor)))
    file_all_documents(world, customer.id)
    result = assess(world, customer.id)
    assert codes(result) == ["legal-representative-minor"] and not result.passed


def test_the_assessment_is_kept_and_audited(world, ctx):
    customer = onboard(world)
    assess(world, customer.id)
    with ctx.db.read() as s:
        row = s.get(Customer, customer.id)
        assert row.risk_status == "failed" and row.risk_score == 100
        assert row.risk_findings[0].startswith("documents-missing: not on file: business-licence")
        again = risk.latest(row)
        assert codes(again) == ["documents-missing", "authorisation-letter-missing"]
        assert again.findings[0].blocking
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.risk-assessed")
        ).one()
        assert entry.before["risk_status"] == "pending" and entry.after["score"] == 100


def test_a_closed_customer_is_not_assessed(world, ctx):
    customer = onboard(world)
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, customer.id, "closed", at=ctx.clock.now(), reason="gone"
        )
    with pytest.raises(Conflict, match="closed"):
        assess(world, customer.id)


def test_orders_need_a_validated_customer_whose_assessment_passed(world, ctx):
    customer = onboard(world)
    with ctx.db.read() as s, pytest.raises(risk.CustomerNotReady, match="is initialized"):
        risk.require_order_ready(s, customer.id)
    file_all_documents(world, customer.id)
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, customer.id, "validated", at=ctx.clock.now(), reason=None
        )
    with (
        ctx.db.read() as s,
        pytest.raises(
            risk.CustomerNotReady, match="a risk assessment must pass before any order"
        ) as caught,
    ):
        risk.require_order_ready(s, customer.id)
    assert "none yet" in caught.value.detail and caught.value.status == 409
    assert assess(world, customer.id).passed
    with ctx.db.read() as s:
        assert risk.require_order_ready(s, customer.id).id == customer.id


def test_a_failed_assessment_keeps_orders_out(world, ctx):
    ready = world.customer()
    with ctx.db.write() as s:
        for doc in documents.document_page(s, ready.customer_id, cursor=None, limit=10).items:
            s.delete(documents.get_document(s, ready.customer_id, doc.id))
    assert not assess(world, ready.customer_id).passed
    with ctx.db.read() as s, pytest.raises(risk.CustomerNotReady, match="latest assessment failed"):
        risk.require_order_ready(s, ready.customer_id)


def test_an_unknown_customer_is_not_found(world, ctx):
    import uuid

    with ctx.db.read() as s, pytest.raises(NotFound):
        risk.require_order_ready(s, uuid.uuid4())
