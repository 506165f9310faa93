"""Query parameters an endpoint does not take are refused, as unknown body fields are.

A misspelt filter (``?stauts=suspended``) would otherwise be ignored, and the caller would
read the whole list as if it were the filtered one: on a list of devices to suspend or numbers
to recycle that is worse than an error. Every route under ``/api/v1`` gets this check as a
router dependency; the names it takes are read from the route's own parameter declarations
(and its dependencies'), so a new filter needs no second list here.

A value holding NUL (``%00``) is refused here too, for every parameter: PostgreSQL cannot take
NUL in text, so a filter compared in SQL would fail there as a 500, and a parameter kept in a
request model (an order's ``externalId``) would fail that model's own check as one.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _names(dependant: Dependant) -> set[str]:
    """The query parameter names of ``dependant`` and everything it depends on."""
    found = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        found |= _names(sub)
    return found


_ATTR = "satiot_query_names"


def _allowed(route: APIRoute) -> frozenset[str]:
    """Worked out once per route and kept on it (routes are not hashable, and live as long
    as their application)."""
    names: frozenset[str] | None = getattr(route, _ATTR, None)
    if names is None:
        names = frozenset(_names(route.dependant))
        setattr(route, _ATTR, names)
    return names


def known_query_only(request: Request) -> None:
    """Refuse the request (422, naming each unknown parameter and what the endpoint takes,
    and each value holding NUL)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    allowed = _allowed(route)
    unknown = sorted(set(request.query_params.keys()) - allowed)
    takes = ", ".join(sorted(allowed)) or "no query parameters"
    errors = [
        {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": f"unknown query parameter (this endpoint takes: {takes})",
            "input": request.query_params.get(name),
        }
        for name in unknown
    ]
    errors += [
        {
            "type": "value_error",
            "loc": ("query", name),
            "msg": "must not contain NUL (\\u0000) characters",
            "input": value,
        }
        for name, value in request.query_params.multi_items()
        if "\x00" in value and name in allowed
    ]
    if errors:
        raise RequestValidationError(errors)
