"""Terminal models and their MIIT network-access licences.

MIIT publishes no licence lookup API, so the operator keeps its own table of licensed models
(entered through the API or imported as a list, :mod:`satiot.oss.licence_list`). Activation
calls :func:`check_model_admissible`; a daily job calls :func:`licence_watch` to raise alarms
for licences that are about to expire (typically three years after issue) or already have.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import imei as stdnum_imei
from stdnum.exceptions import ValidationError as StdnumError

from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.days import business_day
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import plain_text
from satiot.oss import states
from satiot.oss.models import TerminalModel

#: The observed shape of an MIIT network-access licence number, e.g. ``00-B182-228209``.
LICENCE_RE = re.compile(r"^[0-9]{2}-[0-9A-Z]{4}-[0-9]{6}$")
TAC_RE = re.compile(r"^[0-9]{8}$")
#: The most TACs one model records: the API's request models carry the same limit.
MAX_TACS = 100


class ModelNotAdmissible(InvalidInput):
    """Activation asked for a terminal model that is unlisted, withdrawn or expired."""

    slug = "model-not-admissible"
    title = "Terminal model not admissible"


def validate_licence_number(text: str) -> str:
    """The licence number in canonical form (trimmed, upper case), or InvalidInput."""
    value = text.strip().upper()
    if not LICENCE_RE.fullmatch(value):
        raise InvalidInput(
            f"licence number {text!r} is not of the form NN-XXXX-NNNNNN (e.g. 00-B182-228209)",
            field="licence_number",
        )
    return value


def validate_imei(text: str) -> str:
    """A 15-digit IMEI with a correct Luhn check digit (separators dropped), or InvalidInput.

    IMEISV (16 digits, no check digit) and 14-digit IMEIs without a check digit are refused:
    the check digit is what catches a mistyped terminal identity at activation.
    """
    try:
        value: str = stdnum_imei.validate(text)
    except StdnumError as exc:
        raise InvalidInput(f"IMEI {text!r} is not valid: {exc}", field="imei") from exc
    if len(value) != 15:
        raise InvalidInput(
            f"IMEI {text!r} must have 15 digits including the check digit", field="imei"
        )
    return value


def tac_of(imei: str) -> str:
    """The type allocation code: the first eight digits of an IMEI (it names the model)."""
    return validate_imei(imei)[:8]


@dataclass(frozen=True)
class TerminalModelSpec:
    """What the operator records about a licensed model."""

    name: str
    equipment_name: str
    manufacturer: str
    applicant: str
    licence_number: str
    issued_on: date
    expires_on: date
    tacs: tuple[str, ...] = field(default_factory=tuple)

    def validated(self, *, today: date | None = None) -> TerminalModelSpec:
        """The spec with canonical values; InvalidInput names the first bad field.

        With ``today``, a licence issued after it is refused: it is a typo, not a licence.
        MIIT dates licences in Beijing, so callers pass China's day (:func:`business_day`):
        by UTC, a licence issued in Beijing before 08:00 would not be issued yet. Without
        ``today`` the issue date is taken as it is, so that a stored record can be changed
        in other ways whatever the day.
        """
        texts = {
            name: plain_text(str(getattr(self, name)), getattr(TerminalModel, name), name)
            for name in ("name", "equipment_name", "manufacturer", "applicant")
        }
        if today is not None and self.issued_on > today:
            raise InvalidInput(
                f"the licence cannot be issued after today ({today.isoformat()})",
                field="issued_on",
            )
        if self.expires_on <= self.issued_on:
            raise InvalidInput("the licence must expire after it was issued", field="expires_on")
        if len(self.tacs) > MAX_TACS:
            raise InvalidInput(
                f"{len(self.tacs)} TACs; a model records at most {MAX_TACS}", field="tacs"
            )
        for tac in self.tacs:
            if not TAC_RE.fullmatch(tac):
                raise InvalidInput(f"TAC {tac!r} is not 8 digits", field="tacs")
        return TerminalModelSpec(
            licence_number=validate_licence_number(self.licence_number),
            issued_on=self.issued_on,
            expires_on=self.expires_on,
            tacs=tuple(sorted(set(self.tacs))),
            **texts,
        )


def model_view(model: TerminalModel) -> dict[str, Any]:
    """The fields the audit log records."""
    return {
        "name": model.name,
        "equipment_name": model.equipment_name,
        "manufacturer": model.manufacturer,
        "applicant": model.applicant,
        "licence_number": model.licence_number,
        "issued_on": model.issued_on.isoformat(),
        "expires_on": model.expires_on.isoformat(),
        "tacs": list(model.tacs),
        "status": model.status,
    }


def _check_unique(session: Session, spec: TerminalModelSpec, own: uuid.UUID | None) -> None:
    for column, value, label in (
        (TerminalModel.name, spec.name, "name"),
        (TerminalModel.licence_number, spec.licence_number, "licence_number"),
    ):
        other = session.scalar(select(TerminalModel.id).where(column == value))
        if other is not None and other != own:
            raise Conflict(f"another terminal model has {label} {value!r}", field=label)


def create_model(
    session: Session, principal: Principal, spec: TerminalModelSpec, *, at: datetime
) -> TerminalModel:
    """Record a licensed terminal model."""
    spec = spec.validated(today=business_day(at))
    _check_unique(session, spec, None)
    fields = asdict(spec) | {"tacs": list(spec.tacs)}
    model = TerminalModel(
        **fields, status=states.TERMINAL_MODEL.initial, created_at=at, updated_at=at
    )
    session.add(model)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="terminal-model.created",
        target=("terminal-model", model.id),
        tenant_id=None,
        after=model_view(model),
    )
    return model


def get_model(session: Session, model_id_or_name: uuid.UUID | str) -> TerminalModel:
    """A model by id or by name; NotFound otherwise."""
    model: TerminalModel | None
    if isinstance(model_id_or_name, uuid.UUID):
        model = session.get(TerminalModel, model_id_or_name)
    else:
        model = session.scalar(
            select(TerminalModel).where(TerminalModel.name == model_id_or_name.strip())
        )
    if model is None:
        raise NotFound(f"terminal model {model_id_or_name} not found")
    return model


def update_model(
    session: Session,
    principal: Principal,
    model_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    at: datetime,
    reason: str | None = None,
) -> TerminalModel:
    """Change a model's fields (a renewed licence: new number, dates) and/or its status."""
    model = get_model(session, model_id)
    before = model_view(model)
    current = TerminalModelSpec(
        name=model.name,
        equipment_name=model.equipment_name,
        manufacturer=model.manufacturer,
        applicant=model.applicant,
        licence_number=model.licence_number,
        issued_on=model.issued_on,
        expires_on=model.expires_on,
        tacs=tuple(model.tacs),
    )
    fields = {k: v for k, v in changes.items() if k != "status" and v is not None}
    if "tacs" in fields:
        fields["tacs"] = tuple(fields["tacs"])
    unknown = set(fields) - set(asdict(current))
    if unknown:
        raise InvalidInput(f"unknown fields {sorted(unknown)}")
    # A renewal's new issue date is checked against the day; an unchanged one is history.
    renewed = fields.get("issued_on", model.issued_on) != model.issued_on
    spec = TerminalModelSpec(**(asdict(current) | fields)).validated(
        today=business_day(at) if renewed else None
    )
    _check_unique(session, spec, model.id)
    status = changes.get("status")
    if status is not None and status != model.status:
        states.TERMINAL_MODEL.check(model.status, status, principal.role)
        model.status = status
    for key, value in asdict(spec).items():
        setattr(model, key, list(value) if key == "tacs" else value)
    after = model_view(model)
    if after == before:
        return model
    model.updated_at = at
    record_change(
        session,
        principal,
        at=at,
        action="terminal-model.updated",
        target=("terminal-model", model.id),
        tenant_id=None,
        before=before,
        after=after,
        reason=reason,
    )
    return model


