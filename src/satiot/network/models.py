"""The network's own records: the satellites and ground stations it operates.

They live here rather than in OSS because the network needs them (contact plans, ingest,
downlink scheduling) and may not import upward; OSS shows views over them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from satiot.core.auth.tenancy import TenantListed, TenantScoped, tenant_listing_index
from satiot.core.db import Base, UTCDateTime
from satiot.core.ids import new_id


class Satellite(Base):
    """One satellite in the inventory: its latest element set and its payload."""

    __tablename__ = "satellites"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    norad_id: Mapped[int] = mapped_column(Integer)
    tle_line1: Mapped[str] = mapped_column(String(69))
    tle_line2: Mapped[str] = mapped_column(String(69))
    channels: Mapped[int] = mapped_column(Integer)
    uplink_frequency_hz: Mapped[int] = mapped_column(Integer)
    channel_spacing_hz: Mapped[int] = mapped_column(Integer)
    g_over_t_db_k: Mapped[float] = mapped_column(Float)
    eirp_dbw: Mapped[float] = mapped_column(Float)
    storage_bytes: Mapped[int] = mapped_column(Integer)
    downlink_rate_bps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroundStation(Base):
    """A ground station: where it is, what it can see, how fast it downloads."""

    __tablename__ = "ground_stations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    alt_m: Mapped[float] = mapped_column(Float)
    min_elevation_deg: Mapped[float] = mapped_column(Float)
    antennas: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("api_keys.id"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Device(TenantListed, Base):
    """A terminal's network-side session (ABP): its addresses, sealed keys and counters.

    The session keys are sealed under the key-encryption key (``network.keys``) and never leave
    the network server in clear. ``f_cnt_up`` is the highest 32-bit uplink counter accepted;
    ``f_cnt_down`` the next downlink counter to use.
    """

    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    dev_eui: Mapped[str] = mapped_column(String(16), unique=True)
    dev_addr: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(24))
    nwk_s_key_sealed: Mapped[bytes] = mapped_column(LargeBinary(64))
    app_s_key_sealed: Mapped[bytes] = mapped_column(LargeBinary(64))
    kek_id: Mapped[str] = mapped_column(String(16))
    f_cnt_up: Mapped[int | None] = mapped_column(BigInteger)
    f_cnt_down: Mapped[int] = mapped_column(BigInteger, default=0)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the device last entered ``active`` (null when it never has, or was made before
    #: this was kept): a device provisioned months ago and activated yesterday has had one
    #: day to report, not months (``device_export.silent``).
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Throttling (a contract's quota reached with ``throttle``): at most one new message per
    #: this many seconds of reception time is accepted; null when not throttled.
    throttle_gap_s: Mapped[int | None] = mapped_column(Integer)
    #: The earliest reception time of the next message a throttled device may send.
    throttle_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Downlink priority (``devices.PRIORITY_*``): where downlinks compete for the planner's
    #: run or a station's contact, a higher one goes first. Set by the BSS from the
    #: subscription (the emergency-priority add-on); uplinks are never ranked by it.
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (tenant_listing_index("devices"),)


class Uplink(TenantListed, Base):
    """One verified, de-duplicated message from a device: the first copy's content, once.

    ``(device_id, f_cnt)`` is unique and ``mic`` is kept with it, so a later copy with the same
    MIC is a duplicate (its reception is attached) and one with another MIC is a replay.
    ``id`` is the message id customers see on every channel.
    """

    __tablename__ = "uplinks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("devices.id"))
    dev_eui: Mapped[str] = mapped_column(String(16))
    f_cnt: Mapped[int] = mapped_column(BigInteger)
    f_port: Mapped[int | None] = mapped_column(Integer)
    mic: Mapped[int] = mapped_column(BigInteger)
    confirmed: Mapped[bool] = mapped_column(Boolean)
    ack: Mapped[bool] = mapped_column(Boolean)
    adr: Mapped[bool] = mapped_column(Boolean)
    f_opts: Mapped[bytes] = mapped_column(LargeBinary(15))
    payload: Mapped[bytes] = mapped_column(LargeBinary(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reception_count: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        # A customer's Messages page (newest first, polled every few seconds) and its traffic
        # figures read the tenant's newest uplinks: in order from this index, not a sort of
        # every uplink the tenant ever sent.
        tenant_listing_index("uplinks"),
        UniqueConstraint("device_id", "f_cnt", name="uq_uplinks_device_fcnt"),
        Index("ix_uplinks_device_id_id", "device_id", "id"),
    )


class UplinkReception(TenantScoped, Base):
    """One copy of an uplink as one ground station downloaded it from one satellite.

    The unique key makes a ground station's retried post (same copy, same instant) a duplicate
    instead of a second row.
    """

    __tablename__ = "uplink_receptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    uplink_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("uplinks.id"))
    ground_station_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("ground_stations.id"))
    satellite: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    frequency_hz: Mapped[int] = mapped_column(BigInteger)
    rssi_dbm: Mapped[float] = mapped_column(Float)
    snr_db: Mapped[float] = mapped_column(Float)
    doppler_hz: Mapped[float | None] = mapped_column(Float)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint(
            "uplink_id",
            "ground_station_id",
            "satellite",
            "received_at",
            name="uq_uplink_receptions_copy",
        ),
    )


class Downlink(TenantScoped, Base):
    """A command queued for a device, with its plan (which satellite, loaded where, when) and
    its progress through the downlink lifecycle (``network.states.DOWNLINK``)."""

    __tablename__ = "downlinks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    device_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("devices.id"))
    dev_eui: Mapped[str] = mapped_column(String(16))
    f_port: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary(255))
    confirmed: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satellite: Mapped[str | None] = mapped_column(String(64))
    ground_station_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("ground_stations.id")
    )
    load_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    load_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    estimated_delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    f_cnt_down: Mapped[int | None] = mapped_column(BigInteger)
    loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_downlinks_device_status", "device_id", "status"),
        Index("ix_downlinks_station_status", "ground_station_id", "status"),
        Index("ix_downlinks_status_expires", "status", "expires_at"),
    )


class Integration(TenantScoped, Base):
    """Where a tenant's messages go: a signed webhook or an MQTT topic tree."""

    __tablename__ = "integrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    url: Mapped[str | None] = mapped_column(String(2000))
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(512))
    kek_id: Mapped[str | None] = mapped_column(String(16))
    #: MQTT on the customer's own broker: the login (the password sealed like the secret)
    #: and the PEM certificates to trust for ``mqtts://`` instead of the system store.
    username: Mapped[str | None] = mapped_column(String(256))
    password_sealed: Mapped[bytes | None] = mapped_column(LargeBinary(512))
    ca_pem: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    max_attempts: Mapped[int] = mapped_column(Integer)
    #: The event-log head when the integration was created (or last enabled): only later
    #: events are owed to it, even if the fan-out is rewound over older ones.
    from_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Why the tenant's destination allow-list refuses the target, from the first refused
    #: delivery round until one is let through (each change is an event).
    destination_refused: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(TenantScoped, Base):
    """One event owed to one integration: its body, attempts so far and state.

    ``(integration_id, event_id)`` is unique, so the fan-out can be replayed without owing a
    message twice; ``event_seq`` orders a device's messages for in-order delivery. The
    unique key also pages the delivery log (by event id) without another index.
    """

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    integration_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("integrations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    dev_eui: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("integration_id", "event_id", name="uq_deliveries_integration_event"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        # A device's pending messages in order (the dispatcher's head-of-line check reads only
        # pending rows, however long the delivered history grows).
        Index("ix_deliveries_lane", "integration_id", "status", "dev_eui", "event_seq"),
        # The delivery log by status, paged by event id.
        Index("ix_deliveries_log", "integration_id", "status", "event_id"),
    )


class DeliveryAttempt(TenantScoped, Base):
    """One try at a delivery: the delivery log a customer reads when messages go missing."""

    __tablename__ = "delivery_attempts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)


class DestinationPolicy(TenantScoped, Base):
    """Where a tenant's messages may be delivered (:mod:`satiot.network.destinations`): the
    allow-lists of its contracts in force, written by the business layer. No row: the tenant
    is not restricted; a row with no entries: it may deliver nowhere."""

    __tablename__ = "destination_policies"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), primary_key=True)
    entries: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
