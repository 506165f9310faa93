"""What each integration is owed: the fan-out of events into deliveries.

The fan-out consumer (:func:`consumer`, registered as ``network.delivery``) turns every
``uplink.accepted`` and ``downlink.<status>`` event of a tenant, and every business notice
about it (``messages.CUSTOMER_NOTICES``), into one :class:`Delivery` per active integration of
that tenant that existed before the event. It runs right behind ingest, so it must keep up
with ingest's peak: it takes each batch as a range of the event log and owes it with a single
``INSERT … SELECT … ON CONFLICT DO NOTHING`` joining the range's events with the active
integrations, without loading an event into Python or writing per-event processed marks. The
unique ``(integration_id, event_id)`` makes a rewound consumer owe nothing twice. Sending them
is ``network.delivery_queue`` and ``network.webhooks``.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

from satiot.core.bulk import uuid_text_sql
from satiot.core.events import Consumer
from satiot.core.models import Event
from satiot.network.messages import CUSTOMER_NOTICES, DOWNLINK_EVENT_PREFIX, UPLINK_ACCEPTED
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


def message_id(ev: Event) -> str:
    """The id a customer de-duplicates on: an uplink's own id (the same on every channel and
    in the pull API); for a downlink status change, the event's id (the body's ``id`` names the
    downlink, which has several status changes)."""
    if ev.type == UPLINK_ACCEPTED and ev.payload.get("id"):
        return str(ev.payload["id"])
    return str(ev.id)


@cache
def _owe_sql(dialect: str) -> str:
    """The statement that owes the log range ``(:after, :last]`` to the integrations.

    Each row is what :func:`message_id` and the body rule say: the event's payload with its
    ``type``; the id keeps the event id's time-ordered head (UUIDv7) with fresh random bits.
    """
    types = ", ".join(f"'{t}'" for t in sorted(DELIVERED_TYPES))
    if dialect == "postgresql":
        new_id = (
            "CAST(substr(CAST(e.id AS text), 1, 23) || "
            "substr(CAST(gen_random_uuid() AS text), 24) AS uuid)"
        )
        # json (not jsonb) keeps the message's own key order: "type" where the payload has it,
        # else appended; a payload naming another type gets this one in its place (jsonb).
        raw = "rtrim(CAST(e.payload AS text))"
        body = (
            "CASE WHEN e.payload->>'type' = e.type THEN e.payload "
            "WHEN e.payload->>'type' IS NULL THEN CAST(left(" + raw + ", -1) || "
            "CASE WHEN CAST(e.payload AS jsonb) = CAST('{}' AS jsonb) THEN '' ELSE ', ' END "
            "|| '\"type\": ' || CAST(to_json(e.type) AS text) || '}' AS json) "
            "ELSE CAST(CAST(e.payload AS jsonb) || jsonb_build_object('type', e.type) AS json) END"
        )
        own_id = "(e.payload->>'id')"
        dev_eui = "NULLIF(e.payload->>'dev_eui', '')"
    else:
        new_id = "substr(e.id, 1, 20) || lower(hex(randomblob(6)))"
        body = "json_set(e.payload, '$.type', e.type)"
        own_id = "CAST(json_extract(e.payload, '$.id') AS TEXT)"
        dev_eui = "NULLIF(CAST(json_extract(e.payload, '$.dev_eui') AS TEXT), '')"
    event_text = uuid_text_sql(dialect, "e.id")
    message = (
        f"CASE WHEN e.type = '{UPLINK_ACCEPTED}' AND coalesce({own_id}, '') <> '' "
        f"THEN {own_id} ELSE {event_text} END"
    )
    return (
        "INSERT INTO deliveries (id, integration_id, tenant_id, event_id, event_seq, "  # noqa: S608 (constant fragments; values are bound)
        "event_type, message_id, dev_eui, status, attempts, next_attempt_at, last_error, body, "
        "created_at, delivered_at) "
        f"SELECT {new_id}, i.id, e.tenant_id, e.id, e.seq, e.type, {message}, {dev_eui}, "
        f"'{DELIVERY.initial}', 0, e.occurred_at, NULL, {body}, e.occurred_at, NULL "
        "FROM events e JOIN integrations i ON i.tenant_id = e.tenant_id "
        "AND i.status = 'active' AND e.seq > i.from_seq "
        f"WHERE e.seq > :after AND e.seq <= :last AND e.type IN ({types}) "
        "ORDER BY e.seq, i.id "
        "ON CONFLICT (integration_id, event_id) DO NOTHING"
    )


def owe_range(session: Session, after: int, last: int) -> None:
    """Owe the log's events with ``after < seq <= last`` to their tenants' integrations."""
    conn = session.connection()
    conn.execute(text(_owe_sql(conn.dialect.name)), {"after": after, "last": last})


def fan_out(session: Session, ev: Event) -> None:
    """One event at a time (the message-bus workers): the range of that one event."""
    owe_range(session, ev.seq - 1, ev.seq)


def consumer() -> Consumer:
    """The fan-out consumer (entry point ``satiot.consumers``: ``network.delivery``)."""
    return Consumer(CONSUMER_NAME, fan_out, DELIVERED_TYPES, batch_size=5000, apply_range=owe_range)
