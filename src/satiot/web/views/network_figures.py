"""The network's numbers on the dashboard: traffic, active and silent devices, dead letters.

Each figure is shown only to people whose scopes open the page it links to, and each is an
aggregate over the caller's tenant-scoped session, so a customer's dashboard counts only its
own devices and deliveries.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from satiot.network.device_export import silent
from satiot.network.models import Delivery, Device
from satiot.web.session import ConsoleSession
from satiot.web.views.figures import Figure
from satiot.web.views.network_rows import traffic

#: The dashboard's silent devices: active, and no uplink for this many days.
SILENT_DAYS = 7


def figures(session: Session, signed_in: ConsoleSession) -> list[Figure]:
    scopes = signed_in.principal.scopes
    now = signed_in.now()
    out: list[Figure] = []
    if "uplinks:read" in scopes:
        t = traffic(session, now)
        out.append(
            Figure(
                "Uplinks / hour",
                f"{t.last_hour:,}",
                "/messages",
                f"{t.last_minute:,} in the last minute",
                "messages",
            )
        )
    if "devices:read" in scopes:
        row = session.execute(
            select(
                func.count(Device.id).filter(Device.status == "active"),
                func.count(Device.id).filter(Device.last_seen_at >= now - timedelta(hours=1)),
                func.count(Device.id),
                func.count(Device.id).filter(silent(SILENT_DAYS, now)),
            )
        ).one()
        active, seen, total, quiet = (int(v or 0) for v in row)
        out.append(
            Figure(
                "Devices active",
                f"{active:,}",
                "/devices",
                f"{seen:,} heard in the last hour, {total:,} in all",
                "devices",
            )
        )
        out.append(
            Figure(
                "Silent devices",
                f"{quiet:,}",
                f"/devices?silent={SILENT_DAYS}",
                f"active, no uplink for {SILENT_DAYS} days"
                if quiet
                else f"every active device was heard in the last {SILENT_DAYS} days",
                "find them" if quiet else "devices",
                alert=quiet > 0,
            )
        )
    if "integrations:read" in scopes:
        dead = int(
            session.scalar(select(func.count(Delivery.id)).where(Delivery.status == "dead")) or 0
        )
        note = "every delivery got through or is being retried" if not dead else "need a replay"
        out.append(
            Figure(
                "Dead letters",
                f"{dead:,}",
                "/integrations?status=dead",
                note,
                "review",
                alert=dead > 0,
            )
        )
    return out