def check_model_admissible(
    session: Session,
    model_id_or_name: uuid.UUID | str,
    *,
    on: date,
    imei: str | None = None,
) -> TerminalModel:
    """The model, if a terminal of it may be activated on ``on``; ModelNotAdmissible if not.

    A model must be listed, not withdrawn, and hold a licence valid on that day (issue date
    to expiry, both inclusive). With ``imei``, the IMEI must be valid and, when the operator
    recorded the model's TACs, carry one of them, so a handset cannot pass for an IoT module.
    """
    try:
        model = get_model(session, model_id_or_name)
    except NotFound:
        raise ModelNotAdmissible(
            f"terminal model {model_id_or_name} holds no network-access licence on record",
            field="model",
        ) from None
    if model.status != "listed":
        raise ModelNotAdmissible(f"terminal model {model.name} is {model.status}", field="model")
    if on < model.issued_on:
        raise ModelNotAdmissible(
            f"the licence {model.licence_number} of {model.name} is valid only from "
            f"{model.issued_on.isoformat()}",
            field="model",
        )
    if on > model.expires_on:
        raise ModelNotAdmissible(
            f"the licence {model.licence_number} of {model.name} expired on "
            f"{model.expires_on.isoformat()}",
            field="model",
        )
    if imei is not None:
        tac = tac_of(imei)
        if model.tacs and tac not in model.tacs:
            raise ModelNotAdmissible(
                f"IMEI {imei} (TAC {tac}) is not a {model.name} terminal", field="imei"
            )
    return model


@dataclass(frozen=True)
class LicenceWatch:
    """The daily re-check: listed models whose licence has expired or expires soon."""

    on: date
    expired: list[TerminalModel]
    expiring: list[TerminalModel]


def licence_watch(session: Session, *, on: date, within_days: int = 90) -> LicenceWatch:
    """Listed models expired before ``on``, and those expiring within ``within_days`` of it."""
    if within_days < 0:
        raise InvalidInput("within_days must not be negative", field="within_days")
    try:
        horizon = on + timedelta(days=within_days)
    except OverflowError:  # past 9999-12-31: every licence expires before the horizon
        horizon = date.max
    rows = session.scalars(
        select(TerminalModel)
        .where(TerminalModel.status == "listed", TerminalModel.expires_on <= horizon)
        .order_by(TerminalModel.expires_on, TerminalModel.name)
    ).all()
    return LicenceWatch(
        on=on,
        expired=[m for m in rows if m.expires_on < on],
        expiring=[m for m in rows if m.expires_on >= on],
    )
