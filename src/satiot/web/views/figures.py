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
