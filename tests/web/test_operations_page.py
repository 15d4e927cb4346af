"""The operations page against the engine's contract (issue 4), served here by a stub router.

The engine is still being built; the stub answers what `kboss.api.v1.operations` documents (list, detail, the log
as server-sent events `log` / `progress` / `end`) with a finished run, deterministic and instant, where a real
(even simulated) cluster build takes minutes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from playwright.async_api import expect

from tests.support.databases import SqliteFactory
from tests.web.browser import Console, running_console, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

STEPS = ["preflight", "container runtime", "kubeadm init"]


def _step(name: str, state: str) -> dict[str, Any]:
    return {
        "ordinal": STEPS.index(name),
        "name": name,
        "node": "10.0.0.8",
        "state": state,
        "attempts": 1,
        "error": None,
    }


OPERATION: dict[str, Any] = {
    "id": "op-create-1",
    "kind": "create_cluster",
    "state": "running",
    "cluster_id": "clu-1",
    "current_step": "container runtime",
    "created_at": "2026-11-27T10:00:00Z",
    "last_error": None,
    "steps": [_step("preflight", "succeeded"), _step("container runtime", "running"), _step("kubeadm init", "pending")],
}


def stub_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1/operations")

    @router.get("")
    async def list_operations() -> dict[str, Any]:
        return {"total": 1, "rows": [{k: v for k, v in OPERATION.items() if k != "steps"}]}

    @router.get("/{op_id}")
    async def show(op_id: str) -> dict[str, Any]:
        if op_id != OPERATION["id"]:
            raise HTTPException(404, "操作不存在")
        return OPERATION

    @router.get("/{op_id}/log")
    async def log(op_id: str, follow: bool = False) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            for line in ["[preflight] ok", "[container runtime] installing containerd"]:
                yield f"event: log\ndata: {line}\n\n"
                await asyncio.sleep(0.05)
            steps = [{k: s[k] for k in ("name", "node", "state", "attempts")} for s in OPERATION["steps"]]
            for step in steps:
                step["state"] = "succeeded"
            progress = {"state": "succeeded", "current_step": "kubeadm init", "steps": steps}
            yield f"event: progress\ndata: {json.dumps(progress)}\n\n"
            yield "event: log\ndata: [kubeadm init] control plane ready\n\n"
            yield f"event: end\ndata: {json.dumps({'state': 'succeeded', 'last_error': None})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return router


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory, sqlite_factory: SqliteFactory) -> AsyncIterator[Console]:
    async with running_console(tmp_path_factory.mktemp("ops"), sqlite_factory, stub_router()) as running:
        yield running


async def test_operation_list_and_live_log(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/operations")
    row = page.get_by_test_id("op-op-create-1")
    await expect(row).to_contain_text("创建集群")
    await expect(row.get_by_test_id("op-state-running")).to_have_text("进行中")
    await shot(page, "operations-list")

    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/log" in request.url else None)
    await row.get_by_test_id("op-link").click()
    log = page.get_by_test_id("op-log")
    await expect(log).to_contain_text("[kubeadm init] control plane ready")
    await expect(log).to_contain_text("[preflight] ok")
    await expect(page.get_by_test_id("op-follow-status")).to_have_text("操作已结束: 成功")
    await expect(page.get_by_test_id("op-steps").get_by_test_id("op-state-succeeded")).to_have_count(3)
    # After `end` the stream is closed for good: EventSource must not reconnect and replay the log.
    await page.wait_for_timeout(1500)
    assert len(streams) == 1, streams
    await shot(page, "operation-log")
    no_page_errors()
