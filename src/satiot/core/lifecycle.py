"""Lifecycle state machines declared as data.

Each stateful thing lists its states and allowed transitions in one table (its package's
``states.py``); code asks the table instead of scattering ``if status == ...`` checks, so the
rules can be read, documented and tested in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from satiot.core.errors import IllegalTransition, PermissionDenied


@dataclass(frozen=True)
class Lifecycle:
    """States, the initial state, and which roles may move a thing from one state to another.

    ``transitions`` maps ``(from, to)`` to the roles allowed to make that move; an empty set of
    roles means only the system itself (no human role) makes it.
    """

    name: str
    states: tuple[str, ...]
    initial: str
    transitions: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.initial not in self.states:
            raise ValueError(f"{self.name}: initial state {self.initial!r} is not a state")
        for src, dst in self.transitions:
            if src not in self.states or dst not in self.states:
                raise ValueError(f"{self.name}: transition {src}->{dst} names an unknown state")

    def targets(self, state: str) -> list[str]:
        """States reachable from ``state`` in one step."""
        return [dst for (src, dst) in self.transitions if src == state]

    def check(self, current: str, target: str, role: str | None = None) -> None:
        """Raise unless ``role`` may move from ``current`` to ``target`` (``None`` = system)."""
        if target not in self.states:
            raise IllegalTransition(f"{self.name}: {target!r} is not a state")
        roles = self.transitions.get((current, target))
        if roles is None:
            allowed = ", ".join(self.targets(current)) or "none"
            raise IllegalTransition(
                f"{self.name}: cannot go from {current!r} to {target!r} (allowed: {allowed})",
                current=current,
                target=target,
            )
        if role is not None and role not in roles:
            raise PermissionDenied(
                f"{self.name}: role {role!r} may not move {current!r} to {target!r}"
            )


def transitions(
    pairs: Iterable[tuple[str, str]], roles: Iterable[str]
) -> dict[tuple[str, str], frozenset[str]]:
    """Build a transition table where the same roles may make every listed move."""
    allowed = frozenset(roles)
    return {pair: allowed for pair in pairs}
