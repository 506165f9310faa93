"""Moved to :mod:`satiot.core.bulk` (the network layer uses it too); kept for old imports."""

from satiot.core.bulk import insert_rows, update_rows

__all__ = ["insert_rows", "update_rows"]
