"""Industrial-internet identifiers: one Handle per device, under the operator's prefix.

A handle (``88.608.8899/<suffix>``) names one terminal. Its record is a list of typed,
indexed values following the device template (:data:`DEVICE_TEMPLATE`): terminal identity,
model, licence number, IoT number, ICCID/IMSI where present, the customer's credit code and
status. The handle row also carries the terminal id and IoT number it binds, unique while it
is not retired, so {terminal, handle, number} stays one-to-one-to-one; every change is
audited. Values hold a public-read flag, like Handle permissions: the public resolution
endpoint serves only public values (model, licence, status), never a customer's identities.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from stdnum import imsi as stdnum_imsi
from stdnum import luhn
from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumError

from satiot.core.auth.principal import Principal
from satiot.core.auth.users import require_tenant
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.oss import states
from satiot.oss.models import Handle, HandleValue
from satiot.oss.number_blocks import validate_number
from satiot.oss.terminals import validate_imei, validate_licence_number

#: REFERENCE §3: ``<prefix>/<suffix>``, prefixes under 86 or 88, at most 255 characters.
HANDLE_RE = re.compile(r"^(?:86|88)(?:\.[0-9A-Za-z]+)+/\S{1,255}$")
PREFIX_RE = re.compile(r"^(?:86|88)(?:\.[0-9A-Za-z]+)+$")
MAX_HANDLE_LEN = 255
DEFAULT_TTL = 86400
DEV_EUI_RE = re.compile(r"^[0-9A-F]{16}$")


class InvalidHandle(InvalidInput):
    slug = "invalid-handle"
    title = "Invalid handle"


class HandleNotFound(NotFound):
    slug = "handle-not-found"
    title = "Handle not found"


class HandleExists(Conflict):
    slug = "handle-exists"
    title = "Handle already exists"


def validate_handle(text: str) -> str:
    """The handle if it is well-formed (REFERENCE §3); InvalidHandle otherwise."""
    if len(text) > MAX_HANDLE_LEN or not HANDLE_RE.fullmatch(text):
        raise InvalidHandle(
            f"{text[:80]!r} is not a handle of the form 88.<node>.<enterprise>/<suffix> "
            f"(at most {MAX_HANDLE_LEN} characters)",
            field="handle",
        )
    return text


def validate_prefix(text: str) -> str:
    if not PREFIX_RE.fullmatch(text):
        raise InvalidHandle(f"{text!r} is not a handle prefix such as 88.608.8899", field="prefix")
    return text


@dataclass(frozen=True)
class TemplateField:
    index: int
    type: str
    attr: str
    public: bool


#: The device data template: value index, type, which record field fills it, public read.
DEVICE_TEMPLATE: tuple[TemplateField, ...] = (
    TemplateField(1, "TERMINAL_ID", "terminal_id", public=False),
    TemplateField(2, "MODEL", "model", public=True),
    TemplateField(3, "LICENCE_NO", "licence_number", public=True),
    TemplateField(4, "IOT_NUMBER", "iot_number", public=False),
    TemplateField(5, "ICCID", "iccid", public=False),
    TemplateField(6, "IMSI", "imsi", public=False),
    TemplateField(7, "CREDIT_CODE", "credit_code", public=False),
    TemplateField(8, "STATUS", "status", public=True),
)
_RECORD_FIELDS = frozenset(f.attr for f in DEVICE_TEMPLATE) - {"status"}


def validate_terminal_id(text: str) -> str:
    """A 15-digit IMEI (Luhn-checked) or a 16-hex-digit DevEUI (LoRa terminals)."""
    value = text.strip().replace("-", "").replace(":", "").upper()
    if value.isdigit() and len(value) != 16:
        return validate_imei(value)
    if DEV_EUI_RE.fullmatch(value):
        return value
    raise InvalidInput(
        f"terminal id {text!r} is neither an IMEI (15 digits) nor a DevEUI (16 hex digits)",
        field="terminal_id",
    )


def validate_credit_code(text: str) -> str:
    """A well-formed unified social credit code. A failed check character is accepted (some
    real early codes fail it; BSS sends those to manual review); a malformed code is not."""
    try:
        value: str = uscc.validate(text)
    except InvalidChecksum:
        return uscc.compact(text)
    except StdnumError as exc:
        raise InvalidInput(
            f"credit code {text!r} is malformed: {exc}", field="credit_code"
        ) from None
    return value


ICCID_RE = re.compile(r"89[0-9]{17,18}")


def validate_iccid(text: str) -> str:
    """19 or 20 digits starting 89; the Luhn digit is checked on 19-digit ICCIDs only."""
    value = text.strip().replace(" ", "")
    # ASCII digits: str.isdigit() also took twenty Arabic-Indic digits after "89" as an ICCID.
    if not ICCID_RE.fullmatch(value):
        raise InvalidInput(f"ICCID {text!r} must be 19-20 digits starting 89", field="iccid")
    if len(value) == 19 and not luhn.is_valid(value):
        raise InvalidInput(f"ICCID {text!r} fails its Luhn check", field="iccid")
    return value


def validate_imsi(text: str) -> str:
    try:
        value: str = stdnum_imsi.validate(text)
    except StdnumError as exc:
        raise InvalidInput(f"IMSI {text!r} is not valid: {exc}", field="imsi") from None
    return value


@dataclass(frozen=True)
class DeviceRecord:
    """What a device's handle says about it (the device template's fields)."""

    terminal_id: str
    model: str
    licence_number: str
    iot_number: str
    credit_code: str
    iccid: str | None = None
    imsi: str | None = None

    def validated(self) -> DeviceRecord:
        model = self.model.strip()
        if not model:
            raise InvalidInput("model must not be empty", field="model")
        return DeviceRecord(
            terminal_id=validate_terminal_id(self.terminal_id),
            model=model,
            licence_number=validate_licence_number(self.licence_number),
            iot_number=validate_number(self.iot_number),
            credit_code=validate_credit_code(self.credit_code),
            iccid=validate_iccid(self.iccid) if self.iccid else None,
            imsi=validate_imsi(self.imsi) if self.imsi else None,
        )


@dataclass(frozen=True)
class ResolvedHandle:
    handle: Handle
    values: list[HandleValue]


def value_json(value: HandleValue) -> dict[str, Any]:
    """A value in the Handle REST API's JSON shape."""
    return {
        "index": value.idx,
        "type": value.type,
        "data": {"format": value.format, "value": value.value},
        "ttl": value.ttl,
        "timestamp": value.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def values_of(session: Session, handle_id: uuid.UUID) -> list[HandleValue]:
    return list(
        session.scalars(
            select(HandleValue).where(HandleValue.handle_id == handle_id).order_by(HandleValue.idx)
        )
    )


def record_of(
    session: Session, handle: Handle, values: Sequence[HandleValue] | None = None
) -> DeviceRecord:
    """The device record held in a handle's values (``values``: as already read)."""
    if values is None:
        values = values_of(session, handle.id)
    by_type = {v.type: v.value for v in values}
    optional = ("iccid", "imsi")
    fields: dict[str, Any] = {
        f.attr: by_type.get(f.type, None if f.attr in optional else "")
        for f in DEVICE_TEMPLATE
        if f.attr in _RECORD_FIELDS
    }
    return DeviceRecord(**fields)


def _write_values(
    session: Session,
    handle: Handle,
    record: DeviceRecord,
    at: datetime,
    values: Sequence[HandleValue] = (),
) -> dict[str, Any]:
    """Make the handle's values match ``record`` and its status; keep unchanged values'
    timestamps (a resolver's cache sees what changed). The audit view of the record.
    ``values``: the handle's values as already read (none for a new handle)."""
    wanted = asdict(record) | {"status": handle.status}
    current = {v.idx: v for v in values}
    for f in DEVICE_TEMPLATE:
        data = wanted[f.attr]
        old = current.get(f.index)
        if data is None:
            if old is not None:
                session.delete(old)
            continue
        if old is None:
            session.add(
                HandleValue(
                    handle_id=handle.id,
                    idx=f.index,
                    type=f.type,
                    format="string",
                    value=data,
                    ttl=DEFAULT_TTL,
                    public=f.public,
                    timestamp=at,
                )
            )
        elif old.value != data:
            old.value, old.timestamp = data, at
    return {k: v for k, v in wanted.items() if v is not None}


def _check_binding(session: Session, record: DeviceRecord, own: uuid.UUID | None) -> None:
    for column, value, label in (
        (Handle.terminal_id, record.terminal_id, "terminal"),
        (Handle.iot_number, record.iot_number, "IoT number"),
    ):
        other = session.scalar(select(Handle).where(column == value))
        if other is not None and other.id != own:
            raise Conflict(
                f"{label} {value} is already bound to handle {other.handle}",
                field="terminal_id" if label == "terminal" else "iot_number",
            )


def create_handle(
    session: Session,
    principal: Principal,
    *,
    prefix: str,
    record: DeviceRecord,
    tenant_id: uuid.UUID | None,
    at: datetime,
    suffix: str | None = None,
) -> Handle:
    """Mint the handle that names one device and binds its terminal and IoT number.

    Without ``suffix`` an opaque one is made from the row id, so the public handle reveals
    nothing about the device or its customer.
    """
    record = record.validated()
    if tenant_id is not None:
        require_tenant(session, tenant_id)
    row_id = uuid.uuid4()
    name = validate_handle(f"{validate_prefix(prefix)}/{suffix or row_id.hex.upper()}")
    if session.scalar(select(Handle.id).where(Handle.handle == name)) is not None:
        raise HandleExists(f"handle {name} already exists", field="suffix")
    _check_binding(session, record, None)
    handle = Handle(
        id=row_id,
        handle=name,
        tenant_id=tenant_id,
        terminal_id=record.terminal_id,
        iot_number=record.iot_number,
        status=states.HANDLE.initial,
        created_at=at,
        updated_at=at,
    )
    session.add(handle)
    session.flush()
    after = _write_values(session, handle, record, at)
    record_change(
        session,
        principal,
        at=at,
        action="handle.created",
        target=("handle", handle.handle),
        tenant_id=tenant_id,
        after=after,
    )
    return handle


def find_handle(session: Session, handle: str) -> Handle:
    row = session.scalar(select(Handle).where(Handle.handle == validate_handle(handle)))
    if row is None:
        raise HandleNotFound(f"handle {handle} not found")
    return row


def handle_for_terminal(session: Session, terminal_id: str) -> Handle:
    """The handle currently bound to a terminal (IMEI or DevEUI)."""
    tid = validate_terminal_id(terminal_id)
    row = session.scalar(select(Handle).where(Handle.terminal_id == tid))
    if row is None:
        raise HandleNotFound(f"no handle is bound to terminal {tid}")
    return row


def update_handle(
    session: Session,
    principal: Principal,
    handle: str,
    *,
    at: datetime,
    status: str | None = None,
    reason: str | None = None,
    **changes: str | None,
) -> Handle:
    """Change a handle's status (suspension, migration, retirement) and/or record fields
    (a new IoT number, SIM, credit code after a transfer …); audited. Retiring releases the
    terminal and number bindings. The node copy is then stale until re-registered."""
    return update_handle_row(
        session,
        principal,
        find_handle(session, handle),
        at=at,
        status=status,
        reason=reason,
        changes=changes,
    )


def update_handle_row(
    session: Session,
    principal: Principal,
    row: Handle,
    *,
    at: datetime,
    status: str | None = None,
    reason: str | None = None,
    values: Sequence[HandleValue] | None = None,
    changes: Mapping[str, str | None] | None = None,
) -> Handle:
    """:func:`update_handle` on a handle already read (a subscription's move has it; a file
    of moves has read its ``values`` too)."""
    changes = changes or {}
    unknown = set(changes) - _RECORD_FIELDS
    if unknown:
        raise InvalidInput(f"unknown handle fields {sorted(unknown)}")
    if row.status == "retired":
        raise Conflict(f"handle {row.handle} is retired")
    if values is None:
        values = values_of(session, row.id)
    before_record = record_of(session, row, values)
    before = asdict(before_record) | {"status": row.status}
    record = (
        DeviceRecord(**(asdict(before_record) | dict(changes))).validated()
        if changes
        else before_record
    )
    if status is not None and status != row.status:
        states.HANDLE.check(row.status, status, principal.role)
        row.status = status
    if row.status == "retired":
        row.terminal_id = row.iot_number = None
    elif (record.terminal_id, record.iot_number) != (row.terminal_id, row.iot_number):
        # A binding this handle holds already is its own (unique columns): only a new one
        # can clash, and a status change alone (a suspension) binds nothing new.
        _check_binding(session, record, row.id)
        row.terminal_id, row.iot_number = record.terminal_id, record.iot_number
    after = _write_values(session, row, record, at, values)
    if after == {k: v for k, v in before.items() if v is not None}:
        return row
    row.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="handle.status-changed" if before["status"] != row.status else "handle.updated",
        target=("handle", row.handle),
        tenant_id=row.tenant_id,
        before={k: v for k, v in before.items() if v is not None},
        after=after,
        reason=reason,
    )
    return row


