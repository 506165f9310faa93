"""The benchmarks' command lines: whole option names only, and a clear error for bad input.

argparse would otherwise take ``--db`` for ``--db-url`` and hand ``sqlite`` on as a URL."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

BACKENDS = ("sqlite", "postgresql")


class _Parser(argparse.ArgumentParser):
    """Errors as the ``satiot`` command gives them: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --events: …"; the option's name alone reads as satiot's own
        sys.stderr.write(f"error: {message.removeprefix('argument ')} (see --help)\n")
        sys.exit(2)


def parser(doc: str | None) -> argparse.ArgumentParser:
    return _Parser(description=doc.splitlines()[0] if doc else None, allow_abbrev=False)


def at_least(least: int) -> Callable[[str], int]:
    """An option's ``type``: a whole number no smaller than ``least`` (a count of zero
    devices or events would otherwise end in a division by zero, far from its cause)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"at least {least:,}")
        return value

    return whole


def above(floor: float) -> Callable[[str], float]:
    """An option's ``type``: a number greater than ``floor``."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value <= floor:
            raise argparse.ArgumentTypeError(f"a finite number more than {floor:g}")
        return value

    return number


def backends(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """``sqlite,postgresql`` as a list, or exit with a one-line error naming the bad one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in BACKENDS:
            parser.error(f"--backends: {name!r} is not one of {', '.join(BACKENDS)}")
    if not names:
        parser.error("--backends: name at least one of " + ", ".join(BACKENDS))
    return names


def database_url(parser: argparse.ArgumentParser, option: str, text: str) -> str:
    """A SQLAlchemy URL, or exit with a one-line error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(text)
    except ArgumentError:
        parser.error(f"{option}: {text!r} is not a database URL (e.g. sqlite:///bench.db)")
    return text


def tune_runtime() -> str:
    """Tune the runtime as ``satiot`` commands and the server do (``SATIOT_GC_YOUNG``), so a
    benchmark measures what they run; returns the line that says so."""
    from satiot.core.config import Settings
    from satiot.core.runtime import tune_gc

    young = Settings().gc_young
    tune_gc(young)
    shown = f"every {young:,} allocations" if young else "CPython's default (700)"
    return f"{'young GC generation':<26}{shown} (SATIOT_GC_YOUNG)"
