"""Fixtures of the browser tests (helpers in `tests/web/browser.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from tests.support.databases import SqliteFactory
from tests.web.browser import Console, running_console


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory, sqlite_factory: SqliteFactory) -> AsyncIterator[Console]:
    # The app's own operation worker builds simulated centers' clusters in about a second (not ≈4.5 minutes).
    async with running_console(
        tmp_path_factory.mktemp("console"), sqlite_factory, simulated_time_scale=0.005, worker_poll_seconds=0.2
    ) as running:
        yield running


@pytest.fixture
def no_page_errors(console: Console) -> Callable[[], None]:
    def check() -> None:
        errors, console.page_errors[:] = list(console.page_errors), []
        assert not errors, f"uncaught errors in the page: {errors}"

    return check
