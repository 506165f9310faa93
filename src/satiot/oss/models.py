"""OSS inventory tables: licensed terminal models, IoT number blocks and numbers, handles.

None of them is tenant-scoped: the inventory belongs to the operator, and its staff manage it.
A number or handle assigned to a customer names that customer in ``tenant_id`` (nullable: a
number between customers has none), so reports can slice by customer; customers see their
numbers through their devices and subscriptions, never through these tables.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from satiot.core.db import Base, UTCDateTime
from satiot.core.ids import new_id


class TerminalModel(Base):
    """A terminal model and its MIIT network-access licence.

    There is no public licence lookup, so this table is the operator's own record; activation
    refuses a model that is missing, withdrawn or whose licence has expired.
    """

    __tablename__ = "terminal_models"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    equipment_name: Mapped[str] = mapped_column(String(200))
    manufacturer: Mapped[str] = mapped_column(String(200))
    applicant: Mapped[str] = mapped_column(String(200))
    licence_number: Mapped[str] = mapped_column(String(14), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    #: Type allocation codes (first 8 IMEI digits) of this model, if the operator knows them.
    tacs: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NumberBlock(Base):
    """A range of 13-digit IoT numbers assigned by MIIT: ``first_number..last_number``.

    Numbers are not stored up front: ``next_fresh`` is the lowest number of the block that has
    never had a row, and rows are created a few at a time as numbers are allocated (see
    :mod:`satiot.oss.numbering`).
    """

    __tablename__ = "number_blocks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(13))
    first_number: Mapped[int] = mapped_column(BigInteger, unique=True)
    last_number: Mapped[int] = mapped_column(BigInteger)
    next_fresh: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(200))
    authority_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IotNumber(Base):
    """One IoT number that has been handed out at least once, and where it is in its life."""

    __tablename__ = "iot_numbers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(13), unique=True)
    block_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("number_blocks.id"))
    status: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"), index=True)
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quarantine_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The lowest available number of a block, and the per-status counts of the report.
        Index("ix_iot_numbers_block_status_number", "block_id", "status", "number"),
        # The recycling job: quarantined numbers whose rest is over.
        Index("ix_iot_numbers_status_quarantine", "status", "quarantine_until"),
    )


class Handle(Base):
    """An industrial-internet identifier (``<prefix>/<suffix>``) naming one device.

    ``terminal_id`` and ``iot_number`` are unique while the handle binds them, which makes
    {terminal, handle, number} one-to-one-to-one; retiring the handle releases both (they stay
    in its values and in the audit log).
    """

    __tablename__ = "handles"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    handle: Mapped[str] = mapped_column(String(255), unique=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"), index=True)
    terminal_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    iot_number: Mapped[str | None] = mapped_column(String(13), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    node_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HandleValue(Base):
    """One typed, indexed value of a handle record (the Handle data model)."""

    __tablename__ = "handle_values"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    handle_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("handles.id"))
    idx: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(1000))
    ttl: Mapped[int] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("handle_id", "idx", name="uq_handle_values_handle_idx"),
        # Find a device's handle by one of its identities (IMEI, IoT number, ICCID …).
        Index("ix_handle_values_type_value", "type", "value"),
    )
