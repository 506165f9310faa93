"""Fixtures shared by the whole suite.

The backend is chosen with ``--db=sqlite|postgresql`` or ``SATIOT_TEST_DB``; on PostgreSQL the
suite creates a database of its own on the server named by ``SATIOT_TEST_PG_URL`` (default: the
local trust-auth server's ``test`` database) and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from satiot.api.app import use_context
from satiot.api.context import AppContext
from satiot.core import migrate
from satiot.core.auth import passwords
from satiot.core.clock import ManualClock
from satiot.core.config import Settings
from satiot.core.db import Database
from satiot.schema import metadata
from satiot.server import build_app
from tests.factories import World

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("SATIOT_TEST_DB", "sqlite"),
        help="database backend for the suite (default: $SATIOT_TEST_DB or sqlite)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"satiot database backend: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    backend = request.config.getoption("--db")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'satiot.db'}"
        return
    with pg_database(f"satiot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}") as url:
        yield url


@contextmanager
def pg_database(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards; its URL."""
    server = make_url(os.environ.get("SATIOT_TEST_PG_URL", PG_DEFAULT))
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A test database need not outlive a crash of the server: commits stop waiting for
        # the disk, which PostgreSQL's tests spend much of their time on.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_db(db_url: str) -> Iterator[Database]:
    database = Database.connect(db_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def _truncate(database: Database) -> None:
    """Empty every table the last test wrote to, reset the audit chain's head, and (SQLite)
    forget planner statistics.

    On PostgreSQL each ``TRUNCATE``d table costs a new file, about 1 ms apiece: emptying all
    of them took 90 ms a test, three minutes of the suite. One query finds the tables that
    hold a row (a test writes to a handful), and only those are truncated.
    """
    tables = [t.name for t in reversed(metadata().sorted_tables) if t.name != "log_heads"]
    with database.engine.begin() as conn:
        if database.is_sqlite:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
            # Planner statistics a test gathered (core.db_statistics) would steer the next
            # tests' plans; dropping the table changes the schema, so every connection forgets.
            conn.execute(text("DROP TABLE IF EXISTS sqlite_stat1"))
            conn.execute(text("DROP TABLE IF EXISTS sqlite_stat4"))
        else:
            probe = " UNION ALL ".join(
                f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in tables
            )
            used = list(conn.execute(text(probe)).scalars())
            if used:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in used) + " CASCADE"))
        conn.execute(text("UPDATE log_heads SET last_seq = 0, last_hash = :h"), {"h": "0" * 64})


@pytest.fixture
def db(migrated_db: Database) -> Database:
    """A migrated, empty database."""
    _truncate(migrated_db)
    return migrated_db


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # Test receivers listen on 127.0.0.1; the guard itself is tested with it off.
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        max_body_bytes=64 * 1024,
        delivery_allow_private=True,
    )


@pytest.fixture
def ctx(settings: Settings, db: Database, clock: ManualClock) -> AppContext:
    return AppContext(settings=settings, db=db, clock=clock)


@pytest.fixture(scope="session")
def _apps() -> list[FastAPI]:
    return []


@pytest.fixture
def app(ctx: AppContext, _apps: list[FastAPI]) -> FastAPI:
    """The application, serving this test's context.

    It is built once per session and pointed at each test's context (``use_context``):
    building one is FastAPI's analysis of every route, half a second, and a third of the
    suite's time went on it when each test built its own. A test that adds routes builds its
    own app with ``build_app``.
    """
    if not _apps:
        _apps.append(build_app(ctx))
    use_context(_apps[0], ctx)
    return _apps[0]


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def world(ctx: AppContext) -> World:
    """The seeded operator plus helpers to add tenants, users and keys."""
    return World.seed(ctx)


_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_CHEAP_DUMMY = _CHEAP.hash("satiot-timing-equaliser")


@pytest.fixture(autouse=True)
def cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small parameters, so that creating users does not dominate the run.

    The hashes are still real Argon2id; a test that needs the production parameters asks for
    the ``real_argon2`` fixture.
    """
    if "real_argon2" in request.fixturenames:
        return
    monkeypatch.setattr(passwords, "_HASHER", _CHEAP)
    monkeypatch.setattr(passwords, "_DUMMY", _CHEAP_DUMMY)


@pytest.fixture
def real_argon2() -> None:
    """Keep the production Argon2 parameters for this test."""
