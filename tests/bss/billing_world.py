"""Rows that rating and billing tests need, written directly (no onboarding workflow).

Rating and billing only read customers, contracts, offerings and subscriptions, so their
tests build those rows here and stay independent of how the sales modules create them.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from satiot.api.context import AppContext
from satiot.bss.billing import RunSettings, run_bills
from satiot.bss.models import (
    BillingAccount,
    Contract,
    Customer,
    CustomerBill,
    ProductOffering,
    ProductOfferingPrice,
    Subscription,
)
from satiot.bss.rating import consumer as rating_consumer
from satiot.core import events
from satiot.core.events import consume_batch
from satiot.core.ids import new_id
from satiot.core.models import Tenant
from tests.factories import World

USCCS = ("91110000600037341L", "91310115MA1K3BTP2B", "9144030071526726XG")


def price(kind: str, amount: int, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "amount_micros": amount, **kw}


@dataclass
class Shop:
    """One customer with one billing account and contract, and a helper for devices."""

    ctx: AppContext
    tenant: Tenant
    customer_id: uuid.UUID
    account_id: uuid.UUID
    contract_id: uuid.UUID
    n: list[int] = field(default_factory=lambda: [0])

    def device(
        self,
        offering_id: uuid.UUID,
        activated_at: datetime | None,
        *,
        status: str = "active",
        add_ons: list[str] | None = None,
        terminated_at: datetime | None = None,
        account_id: uuid.UUID | None = None,
    ) -> Subscription:
        self.n[0] += 1
        dev_eui = f"{self.tenant.id.hex[-8:]}{self.n[0]:08X}".upper()
        with self.ctx.db.write() as s:
            sub = Subscription(
                tenant_id=self.tenant.id,
                customer_id=self.customer_id,
                billing_account_id=account_id or self.account_id,
                contract_id=self.contract_id,
                offering_id=offering_id,
                add_on_ids=add_ons or [],
                dev_eui=dev_eui,
                terminal_model="TQ-100",
                status=status,
                created_at=activated_at or self.ctx.clock.now(),
                activated_at=activated_at,
                terminated_at=terminated_at,
            )
            s.add(sub)
        return sub

    def account(self, payment_mode: str = "postpaid", balance: int = 0) -> uuid.UUID:
        with self.ctx.db.write() as s:
            acc = BillingAccount(
                tenant_id=self.tenant.id,
                customer_id=self.customer_id,
                name=f"Account {self.n[0]}",
                payment_mode=payment_mode,
                balance_micros=balance,
                status="active",
                created_at=self.ctx.clock.now(),
            )
            s.add(acc)
        return acc.id


def offering(ctx: AppContext, name: str, prices: list[dict[str, Any]], *, add_on: bool = False):
    with ctx.db.write() as s:
        o = ProductOffering(
            code=f"{name.lower().replace(' ', '-')}-{new_id().hex[-10:]}",
            version=1,
            name=name,
            lifecycle_status="Active",
            is_add_on=add_on,
            created_at=ctx.clock.now(),
        )
        s.add(o)
        s.flush()
        for p in prices:
            s.add(ProductOfferingPrice(offering_id=o.id, name=p.pop("name", p["kind"]), **p))
    return o.id


def shop(
    world: World,
    *,
    payment_mode: str = "postpaid",
    balance: int = 0,
    quota_messages: int | None = None,
    quota_bytes: int | None = None,
    quota_action: str = "notify",
    stop_at_zero_balance: bool = False,
    uscc: str = USCCS[0],
    name: str = "北京示例物联科技有限公司",
) -> Shop:
    return _shop_for(
        world,
        world.tenant(),
        payment_mode=payment_mode,
        balance=balance,
        quota_messages=quota_messages,
        quota_bytes=quota_bytes,
        quota_action=quota_action,
        stop_at_zero_balance=stop_at_zero_balance,
        uscc=uscc,
        name=name,
    )


def _shop_for(
    world: World,
    tenant: Tenant,
    *,
    payment_mode: str = "postpaid",
    balance: int = 0,
    quota_messages: int | None = None,
    quota_bytes: int | None = None,
    quota_action: str = "notify",
    stop_at_zero_balance: bool = False,
    uscc: str = USCCS[0],
    name: str = "北京示例物联科技有限公司",
) -> Shop:
    ctx = world.ctx
    now = ctx.clock.now()
    with ctx.db.write() as s:
        customer = Customer(
            tenant_id=tenant.id,
            name=name,
            uscc=uscc,
            uscc_check_ok=True,
            org_type="enterprise",
            industry="D",
            province="11",
            address="北京市海淀区示例路1号",
            legal_rep_name="张三",
            legal_rep_id="11010519491231002X",
            agent_name="李四",
            agent_id="440524188001010014",
            status="validated",
            risk_status="passed",
            created_at=now,
            updated_at=now,
        )
        s.add(customer)
        s.flush()
        account = BillingAccount(
            tenant_id=tenant.id,
            customer_id=customer.id,
            name="运维部 Operations",
            payment_mode=payment_mode,
            balance_micros=balance,
            status="active",
            created_at=now,
        )
        contract = Contract(
            tenant_id=tenant.id,
            customer_id=customer.id,
            number=f"C-{new_id().hex[-12:]}",
            version=1,
            scenario="energy-monitoring",
            allowed_models=["TQ-100"],
            max_devices=10_000,
            monthly_messages_per_device=quota_messages,
            monthly_bytes_per_device=quota_bytes,
            quota_action=quota_action,
            destination_allow_list=[],
            service_area=["11"],
            offering_ids=[],
            stop_at_zero_balance=stop_at_zero_balance,
            status="signed",
            signed_at=now,
            created_at=now,
        )
        s.add_all([account, contract])
    return Shop(ctx, tenant, customer.id, account.id, contract.id)


def uplink(
    ctx: AppContext,
    sub: Subscription,
    size: int,
    at: datetime,
    *,
    tenant_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Emit an ``uplink.accepted`` event as ingest would, for ``size`` payload bytes."""
    with ctx.db.write() as s:
        return events.emit(
            s,
            "uplink.accepted",
            at=at + timedelta(seconds=5),
            tenant_id=tenant_id or sub.tenant_id,
            payload={
                "type": "uplink.accepted",
                "id": str(new_id()),
                "tenant_id": str(tenant_id or sub.tenant_id),
                "dev_eui": sub.dev_eui,
                "f_cnt": 1,
                "f_port": 1,
                "payload": base64.b64encode(b"x" * size).decode(),
                "received_at": at.isoformat().replace("+00:00", "Z"),
            },
        )


