"""The `satiot` command, run as an operator runs it: the installed `satiot`, a separate process
reading SATIOT_*. Each command family has such a test; the other checks of a command's output
and exit code run the same command in this process (typer's runner), with the same environment."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError
from typer.testing import CliRunner

from satiot.cli import app
from satiot.core import events
from satiot.core.auth.credentials import authenticate_api_key
from satiot.core.auth.roles import SCOPES
from satiot.core.auth.users import authenticate_password
from satiot.core.db import Database
from satiot.core.events import Consumer, consume_batch
from satiot.core.models import Tenant, User
from tests.conftest import pg_database

ROOT = Path(__file__).resolve().parents[1]
#: The console script that installing satiot puts next to the interpreter.
SATIOT = Path(sys.executable).with_name("satiot")
#: Imported by none of `satiot --help`: the database layer, the server, the twin, crypto.
HEAVY = {
    "alembic",
    "argon2",
    "cryptography",
    "fastapi",
    "global_land_mask",
    "httpx",
    "jinja2",
    "matplotlib",
    "numba",
    "numpy",
    "psycopg",
    "pydantic",
    "reportlab",
    "scipy",
    "sgp4",
    "sqlalchemy",
    "starlette",
    "uvicorn",
}
#: Runs `satiot --help` as the console script does and prints the top-level modules it loaded.
PROBE = """
import contextlib, io, sys
from satiot.cli import main
sys.argv = ["satiot", "--help"]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
print(*sorted({name.split(".")[0] for name in sys.modules}))
"""
FAMILIES = (
    "migrate",
    "seed",
    "up",
    "bench",
    "users",
    "tenants",
    "api-keys",
    "audit",
    "events",
    "twin",
    "numbers",
    "terminals",
    "catalog",
    "orders",
    "subscriptions",
    "bills",
)


@dataclass
class Run:
    code: int
    out: str
    err: str


def _inherited(name: str) -> bool:
    """Whether a variable of the test run reaches the command (no SATIOT_*, no width, no color)."""
    return not name.startswith("SATIOT_") and name not in ("COLUMNS", "FORCE_COLOR")


def _start(args: tuple[str, ...], env: dict[str, str]) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if _inherited(k)}
    return subprocess.Popen(
        [str(SATIOT), *args],
        env=base | env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> Run:
    out, err = proc.communicate(timeout=120)
    return Run(proc.returncode, out, err)


def satiot(*args: str, env: dict[str, str]) -> Run:
    return _finish(_start(args, env))


def satiot_each(*commands: tuple[str, ...], env: dict[str, str]) -> list[Run]:
    """Run independent commands side by side (each is still its own process)."""
    procs = [_start(args, env) for args in commands]
    return [_finish(p) for p in procs]


runner = CliRunner()


def satiot_here(*args: str, env: dict[str, str]) -> Run:
    """The command run in this process, with the environment :func:`satiot` gives a process;
    an exception a process would end on with a traceback is raised here."""
    unset: dict[str, str | None] = {k: None for k in os.environ if not _inherited(k)}
    result = runner.invoke(app, list(args), env=unset | env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def _one_error_line(run: Run) -> str:
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: "), run.err
    assert "Traceback" not in run.err
    return lines[0]


@pytest.fixture
def fresh(tmp_path) -> dict[str, str]:
    """A brand-new embedded (SQLite) installation in a temporary data directory."""
    return {"SATIOT_DATA_DIR": str(tmp_path)}


@pytest.fixture
def shared(db, db_url, world) -> dict[str, str]:
    """The suite's database (SQLite or PostgreSQL), seeded with the operator."""
    return {"SATIOT_DATABASE_URL": db_url}


def _sqlite_db(env: dict[str, str]) -> Database:
    return Database.connect(f"sqlite:///{Path(env['SATIOT_DATA_DIR']) / 'satiot.db'}")


