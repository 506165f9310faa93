"""The OSS inventory pages: licensed terminal models (expired licences flagged), IoT number
blocks with their allocated, quarantined and free counts, and device handles with what they
bind and whether the identifier node has their current record.

The inventory is the operator's (its tables are not tenant-scoped), so the pages need the
OSS read scopes, which only operator staff and the regulator hold, as through the API.
Changes stay with the API and the CLI, but for the licence list's import
(:mod:`satiot.web.views.licence_import`), which staff keep in a spreadsheet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.responses import Response

from satiot.bss.models import Subscription
from satiot.core.errors import DomainError
from satiot.core.models import Tenant
from satiot.core.pagination import Page, paginate
from satiot.oss import licence_list, states
from satiot.oss.models import Handle, IotNumber, NumberBlock, TerminalModel
from satiot.oss.number_blocks import format_number
from satiot.web.flash import Flash
from satiot.web.rendering import page
from satiot.web.session import ConsoleSession, SignedIn

router = APIRouter()
PAGE = 50
#: A listed model whose licence ends within this many days is flagged (the licence watch's).
EXPIRING_DAYS = 90
LICENCE_FILTERS = ("expired", "expiring", "valid")
NODE_FILTERS = ("registered", "pending", "failed")


def _page_of(
    session: Session, stmt: Select[Any], key: InstrumentedAttribute[Any], after: str | None
) -> tuple[Page[Any], Flash | None]:
    """One page of ``stmt``; a cursor this server did not issue shows the first page."""
    try:
        return paginate(session, stmt, key, cursor=after, limit=PAGE), None
    except DomainError as exc:
        return paginate(session, stmt, key, cursor=None, limit=PAGE), Flash("error", exc.detail)


def _next_url(path: str, params: dict[str, str], cursor: str | None) -> str | None:
    if not cursor:
        return None
    return f"{path}?{urlencode({k: v for k, v in params.items() if v} | {'after': cursor})}"


# ---- terminal models --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRow:
    model: TerminalModel
    licence: str  # expired | expiring | valid
    days_left: int


def licence_state(model: TerminalModel, today: date) -> tuple[str, int]:
    days = (model.expires_on - today).days
    if days < 0:
        return "expired", days
    return ("expiring" if days <= EXPIRING_DAYS else "valid"), days


@router.get("/terminal-models")
def terminal_models_page(
    request: Request,
    signed_in: SignedIn,
    q: str = "",
    status: str = "",
    licence: str = "",
    after: str | None = None,
) -> Response:
    return models_page(request, signed_in, q=q, status=status, licence=licence, after=after)


def models_page(
    request: Request,
    signed_in: ConsoleSession,
    *,
    q: str = "",
    status: str = "",
    licence: str = "",
    after: str | None = None,
    rejected: licence_list.LicenceListRejected | None = None,
    flash: Flash | None = None,
    status_code: int = 200,
) -> Response:
    """The register, filtered; with the bad lines of a ``rejected`` licence list."""
    signed_in.require_any("terminal-models:read")
    q = q.strip()[:100]
    today = signed_in.now().date()
    stmt = select(TerminalModel)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(
                TerminalModel.name.ilike(like),
                TerminalModel.manufacturer.ilike(like),
                TerminalModel.licence_number.ilike(like),
            )
        )
    if status in states.TERMINAL_MODEL.states:
        stmt = stmt.where(TerminalModel.status == status)
    else:
        status = ""
    horizon = today + timedelta(days=EXPIRING_DAYS)
    if licence == "expired":
        stmt = stmt.where(TerminalModel.expires_on < today)
    elif licence == "expiring":
        stmt = stmt.where(TerminalModel.expires_on >= today, TerminalModel.expires_on <= horizon)
    elif licence == "valid":
        stmt = stmt.where(TerminalModel.expires_on > horizon)
    else:
        licence = ""
    with signed_in.call.read() as session:
        found, cursor_flash = _page_of(session, stmt, TerminalModel.id, after)
    rows = [ModelRow(m, *licence_state(m, today)) for m in found.items]
    params = {"q": q, "status": status, "licence": licence}
    return page(
        request,
        signed_in,
        "terminal_models.html",
        {
            "title": "Terminal models",
            "rows": rows,
            "today": today,
            "expiring_days": EXPIRING_DAYS,
            "statuses": states.TERMINAL_MODEL.states,
            "licences": LICENCE_FILTERS,
            "filtered": any(params.values()),
            "next_url": _next_url("/terminal-models", params, found.next_cursor),
            "rejected": rejected,
            "columns": licence_list.COLUMNS,
            **params,
        },
        flash=flash or cursor_flash,
        status_code=status_code,
    )


# ---- number blocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockRow:
    block: NumberBlock
    first: str
    last: str
    size: int
    allocated: int
    active: int
    quarantined: int

    @property
    def free(self) -> int:
        return self.size - self.allocated - self.quarantined

    @property
    def utilisation_pct(self) -> int:
        return round(100 * self.allocated / self.size) if self.size else 0


def _block_counts(session: Session, block_ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for block_id, status, n in session.execute(
        select(IotNumber.block_id, IotNumber.status, func.count())
        .where(IotNumber.block_id.in_(block_ids))
        .group_by(IotNumber.block_id, IotNumber.status)
    ):
        counts.setdefault(block_id, {})[status] = n
    return counts


@router.get("/number-blocks")
def number_blocks_page(
    request: Request, signed_in: SignedIn, q: str = "", after: str | None = None
) -> Response:
    signed_in.require_any("numbers:read")
    q = q.strip()[:64]
    stmt = select(NumberBlock)
    if q:
        stmt = stmt.where(
            or_(
                NumberBlock.name.ilike(f"%{q}%"),
                NumberBlock.prefix.like(f"{q}%"),
                NumberBlock.purpose.ilike(f"%{q}%"),
            )
        )
    with signed_in.call.read() as session:
        found, flash = _page_of(session, stmt, NumberBlock.id, after)
        counts = _block_counts(session, {b.id for b in found.items})
    rows = []
    for b in sorted(found.items, key=lambda b: b.first_number):
        c = counts.get(b.id, {})
        rows.append(
            BlockRow(
                b,
                format_number(b.first_number),
                format_number(b.last_number),
                b.last_number - b.first_number + 1,
                sum(c.get(s, 0) for s in states.NUMBER_ALLOCATED_STATES),
                c.get("active", 0),
                sum(c.get(s, 0) for s in states.NUMBER_RESTING_STATES),
            )
        )
    return page(
        request,
        signed_in,
        "number_blocks.html",
        {
            "title": "Number blocks",
            "rows": rows,
            "q": q,
            "next_url": _next_url("/number-blocks", {"q": q}, found.next_cursor),
        },
        flash=flash,
    )


# ---- handles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandleRow:
    handle: Handle
    customer: str
    subscription: Subscription | None
    node: str  # registered | pending | failed


def node_state(handle: Handle) -> str:
    """Whether the identifier node holds the handle's current record."""
    if handle.node_error:
        return "failed"
    if handle.registered_at is None or handle.registered_at < handle.updated_at:
        return "pending"
    return "registered"


