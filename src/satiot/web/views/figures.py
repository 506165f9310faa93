"""One number on the dashboard, with where to go for the detail.

Shared by the dashboard and the modules that compute its figures (network, business), so that
each of those returns rows the page shows as they are.
"""

from __future__ import annotations

from typing import NamedTuple


class Figure(NamedTuple):
    label: str
    value: int | str
    link: str | None = None
    note: str = ""
    link_label: str = "manage"
    #: Something wants attention (shown highlighted): a figure that is fine stays quiet.
    alert: bool = False


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` things as a note says it: "1 invoice", "2 invoices" (with thousands separators)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