def test_help_lists_every_command_without_loading_the_platform(fresh):
    """The installed `satiot` answers --help; the database layer, the server and the twin are
    imported by the commands that use them, not by the command line itself."""
    run = satiot("--help", env=fresh)
    assert run.code == 0, run.err
    for family in FAMILIES:
        assert re.search(rf"^│ {re.escape(family)} ", run.out, re.MULTILINE), family
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={k: v for k, v in os.environ.items() if _inherited(k)} | fresh,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    loaded = set(probe.stdout.split())
    assert "typer" in loaded and "satiot" in loaded, probe.stdout
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_migrate_twice_then_seed_with_chosen_password(fresh):
    first = satiot("migrate", env=fresh)
    assert first.code == 0, first.err
    assert re.search(r"database at revision \w+ \(was empty\)", first.out)
    assert (Path(fresh["SATIOT_DATA_DIR"]) / "satiot.db").exists()
    second = satiot("migrate", env=fresh)
    assert second.code == 0, second.err
    assert "(unchanged)" in second.out
    # Nothing to act as yet: the error says what to do.
    early = satiot("tenants", "create", "acme", env=fresh)
    assert early.code == 1
    assert "satiot migrate" in _one_error_line(early)
    seeded = satiot("seed", env=fresh | {"SATIOT_ADMIN_PASSWORD": "chosen-password-1"})
    assert seeded.code == 0, seeded.err
    assert "chosen-password-1" not in seeded.out and "password" not in seeded.out
    database = _sqlite_db(fresh)
    try:
        with database.read() as s:
            assert authenticate_password(s, "admin", "chosen-password-1") is not None
    finally:
        database.dispose()


def test_seed_prints_a_generated_password_once(fresh):
    first = satiot_here("seed", env=fresh)
    assert first.code == 0, first.err
    m = re.search(r"created user admin with password (\S+)", first.out)
    assert m, first.out
    password = m.group(1)
    second = satiot_here("seed", env=fresh)
    assert second.code == 0, second.err
    assert "password" not in second.out
    assert password not in second.out
    database = _sqlite_db(fresh)
    try:
        with database.read() as s:
            # The printed password is the admin's, and the second run did not reset it.
            admin = authenticate_password(s, "admin", password)
            assert admin is not None and admin.role == "operator-admin"
            assert s.scalar(select(Tenant.kind).where(Tenant.slug == "operator")) == "operator"
    finally:
        database.dispose()


def test_tenants_create_and_duplicate(shared, db):
    ok = satiot("tenants", "create", "acme", "--name", "Acme Logistics", env=shared)
    assert ok.code == 0, ok.err
    assert ok.out.startswith("tenant acme created: ")
    with db.read() as s:
        assert s.scalar(select(Tenant.name).where(Tenant.slug == "acme")) == "Acme Logistics"
    dup = satiot_here("tenants", "create", "acme", env=shared)
    bad = satiot_here("tenants", "create", "Not A Slug", env=shared)
    listed = satiot_here("tenants", "list", env=shared)
    assert dup.code == 1
    assert _one_error_line(dup) == "error: tenant slug 'acme' is taken"
    assert bad.code == 1
    assert "slug" in _one_error_line(bad)
    assert listed.code == 0 and "acme" in listed.out and "operator" in listed.out


def test_values_longer_than_their_column_are_one_line_on_every_database(shared, db):
    """PostgreSQL refuses them at INSERT and SQLite would keep them: refused before either."""
    long_name = satiot_here("tenants", "create", "wordy", "--name", "x" * 201, env=shared)
    assert long_name.code == 1
    assert _one_error_line(long_name) == "error: name is 201 characters; at most 200"
    long_key = satiot_here("api-keys", "create", "k" * 101, "--tenant", "operator", env=shared)
    assert long_key.code == 1
    assert _one_error_line(long_key) == "error: name is 101 characters; at most 100"
    with db.read() as s:
        assert s.scalar(select(Tenant.id).where(Tenant.slug == "wordy")) is None
    fitting = satiot_here("tenants", "create", "wordy", "--name", "x" * 200, env=shared)
    assert fitting.code == 0, fitting.err


def test_users_create(shared, db, world):
    world.tenant("acme")
    ok = satiot(
        "users",
        "create",
        "carol",
        "--role",
        "customer-admin",
        "--tenant",
        "acme",
        "--password",
        "a-long-password",
        env=shared,
    )
    assert ok.code == 0, ok.err
    assert "user carol (customer-admin) created in acme" in ok.out
    with db.read() as s:
        assert authenticate_password(s, "carol", "a-long-password") is not None