def _handle_rows(session: Session, items: list[Handle]) -> list[HandleRow]:
    names = {
        t.id: t.name
        for t in session.scalars(
            select(Tenant).where(Tenant.id.in_({h.tenant_id for h in items if h.tenant_id}))
        )
    }
    subs = {
        s.handle: s
        for s in session.scalars(
            select(Subscription).where(Subscription.handle.in_([h.handle for h in items]))
        )
    }
    return [
        HandleRow(
            h, names.get(h.tenant_id, "") if h.tenant_id else "", subs.get(h.handle), node_state(h)
        )
        for h in items
    ]


def _node_address(url: str | None) -> str | None:
    """Where handles are sent, for the page: scheme, host and port, never a login in the URL."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


@router.get("/handles")
def handles_page(
    request: Request,
    signed_in: SignedIn,
    q: str = "",
    status: str = "",
    node: str = "",
    after: str | None = None,
) -> Response:
    signed_in.require_any("identifiers:read")
    q = q.strip()[:255]
    stmt = select(Handle)
    if q:
        stmt = stmt.where(
            or_(
                Handle.handle.like(f"%{q}%"),
                Handle.terminal_id.like(f"{q.upper()}%"),
                Handle.iot_number.like(f"{q}%"),
            )
        )
    if status in states.HANDLE.states:
        stmt = stmt.where(Handle.status == status)
    else:
        status = ""
    if node == "failed":
        stmt = stmt.where(Handle.node_error.is_not(None))
    elif node == "pending":
        stmt = stmt.where(
            Handle.node_error.is_(None),
            or_(Handle.registered_at.is_(None), Handle.registered_at < Handle.updated_at),
        )
    elif node == "registered":
        stmt = stmt.where(Handle.node_error.is_(None), Handle.registered_at >= Handle.updated_at)
    else:
        node = ""
    with signed_in.call.read() as session:
        found, flash = _page_of(session, stmt, Handle.id, after)
        rows = _handle_rows(session, list(found.items))
    params = {"q": q, "status": status, "node": node}
    return page(
        request,
        signed_in,
        "handles.html",
        {
            "title": "Handles",
            "rows": rows,
            "node_url": _node_address(signed_in.ctx.settings.handle_node_url),
            "statuses": states.HANDLE.states,
            "nodes": NODE_FILTERS,
            "filtered": any(params.values()),
            "next_url": _next_url("/handles", params, found.next_cursor),
            **params,
        },
        flash=flash,
    )
