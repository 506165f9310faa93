"""Tables of business support, named after the TM Forum resources they follow.

Customers are enterprise tenants: a :class:`Customer` row holds the real-name record of the
tenant it belongs to. Money columns are integers of micro-yuan (see :mod:`satiot.bss.money`).
States come from :mod:`satiot.bss.states`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from satiot.core.auth.tenancy import TenantListed, TenantScoped, tenant_listing_index
from satiot.core.db import Base, UTCDateTime
from satiot.core.ids import new_id

Micros = BigInteger


# -- customers (TMF629/632) ----------------------------------------------------------------


class Customer(TenantScoped, Base):
    """The real-name record of an enterprise or institution customer (its tenant's owner).

    ``status`` follows TMF632 organisation states plus ``manual-review`` for a credit code that
    is well formed but fails its check character (REFERENCE §1: real early codes do).
    """

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    uscc_check_ok: Mapped[bool] = mapped_column(Boolean)
    org_type: Mapped[str] = mapped_column(String(16))  # enterprise | institution
    industry: Mapped[str] = mapped_column(String(1))  # GB/T 4754 section letter
    province: Mapped[str] = mapped_column(String(2))  # GB/T 2260 province code
    address: Mapped[str] = mapped_column(String(500), default="")
    legal_rep_name: Mapped[str] = mapped_column(String(100))
    legal_rep_id: Mapped[str] = mapped_column(String(18))
    agent_name: Mapped[str] = mapped_column(String(100))
    agent_id: Mapped[str] = mapped_column(String(18))
    agent_phone: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    risk_status: Mapped[str] = mapped_column(String(16))  # pending | passed | failed
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_findings: Mapped[list[str]] = mapped_column(JSON, default=list)
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    risk_assessed_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("tenant_id", name="uq_customers_tenant"),)


class CustomerDocument(TenantScoped, Base):
    """A document filed for real-name verification (licence scan, ID copies, authorisation)."""

    __tablename__ = "customer_documents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(200))


class BillingAccount(TenantScoped, Base):
    """Who pays, how (postpaid or prepaid), and the prepaid balance."""

    __tablename__ = "billing_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    payment_mode: Mapped[str] = mapped_column(String(16))  # postpaid | prepaid
    balance_micros: Mapped[int] = mapped_column(Micros, default=0)
    #: A prepaid balance that falls below this is announced to the customer once
    #: (``billing-account.balance-low``), before the service stops at zero; None: no notice.
    low_balance_micros: Mapped[int | None] = mapped_column(Micros)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- contracts -----------------------------------------------------------------------------


class Contract(TenantScoped, Base):
    """One version of a customer's service contract.

    A new version supersedes the previous (``supersedes_id``) and is signed again; the signed
    text is kept (``rendered_text``) with its SHA-256, so what was signed can be shown again
    and proven unchanged.
    """

    __tablename__ = "contracts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("contracts.id"))
    scenario: Mapped[str] = mapped_column(String(64))  # application scenario code
    scenario_description: Mapped[str] = mapped_column(Text, default="")
    allowed_models: Mapped[list[str]] = mapped_column(JSON)  # terminal model names
    max_devices: Mapped[int] = mapped_column(Integer)
    monthly_messages_per_device: Mapped[int | None] = mapped_column(Integer)
    monthly_bytes_per_device: Mapped[int | None] = mapped_column(BigInteger)
    quota_action: Mapped[str] = mapped_column(String(16))  # suspend | throttle | notify
    destination_allow_list: Mapped[list[str]] = mapped_column(JSON)
    service_area: Mapped[list[str]] = mapped_column(JSON)  # province codes
    offering_ids: Mapped[list[str]] = mapped_column(JSON)  # disclosed tariffs (offering ids)
    stop_at_zero_balance: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))  # draft | signed | terminated
    rendered_text: Mapped[str | None] = mapped_column(Text)
    rendered_sha256: Mapped[str | None] = mapped_column(String(64))
    signer_name: Mapped[str | None] = mapped_column(String(100))
    signer_role: Mapped[str | None] = mapped_column(String(100))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by: Mapped[str | None] = mapped_column(String(200))  # the recording principal
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("number", "version", name="uq_contracts_number_version"),)


# -- catalog (TMF620) ----------------------------------------------------------------------


class ProductOffering(Base):
    """A sellable offering, versioned: a change makes a new version and subscribers keep the
    version they bought."""

    __tablename__ = "product_offerings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lifecycle_status: Mapped[str] = mapped_column(String(16))  # In design | Active | Retired
    is_add_on: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("code", "version", name="uq_offerings_code_version"),)


class ProductOfferingPrice(Base):
    """One price of an offering.

    ``kind``: ``recurring`` (monthly, prorated), ``one-time``, ``per-message``, ``per-byte``
    (with ``min_billable_bytes`` per message). A recurring price may carry allowances
    (messages/bytes included per device per month), ``pooled`` across the customer's devices
    on the same offering. ``priority`` marks the emergency-priority add-on.
    """

    __tablename__ = "product_offering_prices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    offering_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("product_offerings.id"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)  # order within the offering
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    amount_micros: Mapped[int] = mapped_column(Micros)
    min_billable_bytes: Mapped[int] = mapped_column(Integer, default=0)
    allowance_messages: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pooled: Mapped[bool] = mapped_column(Boolean, default=False)
    applies_to: Mapped[str] = mapped_column(String(16), default="all")  # uplink|downlink|all
    priority: Mapped[bool] = mapped_column(Boolean, default=False)


# -- orders (TMF622) and product inventory (TMF637) ----------------------------------------


class ProductOrder(TenantScoped, Base):
    __tablename__ = "product_orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"))
    billing_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("billing_accounts.id"))
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # api | csv
    external_id: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(200))  # the placing principal's actor
    requested_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProductOrderItem(TenantScoped, Base):
    """One line of an order: add a device on an offering, modify its offering, or delete it."""

    __tablename__ = "product_order_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("product_orders.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8))  # add | modify | delete
    offering_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("product_offerings.id"))
    add_on_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("subscriptions.id"))
    terminal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # imei, dev_eui, model…
    reason: Mapped[str | None] = mapped_column(String(500))  # why (modify, delete)
    state: Mapped[str] = mapped_column(String(16))
    error_field: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("order_id", "line", name="uq_order_items_order_line"),)


#: Subscriptions that still hold their identities (not terminated, cancelled or aborted).
LIVE_SUBSCRIPTION_SQL = "status NOT IN ('terminated', 'cancelled', 'aborted')"


class Subscription(TenantListed, Base):
    """A product in the customer's inventory (TMF637): one device on one offering version.

    It carries the "one device, one code, one number" binding: terminal identity (IMEI and
    DevEUI), the IoT number and the handle, each unique while the subscription holds them.
    """

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    billing_account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("billing_accounts.id"), index=True
    )
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"))
    offering_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("product_offerings.id"))
    add_on_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("devices.id"))
    imei: Mapped[str | None] = mapped_column(String(16))
    dev_eui: Mapped[str] = mapped_column(String(16))
    terminal_model: Mapped[str] = mapped_column(String(100))
    iot_number: Mapped[str | None] = mapped_column(String(13))
    handle: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(String(500))
    #: Who a suspension came from (bss.subscriptions.SUSPENSION_ORIGINS): it decides who may
    #: lift it. Null when not suspended.
    suspended_by: Mapped[str | None] = mapped_column(String(16))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    throttled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        tenant_listing_index("subscriptions"),
        Index("ix_subscriptions_dev_eui", "dev_eui"),
        # Rating counts a pool's devices in a month (account, offering, active in it) for
        # every batch: this index answers the count without reading the rows.
        Index(
            "ix_subscriptions_pool",
            "billing_account_id",
            "offering_id",
            "activated_at",
            "terminated_at",
        ),
        # "One device, one code, one number": each identity is bound to one live
        # subscription at most, whatever the tenant (partial unique indexes: an ended
        # subscription keeps its record but releases the identity).
        *(
            Index(
                f"uq_subscriptions_live_{column}",
                column,
                unique=True,
                sqlite_where=text(LIVE_SUBSCRIPTION_SQL),
                postgresql_where=text(LIVE_SUBSCRIPTION_SQL),
            )
            for column in ("device_id", "imei", "dev_eui", "iot_number", "handle")
        ),
    )


# -- rating (TMF635) -----------------------------------------------------------------------


#: The usage records a bill run has claimed (the condition of the bill's partial index).
BILLED_SQL: Final = "bill_id IS NOT NULL"
NO_ACCOUNT_SQL: Final = "billing_account_id IS NULL"  # ``ix_usage_without_account``


class UsageRecord(TenantScoped, Base):
    """One use of the network, keyed by the event it came from (rated once).

    ``state`` is TMF635's: ``rated`` (charged, waiting for a bill), ``billed`` (on ``bill_id``)
    or ``rejected`` (not charged; ``reason`` says why, e.g. no live subscription, or over a
    contract's quota cap), in which case the subscription and account may be unknown.
    ``offering_id`` is the subscription's offering, kept so that bills group usage by
    offering without a join.

    Like a call detail record, a usage record names its tenant, subscription and account
    without foreign keys to them. Rating is the only writer and takes those ids, in the same
    transaction, from the subscription it joined, whose own keys hold them; and none of
    those rows is ever deleted. On PostgreSQL each key was a trigger and a row lock per
    record: two thirds of the time a batch's records took to write (on SQLite, an index probe
    each: 3 % of a batch). The bill a record is charged on keeps its key: billing sets it
    once per record.
    """

    __tablename__ = "usage_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # = id (checked), so unique
    #: The tenant, without a key (see above; ``TenantScoped`` declares it with one), indexed
    #: with the id (``tenant_listing_index``): a customer's list of its usage, newest first,
    #: is read from the index in order instead of sorting every record of the tenant.
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    dev_eui: Mapped[str] = mapped_column(String(16))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    billing_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    offering_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(16))  # uplink | downlink
    bytes: Mapped[int] = mapped_column(Integer)
    billable_bytes: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM (UTC+8 business month)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    charge_micros: Mapped[int] = mapped_column(Micros)
    state: Mapped[str] = mapped_column(String(16))  # rated | billed | rejected
    reason: Mapped[str | None] = mapped_column(String(32))
    bill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("customer_bills.id"))

    __table_args__ = (
        tenant_listing_index("usage_records"),
        # An account's month (billing), and its records in id order: a page of the account's
        # usage list, or its month as a file, without sorting the month (migration 0028).
        Index("ix_usage_account_period_id", "billing_account_id", "period", "id"),
        Index("ix_usage_subscription_period", "subscription_id", "period"),
        # A bill's records by device, for its usage statement (``bill_statement``): billed
        # records only, so that rating, which writes them unbilled, never touches it.
        Index(
            "ix_usage_bill_subscription",
            "bill_id",
            "subscription_id",
            sqlite_where=text(BILLED_SQL),
            postgresql_where=text(BILLED_SQL),
        ),
        # A tenant's month of records naming no account, for a customer's file (0029): few.
        Index(
            "ix_usage_without_account",
            "tenant_id",
            "period",
            "id",
            sqlite_where=text(NO_ACCOUNT_SQL),
            postgresql_where=text(NO_ACCOUNT_SQL),
        ),
        # A record is named by its event: the primary key is the one index that keeps an
        # event from being rated twice (a second unique index on event_id cost every write).
        CheckConstraint("id = event_id", name="id_is_event"),
    )


class UsageCounterMark(Base):
    """A random number written with every change to the usage counters (by rating, their only
    writer): a rater keeps the counters it wrote while the mark is the one it wrote
    (``rating_cache.Counters``). One row, named ``usage``."""

    __tablename__ = "usage_counter_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    mark: Mapped[int] = mapped_column(BigInteger)


#: Percent of each ``usage_counters`` page PostgreSQL fills on insert (the rest is for updates).
COUNTER_FILLFACTOR: Final = 50


class UsageCounter(TenantListed, Base):
    """Running totals for one allowance bucket in one month: a device's own, or a pool's.

    ``bucket`` is ``sub:<subscription id>`` or ``pool:<billing account id>:<offering id>``;
    ``notified_pct`` remembers the highest threshold (50/80/100) of the allowance already
    announced, ``quota_notified_pct`` that of the contract's quota (device buckets only).
    """

    __tablename__ = "usage_counters"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bucket: Mapped[str] = mapped_column(String(120))
    period: Mapped[str] = mapped_column(String(7))
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_messages: Mapped[int] = mapped_column(BigInteger, default=0)
    allowance_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    notified_pct: Mapped[int] = mapped_column(Integer, default=0)
    quota_notified_pct: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        tenant_listing_index("usage_counters", "period"),
        UniqueConstraint("bucket", "period", name="uq_usage_counters_bucket"),
        # Rating rewrites thousands of counters per batch. With room left on each page,
        # PostgreSQL writes the new version beside the old without touching the three
        # indexes (none of their columns changes): half the time per counter.
        {"postgresql_with": {"fillfactor": COUNTER_FILLFACTOR}},
    )


# -- billing (TMF678) ----------------------------------------------------------------------


class BillRun(Base):
    """One monthly run (or a dry run) over some or all billing accounts."""

    __tablename__ = "bill_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    period: Mapped[str] = mapped_column(String(7))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))  # running | completed | failed
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    bills: Mapped[int] = mapped_column(Integer, default=0)
    total_micros: Mapped[int] = mapped_column(Micros, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


#: The states in which a sent bill waits for money (payments take it on to ``settled``).
OWING_STATES: Final = ("sent", "partiallyPaid")
#: The bills housekeeping watches for lateness (``bss.overdue``): sent, still open and not yet
#: announced. A partial index holds these alone, so the look every minute reads a handful of
#: rows however many bills the years have settled; the query repeats the text so that SQLite
#: sees the index applies.
OVERDUE_WATCH_SQL: Final = (
    "overdue_announced_at IS NULL AND state IN ("
    + ", ".join(f"'{state}'" for state in OWING_STATES)
    + ")"
)


class CustomerBill(TenantScoped, Base):
    """An invoice (TMF678 customerBill). Numbers are gap-free: taken from
    :class:`InvoiceSequence` inside the transaction that issues the bill."""

    __tablename__ = "customer_bills"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    billing_account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("billing_accounts.id"), index=True
    )
    bill_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("bill_runs.id"))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    period: Mapped[str] = mapped_column(String(7))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))
    recurring_micros: Mapped[int] = mapped_column(Micros)
    usage_micros: Mapped[int] = mapped_column(Micros)
    one_time_micros: Mapped[int] = mapped_column(Micros)
    #: Billing staff's corrections before validation (``bill_adjustments``): credits below
    #: zero, charges above, each an ``adjustment`` line with its reason.
    adjustment_micros: Mapped[int] = mapped_column(Micros, default=0, server_default=text("0"))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)  # basis points, 600 = 6 %
    tax_micros: Mapped[int] = mapped_column(Micros)
    total_micros: Mapped[int] = mapped_column(Micros)
    paid_micros: Mapped[int] = mapped_column(Micros, default=0)
    #: What credit notes took off the bill once it was sent (``credit_notes``), VAT included:
    #: the total stays what the customer was sent, and what is still owed is less.
    credited_micros: Mapped[int] = mapped_column(Micros, default=0, server_default=text("0"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the bill, still owed after its due date, was announced as ``bill.overdue`` (once).
    overdue_announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("billing_account_id", "period", name="uq_customer_bills_account_period"),
        # A run's bills by state, in id order: releasing a run (``bill_release``) takes the
        # next chunk waiting for a move from here, and the Bill runs page counts them.
        Index("ix_customer_bills_run_state", "bill_run_id", "state", "id"),
        Index(
            "ix_customer_bills_overdue_watch",
            "due_at",
            sqlite_where=text(OVERDUE_WATCH_SQL),
            postgresql_where=text(OVERDUE_WATCH_SQL),
        ),
    )

    @hybrid_property
    def subtotal_micros(self) -> int:
        """Before VAT: every line, adjustments included (in SQL too, for the bills export)."""
        return (
            self.recurring_micros
            + self.usage_micros
            + self.one_time_micros
            + self.adjustment_micros
        )

    @hybrid_property
    def due_micros(self) -> int:
        """What the customer still owes: the total less payments and credit notes."""
        return self.total_micros - self.paid_micros - self.credited_micros

    def is_overdue(self, now: datetime) -> bool:
        """Sent, still owed and past its due date at ``now`` (what ``bss.overdue`` announces
        and the console marks)."""
        return self.state in OWING_STATES and self.due_micros > 0 and self.due_at < now

    @classmethod
    def overdue_criteria(cls, now: datetime) -> list[ColumnElement[bool]]:
        """:meth:`is_overdue` in SQL (the bills lists' *overdue* filter)."""
        return [cls.state.in_(OWING_STATES), cls.due_micros > 0, cls.due_at < now]


class BillLine(TenantScoped, Base):
    __tablename__ = "bill_lines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bill_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customer_bills.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # recurring | usage | one-time | adjustment
    description: Mapped[str] = mapped_column(String(300))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(16))
    amount_micros: Mapped[int] = mapped_column(Micros)


class CreditNote(TenantScoped, Base):
    """A correction of a bill the customer has received (a red-letter invoice, 红字发票):
    what is credited before VAT, the VAT that goes with it, and why. Numbers are gap-free in
    their own series per year (``<prefix>CN<year>-<8 digits>``), taken as invoices' are."""

    __tablename__ = "credit_notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    bill_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customer_bills.id"), index=True)
    billing_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("billing_accounts.id"))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    subtotal_micros: Mapped[int] = mapped_column(Micros)  # credited before VAT (above zero)
    tax_micros: Mapped[int] = mapped_column(Micros)
    total_micros: Mapped[int] = mapped_column(Micros)
    #: Of the total, what went back to a prepaid balance (the bill was paid from it already).
    returned_micros: Mapped[int] = mapped_column(Micros, default=0)
    reason: Mapped[str] = mapped_column(String(300))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(200))


class InvoiceSequence(Base):
    """The next invoice number per series (e.g. per year): updated under a row lock in the
    issuing transaction, so numbers have no gaps and no repeats."""

    __tablename__ = "invoice_sequences"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger)


class Payment(TenantScoped, Base):
    """Money received: against a bill (postpaid) or as a prepaid top-up."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    billing_account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("billing_accounts.id"), index=True
    )
    bill_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("customer_bills.id"))
    amount_micros: Mapped[int] = mapped_column(Micros)
    method: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("billing_account_id", "reference", name="uq_payments_ref"),)
