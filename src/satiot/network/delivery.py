"""What each integration is owed: the fan-out of events into deliveries.

The fan-out consumer (:func:`consumer`, registered as ``network.delivery``) turns every
``uplink.accepted`` and ``downlink.<status>`` event of a tenant, and every business notice
about it (``messages.CUSTOMER_NOTICES``), into one :class:`Delivery` per
active integration of that tenant. It runs right behind ingest, so it stays cheap: one query
per tenant per batch for the integrations, and one multi-row ``INSERT … ON CONFLICT DO
NOTHING`` per batch at commit. The unique ``(integration_id, event_id)`` makes a rewound
consumer owe nothing twice. Sending them is ``network.delivery_queue`` and
``network.webhooks``.
"""

from __future__ import annotations

import uuid
from typing import Any, Final, cast

from sqlalchemy import Table, select
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from satiot.core.events import Consumer
from satiot.core.ids import new_id
from satiot.core.models import Event
from satiot.network.messages import CUSTOMER_NOTICES, DOWNLINK_EVENT_PREFIX, UPLINK_ACCEPTED
from satiot.network.models import Delivery, Integration
from satiot.network.states import DELIVERY, DOWNLINK

CONSUMER_NAME = "network.delivery"
#: The events customers receive: accepted uplinks, every downlink status change, and the
#: business notices (thresholds, suspensions, bills) about their own tenant.
DELIVERED_TYPES: Final = frozenset(
    {
        UPLINK_ACCEPTED,
        *(DOWNLINK_EVENT_PREFIX + status for status in DOWNLINK.states),
        *CUSTOMER_NOTICES,
    }
)

_TARGETS: Final = "satiot.delivery.targets"
_ROWS: Final = "satiot.delivery.rows"


def message_id(ev: Event) -> str:
    """The id a customer de-duplicates on: an uplink's own id (the same on every channel and
    in the pull API); for a downlink status change, the event's id (the body's ``id`` names the
    downlink, which has several status changes)."""
    if ev.type == UPLINK_ACCEPTED and ev.payload.get("id"):
        return str(ev.payload["id"])
    return str(ev.id)


def _targets(session: Session, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    """The tenant's active integrations with their start positions, once per transaction."""
    cache: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = session.info.setdefault(_TARGETS, {})
    if tenant_id not in cache:
        rows = session.execute(
            select(Integration.id, Integration.from_seq).where(
                Integration.tenant_id == tenant_id, Integration.status == "active"
            )
        )
        cache[tenant_id] = [(row[0], row[1]) for row in rows]
    return cache[tenant_id]


def fan_out(session: Session, ev: Event) -> None:
    """Owe ``ev`` to each active integration of its tenant that existed before it."""
    if ev.tenant_id is None or ev.type not in DELIVERED_TYPES:
        return
    owed = [iid for iid, from_seq in _targets(session, ev.tenant_id) if ev.seq > from_seq]
    if not owed:
        return
    dev_eui = ev.payload.get("dev_eui")
    body = {**ev.payload, "type": ev.type}
    common = {
        "tenant_id": ev.tenant_id,
        "event_id": ev.id,
        "event_seq": ev.seq,
        "event_type": ev.type,
        "message_id": message_id(ev),
        "dev_eui": str(dev_eui) if dev_eui else None,
        "status": DELIVERY.initial,
        "attempts": 0,
        "next_attempt_at": ev.occurred_at,
        "last_error": None,
        "body": body,
        "created_at": ev.occurred_at,
        "delivered_at": None,
    }
    rows: list[dict[str, Any]] | None = session.info.get(_ROWS)
    if rows is None:
        rows = session.info[_ROWS] = []
        sa_event.listen(session, "before_commit", _insert_rows)
        sa_event.listen(session, "after_soft_rollback", _forget_rows)
    rows.extend(common | {"id": new_id(), "integration_id": iid} for iid in owed)


def _insert_rows(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_TARGETS, None)
    rows = session.info.pop(_ROWS, None)
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(cast(Table, Delivery.__table__)).on_conflict_do_nothing(
        index_elements=["integration_id", "event_id"]
    )
    session.execute(stmt, rows)


def _forget_rows(session: Session, previous: Any) -> None:
    if not previous.nested:
        session.info.pop(_ROWS, None)
        session.info.pop(_TARGETS, None)


def consumer() -> Consumer:
    """The fan-out consumer (entry point ``satiot.consumers``: ``network.delivery``)."""
    return Consumer(CONSUMER_NAME, fan_out, DELIVERED_TYPES, batch_size=500)
