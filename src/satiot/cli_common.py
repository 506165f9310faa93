"""What every ``satiot`` command shares: its consoles and how it fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from satiot.core.errors import DomainError

if TYPE_CHECKING:
    from satiot.core.config import Settings

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


def load_settings() -> Settings:
    """The configuration from the environment, with the runtime tuned as it says
    (``core.runtime``); a bad value is one line naming its variable."""
    from pydantic import ValidationError

    from satiot.core.config import Settings
    from satiot.core.runtime import tune_gc

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SATIOT_" + "_".join(str(part) for part in first["loc"]).upper()
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        fail(f"{name}: {first['msg']}{more}")
    tune_gc(settings.gc_young)  # every command that does real work starts here
    return settings
