"""The migrations build exactly the schema the models describe, on the suite's backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from satiot.core import migrate
from satiot.schema import metadata


def test_models_and_migrations_agree(migrated_db):
    with migrated_db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata()
        )
    assert diff == [], f"models differ from migrations; generate a revision: {diff}"


def test_database_is_at_the_newest_revision(migrated_db):
    engine = migrated_db.engine
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
