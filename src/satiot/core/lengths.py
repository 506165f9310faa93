"""Text that must fit its column, checked before it is stored.

PostgreSQL refuses a value longer than its ``VARCHAR`` at INSERT, with an error that names no
field; SQLite stores it whole. The API's request models carry the same limits, but the CLI and
other callers reach the domain functions directly: those functions check here, so a long value
is the same clear error on both databases and from every door.
"""

from __future__ import annotations

from typing import Any

from satiot.core.errors import InvalidInput


def fits(value: str | None, column: Any, field: str) -> str | None:
    """``value`` if ``column`` (a mapped ``String(n)`` attribute) holds it; InvalidInput naming
    ``field`` otherwise."""
    limit = getattr(column.type, "length", None)
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {limit}", field=field)
    return value
