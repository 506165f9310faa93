"""Contracts: terms, numbering, the signed text, versions, termination and the activation gate."""

from __future__ import annotations

import ipaddress
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from satiot.bss import contract_render, contracts, customers
from satiot.bss.contract_terms import check_destination, normalise
from satiot.bss.models import Contract, ProductOffering, Subscription
from satiot.core.auth.principal import Principal
from satiot.core.auth.roles import ROLES, Role
from satiot.core.errors import Conflict, IllegalTransition, InvalidInput, PermissionDenied
from satiot.core.models import AuditEntry, Event
from satiot.network import destinations
from satiot.network.models import DestinationPolicy
from satiot.oss import terminals
from tests.bss.onboarding_world import (
    application,
    file_all_documents,
    offering,
    terminal_model,
    terms,
    uscc_for,
)

# ---- destinations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("203.0.113.10", "203.0.113.10"),
        ("203.0.113.10:443", "203.0.113.10:443"),
        ("10.20.0.0/16", "10.20.0.0/16"),
        ("10.20.0.0/16:8883", "10.20.0.0/16:8883"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0::/64", "2001:db8::/64"),
        ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("IoT.Example.COM.", "iot.example.com"),
        ("*.example.com:8883", "*.example.com:8883"),
        ("数据.中国", "xn--vxup8b.xn--fiqs8s"),
    ],
)
def test_destinations_are_canonical(entry, canonical):
    assert check_destination(entry) == canonical


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("0.0.0.0/0", "too wide"),
        ("10.0.0.0/8", "too wide"),
        ("10.0.0.1/16", "host bits set"),
        ("224.0.0.1", "not a destination"),
        ("127.0.0.1", "not a destination"),
        ("1.2.3", "not an IP address"),
        ("example.com:0", "1 to 65535"),
        ("example.com:70000", "1 to 65535"),
        ("example.com:", "1 to 65535"),
        ("2001:db8::1:443x", "not an IP address"),
        ("[203.0.113.1]:80", "only for IPv6"),
        ("localhost", "fully qualified"),
        ("*.com", "fully qualified"),
        ("-bad.example.com", "not a valid domain label"),
        ("exa_mple.com", "not a valid domain label"),
        ("example.123", "cannot be numeric"),
        ("", "empty"),
    ],
)
def test_bad_destinations_say_why(entry, why):
    with pytest.raises(InvalidInput, match=why):
        check_destination(entry)


def _routable(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (addr.is_multicast or addr.is_unspecified or addr.is_loopback)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
DOMAIN = st.builds(
    lambda labels, tld, wild: ("*." if wild else "") + ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
    st.booleans(),
)
NETWORK = st.one_of(
    st.ip_addresses(v=4).filter(_routable).map(str),
    st.ip_addresses(v=6).filter(_routable).map(str),
    st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)),
        st.ip_addresses(v=4).filter(_routable),
        st.integers(16, 32),
    ).filter(lambda n: _routable(ipaddress.ip_network(n).network_address)),
)
PORT = st.one_of(st.none(), st.integers(1, 65535))


def _with_port(host: str, port: int | None) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@given(st.one_of(DOMAIN, NETWORK), PORT)
def test_generated_destinations_are_accepted_and_canonical(host, port):
    entry = _with_port(host, port)
    canonical = check_destination(entry)
    assert check_destination(canonical) == canonical
    assert check_destination(canonical.upper()) == canonical


@given(st.one_of(DOMAIN, NETWORK), PORT)
def test_the_network_reads_every_canonical_destination_as_the_contract_means_it(host, port):
    """What a contract lists is what delivery allows: the listed host (a subdomain for
    ``*.``; the network's first address for a network) on the listed port, and no other port."""
    canonical = check_destination(_with_port(host, port))
    policy = destinations.Policy.of([canonical])
    if host.startswith("*."):
        name = "device-data." + host[2:]
        assert policy.refusal(host[2:], port or 443) is not None  # the apex is not a subdomain
    elif any(c.isalpha() for c in host) and ":" not in host:
        name = host
    else:
        name = str(ipaddress.ip_network(host).network_address)
    assert policy.refusal(name, port or 443) is None
    if port is not None:
        assert policy.refusal(name, port % 65535 + 1) is not None


