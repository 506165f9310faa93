"""The live twin's demo customer, made a customer of the business side too.

``satiot up`` runs the digital twin as live traffic from the ``demo`` tenant's terminals
(:mod:`satiot.network.live_setup`). Without more, that traffic belongs to nobody the business
knows: no real-name customer, no contract, no IoT number or handle, so rating rejects every
message as ``no-subscription``, and the console's business pages stay empty. This module walks
the demo tenant through the same path an operator's staff take for a real customer, with the
same functions (nothing is written around them):

1. the operator's inventory for it: a licensed terminal model for the twin's terminals, a
   number block of its own (purpose :data:`PURPOSE`, so that demo numbers never come out of
   the operator's real blocks) and the default catalog;
2. the real-name record attached to the ``demo`` tenant, its documents (placeholders that say
   so), verification, the risk assessment, a billing account, and a contract signed for the
   twin's model on a bundle offering;
3. every device of the tenant without a live subscription is activated: terminal, IoT number
   and handle bound one-to-one-to-one (under :data:`HANDLE_PREFIX`, the demo's own prefix,
   unless the operator configured one).

Each step looks first, so running it again (every start, and every minute while devices wait)
adds only what is missing. Activations go in chunks of :data:`CHUNK` per transaction with a
pause between, like the twin's own provisioning, so a first start leaves the server responsive
while 10,000 terminals are adopted. The step is skipped when an identification node is
configured: that is a real deployment, whose node must not receive the demo's handles.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from satiot.api.context import AppContext
from satiot.bss import accounts, contracts, customers, documents, risk
from satiot.bss.activation import ActivationConfig, ActivationRequest, activate
from satiot.bss.catalog_seed import seed_catalog
from satiot.bss.contract_terms import ContractTerms
from satiot.bss.models import BillingAccount, Customer, ProductOffering, Subscription
from satiot.bss.order_items import TerminalIn
from satiot.bss.realname import PROVINCES
from satiot.bss.states import SUBSCRIPTION_LIVE_STATES
from satiot.core.auth.principal import Principal, system_principal
from satiot.core.bootstrap import operator_tenant
from satiot.core.db import Database
from satiot.core.models import Tenant
from satiot.core.services import BackgroundService
from satiot.network.live_setup import DEMO_TENANT_SLUG
from satiot.network.models import Device
from satiot.oss import number_blocks, terminals
from satiot.oss.models import NumberBlock, TerminalModel

log = logging.getLogger(__name__)

#: The twin's terminals as one licensed model (a licence number of the documented form).
MODEL = "SATIOT-TWIN-1"
LICENCE = "00-D001-260001"
#: The demo's own number block: its numbers are never taken from the operator's blocks.
BLOCK = "digital-twin-demo"
BLOCK_PREFIX = "14109999"  # 13-digit numbers 1410999900000-1410999999999
PURPOSE = "digital twin demo terminals"
#: Handles of demo devices, when the operator has no prefix of its own configured.
HANDLE_PREFIX = "88.999.20261"
OFFERING = "SAT-BUNDLE-100"
#: Activations per transaction (about half a second of the embedded database's write lock),
#: and the pause between two.
CHUNK = 50
PAUSE_S = 0.05
#: How often the service looks for devices waiting to be adopted.
INTERVAL_S = 60.0

_PLACEHOLDER = b"%PDF-1.4\n% satiot digital twin demo: a placeholder, not a real document\n%%EOF\n"
#: REFERENCE §1's published resident ID; the representative signs up in person.
_LEGAL_REP = customers.Person("Demo Representative", "11010519491231002X")
_USCC = "91110108W00000001"  # + its check character, below


def _uscc() -> str:
    from stdnum.cn import uscc

    return _USCC + uscc.calc_check_digit(_USCC)


@dataclass(frozen=True)
class DemoBusiness:
    """The demo customer's ids, once it is ready to activate."""

    customer_id: uuid.UUID
    account_id: uuid.UUID
    offering_id: uuid.UUID


def _inventory(session: Session, system: Principal, at: datetime) -> None:
    if session.scalar(select(TerminalModel.id).where(TerminalModel.name == MODEL)) is None:
        today = at.date()
        spec = terminals.TerminalModelSpec(
            MODEL,
            "Digital twin satellite IoT terminal",
            "satiot digital twin",
            "satiot digital twin",
            LICENCE,
            today - timedelta(days=1),
            date(today.year + 5, 12, 31),
        )
        terminals.create_model(session, system, spec, at=at)
    if session.scalar(select(NumberBlock.id).where(NumberBlock.name == BLOCK)) is None:
        block = number_blocks.BlockSpec(BLOCK, BLOCK_PREFIX, PURPOSE, "demo")
        number_blocks.create_block(session, system, block, at=at)
    seed_catalog(session, system, at=at)


def _offering(session: Session) -> uuid.UUID:
    found = session.scalar(
        select(ProductOffering.id)
        .where(ProductOffering.code == OFFERING, ProductOffering.lifecycle_status == "Active")
        .order_by(ProductOffering.version.desc())
        .limit(1)
    )
    if found is None:
        raise LookupError(f"the catalog has no active {OFFERING} offering for the demo")
    return found


def _terms(offering_id: uuid.UUID, devices: int) -> ContractTerms:
    return ContractTerms(
        scenario="industrial-assets",
        scenario_description="satiot's digital twin: simulated terminals across China",
        allowed_models=(MODEL,),
        max_devices=max(devices, 10_000),
        quota_action="notify",
        monthly_messages_per_device=10_000,
        destination_allow_list=("example.com", "*.example.com"),
        service_area=tuple(PROVINCES),
        offering_ids=(offering_id,),
    )


