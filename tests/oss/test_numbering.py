"""IoT numbers: blocks as configuration, lazy allocation, lifecycle, quarantine, recycling,
the annual report, and allocation under concurrency on both backends."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, func, select

from satiot.core.config import Settings
from satiot.core.errors import Conflict, IllegalTransition, InvalidInput, NotFound, PermissionDenied
from satiot.core.models import AuditEntry
from satiot.oss import number_blocks, numbering
from satiot.oss.models import IotNumber, NumberBlock
from satiot.oss.number_blocks import create_block, load_blocks, read_blocks_file, report
from satiot.oss.numbering import CHUNK, NumbersExhausted, allocate, recycle, transition
from tests.oss.helpers import block_spec


def _count(db, model=IotNumber) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# -- blocks --------------------------------------------------------------------------------------


def test_a_block_is_a_prefix_and_a_range(db, world, clock):
    assert block_spec(prefix="14101234").bounds() == (1410123400000, 1410123499999)
    assert block_spec(prefix="1410", first="000000100", last="000000199").bounds() == (
        1410000000100,
        1410000000199,
    )
    with db.write() as s:
        b = create_block(s, world.system, block_spec(), at=clock.now())
    assert (b.first_number, b.last_number, b.next_fresh) == (
        1410123400000,
        1410123499999,
        1410123400000,
    )
    assert _count(db) == 0, "no number is materialised up front"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"prefix": "14a"}, "prefix"),
        ({"prefix": "1410123412345"}, "prefix"),
        ({"prefix": "1410", "first": "12"}, "first"),
        ({"prefix": "1410", "first": "000000200", "last": "000000100"}, "first"),
        # Digits to str.isdigit, not to a numbering plan: superscripts, Arabic-Indic, full-width.
        ({"prefix": "\u00b2"}, "prefix"),
        ({"prefix": "\u0661\u0660\u0666\u0665"}, "prefix"),
        ({"prefix": "1410", "first": "\uff11" * 9}, "first"),
        ({"prefix": "1410", "last": "\u0669" * 9}, "last"),
    ],
)
def test_malformed_blocks_are_refused(kw, field):
    with pytest.raises(InvalidInput) as info:
        block_spec(**kw).bounds()
    assert info.value.extensions["field"] == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "b\x001"}, "name"),
        ({"name": "  "}, "name"),
        ({"purpose": "IoT\x1b[2J"}, "purpose"),
        ({"scope": "nation\twide"}, "scope"),
        ({"prefix": "\u0661\u0660\u0666\u0665"}, "prefix"),
    ],
)
def test_blocks_with_control_characters_or_foreign_digits_store_nothing(
    db, world, clock, kw, field
):
    with pytest.raises(InvalidInput) as info, db.write() as s:
        create_block(s, world.system, block_spec(**kw), at=clock.now())
    assert info.value.extensions["field"] == field
    assert _count(db, NumberBlock) == 0


def test_numbers_take_ascii_digits_only():
    with pytest.raises(InvalidInput, match="13 digits"):
        number_blocks.validate_number("\u0661" * 13)


@pytest.mark.parametrize(
    "other",
    [
        block_spec("b2", "1410123"),  # contains b1
        block_spec("b2", "141012345"),  # inside b1
        block_spec("b2", "1410", first="123350000", last="123400005"),  # straddles its start
        block_spec("b2", "1410", first="123499990", last="123500010"),  # straddles its end
    ],
)
def test_overlapping_blocks_are_refused(db, world, clock, other):
    with db.write() as s:
        create_block(s, world.system, block_spec(), at=clock.now())
    with pytest.raises(Conflict, match="overlaps block b1"), db.write() as s:
        create_block(s, world.system, other, at=clock.now())
    assert _count(db, NumberBlock) == 1


def test_adjacent_blocks_are_fine_and_names_are_unique(db, world, clock):
    with db.write() as s:
        create_block(s, world.system, block_spec(), at=clock.now())
        create_block(s, world.system, block_spec("b2", "14101235"), at=clock.now())
    with pytest.raises(Conflict, match="named 'b2'"), db.write() as s:
        create_block(s, world.system, block_spec("b2", "14101236"), at=clock.now())


TOML = """
[[blocks]]
name = "sat-1"
prefix = "14101234"
purpose = "satellite IoT terminals"
scope = "national"
authority_ref = "MIIT 2026-001"

