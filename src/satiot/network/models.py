"""The network's own records: the satellites and ground stations it operates.

They live here rather than in OSS because the network needs them (contact plans, ingest,
downlink scheduling) and may not import upward; OSS shows views over them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
