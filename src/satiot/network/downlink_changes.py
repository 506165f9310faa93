"""How a downlink's status changes are recorded and described.

Every move goes through :func:`transition`: the lifecycle table decides whether it is allowed
(``network.states.DOWNLINK``), and :func:`~satiot.core.changes.record_change` audits it and
emits the ``downlink.<status>`` event whose payload is :func:`downlink_message` — the one shape
the API, webhooks and MQTT all show, so a customer sees the same downlink everywhere.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal, system_principal
from satiot.core.changes import record_change
from satiot.network.messages import DOWNLINK_EVENT_PREFIX, iso
from satiot.network.models import Downlink, GroundStation
from satiot.network.states import DOWNLINK

#: Whose name system moves carry in the audit log.
NETWORK_ACTOR = "network-server"


def downlink_message(dl: Downlink, station: str | None) -> dict[str, Any]:
    """One downlink as every channel shows it: events, webhooks, MQTT and the API alike.

    The payload is the customer's own command, so it is included (base64); session keys and
    the encoded frame never are.
    """
    return {
        "type": f"{DOWNLINK_EVENT_PREFIX}{dl.status}",
        "id": str(dl.id),
        "tenant_id": str(dl.tenant_id),
        "dev_eui": dl.dev_eui,
        "status": dl.status,
        "f_port": dl.f_port,
        "confirmed": dl.confirmed,
        "payload": base64.b64encode(dl.payload).decode(),
        "f_cnt_down": dl.f_cnt_down,
        "expires_at": iso(dl.expires_at),
        "estimated_delivery_at": iso(dl.estimated_delivery_at),
        "satellite": dl.satellite,
        "ground_station_id": str(dl.ground_station_id) if dl.ground_station_id else None,
        "ground_station": station,
        "load_at": iso(dl.load_at),
        "load_until": iso(dl.load_until),
        "reason": dl.reason,
        "created_at": iso(dl.created_at),
        "updated_at": iso(dl.updated_at),
        "loaded_at": iso(dl.loaded_at),
        "sent_at": iso(dl.sent_at),
        "acknowledged_at": iso(dl.acknowledged_at),
    }


def station_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    """Names of the given ground stations (one query; none when no ids)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(GroundStation.id, GroundStation.name).where(GroundStation.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}


def system_actor(tenant_id: uuid.UUID, name: str = NETWORK_ACTOR) -> Principal:
    """The principal of moves the network makes itself (planning, expiry, ACKs)."""
    return system_principal(tenant_id, name)


def _audit_view(dl: Downlink) -> dict[str, Any]:
    return {
        "status": dl.status,
        "satellite": dl.satellite,
        "ground_station_id": dl.ground_station_id,
        "load_at": dl.load_at,
        "estimated_delivery_at": dl.estimated_delivery_at,
        "f_cnt_down": dl.f_cnt_down,
    }


def transition(
    session: Session,
    principal: Principal,
    dl: Downlink,
    target: str,
    *,
    at: datetime,
    reason: str | None,
    station: str | None,
    role: str | None = None,
) -> None:
    """Move ``dl`` to ``target`` through the lifecycle table and record the change.

    ``role`` is checked against the table when a person asks (cancel); the network's own
    moves pass ``None``. Set plan or progress fields *before* calling, so the event shows them.
    """
    DOWNLINK.check(dl.status, target, role)
    before = {"status": dl.status}
    dl.status = target
    dl.reason = reason
    dl.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action=f"{DOWNLINK_EVENT_PREFIX}{target}",
        target=("downlink", dl.id),
        tenant_id=dl.tenant_id,
        before=before,
        after=_audit_view(dl),
        reason=reason,
        payload=downlink_message(dl, station),
    )


def record_queued(session: Session, principal: Principal, dl: Downlink, *, at: datetime) -> None:
    """Record a new downlink's arrival in the queue (its first status, ``queued``)."""
    record_change(
        session,
        principal,
        at=at,
        action=f"{DOWNLINK_EVENT_PREFIX}{dl.status}",
        target=("downlink", dl.id),
        tenant_id=dl.tenant_id,
        after=_audit_view(dl) | {"f_port": dl.f_port, "confirmed": dl.confirmed},
        payload=downlink_message(dl, None),
    )
