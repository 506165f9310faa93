"""What the console's create forms share: the field a refusal names, in the form's own words.

A form that creates something re-renders after a refusal with the values typed and the reason.
The domain names the field as the REST API spells it (``legal_representative.resident_id``,
``destination_allow_list[1]``); :func:`field_error` turns that into the form's field (to mark
it) and its label (to say which one failed), keeping the domain's reason word for word. The
checks themselves stay in the domain: the console parses only what a browser sends as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from satiot.bss.money import to_micros
from satiot.core.errors import DomainError, InvalidInput

_FIELD_RE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?:\[(?P<index>[0-9]+)\])?$")
_NUMBER_RE = re.compile(r"^-?[0-9]{1,18}$")
_AMOUNT_RE = re.compile(r"^\+?[0-9]*\.?[0-9]*$")
_SIGNED_AMOUNT_RE = re.compile(r"^[-+]?[0-9]*\.?[0-9]*$")
#: The largest amount a form takes, in yuan (the API's 14 digits with two decimals).
MAX_YUAN = Decimal("999999999999.99")


@dataclass(frozen=True)
class FieldError:
    """A refusal as a form shows it: the form field to mark (None: the form as a whole) and a
    message that names the field by its label and says why."""

    field: str | None
    message: str


def field_error(
    exc: DomainError, labels: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> FieldError:
    """The refusal ``exc`` for a form whose fields are labelled ``labels``; ``aliases`` maps a
    domain field name to the form's where they differ."""
    raw = exc.extensions.get("field")
    match = _FIELD_RE.match(raw) if isinstance(raw, str) else None
    if match is None:
        return FieldError(None, exc.detail)
    name = (aliases or {}).get(match["name"], match["name"])
    label = labels.get(name, name)
    if match["index"] is not None:
        label = f"{label}, entry {int(match['index']) + 1}"
    reason = exc.detail
    for prefix in (f"{raw}: ", f"{match['name']}: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
            break
    return FieldError(name, f"{label}: {reason}")


def whole_number(text: str, field: str, *, required: bool) -> int | None:
    """A number typed into a form (``3,000`` and ``3 000`` too); empty is None unless
    ``required``. Only the form's syntax is checked here: the domain judges the range."""
    cleaned = re.sub(r"[\s,_]", "", text)
    if not cleaned:
        if required:
            raise InvalidInput(f"{field}: enter a number", field=field)
        return None
    if not _NUMBER_RE.fullmatch(cleaned):
        raise InvalidInput(f"{field}: {text.strip()!r} is not a whole number", field=field)
    return int(cleaned)


def yuan_amount(
    text: str, field: str = "amount", *, example: str = "200.00", signed: bool = False
) -> int:
    """A positive yuan amount typed into a form (``1,200.50``) as micro-yuan: ASCII digits, at
    most two decimals, at most :data:`MAX_YUAN` (``Decimal`` alone also reads ``Infinity``,
    ``1e400`` and Arabic-Indic digits). ``signed`` also takes one below zero (``-50``, a
    credit); zero is refused either way."""
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput(
            f"{field} must be a number of yuan, e.g. {example}", field=field
        ) from None
    kind = "a non-zero" if signed else "a positive"
    size = abs(value) if signed and value.is_finite() else value
    if not value.is_finite() or size <= 0 or size > MAX_YUAN:
        raise InvalidInput(f"{field} must be {kind} number of yuan, e.g. {example}", field=field)
    if not (_SIGNED_AMOUNT_RE if signed else _AMOUNT_RE).fullmatch(cleaned):
        raise InvalidInput(
            f"{field} must be written with the digits 0-9, e.g. {example}", field=field
        )
    if value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"{field} has more than two decimals", field=field)
    return to_micros(value)


def lines(text: str) -> list[str]:
    """The entries of a one-per-line text area, blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]
