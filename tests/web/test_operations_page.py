"""The operations page against the real engine: a cluster built on a simulated center by the app's own operation
worker, its steps played at a tiny time scale (the realistic build takes ≈4.5 minutes), followed in the page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from playwright.async_api import expect

from kboss.cli.demo import add_demo_center
from kboss.clusters.plan import cluster_kinds
from tests.support.databases import SqliteFactory
from tests.web.browser import Console, api, running_console, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
# ≈2.7 s for a whole cluster: long enough to see it run, short enough for a test.
TIME_SCALE = 0.01


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory, sqlite_factory: SqliteFactory) -> AsyncIterator[Console]:
    async with running_console(
        tmp_path_factory.mktemp("ops"), sqlite_factory, simulated_time_scale=TIME_SCALE, worker_poll_seconds=0.2
    ) as running:
        yield running


async def test_operation_list_and_live_log(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/operations")
    # The first page of a fresh server and browser: give a busy machine time to load the modules.
    await expect(page.get_by_test_id("empty")).to_contain_text("还没有操作记录", timeout=20000)
    me = await api(page, "GET", "/api/v1/auth/me")
    async with console.app.state.kboss.sessions() as session:
        # Console.user puts each user in an organisation of its own, named after them.
        demo = await add_demo_center(session, console.app.state.kboss.box, f"org-{me['username']}")
    op = await api(page, "POST", "/api/v1/clusters", {"cpcid": demo.center_id, "device_id": demo.device_ids[1],
                                                      "name": "日志集群"})  # fmt: skip

    await page.reload()
    row = page.get_by_test_id(f"op-{op['id']}")
    await expect(row).to_contain_text("创建集群")
    await shot(page, "operations-list")

    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/log" in request.url else None)
    await row.get_by_test_id("op-link").click()
    log = page.get_by_test_id("op-log")
    await expect(page.get_by_test_id("op-follow-status")).to_have_text("操作已结束: 成功", timeout=60000)
    await expect(log).to_contain_text("preflight: acting 1/3")
    await expect(log).to_contain_text("fetch_credentials")
    steps = page.get_by_test_id("op-steps")
    await expect(steps.get_by_test_id("op-state-succeeded")).to_have_count(len(cluster_kinds()["create_cluster"]))
    machine = await api(page, "GET", f"/api/v1/devices/{demo.device_ids[1]}")
    await expect(steps).to_contain_text(f"{machine['name']} ({machine['ip']})")  # the machine, not its id
    # After `end` the stream is closed for good: EventSource must not reconnect and replay the log.
    await page.wait_for_timeout(1500)
    assert len(streams) == 1, streams
    await shot(page, "operation-log")
    no_page_errors()
