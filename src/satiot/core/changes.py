"""One call for a state change's two records: the audit entry and the event.

Every change is audited (who, why, before and after — for people and the regulator) and
announced (an event — for the consumers in other subsystems). Both are queued on the caller's
session and commit with the change itself, or not at all.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from satiot.core import audit, events
from satiot.core.auth.principal import Principal


def record_change(
    session: Session,
    principal: Principal,
    *,
    at: datetime,
    action: str,
    target: tuple[str, uuid.UUID | str],
    tenant_id: uuid.UUID | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Audit ``action`` on ``target`` and emit an event of the same name; return the event id.

    ``payload`` is what consumers receive (default: ``after``); keep secrets out of both.
    """
    target_type, target_id = target
    audit.record(
        session,
        at=at,
        actor=principal.actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        before=before,
        after=after,
        reason=reason,
    )
    return events.emit(
        session,
        action,
        at=at,
        tenant_id=tenant_id,
        subject=(target_type, str(target_id)),
        payload=payload if payload is not None else audit.jsonable(after) or {},
    )
