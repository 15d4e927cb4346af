"""Fresh, migrated databases for each test: copied from a template migrated once per session."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg

from kboss.db.engine import upgrade_sync


class SqliteFactory:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template = workdir / "template.db"
        upgrade_sync(f"sqlite+aiosqlite:///{self.template}")

    def new(self) -> str:
        path = self.workdir / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"


class PostgresFactory:
    TEMPLATE = "kboss_template"

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.base = server_url.rsplit("/", 1)[0]

    def _dsn(self, url: str) -> str:
        return url.replace("postgresql+asyncpg://", "postgresql://")

    async def prepare(self) -> None:
        conn = await asyncpg.connect(self._dsn(self.server_url))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {self.TEMPLATE}")
            await conn.execute(f"CREATE DATABASE {self.TEMPLATE}")
        finally:
            await conn.close()

    def migrate_template(self) -> None:
        upgrade_sync(f"{self.base}/{self.TEMPLATE}")

    async def new(self) -> str:
        name = f"kb_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(self._dsn(self.server_url))
        try:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        finally:
            await conn.close()
        return f"{self.base}/{name}"
