"""IoT number blocks as configuration, and the annual numbering report.

MIIT assigns a satellite IoT operator its blocks, so blocks are data: a TOML file
(``SATIOT_NUMBER_BLOCKS_FILE``, loaded by ``satiot numbers blocks load``) or the API. A block is
a prefix plus a range of suffixes, stored as ``first_number..last_number`` and never expanded
into rows (see :mod:`satiot.oss.numbering`); blocks may not overlap.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from satiot.core.auth.principal import Principal
from satiot.core.changes import record_change
from satiot.core.errors import Conflict, InvalidInput, NotFound
from satiot.core.lengths import plain_text
from satiot.oss import states
from satiot.oss.models import IotNumber, NumberBlock

NUMBER_LEN = 13
#: Key of the PostgreSQL advisory lock that serialises block creation (overlap checks).
_BLOCKS_LOCK = 0x5A710055
_DIGITS_RE = re.compile(r"[0-9]+")


def format_number(value: int) -> str:
    return str(value).zfill(NUMBER_LEN)


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes superscripts and other scripts' digits,
    which ``int`` then refuses or silently reads as the ASCII ones."""
    return _DIGITS_RE.fullmatch(text) is not None


def validate_number(text: str) -> str:
    value = text.strip()
    if len(value) != NUMBER_LEN or not _digits(value):
        raise InvalidInput(f"an IoT number has {NUMBER_LEN} digits, not {text!r}", field="number")
    return value


@dataclass(frozen=True)
class BlockSpec:
    """A block as configured: ``prefix`` followed by suffixes ``first..last`` (both optional:
    the whole range under the prefix), what it is for (``purpose``) and where (``scope``)."""

    name: str
    prefix: str
    purpose: str
    scope: str
    first: str | None = None
    last: str | None = None
    authority_ref: str | None = None

    def bounds(self) -> tuple[int, int]:
        """``(first_number, last_number)``; InvalidInput explains a malformed block."""
        prefix = self.prefix.strip()
        if not (1 <= len(prefix) < NUMBER_LEN and _digits(prefix)):
            raise InvalidInput(
                f"prefix {self.prefix!r} must be 1-{NUMBER_LEN - 1} digits", field="prefix"
            )
        width = NUMBER_LEN - len(prefix)
        ends = []
        for label, raw, default in (("first", self.first, "0"), ("last", self.last, "9")):
            suffix = (raw if raw is not None else default * width).strip()
            if len(suffix) != width or not _digits(suffix):
                raise InvalidInput(
                    f"{label} must be {width} digits after the prefix {prefix}", field=label
                )
            ends.append(int(prefix + suffix))
        if ends[0] > ends[1]:
            raise InvalidInput("first must not exceed last", field="first")
        return ends[0], ends[1]

    def validated(self) -> BlockSpec:
        """The spec as it is stored: text trimmed and free of control characters, the range
        well-formed (:meth:`bounds`); InvalidInput names the first bad field. The file, the
        API and any other caller all come through here, so they refuse the same blocks."""
        name = plain_text(self.name, NumberBlock.name, "name")
        self.bounds()
        ref = (self.authority_ref or "").strip()  # a blank reference is none
        return BlockSpec(
            name=name,
            prefix=self.prefix.strip(),
            purpose=plain_text(self.purpose, NumberBlock.purpose, "purpose"),
            scope=plain_text(self.scope, NumberBlock.scope, "scope"),
            first=self.first,
            last=self.last,
            authority_ref=plain_text(ref, NumberBlock.authority_ref, "authority_ref")
            if ref
            else None,
        )


def block_view(block: NumberBlock) -> dict[str, Any]:
    return {
        "name": block.name,
        "prefix": block.prefix,
        "first_number": format_number(block.first_number),
        "last_number": format_number(block.last_number),
        "purpose": block.purpose,
        "scope": block.scope,
        "authority_ref": block.authority_ref,
    }


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def create_block(
    session: Session, principal: Principal, spec: BlockSpec, *, at: datetime
) -> NumberBlock:
    """Add a block; Conflict if its name is taken or its range overlaps another block."""
    spec = spec.validated()
    first, last = spec.bounds()
    if _is_postgresql(session):
        # Two overlapping blocks created at once would both pass the check below.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BLOCKS_LOCK})
    if session.scalar(select(NumberBlock.id).where(NumberBlock.name == spec.name)) is not None:
        raise Conflict(f"there is already a number block named {spec.name!r}", field="name")
    clash = session.scalar(
        select(NumberBlock).where(
            NumberBlock.first_number <= last, NumberBlock.last_number >= first
        )
    )
    if clash is not None:
        raise Conflict(
            f"{format_number(first)}..{format_number(last)} overlaps block {clash.name} "
            f"({format_number(clash.first_number)}..{format_number(clash.last_number)})",
            field="prefix",
        )
    block = NumberBlock(
        name=spec.name,
        prefix=spec.prefix,
        first_number=first,
        last_number=last,
        next_fresh=first,
        purpose=spec.purpose,
        scope=spec.scope,
        authority_ref=spec.authority_ref,
        created_at=at,
        updated_at=at,
    )
    session.add(block)
    session.flush()
    record_change(
        session,
        principal,
        at=at,
        action="number-block.created",
        target=("number-block", block.id),
        tenant_id=None,
        after=block_view(block),
    )
    return block


