"""`kboss op list|show|logs [--follow]` against the database of the settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from kboss.cli.ops import op_app
from kboss.settings import get_settings
from tests.operations.kit import SCALE, lab_on
from tests.operations.played import PlayedSite


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _cli(db_url: str, *args: str) -> Result:
    """In a thread: the command runs its own event loop, as it does from a shell."""
    runner = CliRunner()
    env = {"KBOSS_DATABASE_URL": db_url}
    return await asyncio.to_thread(runner.invoke, op_app, list(args), env=env, catch_exceptions=False)


async def test_list_show_and_logs(db_url: str) -> None:
    site = PlayedSite(SCALE)
    site.fail("wait_node_ready")
    async with lab_on(db_url) as lab:
        done = await lab.start("create_cluster", lab.devices[:1])
        async with lab.worker(site):
            await lab.wait_state(done, "succeeded")
            failed = await lab.start("join_worker", lab.devices[1:])
            await lab.wait_state(failed, "failed")

        listed = await _cli(db_url, "list", "--state", "failed")
        assert listed.exit_code == 0 and failed[:10] in listed.output and done[:10] not in listed.output
        assert "ops-org" in (await _cli(db_url, "list", "--org", "ops-org")).output
        assert (await _cli(db_url, "list", "--org", "nobody")).output.count("join_worker") == 0

        shown = await _cli(db_url, "show", failed)
        assert "failed" in shown.output and "wait_node_ready" in shown.output and "pending → running" in shown.output
        as_json = json.loads((await _cli(db_url, "show", failed, "--json")).output)
        assert as_json["id"] == failed and as_json["history"][-1]["to_state"] == "failed"
        assert (await _cli(db_url, "show", "missing")).exit_code == 1

        logs = await _cli(db_url, "logs", done)
        assert logs.exit_code == 0 and "kubeadm_init |" in logs.output


async def test_logs_follow_until_the_end(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab, lab.worker(site):
        op_id = await lab.start("create_cluster", lab.devices[:1])
        followed = await _cli(db_url, "logs", op_id, "--follow", "--poll", "0.05")
        assert followed.exit_code == 0, followed.output
        assert "fetch_credentials |" in followed.output and f"operation {op_id}: succeeded" in followed.output
        assert "== running" in followed.output or "== succeeded" in followed.output
