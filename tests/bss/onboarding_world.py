"""Customers onboarded through the real workflow, for tests that need one ready to order.

:func:`onboard_customer` (``world.customer(...)``) runs every step an operator takes: the
real-name record and its tenant, the documents, verification, the risk assessment, a billing
account, and a contract drafted and signed for a licensed terminal model and a launched
offering. Tests of the onboarding steps themselves use the smaller helpers here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from stdnum.cn import uscc as stdnum_uscc

from satiot.bss import accounts, contracts, customers, documents, risk
from satiot.bss.contract_terms import ContractTerms
from satiot.bss.models import ProductOffering, ProductOfferingPrice
from satiot.core.models import Tenant
from satiot.oss import terminals

#: REFERENCE §1's published valid resident IDs.
LEGAL_REP_ID = "11010519491231002X"
AGENT_ID = "440524188001010014"
PDF = b"%PDF-1.4\n% a scan\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def uscc_for(n: int, region: str = "110000") -> str:
    """A valid credit code, distinct for each ``n`` (organisation code ``W`` + 8 digits)."""
    body = f"91{region}W{n:08d}"
    return body + stdnum_uscc.calc_check_digit(body)


def application(n: int = 1, **changes: Any) -> customers.Application:
    """A clean application (Beijing transport company; the agent is not the legal rep)."""
    app = customers.Application(
        name=f"Walker Logistics {n}",
        uscc=uscc_for(n),
        organization_type="enterprise",
        industry="G",
        province="11",
        legal_representative=customers.Person("Zhang Wei", LEGAL_REP_ID),
        agent=customers.Person("Li Na", AGENT_ID),
        agent_phone="138 0013 8000",
        address="1 Walker Road, Beijing",
    )
    return replace(app, **changes)


def terminal_model(world: Any, n: int) -> str:
    """A licensed terminal model's name (a new one for each ``n``)."""
    name = f"TQ-BSS-{n}"
    with world.ctx.db.write() as s:
        terminals.create_model(
            s,
            world.system,
            terminals.TerminalModelSpec(
                name,
                "Satellite IoT module",
                "Walker Devices",
                "Walker Devices",
                f"00-BS{n % 100:02d}-{n:06d}",
                date(2025, 1, 1),
                date(2028, 12, 31),
            ),
            at=world.ctx.clock.now(),
        )
    return name


def offering(world: Any, n: int, *, status: str = "Active") -> uuid.UUID:
    """An offering with a monthly fee (with allowances) and a per-byte price."""
    with world.ctx.db.write() as s:
        row = ProductOffering(
            code=f"BSS-TEST-{n}",
            version=1,
            name=f"Tracker bundle {n}",
            description="",
            lifecycle_status=status,
            is_add_on=False,
            created_at=world.ctx.clock.now(),
        )
        s.add(row)
        s.flush()
        s.add_all(
            [
                ProductOfferingPrice(
                    offering_id=row.id,
                    name="Monthly fee",
                    kind="recurring",
                    amount_micros=30_000_000,
                    allowance_messages=1000,
                    allowance_bytes=50_000,
                ),
                ProductOfferingPrice(
                    offering_id=row.id,
                    name="Extra data",
                    kind="per-byte",
                    amount_micros=12,
                    min_billable_bytes=20,
                ),
            ]
        )
        return row.id


def terms(model: str, offering_id: uuid.UUID, **changes: Any) -> ContractTerms:
    base = ContractTerms(
        scenario="transport-logistics",
        scenario_description="Container trackers on trucks between Beijing and Tianjin",
        allowed_models=(model,),
        max_devices=100,
        monthly_messages_per_device=3000,
        monthly_bytes_per_device=100_000,
        quota_action="suspend",
        destination_allow_list=("203.0.113.10:443", "iot.example.com"),
        service_area=("11", "12"),
        offering_ids=(offering_id,),
    )
    return replace(base, **changes)


@dataclass(frozen=True)
class Onboarded:
    """What a test needs of a customer ready to order and activate."""

    tenant_id: uuid.UUID
    customer_id: uuid.UUID
    uscc: str
    account_id: uuid.UUID
    contract_id: uuid.UUID
    contract_number: str
    terminal_model: str
    scenario: str
    offering_id: uuid.UUID


def file_all_documents(world: Any, customer_id: uuid.UUID) -> list[uuid.UUID]:
    at = world.ctx.clock.now()
    with world.ctx.db.write() as s:
        return [
            documents.file_document(
                s, world.system, customer_id, kind=kind, filename=f"{kind}.pdf", content=PDF, at=at
            ).id
            for kind in documents.DOCUMENT_KINDS
        ]


def onboard_customer(
    world: Any,
    tenant: Tenant | uuid.UUID | None = None,
    *,
    name: str | None = None,
    uscc: str | None = None,
    scenario: str = "transport-logistics",
    terminal_models: tuple[str, ...] | None = None,
    offering_id: uuid.UUID | None = None,
    payment_mode: str = "postpaid",
    max_devices: int = 100,
) -> Onboarded:
    """A validated customer whose risk assessment passed, with a billing account and a signed
    contract in force. ``tenant``: attach to this existing customer tenant instead of creating
    one. Missing terminal models and offerings are created."""
    n = world._next()
    models = terminal_models or (terminal_model(world, n),)
    offer = offering_id or offering(world, n)
    app = application(n, name=name or f"Walker Logistics {n}", uscc=uscc or uscc_for(n))
    tenant_id = tenant.id if isinstance(tenant, Tenant) else tenant
    system, at = world.system, world.ctx.clock.now()
    with world.ctx.db.write() as s:
        customer = customers.onboard(s, system, app, at=at, tenant_id=tenant_id)
        customer_id, tenant_id, code = customer.id, customer.tenant_id, customer.uscc
    file_all_documents(world, customer_id)
    with world.ctx.db.write() as s:
        customers.change_status(s, system, customer_id, "validated", at=at, reason="documents ok")
        assert risk.assess(s, system, customer_id, at=at).passed
        account = accounts.open_account(s, system, customer_id, payment_mode=payment_mode, at=at)
        contract = contracts.draft(
            s,
            system,
            customer_id,
            terms(
                models[0], offer, allowed_models=models, scenario=scenario, max_devices=max_devices
            ),
            at=at,
        )
        contracts.sign(
            s,
            system,
            contract.id,
            signer_name="Zhang Wei",
            signer_role="legal representative",
            at=at,
        )
        return Onboarded(
            tenant_id=tenant_id,
            customer_id=customer_id,
            uscc=code,
            account_id=account.id,
            contract_id=contract.id,
            contract_number=contract.number,
            terminal_model=models[0],
            scenario=scenario,
            offering_id=offer,
        )
