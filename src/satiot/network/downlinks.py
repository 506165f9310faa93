"""The downlink queue (being built): see ``on_uplinks`` for the contract with ingest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from satiot.network.messages import AcceptedUplink


def on_uplinks(session: Session, accepted: Sequence[AcceptedUplink], *, at: datetime) -> None:
    """Called by ingest, inside its transaction, with every newly accepted uplink."""
    return None
