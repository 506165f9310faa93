"""The embedded database's connections (core.db)."""

from __future__ import annotations

import os

from satiot.core.db import WAL_CHECKPOINT_PAGES, Database


def test_every_embedded_connection_has_the_platforms_pragmas(tmp_path):
    db = Database.connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with db.engine.connect() as conn:
            pragma = conn.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA wal_autocheckpoint").scalar() == WAL_CHECKPOINT_PAGES
    finally:
        db.dispose()


def test_six_megabytes_of_commits_stay_in_the_log(tmp_path):
    """Commits of 6 MB in all stay in the write-ahead log: SQLite's default would have copied
    them back into the database after 4 MB."""
    path = tmp_path / "x.db"
    db = Database.connect(f"sqlite:///{path}")
    wal = tmp_path / "x.db-wal"
    try:
        with db.write() as s:
            s.connection().exec_driver_sql("CREATE TABLE blobs (b BLOB)")
        for _ in range(6):
            with db.write() as s:
                s.connection().exec_driver_sql("INSERT INTO blobs VALUES (?)", (os.urandom(2**20),))
        assert wal.stat().st_size > 6 * 2**20
        with db.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert 1500 < pages[1] < WAL_CHECKPOINT_PAGES  # frames in the log before this one
    finally:
        db.dispose()
