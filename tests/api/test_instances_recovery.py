"""A kboss process that dies while it changes an instance: the row is not stuck, the stock is not lost.

"Dies" is a request cancelled while the site agent is still working on it (the agent here accepts connections
and never answers): nothing of the request runs after that point, as after a `kill -9`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kboss.instances import records as instance_records
from kboss.instances.sweeper import fail_abandoned
from tests.api.test_compat_catalog import CENTER, CPCC
from tests.api.test_instances import DELETE, GET, NEW, UPDATE, Site, consumed, instance_params, leftovers, site
from tests.support.api import running_api
from tests.support.site import SITE_PASSWORD, SITE_USER

__all__ = ["site"]
CENTER_UPDATE = f"{CPCC}/cpclist/update_cpclist.dspy"


@pytest.fixture
def mute_agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An agent URL that accepts connections and never answers. Lists of instances wait for the cluster's pods
    half a second before they say `unknown` (5 s in service), so that polling them stays quick."""
    monkeypatch.setattr(instance_records, "HEALTH_READ_SECONDS", 0.5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _point_center_at(site: Site, url: str) -> None:
    center = {**CENTER, "id": site.cpcid, "pcapi_url": url, "api_user": SITE_USER, "api_pwd": SITE_PASSWORD}
    await site.admin.ok(CENTER_UPDATE, **center)


async def _row(site: Site) -> dict[str, Any]:
    listed = await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert listed["total"] == 1, listed
    row: dict[str, Any] = listed["rows"][0]
    return row


async def _states(site: Site) -> list[str]:
    listed = await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    return [row["state"] for row in listed["rows"]]


async def _die_during(site: Site, path: str, params: dict[str, Any], state: str) -> None:
    """Send the request, wait until the row shows it at work (`state`), then stop it dead."""
    request = asyncio.create_task(site.admin.call(path, **params))
    async with asyncio.timeout(20):
        while await _states(site) != [state]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request


async def _recover(site: Site) -> int:
    return await fail_abandoned(site.api.app.state.kboss.sessions, older_than_seconds=0)


async def test_an_interrupted_scale_up_keeps_account_of_its_stock_and_can_be_deleted(
    site: Site, mute_agent: str
) -> None:
    agent_url = (await site.admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["rows"][0]["pcapi_url"]
    created = await site.admin.ok(NEW, **instance_params(site.clusterid))
    await _point_center_at(site, mute_agent)
    bigger = instance_params(site.clusterid, id=created["id"], source_cpurate="4")
    await _die_during(site, UPDATE, bigger, "updating")
    assert (await consumed(site))["cpu STANDARD"] == 4  # taken before the apply, as a live update does

    assert await fail_abandoned(site.api.app.state.kboss.sessions, older_than_seconds=600) == 0  # too recent
    assert await _recover(site) == 1
    row = await _row(site)
    assert row["state"] == "failed" and "中断" in row["last_error"] and "删除" in row["last_error"], row

    await _point_center_at(site, agent_url)
    await site.admin.ok(DELETE, id=created["id"])
    assert set((await consumed(site)).values()) == {0}  # the old and the extra stock, all given back
    assert leftovers(site.fake, site.namespace) == []


async def test_an_interrupted_order_is_failed_and_its_delete_gives_everything_back(site: Site, mute_agent: str) -> None:
    agent_url = (await site.admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["rows"][0]["pcapi_url"]
    await _point_center_at(site, mute_agent)
    await _die_during(site, NEW, instance_params(site.clusterid), "applying")
    assert (await consumed(site))["cpu STANDARD"] == 1
    assert "创建中" in await site.admin.refused(DELETE, id=(await _row(site))["id"])  # stuck, until recovered

    assert await _recover(site) == 1
    await _point_center_at(site, agent_url)
    await site.admin.ok(DELETE, id=(await _row(site))["id"])
    assert set((await consumed(site)).values()) == {0}


async def test_a_restarted_kboss_fails_what_the_crash_left_on_its_own(
    site: Site, mute_agent: str, db_url: str, data_dir: Path
) -> None:
    await _point_center_at(site, mute_agent)
    await _die_during(site, NEW, instance_params(site.clusterid), "applying")
    async with running_api(db_url, data_dir, instance_stale_seconds=0.001):
        async with asyncio.timeout(20):
            while await _states(site) != ["failed"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
