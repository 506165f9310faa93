"""What every ``satiot`` command shares: its consoles and how it fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from satiot.core.errors import DomainError

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: how every CLI error ends."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def domain_errors() -> Iterator[None]:
    """A domain error (bad period, unknown id, illegal move) as one line and exit 1."""
    try:
        yield
    except DomainError as exc:
        fail(exc.detail)
