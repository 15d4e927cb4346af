"""The Alembic history builds exactly the tables the models describe, on SQLite and PostgreSQL, and the newest
migrations (state history; logins and sessions) can be undone and redone."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

import kboss.db.models_accounts
import kboss.db.models_audit
import kboss.db.models_billing
import kboss.db.models_instances
import kboss.db.models_ops  # noqa: F401  (their tables join the metadata)
from kboss.db.engine import alembic_config
from kboss.db.models import Base

HISTORY_TABLES = {"instance_history", "device_history"}
LOGIN_TABLES = {"login_throttle", "user_sessions"}


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _run(db_url: str, check: Any) -> Any:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(check)
    finally:
        await engine.dispose()


async def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    assert await _run(db_url, _differences) == []


async def test_the_state_history_migration_can_be_undone_and_redone(db_url: str) -> None:
    assert await _run(db_url, _tables) >= HISTORY_TABLES
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0006")
    assert not HISTORY_TABLES & await _run(db_url, _tables)
    await asyncio.to_thread(command.upgrade, alembic_config(db_url), "head")
    assert await _run(db_url, _differences) == []


def _user_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("users")}


async def test_the_logins_and_sessions_migration_can_be_undone_and_redone(db_url: str) -> None:
    assert await _run(db_url, _tables) >= LOGIN_TABLES
    await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0007")
    assert not LOGIN_TABLES & await _run(db_url, _tables)
    assert not {"token_version", "disabled"} & await _run(db_url, _user_columns)
    await asyncio.to_thread(command.upgrade, alembic_config(db_url), "head")
    assert await _run(db_url, _differences) == []