@given(st.text(max_size=80))
def test_any_text_is_either_a_destination_or_a_clear_refusal(text):
    try:
        assert check_destination(text)
    except InvalidInput as exc:
        assert exc.extensions["field"] == "destination_allow_list"


def test_terms_are_canonical_and_each_bad_term_is_named():
    offering_id = uuid.uuid4()
    base = terms("B", offering_id)
    shuffled = replace(
        base,
        allowed_models=("B", "A", "B"),
        service_area=("12", "11"),
        destination_allow_list=("iot.example.com", "203.0.113.10:443", "IOT.example.com"),
    )
    clean = normalise(shuffled)
    assert clean.allowed_models == ("A", "B") and clean.service_area == ("11", "12")
    assert clean.destination_allow_list == ("203.0.113.10:443", "iot.example.com")
    for change, field in [
        ({"scenario": "gambling"}, "scenario"),
        ({"allowed_models": ()}, "allowed_models"),
        ({"max_devices": 0}, "max_devices"),
        (
            {"monthly_messages_per_device": None, "monthly_bytes_per_device": None},
            "monthly_messages_per_device",
        ),
        ({"monthly_bytes_per_device": 0}, "monthly_bytes_per_device"),
        ({"monthly_messages_per_device": 99_999_999_999}, "monthly_messages_per_device"),
        ({"monthly_bytes_per_device": 10**13}, "monthly_bytes_per_device"),
        ({"quota_action": "ignore"}, "quota_action"),
        ({"destination_allow_list": ()}, "destination_allow_list"),
        ({"destination_allow_list": ("ok.example.com", "nope")}, "destination_allow_list[1]"),
        ({"service_area": ("11", "98")}, "service_area"),
        ({"offering_ids": ()}, "offering_ids"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            normalise(replace(base, **change))
        assert caught.value.extensions["field"] == field, change


# ---- drafting and numbering -------------------------------------------------------------------


@pytest.fixture
def validated(world, ctx):
    """A validated customer (risk not yet assessed), a licensed model and a launched offering."""
    with ctx.db.write() as s:
        customer = customers.onboard(s, world.system, application(), at=ctx.clock.now())
    file_all_documents(world, customer.id)
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, customer.id, "validated", at=ctx.clock.now(), reason=None
        )
    return customer, terminal_model(world, 900), offering(world, 900)


def draft(world, customer_id, t, principal=None) -> Contract:
    with world.ctx.db.write() as s:
        return contracts.draft(
            s, principal or world.system, customer_id, t, at=world.ctx.clock.now()
        )


def sign(world, contract_id, principal=None) -> Contract:
    with world.ctx.db.write() as s:
        return contracts.sign(
            s,
            principal or world.system,
            contract_id,
            signer_name="Zhang Wei",
            signer_role="legal representative",
            at=world.ctx.clock.now(),
        )


def staff(world, role: Role) -> Principal:
    return Principal(
        world.operator.id, role, ROLES[role].scopes, None, f"{role.value}-1", "session"
    )


def test_a_contract_is_drafted_only_for_a_validated_customer(world, ctx):
    with ctx.db.write() as s:
        customer = customers.onboard(s, world.system, application(), at=ctx.clock.now())
    model, offer = terminal_model(world, 1), offering(world, 1)
    with pytest.raises(Conflict, match="needs a validated customer"):
        draft(world, customer.id, terms(model, offer))


def test_models_and_offerings_must_exist_and_be_usable(world, ctx, validated):
    customer, model, offer = validated
    for t, why in [
        (terms("TQ-NOPE", offer), "not on the licence register"),
        (terms(model, uuid.uuid4()), "is not in the catalog"),
        (terms(model, offering(world, 901, status="In design")), "is In design"),
    ]:
        with pytest.raises(InvalidInput, match=why):
            draft(world, customer.id, t)
    with ctx.db.write() as s:
        listed = terminals.get_model(s, model)
        terminals.update_model(
            s, world.system, listed.id, {"status": "withdrawn"}, at=ctx.clock.now()
        )
    with pytest.raises(InvalidInput, match="is withdrawn"):
        draft(world, customer.id, terms(model, offer))


def test_numbers_run_per_year_without_gaps(world, ctx, clock, validated):
    customer, model, offer = validated
    first = draft(world, customer.id, terms(model, offer))
    assert (first.number, first.version, first.status) == ("SC-2026-000001", 1, "draft")
    # A draft that rolls back gives its number back.
    with pytest.raises(RuntimeError), ctx.db.write() as s:
        contracts.draft(s, world.system, customer.id, terms(model, offer), at=clock.now())
        raise RuntimeError("the caller's transaction fails after drafting")
    assert draft(world, customer.id, terms(model, offer)).number == "SC-2026-000002"
    # The year is China's: 16:30 UTC on 31 December is already the next year there.
    clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert draft(world, customer.id, terms(model, offer)).number == "SC-2027-000001"


def test_concurrent_drafts_get_distinct_consecutive_numbers(world, ctx, clock, validated):
    customer, model, offer = validated
    clock.set(datetime(2027, 6, 1, tzinfo=UTC))  # a fresh series: the first numbers race too
    numbers: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(4):
                numbers.append(draft(world, customer.id, terms(model, offer)).number)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == [f"SC-2027-{n:06d}" for n in range(1, 17)]


# ---- the text and the signature ---------------------------------------------------------------


def test_the_text_is_deterministic_and_discloses_tariffs_and_clauses(world, ctx, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    with ctx.db.read() as s:
        one = contracts.render_contract(s, contract)
        two = contracts.render_contract(s, contracts.get_contract(s, contract.id))
    assert one == two and one.endswith("\n") and "\r" not in one
    for needle in (
        "Contract SC-2026-000001, version 1",
        "Operator: Demo Satellite IoT Operator",
        "Unified social credit code: 91110000W00000001F",
        "Tracker bundle 900 (offering BSS-TEST-900, version 1)",
        "Monthly fee: ¥30.00 per device per month, including 1,000 messages",
        "Extra data: ¥0.000012 per byte, at least 20 bytes billed per message",
        "No resale or sublease",
        "Real name",
        "Data only",
        "Destination allow-list",
        "Suspension on fraud",
        "  - 203.0.113.10:443",
        "Service area: 11 Beijing; 12 Tianjin",
    ):
        assert needle in one, needle
    assert max(len(line) for line in one.splitlines()) <= contract_render.WIDTH


def test_signing_stores_the_text_and_its_hash(world, ctx, clock, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    with ctx.db.read() as s:
        preview = contracts.render_contract(s, contract)
    clock.advance(60)
    signed = sign(world, contract.id, staff(world, Role.BUSINESS))
    assert signed.status == "signed" and signed.rendered_text == preview
    assert signed.rendered_sha256 == contract_render.sha256_text(preview)
    assert (signed.signer_name, signed.signer_role) == ("Zhang Wei", "legal representative")
    assert signed.signed_at == clock.now() and signed.signed_by == "user:business-1"
    with ctx.db.read() as s:
        event = s.scalars(select(Event).where(Event.type == "contract.signed")).one()
        assert event.payload["sha256"] == signed.rendered_sha256
        assert contracts.contract_in_force(s, customer.id).id == contract.id
    with pytest.raises(IllegalTransition):
        sign(world, contract.id)


def test_only_sales_sign_and_the_signer_is_named(world, ctx, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    with pytest.raises(PermissionDenied):
        sign(world, contract.id, staff(world, Role.COMPLIANCE))
    with pytest.raises(InvalidInput, match="signer_name"), ctx.db.write() as s:
        contracts.sign(
            s, world.system, contract.id, signer_name=" ", signer_role="agent", at=ctx.clock.now()
        )


def test_a_closed_customer_cannot_sign(world, ctx, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, customer.id, "closed", at=ctx.clock.now(), reason="left"
        )
    with pytest.raises(Conflict, match="needs a validated customer"):
        sign(world, contract.id)


# ---- versions ---------------------------------------------------------------------------------


def amend(world, contract_id, **changes) -> Contract:
    with world.ctx.db.write() as s:
        return contracts.amend(s, world.system, contract_id, changes, at=world.ctx.clock.now())


def test_an_amendment_supersedes_the_signed_version_once_signed(world, ctx, validated):
    customer, model, offer = validated
    v1 = sign(world, draft(world, customer.id, terms(model, offer)).id)
    v2 = amend(world, v1.id, max_devices=500, destination_allow_list=("*.example.com",))
    assert (v2.number, v2.version, v2.supersedes_id, v2.status) == (v1.number, 2, v1.id, "draft")
    assert v2.scenario == v1.scenario and v2.allowed_models == [model]
    with pytest.raises(Conflict, match="version 2 is already drafted"):
        amend(world, v1.id, max_devices=7)
    with ctx.db.read() as s:
        assert contracts.contract_in_force(s, customer.id).id == v1.id  # until v2 is signed
    sign(world, v2.id)
    with ctx.db.read() as s:
        old = contracts.get_contract(s, v1.id)
        assert old.status == "signed" and contracts.superseded_by(s, old).id == v2.id
        assert not contracts.is_in_force(s, old)
        assert contracts.contract_in_force(s, customer.id).id == v2.id
        assert [c.id for c in contracts.contracts_in_force(s, customer.id)] == [v2.id]
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "contract.superseded")
        ).one()
        assert entry.target_id == str(v1.id) and entry.after["superseded_by"] == str(v2.id)
    with pytest.raises(Conflict, match="only the version in force"):
        amend(world, v1.id, max_devices=9)


def allow_list(world, tenant_id) -> tuple[list[str], str] | None:
    with world.ctx.db.read() as s:
        policy = s.get(DestinationPolicy, tenant_id)
        return None if policy is None else (policy.entries, policy.source)


def test_the_network_delivers_only_where_the_contracts_in_force_allow(world, validated):
    """Signing gives the network the contract's allow-list; a signed amendment replaces it;
    termination leaves the tenant an empty list (default deny), never no list at all."""
    customer, model, offer = validated
    v1 = draft(world, customer.id, terms(model, offer))
    assert allow_list(world, customer.tenant_id) is None  # a draft allows nothing yet
    sign(world, v1.id)
    assert allow_list(world, customer.tenant_id) == (
        ["203.0.113.10:443", "iot.example.com"],
        f"{v1.number} v1",
    )
    v2 = amend(world, v1.id, destination_allow_list=("*.example.com", "198.51.100.0/24:8883"))
    assert allow_list(world, customer.tenant_id)[1] == f"{v1.number} v1"  # until v2 is signed
    sign(world, v2.id)
    assert allow_list(world, customer.tenant_id) == (
        ["*.example.com", "198.51.100.0/24:8883"],
        f"{v1.number} v2",
    )
    terminate(world, v2.id)
    assert allow_list(world, customer.tenant_id) == ([], "")


def test_an_amendment_is_checked_like_a_draft(world, validated):
    customer, model, offer = validated
    v1 = sign(world, draft(world, customer.id, terms(model, offer)).id)
    with pytest.raises(InvalidInput, match="is not a known application scenario"):
        amend(world, v1.id, scenario="mining-crypto")
    with pytest.raises(InvalidInput, match="not a term"):
        amend(world, v1.id, status="signed")


# ---- termination ------------------------------------------------------------------------------


def terminate(world, contract_id, reason="customer left", principal=None) -> Contract:
    with world.ctx.db.write() as s:
        return contracts.terminate(
            s, principal or world.system, contract_id, reason=reason, at=world.ctx.clock.now()
        )


def subscription(world, ready, contract_id, status="active") -> uuid.UUID:
    with world.ctx.db.write() as s:
        sub = Subscription(
            tenant_id=ready.tenant_id,
            customer_id=ready.customer_id,
            billing_account_id=ready.account_id,
            contract_id=contract_id,
            offering_id=ready.offering_id,
            dev_eui=uuid.uuid4().hex[:16].upper(),
            terminal_model=ready.terminal_model,
            status=status,
            created_at=world.ctx.clock.now(),
        )
        s.add(sub)
        s.flush()
        return sub.id


def test_termination_needs_a_reason_and_no_dependent_subscription(world, ctx):
    ready = world.customer()
    with pytest.raises(InvalidInput, match="reason"):
        terminate(world, ready.contract_id, reason=" ")
    sub = subscription(world, ready, ready.contract_id)
    with pytest.raises(Conflict, match="1 subscription"):
        terminate(world, ready.contract_id)
    with ctx.db.write() as s:
        s.get(Subscription, sub).status = "terminated"
    done = terminate(world, ready.contract_id, principal=staff(world, Role.COMPLIANCE))
    assert done.status == "terminated" and done.terminated_at == ctx.clock.now()
    with ctx.db.read() as s:
        assert contracts.contract_in_force(s, ready.customer_id) is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "contract.terminated"))
        assert entry.one().reason == "customer left"


