"""Onboarding and verification: real-name checks, one transaction, lifecycle, documents."""

from __future__ import annotations

import hashlib
import re
import string
import uuid
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from satiot.bss import customers, documents, realname
from satiot.bss.models import Customer, Subscription
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from satiot.core.models import AuditEntry, Event, Tenant
from tests.bss.onboarding_world import (
    AGENT_ID,
    LEGAL_REP_ID,
    PDF,
    PNG,
    application,
    file_all_documents,
    uscc_for,
)

TODAY = date(2026, 11, 25)


def staff(world, role: Role) -> Principal:
    """A principal of an operator role (as the API would build it)."""
    return Principal(
        tenant_id=world.operator.id,
        role=role,
        scopes=ROLES[role].scopes,
        user_id=None,
        username=f"{role.value}-1",
        via="session",
    )


def onboard(world, app=None, **kw) -> Customer:
    with world.ctx.db.write() as s:
        return customers.onboard(
            s, world.system, app or application(), at=world.ctx.clock.now(), **kw
        )


def count(ctx, model) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# ---- credit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["91110000600037341L", "91310115MA1K3BTP2B", "9144030071526726XG"])
def test_published_valid_credit_codes_pass_their_check(code):
    assert realname.check_uscc(code) == realname.CreditCode(code, True)


@pytest.mark.parametrize("code", ["91110000600037341N", "91350100M0001TGQXM"])
def test_a_failed_check_character_is_kept_for_review_not_refused(code):
    assert realname.check_uscc(code) == realname.CreditCode(code, False)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("9111000060003IOZSV", "'I', 'O', 'S', 'V', 'Z' cannot appear"),
        ("91110000600037341", "18 characters, not 17"),
        ("91110000600037341LL", "18 characters, not 19"),
        ("9A110000600037341L", "positions 1-8"),
        ("91990000600037341L", "positions 3-4 (99) name no province"),
        ("", "18 characters, not 0"),
    ],
)
def test_malformed_credit_codes_are_refused_with_the_reason(code, why):
    with pytest.raises(InvalidInput, match=re.escape(why)) as caught:
        realname.check_uscc(code)
    assert caught.value.extensions["field"] == "uscc"


def test_credit_code_separators_and_case_are_forgiven():
    assert realname.check_uscc(" 9131 0115-ma1k3btp2b ").value == "91310115MA1K3BTP2B"


ALPHABET = realname.USCC_ALPHABET
ORG = st.text(ALPHABET, min_size=9, max_size=9)
PROVINCE = st.sampled_from(sorted(realname.PROVINCES))


@st.composite
def valid_uscc(draw) -> str:
    body = (
        "9"
        + draw(st.sampled_from("123"))
        + draw(PROVINCE)
        + draw(st.text(string.digits, min_size=4, max_size=4))
        + draw(ORG)
    )
    return body + stdnum_uscc.calc_check_digit(body)


@given(valid_uscc())
def test_generated_valid_credit_codes_are_accepted(code):
    assert realname.check_uscc(code) == realname.CreditCode(code, True)


@given(valid_uscc(), st.integers(0, 17), st.sampled_from(ALPHABET + "IOSVZ*#é"))
def test_a_corrupted_credit_code_is_never_validated_silently(code, position, char):
    corrupted = code[:position] + char + code[position + 1 :]
    if corrupted == code:
        return
    try:
        checked = realname.check_uscc(corrupted)
    except InvalidInput:
        return
    assert checked.check_ok is False  # goes to manual review


# ---- resident IDs -----------------------------------------------------------------------------


@pytest.mark.parametrize("rid", ["11010519491231002X", "440524188001010014"])
def test_published_valid_resident_ids(rid):
    assert realname.check_resident_id(rid, "agent.resident_id", today=TODAY) == rid


@pytest.mark.parametrize(
    ("rid", "why"),
    [
        ("36042619910102009X", "check digit does not match"),
        ("360426199113010079", "not a real birth date"),
        ("1101051949123100", "18 characters, not 16"),
        ("11010519491231002Y", "17 digits and a check digit"),
        ("99010519491231002X", "name no province"),
    ],
)
def test_invalid_resident_ids_are_refused_with_the_field(rid, why):
    with pytest.raises(InvalidInput, match=re.escape(why)) as caught:
        realname.check_resident_id(rid, "legal_representative.resident_id", today=TODAY)
    assert caught.value.extensions["field"] == "legal_representative.resident_id"


