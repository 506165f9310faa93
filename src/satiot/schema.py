"""Which model modules make up the schema.

Alembic and the test fixtures need every table registered on the metadata; each subsystem adds
its ``models`` module here as it is built, so the list is the one place to look. It sits at
the top of the package because it names every layer, and no layer may import those above it.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

MODEL_MODULES: tuple[str, ...] = (
    "satiot.core.models",
    "satiot.network.models",
    "satiot.oss.models",
    "satiot.bss.models",
    "satiot.bss.ledger_models",
    "satiot.bss.device_fee_models",
)


def metadata() -> MetaData:
    """The metadata with every model module imported."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from satiot.core.db import Base

    return Base.metadata
