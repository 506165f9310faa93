"""``satiot twin …``: the digital twin from a shell (contact plans, runs, plots)."""

from __future__ import annotations

import typer

twin_app = typer.Typer(
    help="The satellite network's digital twin: contact plans, simulated runs, plots.",
    no_args_is_help=True,
)