def test_a_birth_date_in_the_future_is_refused():
    body = "11010520300101001"
    rid = body + stdnum_ric.calc_check_digit(body + "0")
    with pytest.raises(InvalidInput, match="in the future"):
        realname.check_resident_id(rid, "agent.resident_id", today=TODAY)


@st.composite
def valid_ric(draw) -> str:
    born = draw(st.dates(date(1900, 1, 1), date(2008, 12, 31)))
    body = (
        draw(PROVINCE)
        + draw(st.text(string.digits, min_size=4, max_size=4))
        + born.strftime("%Y%m%d")
        + draw(st.text(string.digits, min_size=3, max_size=3))
    )
    return body + stdnum_ric.calc_check_digit(body + "0")


@given(valid_ric())
def test_generated_valid_resident_ids_are_accepted(rid):
    assert realname.check_resident_id(rid, "f", today=TODAY) == rid


@given(valid_ric(), st.integers(0, 17), st.sampled_from(string.digits + "X"))
def test_a_single_wrong_character_in_a_resident_id_is_always_caught(rid, position, char):
    corrupted = rid[:position] + char + rid[position + 1 :]
    if corrupted == rid:
        return
    with pytest.raises(InvalidInput):
        realname.check_resident_id(corrupted, "f", today=TODAY)


def test_masking_shows_first_six_and_last_four():
    assert realname.mask_resident_id("11010519491231002X") == "110105********002X"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("138 0013 8000", "13800138000"),
        ("+86-138-0013-8000", "13800138000"),
        ("010-12345678", "01012345678"),
        ("(0755) 8765 4321", "075587654321"),
    ],
)
def test_phones(raw, clean):
    assert realname.check_phone(raw) == clean


@pytest.mark.parametrize("raw", ["12345", "23800138000", "phone", ""])
def test_bad_phones(raw):
    with pytest.raises(InvalidInput, match=r"agent\.phone"):
        realname.check_phone(raw)


# ---- onboarding ----------------------------------------------------------------------------


def test_onboarding_creates_the_customer_and_its_tenant(world, ctx):
    customer = onboard(world)
    assert customer.status == "initialized" and customer.uscc_check_ok
    assert customer.agent_phone == "13800138000" and customer.risk_status == "pending"
    with ctx.db.read() as s:
        tenant = s.get(Tenant, customer.tenant_id)
        assert tenant.slug == "walker-logistics-1" and tenant.kind == "customer"
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.created")).one()
        assert entry.after["legal_representative_id"] == "110105********002X"
        assert LEGAL_REP_ID not in str(entry.after) and AGENT_ID not in str(entry.after)
        event = s.scalars(select(Event).where(Event.type == "customer.created")).one()
        assert event.tenant_id == tenant.id and event.payload["status"] == "initialized"


def test_a_failed_check_character_starts_in_manual_review(world, ctx):
    customer = onboard(world, application(uscc="91350100M0001TGQXM", province="35"))
    assert customer.status == "manual-review" and not customer.uscc_check_ok


def test_a_chinese_name_gets_a_slug_from_the_credit_code(world, ctx):
    customer = onboard(world, application(name="中远海运物流有限公司"))
    with ctx.db.read() as s:
        assert s.get(Tenant, customer.tenant_id).slug == f"c-{customer.uscc.lower()}"


def test_a_given_slug_is_used_and_a_taken_one_refused(world, ctx):
    customer = onboard(world, application(tenant_slug="walker"))
    with ctx.db.read() as s:
        assert s.get(Tenant, customer.tenant_id).slug == "walker"
    with pytest.raises(Conflict, match="slug 'walker' is taken"):
        onboard(world, application(2, uscc=uscc_for(2), tenant_slug="walker"))


