"""The app these tests buy and bill on: no background worker (tests meter and run operations themselves), and the
simulated site's in-memory clusters forgotten afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kboss.sites.simulated.site import forget
from tests.support.api import Api, running_api


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        yield running
    forget()
