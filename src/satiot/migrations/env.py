"""Alembic environment: migrates the database named by the caller (see satiot.core.migrate)."""

from __future__ import annotations

from typing import Literal

from alembic import context
from sqlalchemy import Connection

from satiot.core.db import UTCDateTime, make_engine
from satiot.schema import metadata

config = context.config
target_metadata = metadata()


def _render_item(type_: str, obj: object, _ctx: object) -> str | Literal[False]:
    # Migrations stay plain SQLAlchemy: the UTC wrapper is an application concern.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