def delete_handle(
    session: Session, principal: Principal, handle: str, *, at: datetime, reason: str | None
) -> None:
    """Remove a handle and its values (a mistaken registration); the audit log keeps them."""
    row = find_handle(session, handle)
    before = asdict(record_of(session, row)) | {"status": row.status}
    session.execute(delete(HandleValue).where(HandleValue.handle_id == row.id))
    session.delete(row)
    record_change(
        session,
        principal,
        at=at,
        action="handle.deleted",
        target=("handle", row.handle),
        tenant_id=row.tenant_id,
        before={k: v for k, v in before.items() if v is not None},
        reason=reason,
    )


def _type_matches(value_type: str, wanted: str) -> bool:
    # Handle types compare case-insensitively; "EMAIL." also takes "EMAIL.work" and "EMAIL".
    vt, w = value_type.upper(), wanted.upper()
    if w.endswith("."):
        return vt == w[:-1] or vt.startswith(w)
    return vt == w


def resolve(
    session: Session,
    handle: str,
    *,
    types: Iterable[str] = (),
    indexes: Iterable[int] = (),
    public_only: bool = True,
) -> ResolvedHandle:
    """The handle's values, as the Handle proxy resolves them: with ``types``/``indexes``
    only the values matching any of them (possibly none); with ``public_only`` only the
    publicly readable ones. InvalidHandle or HandleNotFound otherwise."""
    row = find_handle(session, handle)
    types, indexes = list(types), set(indexes)
    values = [v for v in values_of(session, row.id) if v.public or not public_only]
    if types or indexes:
        values = [
            v for v in values if v.idx in indexes or any(_type_matches(v.type, t) for t in types)
        ]
    return ResolvedHandle(row, values)