def test_users_create_reads_a_piped_password_without_warnings(shared, db):
    """A script pipes the password: the command reads its first line and says nothing else
    (no "password may be echoed" warnings in the script's log); no password at all is one
    error line and no user."""
    base = {k: v for k, v in os.environ.items() if _inherited(k)} | shared

    def create(name: str, stdin: str) -> Run:
        done = subprocess.run(
            [str(SATIOT), "users", "create", name, "--role", "noc"],
            input=stdin,
            env=base,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    piped = create("erin", "a-long-password\nignored\n")
    assert piped.code == 0 and piped.err == "", piped.err
    assert "user erin (noc) created in operator" in piped.out
    empty = create("frank", "")
    assert empty.code == 1
    assert "no password" in _one_error_line(empty)
    with db.read() as s:
        assert authenticate_password(s, "erin", "a-long-password") is not None
        assert s.scalar(select(User).where(User.username == "frank")) is None


def test_users_create_refusals(shared, db, world):
    world.tenant("acme")
    create = ("users", "create", "dave")
    bad_role, short, wrong_tenant, missing = [
        satiot_here(*create, *options, env=shared)
        for options in (
            ("--role", "wizard", "--password", "a-long-password"),
            ("--role", "noc", "--password", "short"),
            ("--role", "noc", "--tenant", "acme", "--password", "a-long-password"),
            ("--role", "noc", "--tenant", "nope", "--password", "a-long-password"),
        )
    ]
    assert bad_role.code != 0
    assert "wizard" in bad_role.err and "Traceback" not in bad_role.err
    assert short.code == 1
    assert "at least 10" in _one_error_line(short)
    assert wrong_tenant.code == 1
    assert "customer tenant" in _one_error_line(wrong_tenant)
    assert missing.code == 1
    assert "nope" in _one_error_line(missing)
    with db.read() as s:
        assert s.scalar(select(User).where(User.username == "dave")) is None


def test_api_keys_scopes_lists_every_scope(fresh):
    run = satiot("api-keys", "scopes", env=fresh)
    assert run.code == 0, run.err
    for scope in SCOPES:
        assert scope in run.out
    assert "operator-admin" in run.out


def test_api_keys_create_prints_a_working_secret_once(shared, db, world, clock):
    world.tenant("acme")
    run = satiot_here(
        "api-keys",
        "create",
        "collector",
        "--tenant",
        "acme",
        "--role",
        "customer-admin",
        "--scope",
        "users:read",
        env=shared,
    )
    assert run.code == 0, run.err
    secret = run.out.strip().splitlines()[-1]
    assert secret.startswith("sk_")
    with db.read() as s:
        p = authenticate_api_key(s, secret, clock.now())
    assert p.scopes == {"users:read"}
    with db.engine.connect() as conn:
        assert secret not in repr(conn.execute(text("SELECT * FROM api_keys")).all())
    too_much = satiot_here(
        "api-keys",
        "create",
        "x",
        "--tenant",
        "acme",
        "--role",
        "customer-user",
        "--scope",
        "users:write",
        env=shared,
    )
    assert too_much.code == 1
    assert "users:write" in _one_error_line(too_much)


@pytest.mark.parametrize(
    "role,why",
    [
        (
            "operator-admin",
            "role 'operator-admin' cannot be held in a customer tenant by a machine key",
        ),
        ("noc", "role 'noc' cannot be held in a customer tenant by a machine key"),
        (
            "ground-station",
            "role 'ground-station' cannot be held in a customer tenant by a machine key",
        ),
    ],
)
def test_a_customers_machine_key_cannot_hold_an_operator_role(shared, db, world, role, why):
    """A key for a customer tenant with operator scopes would read every tenant's data."""
    world.tenant("acme")
    with db.read() as s:
        keys_before = s.connection().exec_driver_sql("SELECT count(*) FROM api_keys").scalar()
    run = satiot_here("api-keys", "create", "k", "--tenant", "acme", "--role", role, env=shared)
    assert run.code == 1
    assert why in _one_error_line(run) and "customer-admin" in run.err
    with db.read() as s:
        assert s.connection().exec_driver_sql("SELECT count(*) FROM api_keys").scalar() == (
            keys_before
        )
    station = satiot_here(
        "api-keys", "create", "gs", "--tenant", "operator", "--role", "ground-station", env=shared
    )
    assert station.code == 0, station.err


def test_text_in_square_brackets_prints_as_typed(shared, db):
    """Names are printed as they were typed, never read as the terminal's style tags."""
    made = satiot_here(
        "tenants", "create", "brackets", "--name", "[/x] [bold]Co[/bold]", env=shared
    )
    assert made.code == 0, made.err
    listed = satiot_here("tenants", "list", env=shared)
    assert listed.code == 0, listed.err
    assert "[/x] [bold]Co[/bold]" in listed.out
    unknown = satiot_here("api-keys", "create", "k", "--tenant", "[/x]", env=shared)
    assert _one_error_line(unknown) == "error: no tenant with slug '[/x]'"


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "list"),
        ("tenants", "create", "acme"),
        ("users", "create", "bob", "--role", "noc", "--password", "long-enough-pw"),
        ("api-keys", "create", "k", "--tenant", "operator"),
        ("audit", "verify"),
        ("events", "status"),
        ("events", "rewind", "bss.rating", "--position", "1"),
        ("events", "consume", "bss.rating"),
    ],
)
def test_commands_refuse_a_database_that_is_not_migrated_and_create_none(fresh, tmp_path, args):
    run = satiot(*args, env=fresh)
    assert run.code == 1
    assert "the database is not migrated" in _one_error_line(run)
    assert not (tmp_path / "satiot.db").exists()
    empty = {"SATIOT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    (tmp_path / "empty.db").touch()  # there, but holding no tables
    assert "not migrated" in _one_error_line(satiot_here(*args, env=empty))


def test_a_database_url_that_cannot_be_opened_is_one_line(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    for url, why in (
        ("garbage", "SATIOT_DATABASE_URL: 'garbage' is not a database URL"),
        ("mysql://u@localhost/x", "SATIOT_DATABASE_URL: 'mysql' is not supported"),
        (
            f"sqlite:///{junk}",
            f"cannot open the database at sqlite:///{junk}: file is not a database",
        ),
        ("postgresql://nobody@127.0.0.1:1/x", "cannot open the database at postgresql://"),
    ):
        for args in (("migrate",), ("tenants", "list")):
            run = satiot_here(*args, env={"SATIOT_DATABASE_URL": url})
            assert run.code == 1, (url, args)
            assert why in _one_error_line(run), (url, args)


def test_bad_options_are_one_line_and_up_changes_nothing_before_it_can_listen(fresh, tmp_path):
    """Click's own answer to a bad option is a framed block; the command's is one line."""
    for args, why in (
        (("up", "--port", "99999"), "error: Invalid value for '--port'"),
        (("users", "create", "bob", "--role", "nope"), "error: Invalid value for '--role'"),
        (("tenants", "create"), "error: Missing argument 'slug'"),
        (("tenants", "list", "--colour"), "error: No such option: --colour"),
    ):
        run = satiot(*args, env=fresh)
        assert run.code == 2, run
        line = _one_error_line(run)
        assert line.startswith(why) and f"(see `satiot {args[0]}" in line, line
    assert not (tmp_path / "satiot.db").exists()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = satiot("up", "--no-twin", "--port", str(port), env=fresh)
    assert run.code == 1
    assert f"error: cannot listen on port {port}" in _one_error_line(run)
    assert not (tmp_path / "satiot.db").exists(), "no admin made whose password is never shown"
    helped = satiot(env=fresh)
    assert "Usage: satiot" in helped.out and "Traceback" not in helped.err


def test_audit_verify_on_intact_chain(shared, db):
    run, migrated = satiot_each(("audit", "verify"), ("migrate",), env=shared)
    assert migrated.code == 0, migrated.err
    assert "(unchanged)" in migrated.out
    assert run.code == 0, run.err
    with db.read() as s:
        from satiot.core import audit

        n = audit.verify(s).checked
    assert n >= 2
    assert f"audit log intact: {n} rows, last seq {n}" in run.out


TAMPER = {
    "altered": (["UPDATE audit_log SET reason = 'edited' WHERE seq = 2"], 2, "altered"),
    "middle-deleted": (["DELETE FROM audit_log WHERE seq = 3"], 3, "deleted"),
    "newest-deleted": (["DELETE FROM audit_log WHERE seq >= 5"], 5, "deleted"),
    "reordered": (
        [
            "UPDATE audit_log SET seq = -1 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
        ],
        2,
        "reordered",
    ),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_audit_verify_names_the_tampered_seq(shared, db, world, case):
    for _ in range(5):  # seven entries in all
        world.tenant()
    statements, seq, word = TAMPER[case]
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() >= 6
        for sql in statements:
            conn.execute(text(sql))
    run = satiot_here("audit", "verify", env=shared)
    assert run.code == 1
    line = _one_error_line(run)
    assert line.startswith(f"error: audit log broken at seq {seq}: ")
    assert word in line


def test_events_status_and_rewind(shared, db, clock):
    with db.write() as s:
        for i in range(4):
            events.emit(s, "test.ping", at=clock.now(), payload={"i": i})
    with db.read() as s:
        head = events.head(s)
    consume_batch(db, Consumer("billing", lambda s, e: None, batch_size=head - 2), clock)
    run = satiot("events", "status", env=shared)
    assert run.code == 0, run.err
    assert f"event log head: {head}" in run.out
    row = next(line for line in run.out.splitlines() if "billing" in line)
    assert re.search(rf"billing\s*│\s*{head - 2}\s*│\s*2\s*│\s*2026-", row), row

    rewind = satiot("events", "rewind", "billing", "--position", "0", env=shared)
    assert rewind.code == 0, rewind.err
    run = satiot("events", "status", env=shared)
    row = next(line for line in run.out.splitlines() if "billing" in line)
    assert re.search(rf"billing\s*│\s*0\s*│\s*{head}\s*│", row), row
    # A mistyped consumer, or a position past the log's end, changes nothing.
    typo = satiot("events", "rewind", "biling", "--position", "0", env=shared)
    assert typo.code == 1 and _one_error_line(typo).startswith("error: no consumer 'biling'")
    for far in (head + 1, 10**30):
        past = satiot("events", "rewind", "billing", "--position", str(far), env=shared)
        assert past.code == 1
        assert _one_error_line(past) == (
            f"error: position {far} is past the end of the event log ({head})"
        )
    assert "biling" not in satiot("events", "status", env=shared).out


def test_bench_rating_on_the_suites_backend_counts_a_local_servers_cpu(request, monkeypatch):
    """On PostgreSQL the work is mostly the server's: when the server runs on this machine
    the benchmark reads its backend's CPU time and prints the rate per CPU-second of both."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    # Enough events that the server's backend uses more than one of /proc's 10 ms clock
    # ticks: with 300, a fast machine's backend used less, and both rates came out equal.
    args = ("bench", "rating", "--devices", "30", "--events", "3000", "--batch", "300",
            "--anchor-events", "10")  # fmt: skip
    if request.config.getoption("--db") == "sqlite":
        run = satiot_here(*args, env={})
        assert run.code == 0, run.err
        assert "(this process + server)" not in run.out
        assert re.search(r"batch path per CPU-second +[\d,]+ events/s  \(this process\)", run.out)
        return
    with pg_database(f"satiot_bench_{os.getpid()}") as url:
        run = satiot_here(*args, env={"SATIOT_DATABASE_URL": url})
    assert run.code == 0, run.err
    assert "SQLite alone" not in run.out
    both = re.search(r"per CPU-second +([\d,]+) events/s  \(this process \+ server\)", run.out)
    alone = re.search(r"of this process alone +([\d,]+) events/s", run.out)
    assert both and alone, run.out
    # The server's CPU is added, so the rate per CPU-second of both is the lower one.
    assert int(both[1].replace(",", "")) < int(alone[1].replace(",", ""))


def test_bench_backend_cpu_is_none_for_anything_but_a_local_postgres(monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT / "benchmarks"), *sys.path])
    import rating as bench  # benchmarks/rating.py

    assert bench.backend_cpu(os.getpid()) is None  # this process is Python, not postgres
    assert bench.backend_cpu(2**22 + 12345) is None  # beyond Linux's largest pid: none such


def test_bench_activation_compares_activating_with_provisioning(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here("bench", "activation", "--devices", "10", env={})
    assert run.code == 0, run.err
    labels = ("anchor: device provisioning", "activation, customer's tenant", "activation, op")
    for label in (*labels, "order fulfilment, 100 a tx"):
        assert re.search(rf"{label}\S* +[\d,]+ terminals/s +per CPU-s: +[\d,]+", run.out), run.out
    assert len(re.findall(r"CPU per terminal: [\d.]+× the anchor's", run.out)) == 3
    few = satiot_here("bench", "activation", "--devices", "5", env={})
    assert few.code == 2 and _one_error_line(few) == "error: --devices: at least 10 (see --help)"


def test_bench_export_compares_the_file_with_walking_the_list(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here("bench", "export", "--subscriptions", "1200", env={})
    assert run.code == 0, run.err
    assert "setup                     1,200 subscriptions in" in run.out
    for label in ("export (CSV)", "anchor: list pages of 500"):
        assert re.search(
            rf"{re.escape(label)} +[\d,]+ subscriptions/s +per CPU-s: +[\d,]+", run.out
        ), run.out
    assert re.search(r"ratio export/anchor +[\d.]+× wall, [\d.]+× per CPU-s", run.out), run.out
    few = satiot_here("bench", "export", "--subscriptions", "5", env={})
    assert (
        few.code == 2 and _one_error_line(few) == "error: --subscriptions: at least 10 (see --help)"
    )


def test_bench_status_compares_a_file_with_a_request_per_device(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here("bench", "status", "--devices", "12", "--anchor-devices", "4", env={})
    assert run.code == 0, run.err
    assert "setup                     12 devices activated in" in run.out
    for label in ("file, one transaction", "anchor: a transaction a line"):
        assert re.search(rf"{re.escape(label)} +[\d,]+ lines/s +per CPU-s: +[\d,]+", run.out)
    assert re.search(r"ratio file/anchor +[\d.]+× wall, [\d.]+× per CPU-s", run.out), run.out
    assert re.search(r"a file of 5,000 lines +[\d.]+ s in one transaction", run.out), run.out
    same = satiot_here("bench", "status", "--devices", "12", "--anchor-devices", "12", env={})
    assert same.code == 2
    assert _one_error_line(same) == "error: --anchor-devices: fewer than --devices (see --help)"


def test_bench_statement_compares_the_statement_with_summing_the_usage_list(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    args = ("bench", "statement", "--devices", "60", "--records", "12", "--months", "2")
    run = satiot_here(*args, env={})
    assert run.code == 0, run.err
    assert "setup                     60 devices, 1,440 records over 2 bills in" in run.out
    for label in ("statement (CSV)", "anchor: usage pages of 500"):
        assert re.search(
            rf"{re.escape(label)} +[\d,]+ devices/s \([\d,]+ records/s\) +per CPU-s: +[\d,]+",
            run.out,
        ), run.out
    assert re.search(r"ratio statement/anchor +[\d.]+× wall, [\d.]+× per CPU-s", run.out)
    assert re.search(
        r"a page of 50 devices +[\d.]+ ms with the bill's index, [\d.]+ ms without: \d+×", run.out
    ), run.out
    few = satiot_here("bench", "statement", "--devices", "5", env={})
    assert few.code == 2 and _one_error_line(few) == "error: --devices: at least 10 (see --help)"


def test_bench_runs_a_benchmark_from_the_checkout_and_names_the_others(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command puts benchmarks/ on it
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here(
        "bench", "rating", "--devices", "40", "--events", "400", "--batch", "100",
        "--anchor-events", "20", env={},
    )  # fmt: skip
    assert run.code == 0, run.err
    for figure in ("batch path per CPU-second", "ratio batch/anchor", "SQLite alone (floor)"):
        assert figure in run.out
    assert "M interpreter steps/s (yardstick)" in run.out
    line = _one_error_line(satiot_here("bench", "_yardstick", env={}))
    have = "activation, billing, contacts, events, export, ingest, rating, statement, status, twin"
    assert f"have: {have};" in line


def test_bench_rating_sql_bound_charges_what_the_rater_charges(monkeypatch):
    """The cut-down SQL rules are a figure only if they price as the rater does: past the
    pool's allowance (100 messages a device, 10 devices) both charge the per-message price."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here(
        "bench", "rating", "--devices", "10", "--events", "1500", "--batch", "400",
        "--anchor-events", "10", "--sql-bound", env={},
    )  # fmt: skip
    assert run.code == 0, run.err
    assert re.search(r"rules as SQL, cut down +[\d,]+ events/s", run.out), run.out
    charged = re.search(r"charged: batch path ([\d,]+) micro-yuan, SQL ([\d,]+)", run.out)
    assert charged and charged[1] == charged[2], run.out
    # 1,500 uplinks of 20-79 bytes (at least 50 billable), 500 of them past the allowance.
    billable = sum(max(50, 20 + i % 60) for i in range(1500))
    assert int(charged[1].replace(",", "")) == 100 * billable + 500 * 20_000


def test_bench_rating_deals_the_devices_over_accounts(monkeypatch, tmp_path):
    """--accounts 5: the benchmark's 10 devices go two to each of five accounts (so that each
    batch writes into five places of the account index), and the rater and the SQL rules
    still charge alike."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [str(ROOT / "benchmarks"), *sys.path])
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here(
        "bench", "rating", "--devices", "10", "--accounts", "5", "--events", "1500",
        "--batch", "400", "--anchor-events", "10", "--sql-bound", env={},
    )  # fmt: skip
    assert run.code == 0, run.err
    assert re.search(r"^billing accounts +5$", run.out, re.MULTILINE), run.out
    charged = re.search(r"charged: batch path ([\d,]+) micro-yuan, SQL ([\d,]+)", run.out)
    assert charged and charged[1] == charged[2], run.out

    import rating as bench  # benchmarks/rating.py
    from satiot.bss.models import Subscription
    from satiot.core import migrate

    db = Database.connect(f"sqlite:///{tmp_path / 'bench.db'}")
    migrate.upgrade(db.engine)
    bench.setup(db, 10, accounts=5)
    with db.read() as s:
        per_account = s.execute(
            select(Subscription.billing_account_id, func.count()).group_by(
                Subscription.billing_account_id
            )
        ).all()
    db.dispose()
    assert sorted(n for _, n in per_account) == [2] * 5


def test_bench_rating_phases_say_where_the_batch_paths_time_goes(monkeypatch):
    """Each step's share of the batch path's CPU time, and the rest; they add up to the whole,
    and the rater's own functions are back in place afterwards."""
    from satiot.bss import rating_sql
    from satiot.bss.rating_pass import RatingPass

    plan, fetch = RatingPass.plan, rating_sql.fetch
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here(
        "bench", "rating", "--devices", "40", "--events", "2000", "--batch", "500",
        "--anchor-events", "10", "--phases", env={},
    )  # fmt: skip
    assert run.code == 0, run.err
    total = re.search(r"where the time goes +([\d.]+) us/event of CPU in all", run.out)
    assert total, run.out
    steps = re.findall(r"^  (.+?) +(-?[\d.]+) us +\d+%$", run.out, re.MULTILINE)
    names = [name for name, _ in steps]
    assert names[0].startswith("read the range") and names[-1].startswith("the rest"), names
    assert "write the usage records" in names and len(names) == 9
    assert abs(sum(float(us) for _, us in steps) - float(total[1])) < 0.05
    assert (RatingPass.plan, rating_sql.fetch) == (plan, fetch)


def test_every_command_is_summed_up_on_one_line_in_its_groups_listing():
    """A group's listing shows each command's first paragraph reflowed, not cut where the
    docstring's lines end (which left ragged half-empty lines in `satiot bills --help`)."""
    from satiot.cli import app

    def commands(group):  # type: ignore[no-untyped-def]
        yield from group.registered_commands
        for sub in group.registered_groups:
            yield from commands(sub.typer_instance)

    found = list(commands(app))
    assert len(found) > 40
    for command in found:
        assert command.short_help and "\n" not in command.short_help, command.name
    listing = satiot_here("bills", "--help", env={"COLUMNS": "200"}).out
    assert "work out its VAT and total again. A validated bill not yet sent is held" in listing


def test_bench_help_lists_the_benchmarks_and_a_benchmarks_help_its_options(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    for args in (("bench", "--help"), ("bench",)):
        run = satiot_here(*args, env={})
        assert run.code == 0, run.err
        assert (
            "benchmarks here: activation, billing, contacts, events, export, ingest, rating"
            in run.out
        )
    own = satiot_here("bench", "activation", "--help", env={})
    assert own.code == 0, own.err
    assert own.out.startswith("usage: satiot bench activation")
    assert "--devices DEVICES" in own.out and "terminals per run" in own.out


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("ingest", "--db", "sqlite"), "unrecognized arguments: --db sqlite"),  # not --db-url
        (("ingest", "--backends", "sqlit"), "--backends: 'sqlit' is not one of sqlite, postgr"),
        (("ingest", "--db-url", "::"), "--db-url: '::' is not a database URL"),
        (("billing", "--backends", ","), "--backends: name at least one of sqlite, postgresql"),
        (("rating", "--events", "many"), "--events: 'many' is not a whole number"),
        # Zero devices or events once ended in a division by zero deep inside the benchmark.
        (("rating", "--events", "0"), "--events: at least 1"),
        (("rating", "--devices", "2", "--accounts", "3"), "--accounts: no more than --devices"),
        (("billing", "--release", "0"), "--release: at least 1"),
        (("billing", "--accounts", "10", "--anchor-accounts", "10"), "--anchor-accounts: fewer"),
        (("ingest", "--batches", "-1"), "--batches: at least 1"),
        (("events", "--anchor-events", "0"), "--anchor-events: at least 1"),
        (("twin", "--hours", "inf"), "--hours: a finite number more than 0"),
        (("contacts", "--sats", "0"), "--sats: at least 1"),
        (("statement", "--months", "0"), "--months: at least 1"),
    ],
)
def test_a_benchmark_given_bad_options_says_why_in_one_line(monkeypatch, args, why):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    run = satiot_here("bench", *args, env={})
    assert run.code == 2 and run.out == ""
    assert _one_error_line(run).startswith(f"error: {why}")


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("SATIOT_DOWNLINK_EMERGENCY_RESERVE", "1.5", "less than 1"),
        ("SATIOT_DOWNLINK_LOADS_PER_PASS", "0", "greater than or equal to 1"),
        ("SATIOT_PAGE_SIZE_MAX", "many", "valid integer"),
        ("SATIOT_GC_YOUNG", "-1", "greater than or equal to 0"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(fresh, variable, value, why):
    run = satiot("up", "--no-twin", env=fresh | {variable: value})
    assert run.code == 1
    line = _one_error_line(run)
    assert line.startswith(f"error: {variable}: ") and why in line


def test_a_command_runs_with_the_configured_garbage_collection(fresh):
    import gc

    before = gc.get_threshold()
    try:
        assert satiot_here("migrate", env=fresh | {"SATIOT_GC_YOUNG": "4321"}).code == 0
        assert gc.get_threshold() == (4321, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_up_refuses_a_broker_ca_file_that_cannot_serve(fresh, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMC4CAQA=\n-----END PRIVATE KEY-----\n")
    for path, why in ((tmp_path / "none.pem", "cannot be read"), (key, "holds a private key")):
        env = fresh | {
            "SATIOT_MQTT_URL": "mqtts://localhost:8883",
            "SATIOT_MQTT_CA_FILE": str(path),
        }
        run = satiot("up", "--no-twin", "--port", "0", env=env)
        assert run.code == 1
        assert f"error: SATIOT_MQTT_CA_FILE {path}: " in _one_error_line(run) and why in run.err


def test_a_value_the_database_refuses_is_one_line_too(monkeypatch, capsys):
    """What no check caught (PostgreSQL's own limits) still ends in one line, not a trace."""
    import satiot.cli as cli

    def refused(**_: object) -> None:
        orig = Exception("value too long for type character varying(64)\nDETAIL: …")
        raise DataError("INSERT INTO t VALUES (%(v)s)", {"v": "x" * 65}, orig)

    monkeypatch.setattr(cli, "app", refused)
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: the database refused a value: value too long for type character varying(64)"
    )


def test_every_command_the_readme_and_docs_name_exists(monkeypatch):
    """What the README and docs/ tell an operator to type must be a command: each
    `` `satiot …` `` answers --help (its arguments, options and paths dropped)."""
    monkeypatch.chdir(ROOT)  # `satiot bench NAME` finds its benchmark in the checkout
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    named: dict[tuple[str, ...], str] = {}
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for said in re.findall(r"`satiot ([^`]+)`", doc.read_text()):
            words: list[str] = []
            for word in said.split():
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                words.append(word)
            named.setdefault(tuple(words), doc.name)
    assert ("orders", "import") in named and ("terminals", "import") in named
    for words, doc in sorted(named.items()):
        ran = CliRunner().invoke(app, [*words, "--help"])
        assert ran.exit_code == 0, f"{doc}: satiot {' '.join(words)}: {ran.output[-300:]}"
