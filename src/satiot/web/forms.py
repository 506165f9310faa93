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

from satiot.core.errors import DomainError, InvalidInput

_FIELD_RE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?:\[(?P<index>[0-9]+)\])?$")
_NUMBER_RE = re.compile(r"^-?[0-9]{1,18}$")


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


def lines(text: str) -> list[str]:
    """The entries of a one-per-line text area, blank lines dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]
