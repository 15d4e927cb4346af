from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.api import Api, running_api


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    # No worker: operations stay pending, which is all the trail needs to see.
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        yield running