def downlink_sent(ctx: AppContext, sub: Subscription, size: int, at: datetime) -> uuid.UUID:
    with ctx.db.write() as s:
        return events.emit(
            s,
            "downlink.sent",
            at=at,
            tenant_id=sub.tenant_id,
            payload={
                "type": "downlink.sent",
                "id": str(new_id()),
                "dev_eui": sub.dev_eui,
                "status": "sent",
                "payload": base64.b64encode(b"y" * size).decode(),
                "sent_at": at.isoformat().replace("+00:00", "Z"),
            },
        )


def rate_all(ctx: AppContext, batch_size: int = 500) -> int:
    """Run the rating consumer until the log is drained; return events read."""
    consumer = rating_consumer(batch_size)
    total = 0
    while n := consume_batch(ctx.db, consumer, ctx.clock):
        total += n
    return total


def pooled_usage(ctx: AppContext, world: World, devices: int, **shop_args: Any) -> Shop:
    """A shop whose ``devices`` share a pool of 4 messages each ("Shared plan"), each having
    sent one 20-byte uplink on 5 November 2026, rated."""
    s = shop(world, **shop_args)
    off = offering(
        ctx, "Shared plan", [price("recurring", 3_000_000, allowance_messages=4, pooled=True)]
    )
    for n in range(devices):
        sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
        uplink(ctx, sub, 20, datetime(2026, 11, 5, n, tzinfo=UTC))
    rate_all(ctx)
    return s


