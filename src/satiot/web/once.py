"""One outcome per rendered form: a double click, a resent POST or a reload does nothing twice.

The API has ``Idempotency-Key`` for this; a browser cannot send a header from a plain form, so
each form that creates something carries a hidden ``form_key``, fresh on every render
(:func:`new_form_key`, a Jinja global). The first POST with a key runs and, in the same
transaction, records where it led (``core.idempotency``, the API's own store, under the signed-in
person's identity); any later POST with that key does nothing and leads to the same place with
a note that it was sent already. A refused POST records nothing, so the re-rendered form (which
carries a new key anyway) can be corrected and sent again. A POST without a key (a script, an
old page) runs as before.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Form
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satiot.core import idempotency
from satiot.web.flash import Flash, Level, redirect_with
from satiot.web.session import ConsoleSession

FIELD = "form_key"
#: The hidden field as a form parameter ("" when absent).
FormKey = Annotated[str, Form(alias=FIELD, max_length=idempotency.MAX_KEY_LENGTH)]
ALREADY_SENT = "This form was sent already; nothing was done twice."


def new_form_key() -> str:
    """A key for one rendering of one form."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Sent:
    """Where a form's POST leads, and what to tell the person there."""

    location: str
    message: str
    level: Level = "success"


def submit_once(
    signed_in: ConsoleSession, form_key: str, path: str, work: Callable[[Session], Sent]
) -> tuple[Sent, bool]:
    """Run ``work`` in one write transaction unless this form was sent already; return its
    outcome and whether it is the earlier submission's (replayed).

    A DomainError from ``work`` rolls everything back and propagates, key not recorded.
    """
    if not form_key:
        with signed_in.call.write() as session:
            return work(session), False
    idempotency.check_key(form_key)
    who = f"console:{signed_in.principal.identity}"
    fp = idempotency.fingerprint("POST", path, "form")
    ttl = timedelta(seconds=signed_in.ctx.settings.idempotency_ttl_s)
    for attempt in range(2):
        try:
            with signed_in.call.write() as session:
                now = signed_in.now()
                stored = idempotency.lookup(
                    session, principal=who, key=form_key, request_hash=fp, now=now
                )
                if stored is not None:
                    earlier = json.loads(stored.body)
                    return Sent(earlier["location"], ALREADY_SENT, "info"), True
                sent = work(session)
                idempotency.remember(
                    session,
                    principal=who,
                    key=form_key,
                    method="POST",
                    path=path,
                    request_hash=fp,
                    status_code=303,
                    body=json.dumps({"location": sent.location}),
                    now=now,
                    ttl=ttl,
                )
                return sent, False
        except IntegrityError:
            # The same form's other POST committed first (PostgreSQL runs both at once):
            # the next attempt finds its record and leads where it led.
            if attempt:
                raise
    raise AssertionError("unreachable")


def redirect(signed_in: ConsoleSession, sent: Sent) -> RedirectResponse:
    """303 to where the form led, with its message."""
    flash = Flash(sent.level, sent.message)
    return redirect_with(sent.location, flash, secure=signed_in.ctx.settings.cookie_secure)
