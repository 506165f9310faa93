"""Where a benchmark runs: the embedded SQLite, a scratch PostgreSQL database, or one given.

Each benchmark that runs on several backends takes the same three options, prints the same
header (the runtime's tuning, the yardstick, the start) and runs once per backend in a new
database that it drops afterwards, so that its rows never meet anyone's data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import _args
from _yardstick import calibrate

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgresql")
    parser.add_argument("--db-url", help="one given (scratch!) database instead")
    parser.add_argument("--pg-server", default=PG_SERVER, help="server for the scratch database")


def each(
    parser: argparse.ArgumentParser, args: argparse.Namespace, note: str = ""
) -> Iterator[str]:
    """The URL of each database to run on, once the header and ``== backend ==`` are printed
    (a bad ``--backends`` or ``--db-url`` exits with a one-line error first)."""
    if args.db_url:
        _args.database_url(parser, "--db-url", args.db_url)
    backends = _args.backends(parser, args.backends)
    print(_args.tune_runtime())
    print(f"{'yardstick':<26}{calibrate():.1f} M interpreter steps/s")
    print(f"{'started':<26}{datetime.now(UTC):%Y-%m-%d %H:%M} UTC{note}")
    for backend in [None] if args.db_url else backends:
        with scratch_database(backend or "", args.db_url, args.pg_server) as url:
            print(f"== {backend or url.split(':')[0]} ==")
            yield url


@contextmanager
def scratch_database(backend: str, url: str | None, pg_server: str) -> Iterator[str]:
    if url:
        yield url
        return
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    server = make_url(pg_server)
    name = f"satiot_bench_{os.getpid()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