def sent_bill_for(world: World, tenant_id: uuid.UUID) -> dict[str, str]:
    """A sent October bill of ``tenant_id`` (reusing its customer, account and contract if
    it has them), credited ¥0.10: ids of the bill, its credit note, run, account and
    subscription, for route walkers."""
    from sqlalchemy import select

    from satiot.bss.billing import RunSettings, run_bills
    from satiot.bss.credit_notes import issue_credit_note
    from satiot.bss.invoices import send_bill, validate_bill
    from satiot.bss.models import CustomerBill

    ctx = world.ctx
    with ctx.db.read() as s:
        customer = s.scalar(select(Customer).where(Customer.tenant_id == tenant_id))
        account = s.scalar(select(BillingAccount).where(BillingAccount.tenant_id == tenant_id))
        contract = s.scalar(select(Contract).where(Contract.tenant_id == tenant_id))
    if customer is None or account is None or contract is None:
        with ctx.db.read() as s:
            tenant = s.get(Tenant, tenant_id)
        assert tenant is not None and customer is None
        made = _shop_for(world, tenant)
    else:
        made = Shop(ctx, _tenant(ctx, tenant_id), customer.id, account.id, contract.id)
    off = offering(ctx, "Walker plan", [price("recurring", 1_000_000)])
    sub = made.device(off, datetime(2026, 10, 1, tzinfo=ctx.clock.now().tzinfo))
    settings = RunSettings(600, "SAT", 30, "Asia/Shanghai")
    with ctx.db.write() as s:
        run = run_bills(
            s,
            world.system,
            "2026-10",
            at=ctx.clock.now(),
            settings=settings,
            accounts=[made.account_id],
        )
        bill_id = s.scalar(select(CustomerBill.id).where(CustomerBill.bill_run_id == run.id))
        assert bill_id is not None
        validate_bill(s, world.system, bill_id, at=ctx.clock.now())
        send_bill(s, world.system, bill_id, at=ctx.clock.now())
        note = issue_credit_note(
            s, world.system, bill_id, amount_micros=100_000, reason="Walker credit",
            at=ctx.clock.now(), series_prefix="SAT", tz="Asia/Shanghai",
        )  # fmt: skip
    return {
        "bill_id": str(bill_id),
        "note_id": str(note.id),
        "run_id": str(run.id),
        "account_id": str(made.account_id),
        "subscription_id": str(sub.id),
    }


def _tenant(ctx: AppContext, tenant_id: uuid.UUID) -> Tenant:
    with ctx.db.read() as s:
        tenant = s.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant


#: The settings of the tests' bill runs: 6 % VAT, series SAT, 30 days to pay, China's months.
RUN_SETTINGS = RunSettings(600, "SAT", 30, "Asia/Shanghai")
#: When they bill November: 1 December, 10:00 in China.
DEC_1 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def november_bill(world: World, **shop_kw: Any) -> tuple[Shop, uuid.UUID]:
    """A customer with one device at ¥100 a month and ¥0.01 a message that sent 1 message in
    November, and its November bill, still new: ¥100.01 + 6 % VAT = ¥106.01."""
    ctx = world.ctx
    s = shop(world, **shop_kw)
    off = offering(ctx, "Monthly", [price("recurring", 100_000_000), price("per-message", 10_000)])
    sub = s.device(off, datetime(2026, 10, 1, tzinfo=UTC))
    uplink(ctx, sub, 10, datetime(2026, 11, 5, tzinfo=UTC))
    rate_all(ctx)
    with ctx.db.write() as w:
        run_bills(w, world.system, "2026-11", at=DEC_1, settings=RUN_SETTINGS)
        bill_id = w.scalar(
            select(CustomerBill.id).where(CustomerBill.billing_account_id == s.account_id)
        )
    assert bill_id is not None
    return s, bill_id