def read_blocks_file(path: Path) -> list[BlockSpec]:
    """Blocks from a TOML file of ``[[blocks]]`` tables; InvalidInput names the bad entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from None
    entries = data.get("blocks")
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{path} has no [[blocks]] tables")
    allowed = {f for f in BlockSpec.__dataclass_fields__}
    specs = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise InvalidInput(f"{path} block {n}: must be a table, not {type(entry).__name__}")
        unknown = set(entry) - allowed
        missing = {"name", "prefix", "purpose", "scope"} - set(entry)
        if unknown or missing:
            raise InvalidInput(
                f"{path} block {n}: "
                + (f"unknown keys {sorted(unknown)}" if unknown else f"missing {sorted(missing)}")
            )
        if not all(isinstance(v, str) for v in entry.values()):
            raise InvalidInput(f"{path} block {n}: every value must be a quoted string")
        spec = BlockSpec(**entry)
        try:
            specs.append(spec.validated())
        except InvalidInput as exc:
            # The name labels the block unless it is what is wrong with it.
            label = spec.name if spec.name.isprintable() else repr(spec.name)
            raise InvalidInput(f"{path} block {n} ({label}): {exc.detail}") from None
    return specs


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int


def load_blocks(
    session: Session, principal: Principal, specs: Sequence[BlockSpec], *, at: datetime
) -> LoadResult:
    """Make the configured blocks exist: create new ones, update the purpose, scope and
    reference of known ones (by name). A known block's range never changes (Conflict): its
    numbers may be in use. Blocks absent from ``specs`` are left alone."""
    created = updated = 0
    for given in specs:
        spec = given.validated()
        block = session.scalar(select(NumberBlock).where(NumberBlock.name == spec.name))
        if block is None:
            create_block(session, principal, spec, at=at)
            created += 1
            continue
        if spec.bounds() != (block.first_number, block.last_number):
            raise Conflict(f"the range of block {block.name} cannot change", field="prefix")
        before = block_view(block)
        block.purpose, block.scope = spec.purpose, spec.scope
        block.authority_ref = spec.authority_ref
        if block_view(block) != before:
            block.updated_at = at
            updated += 1
            record_change(
                session,
                principal,
                at=at,
                action="number-block.updated",
                target=("number-block", block.id),
                tenant_id=None,
                before=before,
                after=block_view(block),
            )
    return LoadResult(created, updated, len(specs) - created - updated)


def get_block(session: Session, block: uuid.UUID | str) -> NumberBlock:
    """A block by id or name; NotFound otherwise."""
    found = (
        session.get(NumberBlock, block)
        if isinstance(block, uuid.UUID)
        else session.scalar(select(NumberBlock).where(NumberBlock.name == block))
    )
    if found is None:
        raise NotFound(f"number block {block} not found", field="block")
    return found


@dataclass(frozen=True)
class BlockFigures:
    """One block's line of the annual numbering report."""

    name: str
    prefix: str
    first_number: str
    last_number: str
    purpose: str
    scope: str
    size: int
    allocated: int
    active: int
    quarantined: int

    @property
    def utilisation(self) -> float:
        """Allocated numbers over the block's size (0..1)."""
        return self.allocated / self.size if self.size else 0.0


def report(session: Session) -> list[BlockFigures]:
    """Per-block figures of the annual numbering report, as the inventory stands now.

    The filing states usage as of 31 December; run this at the turn of the year (the CLI's
    ``satiot numbers report --year``) so that "now" is that moment. Counts come from one
    GROUP BY over the rows, never from the block's unused range.
    """
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for block_id, status, n in session.execute(
        select(IotNumber.block_id, IotNumber.status, func.count()).group_by(
            IotNumber.block_id, IotNumber.status
        )
    ):
        counts.setdefault(block_id, {})[status] = n
    figures = []
    for block in session.scalars(select(NumberBlock).order_by(NumberBlock.first_number)):
        c = counts.get(block.id, {})
        figures.append(
            BlockFigures(
                name=block.name,
                prefix=block.prefix,
                first_number=format_number(block.first_number),
                last_number=format_number(block.last_number),
                purpose=block.purpose,
                scope=block.scope,
                size=block.last_number - block.first_number + 1,
                allocated=sum(c.get(s, 0) for s in states.NUMBER_ALLOCATED_STATES),
                active=c.get("active", 0),
                quarantined=sum(c.get(s, 0) for s in states.NUMBER_RESTING_STATES),
            )
        )
    return figures
