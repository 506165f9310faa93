"""Where event consumers come from: small factories registered by entry point.

A package (satiot's own subsystems or a plugin) declares, in its ``pyproject.toml``::

    [project.entry-points."satiot.consumers"]
    rating = "satiot.bss.rating:consumer"

where ``consumer`` is a function returning an :class:`~satiot.core.events.Consumer`. ``satiot
up`` runs every registered consumer; ``satiot events consume NAME`` runs one on its own.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from satiot.core.events import Consumer

GROUP = "satiot.consumers"


def registered() -> dict[str, Consumer]:
    """Every consumer that installed packages register, by name."""
    found: dict[str, Consumer] = {}
    for ep in entry_points(group=GROUP):
        consumer = ep.load()()
        if not isinstance(consumer, Consumer):
            raise TypeError(f"entry point {ep.name!r} did not return a Consumer")
        found[consumer.name] = consumer
    return found
