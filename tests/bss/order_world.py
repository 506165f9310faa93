"""A customer ready to order, the operator's inventory and catalog, and terminals to activate.

The customer, its billing account and its signed contract are written as rows (the onboarding
and contract workflows have their own tests); the OSS inventory (a licensed model, a number
block) and the catalog go through their domain functions.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from stdnum import luhn

from satiot.api.context import AppContext
from satiot.bss.activation import ActivationConfig
from satiot.bss.catalog_seed import seed_catalog
from satiot.bss.models import BillingAccount, Contract, Customer, ProductOffering
from satiot.bss.order_items import ItemIn, OrderIn, TerminalIn
from satiot.core.auth.roles import Role
from satiot.core.models import Tenant, User
from satiot.oss import number_blocks, terminals
from tests.factories import World

PREFIX = "88.608.8899"
MODEL = "TQ-M100"
TAC = "35417803"
SCENARIO = "environmental-monitoring"
_serial = itertools.count(1)


def imei(n: int) -> str:
    """A valid IMEI of the test model (TAC + serial + Luhn digit)."""
    body = f"{TAC}{n:06d}"
    return body + luhn.calc_check_digit(body)


@dataclass(frozen=True)
class Terminal:
    imei: str
    dev_eui: str
    dev_addr: str
    nwk_s_key: str
    app_s_key: str

    def spec(self, *, with_session: bool = True, **changes: Any) -> TerminalIn:
        fields: dict[str, Any] = {
            "dev_eui": self.dev_eui,
            "terminal_model": MODEL,
            "imei": self.imei,
        }
        if with_session:
            fields |= {
                "dev_addr": self.dev_addr,
                "nwk_s_key": self.nwk_s_key,
                "app_s_key": self.app_s_key,
            }
        return TerminalIn(**(fields | changes))

    def csv_row(self, offering: str = "SAT-BUNDLE-100") -> str:
        return (
            f"{self.imei},{self.dev_eui},{MODEL},{offering},"
            f"{self.dev_addr},{self.nwk_s_key},{self.app_s_key}"
        )


CSV_HEADER = "imei,dev_eui,terminal_model,offering,dev_addr,nwk_s_key,app_s_key"


def terminal() -> Terminal:
    n = next(_serial)
    return Terminal(
        imei=imei(n),
        dev_eui=f"{0x70B3D57E00000000 + n:016X}",
        dev_addr=f"{0x26100000 + n:08X}",
        nwk_s_key=f"{n:032X}",
        app_s_key=f"{n + 0x10000:032X}",
    )


@dataclass
class Shop:
    """One customer ready to order, with its users and the catalog's codes."""

    ctx: AppContext
    world: World
    tenant: Tenant
    customer_id: uuid.UUID
    account_id: uuid.UUID
    contract_id: uuid.UUID
    offerings: dict[str, uuid.UUID]
    admin: User

    @property
    def config(self) -> ActivationConfig:
        return ActivationConfig.from_settings(self.ctx.settings, self.ctx.kek)

    def add(
        self, t: Terminal, line: int = 0, offering: str = "SAT-BUNDLE-100", **kw: Any
    ) -> ItemIn:
        return ItemIn("add", line, offering=offering, terminal=t.spec(**kw))

    def order(self, *items: ItemIn, **kw: Any) -> OrderIn:
        return OrderIn(items=tuple(items), **kw)


def operator_inventory(ctx: AppContext, world: World) -> dict[str, uuid.UUID]:
    """The licensed model, a number block, the handle prefix and the default catalog (once)."""
    ctx.settings = ctx.settings.model_copy(update={"handle_prefix": PREFIX})
    at = ctx.clock.now()
    with ctx.db.write() as s:
        if s.scalar(select(ProductOffering.id).limit(1)) is None:
            terminals.create_model(
                s,
                world.system,
                terminals.TerminalModelSpec(
                    MODEL,
                    "Satellite IoT module",
                    "Example Devices Co.",
                    "Example Devices Co.",
                    "00-B182-228209",
                    date(2025, 3, 1),
                    date(2028, 2, 29),
                    (TAC,),
                ),
                at=at,
            )
            spec = number_blocks.BlockSpec("b1", "14101234", "satellite IoT terminals", "national")
            number_blocks.create_block(s, world.system, spec, at=at)
            seed_catalog(s, world.system, at=at)
        return {o.code: o.id for o in s.scalars(select(ProductOffering))}


def shop(
    ctx: AppContext,
    world: World,
    *,
    max_devices: int = 100,
    models: tuple[str, ...] = (MODEL,),
    disclose: tuple[str, ...] = ("SAT-MSG", "SAT-BUNDLE-100", "EMERGENCY-PRIORITY"),
    risk: str = "passed",
) -> Shop:
    offerings = operator_inventory(ctx, world)
    tenant = world.tenant()
    at = ctx.clock.now()
    with ctx.db.write() as s:
        customer = Customer(
            tenant_id=tenant.id,
            name=f"{tenant.name} Co., Ltd.",
            uscc=_uscc(),
            uscc_check_ok=True,
            org_type="enterprise",
            industry="N",
            province="11",
            address="Beijing",
            legal_rep_name="Zhang San",
            legal_rep_id="11010519491231002X",
            agent_name="Li Si",
            agent_id="440524188001010014",
            agent_phone="",
            status="validated",
            risk_status=risk,
            risk_findings=[],
            created_at=at,
            updated_at=at,
        )
        s.add(customer)
        s.flush()
        account = BillingAccount(
            tenant_id=tenant.id,
            customer_id=customer.id,
            name=customer.name,
            payment_mode="postpaid",
            balance_micros=0,
            currency="CNY",
            status="active",
            created_at=at,
        )
        contract = Contract(
            tenant_id=tenant.id,
            customer_id=customer.id,
            number=f"SC-2026-{next(_serial):06d}",
            version=1,
            scenario=SCENARIO,
            allowed_models=list(models),
            max_devices=max_devices,
            quota_action="notify",
            destination_allow_list=[],
            service_area=["11"],
            offering_ids=[str(offerings[c]) for c in disclose],
            status="signed",
            signed_at=at,
            created_at=at,
        )
        s.add_all([account, contract])
        s.flush()
        ids = (customer.id, account.id, contract.id)
    admin = world.user(tenant, Role.CUSTOMER_ADMIN)
    return Shop(ctx, world, tenant, *ids, offerings=offerings, admin=admin)


_uscc_serial = itertools.count(1)


def _uscc() -> str:
    """A distinct, well-formed unified social credit code per customer."""
    from stdnum.cn import uscc

    body = f"91110000MA{next(_uscc_serial):07d}"
    return body + uscc.calc_check_digit(body)