[[blocks]]
name = "sat-2"
prefix = "1410"
first = "567000000"
last = "567000999"
purpose = "emergency terminals"
scope = "Xinjiang"
"""


def test_blocks_load_from_toml_and_reload_idempotently(db, world, clock, tmp_path: Path):
    path = tmp_path / "blocks.toml"
    path.write_text(TOML)
    specs = read_blocks_file(path)
    with db.write() as s:
        first = load_blocks(s, world.system, specs, at=clock.now())
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    path.write_text(TOML.replace('scope = "Xinjiang"', 'scope = "Xinjiang, Tibet"'))
    with db.write() as s:
        second = load_blocks(s, world.system, read_blocks_file(path), at=clock.now())
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
    path.write_text(TOML.replace('last = "567000999"', 'last = "567001999"'))
    with pytest.raises(Conflict, match="range of block sat-2 cannot change"), db.write() as s:
        load_blocks(s, world.system, read_blocks_file(path), at=clock.now())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("blocks = 3", "no \\[\\[blocks\\]\\]"),
        ("[[blocks]]\nname='x'\nprefix='1'\npurpose='p'", "missing \\['scope'\\]"),
        ("[[blocks]]\nname='x'\nprefix='1'\npurpose='p'\nscope='s'\nsize='3'", "unknown keys"),
        ("[[blocks]]\nname='x'\nprefix=141\npurpose='p'\nscope='s'", "quoted string"),
        ("[[blocks]]\nname='x'\nprefix='1a'\npurpose='p'\nscope='s'", "block 1 \\(x\\): prefix"),
        ("[[blocks", "not valid TOML"),
        ("blocks = [1, 2]", "block 1: must be a table, not int"),
        (
            "[[blocks]]\nname='x'\nprefix='\u00b2'\npurpose='p'\nscope='s'",
            "block 1 \\(x\\): prefix",
        ),
        (
            '[[blocks]]\nname="a\\u0000b"\nprefix="1"\npurpose="p"\nscope="s"',
            "block 1 \\('a\\\\x00b'\\): name contains a control character \\(U\\+0000\\)",
        ),
        (
            '[[blocks]]\nname="x"\nprefix="1"\npurpose="p"\nscope="s\\u001b"',
            "block 1 \\(x\\): scope contains a control character \\(U\\+001B\\)",
        ),
    ],
)
def test_bad_block_files_are_named(tmp_path: Path, text, words):
    path = tmp_path / "b.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=words):
        read_blocks_file(path)
    with pytest.raises(InvalidInput, match="cannot read"):
        read_blocks_file(tmp_path / "missing.toml")


def test_a_block_file_that_is_not_utf8_is_named(tmp_path: Path):
    path = tmp_path / "b.toml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        read_blocks_file(path)


# -- allocation ------------------------------------------------------------------------------------


@pytest.fixture
def block(db, world, clock):
    with db.write() as s:
        return create_block(s, world.system, block_spec(), at=clock.now())


def _allocate(db, world, clock, tenant, **kw) -> str:
    with db.write() as s:
        return allocate(s, world.system, tenant_id=tenant, at=clock.now(), **kw).number


def test_allocation_hands_out_the_lowest_number_and_materialises_a_chunk(db, world, clock, block):
    t = world.tenant()
    got = [_allocate(db, world, clock, t.id) for _ in range(3)]
    assert got == ["1410123400000", "1410123400001", "1410123400002"]
    assert _count(db) == CHUNK
    with db.read() as s:
        row = numbering.get_number(s, got[0])
        assert (row.status, row.tenant_id, row.reserved_at) == ("reserved", t.id, clock.now())
        entry = s.scalars(select(AuditEntry).where(AuditEntry.target_id == got[0])).one()
        assert entry.action == "number.reserved" and entry.tenant_id == t.id


def test_a_full_block_falls_through_to_the_next_and_then_runs_out(db, world, clock):
    t = world.tenant()
    with db.write() as s:
        create_block(
            s,
            world.system,
            block_spec("tiny", "1410", first="000000000", last="000000001"),
            at=clock.now(),
        )
        create_block(
            s,
            world.system,
            block_spec("other", "1411", first="000000000", last="000000000", purpose="emergency"),
            at=clock.now(),
        )
    assert [
        _allocate(db, world, clock, t.id, purpose="satellite IoT terminals") for _ in range(2)
    ] == ["1410000000000", "1410000000001"]
    with pytest.raises(NumbersExhausted, match="purpose 'satellite IoT terminals'"):
        _allocate(db, world, clock, t.id, purpose="satellite IoT terminals")
    assert _allocate(db, world, clock, t.id) == "1411000000000"
    with pytest.raises(NumbersExhausted):
        _allocate(db, world, clock, t.id, block="tiny")
    with pytest.raises(NotFound):
        _allocate(db, world, clock, t.id, block="nope")


def test_lifecycle_quarantine_and_recycling(db, world, clock, block):
    t = world.tenant()
    n = _allocate(db, world, clock, t.id)
    for target in ("active", "suspended", "active"):
        with db.write() as s:
            transition(s, world.system, n, target, at=clock.now(), reason="test")
    cancelled_at = clock.advance(3600)
    with db.write() as s:
        row = transition(s, world.system, n, "cancelled", at=cancelled_at, quarantine_days=120)
        assert row.status == "quarantine"
        assert row.quarantine_until == cancelled_at + timedelta(days=120)
    with db.read() as s:
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == n).order_by(AuditEntry.seq)
        ).all()
    assert actions == [
        "number.reserved",
        "number.active",
        "number.suspended",
        "number.active",
        "number.cancelled",
        "number.quarantine",
    ]
    # No person can end the rest early, and the job does not before it is over.
    with pytest.raises(PermissionDenied), db.write() as s:
        transition(s, world.system, n, "available", at=clock.now())
    clock.advance(timedelta(days=120) - timedelta(seconds=1))
    with db.write() as s:
        assert recycle(s, world.system, at=clock.now()) == 0
    clock.advance(1)
    with db.write() as s:
        assert recycle(s, world.system, at=clock.now()) == 1
    with db.read() as s:
        row = numbering.get_number(s, n)
        assert (row.status, row.tenant_id, row.quarantine_until) == ("available", None, None)
    # The recycled number is the lowest free one again.
    assert _allocate(db, world, clock, world.tenant().id) == n


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (["active"], None),
        (["available"], None),
        (["suspended"], IllegalTransition),
        (["active", "reserved"], IllegalTransition),
        (["cancelled"], IllegalTransition),
    ],
)
def test_only_declared_moves_are_allowed(db, world, clock, block, path, error):
    n = _allocate(db, world, clock, world.tenant().id)
    *ok, last = path
    for target in ok:
        with db.write() as s:
            transition(s, world.system, n, target, at=clock.now())
    if error is None:
        with db.write() as s:
            transition(s, world.system, n, last, at=clock.now())
        return
    with pytest.raises(error), db.write() as s:
        transition(s, world.system, n, last, at=clock.now())


def test_releasing_a_reservation_frees_the_number(db, world, clock, block):
    n = _allocate(db, world, clock, world.tenant().id)
    with db.write() as s:
        row = transition(
            s, world.system, n, "available", at=clock.now(), reason="activation failed"
        )
        assert row.tenant_id is None
    assert _allocate(db, world, clock, world.tenant().id) == n


def test_quarantine_shorter_than_90_days_is_refused_everywhere(db, world, clock, block):
    n = _allocate(db, world, clock, world.tenant().id)
    with pytest.raises(InvalidInput, match="at least 90 days"), db.write() as s:
        transition(s, world.system, n, "active", at=clock.now(), quarantine_days=89)
    with pytest.raises(ValidationError):
        Settings(number_quarantine_days=89)
    assert Settings(number_quarantine_days=90).number_quarantine_days == 90


def test_unknown_and_malformed_numbers(db, block):
    with db.read() as s:
        with pytest.raises(NotFound):
            numbering.get_number(s, "1410123499999")
        with pytest.raises(InvalidInput):
            numbering.get_number(s, "14101234")


def test_roles_allowed_to_allocate(db, world, clock, block):
    from satiot.core.auth.principal import Principal
    from satiot.core.auth.roles import ROLES, Role

    noc = Principal(world.operator.id, Role.NOC, ROLES[Role.NOC].scopes, None, "n", "system")
    with pytest.raises(PermissionDenied), db.write() as s:
        allocate(s, noc, tenant_id=world.operator.id, at=clock.now())


# -- report ----------------------------------------------------------------------------------------


def test_report_figures_per_block(db, world, clock, block):
    t = world.tenant()
    nums = [_allocate(db, world, clock, t.id) for _ in range(4)]
    with db.write() as s:
        transition(s, world.system, nums[0], "active", at=clock.now())
        transition(s, world.system, nums[1], "active", at=clock.now())
        transition(s, world.system, nums[1], "cancelled", at=clock.now())
        create_block(
            s, world.system, block_spec("empty", "14101235", purpose="emergency"), at=clock.now()
        )
    with db.read() as s:
        figures = {f.name: f for f in report(s)}
    b1 = figures["b1"]
    assert (b1.size, b1.allocated, b1.active, b1.quarantined) == (100_000, 3, 1, 1)
    assert b1.utilisation == pytest.approx(3 / 100_000)
    assert (b1.purpose, b1.scope) == ("satellite IoT terminals", "national")
    assert figures["empty"].allocated == 0 and figures["empty"].utilisation == 0


# -- properties ------------------------------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.just(("allocate",)),
        st.tuples(st.just("activate"), st.integers(0, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("advance"), st.integers(1, 60)),
        st.just(("recycle",)),
    ),
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS, quarantine_days=st.integers(90, 200))
def test_no_number_is_ever_held_twice_and_quarantine_is_never_cut_short(
    db, world, clock, ops, quarantine_days
):
    with db.write() as s:
        s.execute(delete(IotNumber))
        s.execute(delete(NumberBlock))
        create_block(
            s,
            world.system,
            block_spec("p", "1410", first="000000000", last="000000009"),
            at=clock.now(),
        )
    tenant = world.operator.id
    held: set[str] = set()
    cancelled_at: dict[str, object] = {}
    for op in ops:
        with db.write() as s:
            if op[0] == "allocate":
                try:
                    n = allocate(s, world.system, tenant_id=tenant, at=clock.now()).number
                except NumbersExhausted:
                    assert len(held) + len(cancelled_at) == 10
                    continue
                assert n not in held, f"{n} handed out while held"
                assert n not in cancelled_at, f"{n} handed out during its quarantine"
                held.add(n)
            elif op[0] in ("activate", "cancel") and held:
                n = sorted(held)[op[1] % len(held)]
                row = numbering.get_number(s, n)
                if op[0] == "activate" and row.status == "reserved":
                    transition(s, world.system, n, "active", at=clock.now())
                elif op[0] == "cancel" and row.status == "active":
                    transition(
                        s,
                        world.system,
                        n,
                        "cancelled",
                        at=clock.now(),
                        quarantine_days=quarantine_days,
                    )
                    held.discard(n)
                    cancelled_at[n] = clock.now()
            elif op[0] == "advance":
                clock.advance(timedelta(days=op[1]))
            elif op[0] == "recycle":
                recycle(s, world.system, at=clock.now())
                for n in [
                    n for n in cancelled_at if numbering.get_number(s, n).status == "available"
                ]:
                    assert clock.now() - cancelled_at.pop(n) >= timedelta(days=quarantine_days)


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_allocators_never_share_a_number(db, world, clock):
    """Threads with their own transactions: FOR UPDATE SKIP LOCKED on PostgreSQL, the
    single-writer lock on SQLite. Every allocation succeeds, and no number is handed twice."""
    with db.write() as s:
        create_block(
            s,
            world.system,
            block_spec("c", "1410", first="000000000", last="000000999"),
            at=clock.now(),
        )
    tenant = world.tenant().id
    threads, per_thread = 8, 15
    got: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            try:
                with db.write() as s:
                    n = allocate(s, world.system, tenant_id=tenant, at=clock.now()).number
            except BaseException as exc:  # pragma: no cover - reported below
                with lock:
                    errors.append(exc)
                return
            with lock:
                got.append(n)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    assert not errors, errors
    assert len(got) == threads * per_thread
    assert len(set(got)) == len(got), "a number was handed out twice"
    with db.read() as s:
        reserved = s.scalar(
            select(func.count()).select_from(IotNumber).where(IotNumber.status == "reserved")
        )
    assert reserved == len(got)


def test_number_blocks_module_formats_numbers():
    assert number_blocks.format_number(1410123400000) == "1410123400000"
