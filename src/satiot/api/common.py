"""Schemas and helpers shared by every router: strict input, pages, idempotent creation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from types import UnionType
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from fastapi import Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FutureDate,
    FutureDatetime,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from satiot.api.deps import Call
from satiot.core import idempotency
from satiot.core.pagination import Page as CorePage

T = TypeVar("T")


class Input(BaseModel):
    """Base of every request body: unknown fields are an error, not silently ignored.

    Pydantic's lax mode would also read ``true`` as the number 1 and a number as a date (days
    since 1970): a client that sent either meant something else, so both are refused here
    while strings keep their usual conversions (a UUID, a date, a decimal amount).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        # PostgreSQL cannot store NUL in text: refuse it here instead of failing at INSERT.
        if _has_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        if isinstance(value, bool | int | float) and info.field_name is not None:
            annotation: Any = cls.model_fields[info.field_name].annotation
            kinds = _kinds(annotation)
            if isinstance(value, bool):
                if bool not in kinds and kinds & _NUMBERS:
                    raise ValueError("must be a number, not true or false")
            elif kinds & _TIMES and not kinds & _NUMBERS:
                raise ValueError("must be an ISO-8601 date or time (a string), not a number")
        return value


_NUMBERS = frozenset({int, float, Decimal})
_TIMES = frozenset({date, datetime, time})
#: Pydantic's constrained times are marker classes, not subclasses of ``datetime``.
_TIME_MARKERS = frozenset(
    {AwareDatetime, NaiveDatetime, FutureDatetime, PastDatetime, FutureDate, PastDate}
)


@cache
def _kinds(annotation: Any) -> frozenset[Any]:
    """The plain types a field's annotation admits at its top level (through Optional,
    unions, Annotated and Literal)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return frozenset().union(*(_kinds(a) for a in get_args(annotation)))
    if origin is Literal:
        return frozenset(type(v) for v in get_args(annotation))
    if annotation in _TIME_MARKERS:
        return frozenset({datetime})
    if isinstance(annotation, type):
        bases = (t for t in _NUMBERS | _TIMES if issubclass(annotation, t))
        return frozenset({annotation, *bases})
    return frozenset()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``?cursor=`` for the next one."""

    items: list[T]
    next_cursor: str | None


CursorParam = Annotated[str | None, Query(description="Opaque cursor from a previous page")]
LimitParam = Annotated[int, Query(ge=1, le=500, description="Items per page (1-500)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Repeat a POST safely: the same key and body return the first answer.",
    ),
]


def page_response(
    request: Request, response: Response, page: CorePage[Any], convert: Callable[[Any], T]
) -> Page[T]:
    """Build a page and add an RFC 8288 ``Link: rel="next"`` header when there is more."""
    if page.next_cursor:
        url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return Page[T](items=[convert(item) for item in page.items], next_cursor=page.next_cursor)


def create_idempotently(
    call: Call,
    request: Request,
    key: str | None,
    body: BaseModel,
    create: Callable[[Session], BaseModel],
    *,
    status_code: int | Callable[[], int] = 201,
    redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> JSONResponse:
    """Run ``create`` once per (caller, Idempotency-Key); replay its stored answer afterwards.

    ``status_code`` may be asked once ``create`` has run (an upload answered 200 when applied,
    202 when queued). ``redact`` removes secrets from what is stored, so a replay never
    reveals them again.
    """

    def status() -> int:
        return status_code() if callable(status_code) else status_code

    if key is None:
        with call.write() as session:
            out = create(session)
            return JSONResponse(jsonable_encoder(out), status_code=status())
    idempotency.check_key(key)
    who = call.principal.identity
    fp = idempotency.fingerprint(request.method, request.url.path, body.model_dump_json())
    for attempt in range(2):
        try:
            with call.write() as session:
                now = call.now()
                stored = idempotency.lookup(
                    session, principal=who, key=key, request_hash=fp, now=now
                )
                if stored is not None:
                    return JSONResponse(
                        json.loads(stored.body),
                        status_code=stored.status_code,
                        headers={"Idempotent-Replayed": "true"},
                    )
                content = jsonable_encoder(create(session))
                kept = redact(dict(content)) if redact else content
                idempotency.remember(
                    session,
                    principal=who,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    request_hash=fp,
                    status_code=status(),
                    body=json.dumps(kept),
                    now=now,
                    ttl=timedelta(seconds=call.ctx.settings.idempotency_ttl_s),
                )
                return JSONResponse(content, status_code=status())
        except IntegrityError:
            # A concurrent request with the same key committed first: replay its answer.
            if attempt:
                raise
    raise AssertionError("unreachable")
