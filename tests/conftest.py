"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, and an API client on top of it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kboss.accounts import auth
from tests.support.databases import PostgresFactory, SqliteFactory
from tests.support.kube_fixtures import fake, kube, kube_server, kubeconfig
from tests.support.postgres import PostgresServer
from tests.support.ssh_fixtures import fast, known_hosts, ssh_host, ssh_lab
from tests.support.tracebacks import no_request_tracebacks

__all__ = [
    "fake",
    "fast",
    "known_hosts",
    "kube",
    "kube_server",
    "kubeconfig",
    "no_request_tracebacks",
    "ssh_host",
    "ssh_lab",
]

DATABASES = ["sqlite", "postgres"]
auth.use_cheap_hashing()


@pytest.fixture(scope="session")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> SqliteFactory:
    return SqliteFactory(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory | None]:
    url = os.environ.get("KBOSS_TEST_DATABASE_URL")
    server = None
    if not url:
        if not PostgresServer.available():
            yield None
            return
        server = PostgresServer()
        server.start()
        url = server.url
    factory = PostgresFactory(url)
    asyncio.run(factory.prepare())
    factory.migrate_template()
    try:
        yield factory
    finally:
        if server:
            server.stop()


@pytest.fixture(params=DATABASES)
async def db_url(
    request: pytest.FixtureRequest, sqlite_factory: SqliteFactory, postgres_factory: PostgresFactory | None
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield sqlite_factory.new()
        return
    if postgres_factory is None:
        if os.environ.get("KBOSS_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required (KBOSS_REQUIRE_POSTGRES=1) but no server could be started")
        pytest.skip("no PostgreSQL: set KBOSS_TEST_DATABASE_URL or install postgresql")
    yield await postgres_factory.new()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path