def prepare(session: Session, tenant: Tenant, *, at: datetime, devices: int) -> DemoBusiness:
    """Steps 1 and 2 for ``tenant`` (the twin's ``demo`` tenant), as far as they are missing."""
    system = system_principal(operator_id(session), "twin-demo")
    _inventory(session, system, at)
    offering_id = _offering(session)
    customer = session.scalar(select(Customer).where(Customer.tenant_id == tenant.id))
    if customer is None:
        app = customers.Application(
            name=tenant.name,
            uscc=_uscc(),
            organization_type="enterprise",
            industry="C",
            province="11",
            legal_representative=_LEGAL_REP,
            agent=_LEGAL_REP,
            agent_phone="010 6000 0000",
            address="satiot digital twin (demo)",
        )
        customer = customers.onboard(session, system, app, at=at, tenant_id=tenant.id)
        for kind in customers.required_documents(customer):
            documents.file_document(
                session,
                system,
                customer.id,
                kind=kind,
                filename=f"{kind}-demo.pdf",
                content=_PLACEHOLDER,
                at=at,
            )
        customers.change_status(
            session, system, customer.id, "validated", at=at, reason="digital twin demo"
        )
        verdict = risk.assess(session, system, customer.id, at=at)
        if not verdict.passed:  # the demo's own record must pass as any customer's would
            raise RuntimeError(f"the demo customer fails its risk assessment: {verdict}")
    account = session.scalar(
        select(BillingAccount).where(BillingAccount.customer_id == customer.id).limit(1)
    )
    if account is None:
        account = accounts.open_account(
            session, system, customer.id, payment_mode="postpaid", at=at, name="Demo fleet"
        )
    if contracts.contract_in_force(session, customer.id) is None:
        contract = contracts.draft(
            session, system, customer.id, _terms(offering_id, devices), at=at
        )
        contracts.sign(
            session,
            system,
            contract.id,
            signer_name=_LEGAL_REP.name,
            signer_role="legal representative",
            at=at,
        )
    return DemoBusiness(customer.id, account.id, offering_id)


def operator_id(session: Session) -> uuid.UUID:
    operator = operator_tenant(session)
    if operator is None:
        raise LookupError("the operator tenant is not seeded yet")
    return operator.id


def waiting(session: Session, tenant_id: uuid.UUID, limit: int) -> list[str]:
    """DevEUIs of the tenant's devices that no live subscription holds yet."""
    held = exists().where(
        Subscription.dev_eui == Device.dev_eui,
        Subscription.status.in_(SUBSCRIPTION_LIVE_STATES),
    )
    return list(
        session.scalars(
            select(Device.dev_eui)
            .where(Device.tenant_id == tenant_id, ~held)
            .order_by(Device.dev_eui)
            .limit(limit)
        )
    )


def adopt(
    ctx: AppContext,
    *,
    chunk: int = CHUNK,
    pause_s: float = PAUSE_S,
    stop: threading.Event | None = None,
) -> int:
    """Bring the ``demo`` tenant into the business (see the module); the devices activated.

    Does nothing when the tenant does not exist yet (the twin has not provisioned it) or an
    identification node is configured; ``stop`` ends it between two chunks."""
    if ctx.settings.handle_node_url:
        return 0
    db: Database = ctx.db
    with db.read() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == DEMO_TENANT_SLUG))
        if tenant is None or not waiting(s, tenant.id, 1):
            return 0
        devices = int(
            s.scalar(select(func.count(Device.id)).where(Device.tenant_id == tenant.id)) or 0
        )
    with db.write() as s:
        ready = prepare(s, tenant, at=ctx.clock.now(), devices=devices)
    settings = ctx.settings
    config = ActivationConfig(
        kek=ctx.kek,
        handle_prefix=settings.handle_prefix or HANDLE_PREFIX,
        quarantine_days=settings.number_quarantine_days,
        number_purpose=PURPOSE,
    )
    done = 0
    while stop is None or not stop.is_set():
        with db.write() as s:
            system = system_principal(operator_id(s), "twin-demo")
            batch = waiting(s, tenant.id, chunk)
            at = ctx.clock.now()
            for dev_eui in batch:
                request = ActivationRequest(
                    customer_id=ready.customer_id,
                    billing_account_id=ready.account_id,
                    offering_id=ready.offering_id,
                    terminal=TerminalIn(dev_eui=dev_eui, terminal_model=MODEL),
                    reason="digital twin demo",
                )
                activate(s, system, request, at=at, config=config)
        done += len(batch)
        if len(batch) < chunk:
            break
        if done % (40 * chunk) == 0:
            log.info("twin demo: %d devices activated so far", done)
        if pause_s:
            time.sleep(pause_s)
    log.info("twin demo: %d devices of the demo customer activated", done)
    return done


def demo_business_service() -> BackgroundService:
    """The twin's demo customer kept in the business: adopted at start, then every minute
    (devices the twin adds later are adopted too); a stop ends it between two chunks."""

    def run(ctx: AppContext, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                adopt(ctx, stop=stop)
            except Exception:
                log.exception("twin demo: adopting the demo customer's devices failed")
            stop.wait(INTERVAL_S)

    return BackgroundService("twin-demo-business", run)