def test_a_duplicate_credit_code_is_a_conflict_and_creates_nothing(world, ctx):
    onboard(world)
    tenants = count(ctx, Tenant)
    with pytest.raises(Conflict, match="already on record") as caught:
        onboard(world, application(2, uscc=uscc_for(1)))
    assert caught.value.extensions["field"] == "uscc"
    assert count(ctx, Tenant) == tenants and count(ctx, Customer) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agent_phone": "12"}, "agent.phone"),
        ({"industry": "Z"}, "industry"),
        ({"province": "99"}, "province"),
        ({"organization_type": "club"}, "organization_type"),
        ({"name": "  "}, "name"),
        # A right-to-left override would make the name read backwards wherever it is shown.
        ({"name": "Acme \u202egnitsigol"}, "name"),
        ({"agent": customers.Person("Li\u2066 Na", AGENT_ID)}, "agent.name"),
        ({"agent": customers.Person("Li Na", "360426199113010079")}, "agent.resident_id"),
        ({"legal_representative": customers.Person("", LEGAL_REP_ID)}, "legal_representative.name"),
        ({"tenant_slug": "Not A Slug"}, "tenant_slug"),
        # The address is one line on invoices and the contract.
        ({"address": "1 Walker Road\x1b[2J, Beijing"}, "address"),
        ({"address": "1 Walker Road\nBeijing"}, "address"),
        ({"address": "1 Walker Road, \u202egnijieB"}, "address"),
    ],
)
def test_bad_fields_are_named_and_nothing_is_half_created(world, ctx, change, field):
    before = (count(ctx, Tenant), count(ctx, Customer), count(ctx, AuditEntry))
    with pytest.raises(InvalidInput) as caught:
        onboard(world, replace(application(), **change))
    assert caught.value.extensions["field"] == field
    assert (count(ctx, Tenant), count(ctx, Customer), count(ctx, AuditEntry)) == before


def test_the_tenant_is_rolled_back_when_the_customer_fails(world, ctx, monkeypatch):
    def broken(*_a, **_k):
        raise Conflict("simulated failure after the tenant was created")

    monkeypatch.setattr(customers, "record_change", broken)
    tenants = count(ctx, Tenant)
    with pytest.raises(Conflict):
        onboard(world)
    assert count(ctx, Tenant) == tenants and count(ctx, Customer) == 0


def test_attaching_to_an_existing_tenant(world, ctx):
    tenant = world.tenant("acme")
    customer = onboard(world, tenant_id=tenant.id)
    assert customer.tenant_id == tenant.id
    with pytest.raises(Conflict, match="already has a customer"):
        onboard(world, application(2, uscc=uscc_for(2)), tenant_id=tenant.id)
    with pytest.raises(InvalidInput, match="not a customer"):
        onboard(world, application(3, uscc=uscc_for(3)), tenant_id=world.operator.id)
    with pytest.raises(NotFound):
        onboard(world, application(4, uscc=uscc_for(4)), tenant_id=uuid.uuid4())


def test_a_region_that_differs_from_the_province_is_recorded(world, ctx):
    customer = onboard(world, application(uscc=uscc_for(1, region="350200")))
    warning = customers.region_mismatch(customer)
    assert warning and "35 Fujian" in warning and "11 Beijing" in warning
    with ctx.db.read() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.created")).one()
        assert entry.after["region_warning"] == warning


# ---- verification ----------------------------------------------------------------------------


def change(world, customer_id, status, principal=None, reason="checked"):
    with world.ctx.db.write() as s:
        return customers.change_status(
            s,
            principal or world.system,
            customer_id,
            status,
            at=world.ctx.clock.now(),
            reason=reason,
        )


def test_validation_needs_the_licence_and_both_id_copies(world, ctx):
    customer = onboard(world)
    with pytest.raises(Conflict, match="missing business-licence, legal-rep-id, agent-id") as c:
        change(world, customer.id, "validated")
    assert c.value.extensions["missing_documents"] == [
        "business-licence",
        "legal-rep-id",
        "agent-id",
    ]
    file_all_documents(world, customer.id)
    assert change(world, customer.id, "validated").status == "validated"


def test_one_id_copy_is_enough_when_the_agent_is_the_legal_representative(world, ctx):
    customer = onboard(world, application(agent=customers.Person("Zhang Wei", LEGAL_REP_ID)))
    assert customers.required_documents(customer) == ("business-licence", "legal-rep-id")


def test_from_manual_review_only_compliance_validates(world, ctx):
    customer = onboard(world, application(uscc="91350100M0001TGQXM", province="35"))
    file_all_documents(world, customer.id)
    with pytest.raises(PermissionDenied):
        change(world, customer.id, "validated", staff(world, Role.BUSINESS))
    assert change(world, customer.id, "validated", staff(world, Role.COMPLIANCE)).status == (
        "validated"
    )
    with ctx.db.read() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.status-changed")
        ).one()
        assert entry.actor == "user:compliance-1" and entry.reason == "checked"
        assert entry.before["status"] == "manual-review"


