"""What every ``satiot`` command shares: its consoles and how it fails."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from satiot.core.errors import DomainError

if TYPE_CHECKING:
    from satiot.core.config import Settings
    from satiot.core.csv_text import FileRejected

#: The ``--encoding`` of the commands that import CSV files (``satiot.core.csv_text``).
#: Where a command that makes a file writes it (standard output when not given).
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of standard output"),
]
EncodingOption = Annotated[
    str,
    typer.Option(
        help="The file's encoding: utf-8, or gb18030 (also gbk) as Excel saves 'CSV' "
        "on Chinese Windows; a UTF-8 byte-order mark wins"
    ),
]

#: Markup is off: what the commands print holds names, paths and messages that people typed,
#: and ``[/x]`` in a tenant's name must print as it is, not fail as a closing tag. Styles are
#: given as :class:`rich.text.Text` spans (:func:`styled`).
out = Console(markup=False)
err = Console(stderr=True, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain text with styled spans: ``styled(("error:", "bold red"), " ", text)``."""
    return Text.assemble(*parts)


def checked_encoding(name: str) -> str:
    """The codec an ``--encoding`` names, or one line on stderr and exit 1."""
    from satiot.core.csv_text import encoding_named

    try:
        return encoding_named(name)
    except ValueError as exc:
        fail(f"--encoding: {exc}")


def error_line(message: str, label: str = "error:") -> None:
    """One line on stderr: the label in bold red, then the message as it is."""
    err.print(styled((label, "bold red"), " ", message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: how every CLI error ends."""
    error_line(message)
    raise typer.Exit(code)


@contextmanager
def opened_output(output: Path | None) -> Iterator[BinaryIO]:
    """Where a command writes the file it makes: ``output`` (opened before anything is
    written, so that a path it cannot write is one error line) or standard output."""
    if output is None:
        yield sys.stdout.buffer
        return
    try:
        with output.open("wb") as f:
            yield f
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")


#: How an export reports progress: told the count of each chunk it writes.
Progressed = Callable[[int], None] | None


def write_export(
    output: Path | None,
    produce: Callable[[Progressed], Iterable[bytes]],
    count: Callable[[], int],
    noun: str,
) -> int | None:
    """Write an export's pieces to standard output, or to ``output`` with a progress bar over
    the ``count()`` lines it will hold; return that count when writing a file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with opened_output(output) as f:
        if output is None:
            f.writelines(produce(None))
            return None
        total = count()
        columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task(noun, total=total)
            f.writelines(produce(lambda n: bar.advance(task, n)))
    return total


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


def new_password() -> str:
    """The password asked for at a terminal (twice, unseen), or the first line of standard
    input when it is not a terminal. getpass would read a pipe too, but only after printing
    its "may be echoed" warnings, which a script's log would then carry."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("no password: give --password, pipe one on standard input, or run at a terminal")
    return line


def refuse_file(path: Path, exc: FileRejected) -> NoReturn:
    """A refused upload: one line for a file with one error; else one per error, then how many
    lines are bad."""
    if len(exc.rows) == 1:
        fail(f"{path}: {exc.detail}")
    for e in exc.rows:
        error_line(f"{path}: line {e.line}: {e.reason}")
    fail(f"{path}: {exc.lines} lines cannot be {exc.done}; nothing was {exc.done}")