def test_a_superseded_version_is_not_terminated_on_its_own(world, ctx):
    ready = world.customer()
    v2 = sign(world, amend(world, ready.contract_id, max_devices=5).id)
    with pytest.raises(Conflict, match="superseded by version 2"):
        terminate(world, ready.contract_id)
    terminate(world, v2.id)
    with ctx.db.read() as s:  # terminating v2 does not bring v1 back into force
        assert contracts.contract_in_force(s, ready.customer_id) is None


def test_a_draft_can_be_dropped(world, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    assert terminate(world, contract.id, principal=staff(world, Role.BUSINESS)).status == (
        "terminated"
    )


# ---- the activation gate ----------------------------------------------------------------------


def check(world, contract_id, model, scenario) -> Contract:
    with world.ctx.db.read() as s:
        contract = contracts.get_contract(s, contract_id)
        return contracts.check_activation_allowed(s, contract, model, scenario)


def test_activation_needs_the_contract_to_cover_model_and_scenario(world):
    ready = world.customer(max_devices=1)
    assert check(world, ready.contract_id, ready.terminal_model, ready.scenario).id == (
        ready.contract_id
    )
    prefix = "no activation without a signed contract that covers the device's model and scenario"
    with pytest.raises(contracts.ActivationNotAllowed, match=f"{prefix}: model 'TQ-X'"):
        check(world, ready.contract_id, "TQ-X", ready.scenario)
    with pytest.raises(contracts.ActivationNotAllowed, match="covers scenario transport"):
        check(world, ready.contract_id, ready.terminal_model, "maritime")
    subscription(world, ready, ready.contract_id)
    with pytest.raises(contracts.ActivationNotAllowed, match="at most 1 devices"):
        check(world, ready.contract_id, ready.terminal_model, ready.scenario)


def test_no_activation_on_a_draft_or_terminated_contract(world, validated):
    customer, model, offer = validated
    contract = draft(world, customer.id, terms(model, offer))
    with pytest.raises(contracts.ActivationNotAllowed, match="no version in force"):
        check(world, contract.id, model, "transport-logistics")
    sign(world, contract.id)
    assert check(world, contract.id, model, "transport-logistics").id == contract.id
    terminate(world, contract.id)
    with pytest.raises(contracts.ActivationNotAllowed, match="no version in force"):
        check(world, contract.id, model, "transport-logistics")


def test_an_old_version_resolves_to_the_one_in_force(world, ctx):
    ready = world.customer()
    second = terminal_model(world, 777)
    v2 = sign(
        world, amend(world, ready.contract_id, allowed_models=(ready.terminal_model, second)).id
    )
    assert check(world, ready.contract_id, second, ready.scenario).id == v2.id


def test_offerings_in_the_text_keep_their_disclosed_prices(world, ctx):
    ready = world.customer()
    with ctx.db.write() as s:
        s.get(ProductOffering, ready.offering_id).lifecycle_status = "Retired"
    with ctx.db.read() as s:
        contract = contracts.get_contract(s, ready.contract_id)
        assert "Tracker bundle" in contract.rendered_text
        assert contract.rendered_sha256 == contract_render.sha256_text(contract.rendered_text)


def test_customer_other_than_validated_blocks_activation(world, ctx):
    ready = world.customer(uscc=uscc_for(55))
    with ctx.db.write() as s:
        customers.change_status(
            s, world.system, ready.customer_id, "closed", at=ctx.clock.now(), reason="left"
        )
    with pytest.raises(contracts.ActivationNotAllowed, match="is closed"):
        check(world, ready.contract_id, ready.terminal_model, ready.scenario)