def test_closing_needs_a_reason_and_no_live_subscription(world, ctx):
    ready = world.customer()
    with ctx.db.write() as s:
        sub = Subscription(
            tenant_id=ready.tenant_id,
            customer_id=ready.customer_id,
            billing_account_id=ready.account_id,
            contract_id=ready.contract_id,
            offering_id=ready.offering_id,
            dev_eui="70B3D57ED0000001",
            terminal_model=ready.terminal_model,
            status="active",
            created_at=ctx.clock.now(),
        )
        s.add(sub)
    with pytest.raises(InvalidInput, match="say why"):
        change(world, ready.customer_id, "closed", reason="")
    with pytest.raises(Conflict, match="1 subscription"):
        change(world, ready.customer_id, "closed")
    with ctx.db.write() as s:
        s.get(Subscription, sub.id).status = "terminated"
    assert change(world, ready.customer_id, "closed").status == "closed"


def test_illegal_moves_are_refused(world, ctx):
    customer = onboard(world)
    change(world, customer.id, "closed")
    with pytest.raises(Conflict, match="cannot go from 'closed'"):
        change(world, customer.id, "validated")


# ---- documents -------------------------------------------------------------------------------


def file(world, customer_id, kind="business-licence", content=PDF, **kw):
    with world.ctx.db.write() as s:
        return documents.file_document(
            s,
            world.system,
            customer_id,
            kind=kind,
            filename="../scan.pdf",
            content=content,
            at=world.ctx.clock.now(),
            **kw,
        )


def test_a_document_is_kept_with_its_hash_and_recognised_type(world, ctx):
    customer = onboard(world)
    doc = file(world, customer.id, "legal-rep-id", PNG)
    assert doc.sha256 == hashlib.sha256(PNG).hexdigest()
    assert doc.media_type == "image/png" and doc.filename == "scan.pdf"
    with ctx.db.read() as s:
        page = documents.document_page(s, customer.id, cursor=None, limit=10)
    assert [(d.kind, d.size) for d in page.items] == [("legal-rep-id", len(PNG))]


@pytest.mark.parametrize(
    ("kind", "content", "why"),
    [
        ("passport", PDF, "kind: 'passport' is not one of"),
        ("business-licence", b"", "empty"),
        ("business-licence", b"MZ\x90\x00 not a scan", "not a PDF, PNG or JPEG"),
        ("business-licence", PDF + bytes(100), "more than the 64 allowed"),
    ],
)
def test_bad_documents_are_refused(world, ctx, kind, content, why):
    customer = onboard(world)
    with pytest.raises(InvalidInput, match=re.escape(why)):
        file(world, customer.id, kind, content, max_bytes=64)


def test_id_copies_open_only_for_those_who_verify(world, ctx):
    customer = onboard(world)
    licence, rep_id = file(world, customer.id), file(world, customer.id, "legal-rep-id")
    reader = Principal(
        tenant_id=customer.tenant_id,
        role=Role.CUSTOMER_USER,
        scopes=ROLES[Role.CUSTOMER_USER].scopes,
        user_id=None,
        username="cu",
        via="session",
    )
    with ctx.db.read() as s:
        assert documents.open_document(s, reader, customer.id, licence.id).content == PDF
        with pytest.raises(PermissionDenied, match="personal data"):
            documents.open_document(s, reader, customer.id, rep_id.id)
        assert documents.open_document(s, world.system, customer.id, rep_id.id).content == PDF
        with pytest.raises(documents.DocumentNotFound):
            documents.get_document(s, uuid.uuid4(), licence.id)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64))
def test_file_names_never_carry_paths_or_header_breakers(name_bytes):
    name = documents.clean_filename(name_bytes.decode("latin-1"))
    assert "/" not in name and "\\" not in name and '"' not in name and "\n" not in name
    assert 0 < len(name) <= 255


def test_a_chinese_address_is_kept_trimmed(world, ctx):
    customer = onboard(world, replace(application(), address=" 北京市海淀区知春路1号 "))
    assert customer.address == "北京市海淀区知春路1号"
    assert onboard(world, replace(application(2, uscc=uscc_for(2)), address="")).address == ""


@pytest.mark.parametrize("name", ["scan\u202efdp.exe", "scan\x85.pdf", "scan\u2066.pdf"])
def test_file_names_lose_directional_overrides_and_c1_controls(name):
    """An uploaded name is listed in the console and sent in a header: a right-to-left
    override would make ``scan<U+202E>fdp.exe`` read as ``scanexe.pdf``."""
    cleaned = documents.clean_filename(name)
    assert cleaned in {"scanfdp.exe", "scan.pdf"}
    assert documents.clean_filename("营业执照.pdf") == "营业执照.pdf"
