"""`kboss.db.sealed.SEALED_COLUMNS` names every column that holds a sealed secret: a column left out would be left
behind by a key rotation, and unreadable once the old key is pruned."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import String, Text, select

import kboss
from kboss.crypto import PREFIX
from kboss.db.models import Base
from kboss.db.sealed import SEALED_COLUMNS, column_name
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api, running_api

SEALED_NAMES = {column_name(column) for column in SEALED_COLUMNS}


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir) as running:
        yield running


async def test_every_sealed_value_written_through_the_api_is_in_a_listed_column(api: Api) -> None:
    admin = await api.user("alice", "acme")
    center = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(center["id"]))
    key_only = device_params(center["id"], ip="192.168.0.9", adminpwd="", ssh_key="-----BEGIN KEY-----\nabc\n")
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **key_only)
    await import_cluster(admin, center["id"])
    found = set()
    async with api.app.state.kboss.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, String | Text):
                    values = (await session.scalars(select(column).where(column.startswith(PREFIX)))).all()
                    found |= {f"{table.name}.{column.name}"} if values else set()
    assert found == {"centers.api_pwd", "devices.adminpwd", "devices.ssh_key", "clusters.kubeconfig"}
    assert found <= SEALED_NAMES


def test_every_place_that_seals_writes_a_listed_column() -> None:
    """The columns the catalog above does not fill (a join command, an instance's password) are sealed in code
    that names them: every line that seals must name a listed column."""
    keys = {name.split(".")[1] for name in SEALED_NAMES}
    sealing = [
        (path.name, line.strip())
        for path in Path(kboss.__file__).parent.rglob("*.py")
        for line in path.read_text().splitlines()
        if re.search(r"box\.seal\(", line)
    ]
    assert len(sealing) >= 8
    assert [(name, line) for name, line in sealing if not any(key in line for key in keys)] == []
