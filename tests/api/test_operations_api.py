"""The native operations API over the in-process app: list, show, log, follow (SSE over real HTTP), retry, cancel."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from kboss.api.v1.operations import router
from kboss.common.context import Ctx, Principal
from kboss.db.models import User as UserRow
from kboss.operations.service import start_operation
from kboss.operations.steps import OpEnv
from kboss.operations.worker import OperationWorker
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.operations.kit import FAST, SCALE
from tests.operations.played import BACKEND, PlayedSite
from tests.support.api import Api, User, running_api

OPS = "/api/v1/operations"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    # The tests bring their own worker over a scripted site: the application's would claim the operations first.
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        # Until the router is wired into create_app.
        if not any(getattr(r, "path", "") == OPS for r in running.app.routes):
            running.app.include_router(router)
        yield running


class Org:
    def __init__(self, api: Api, user: User, principal: Principal, cluster: str, devices: list[str]) -> None:
        self.api, self.user, self.principal, self.cluster, self.devices = api, user, principal, cluster, devices

    async def start(self, kind: str, devices: list[str]) -> str:
        state = self.api.app.state.kboss
        async with state.sessions() as session:
            ctx = Ctx(session=session, principal=self.principal, box=state.box)
            return (await start_operation(ctx, kind, self.cluster, devices, backend=BACKEND)).id

    def worker(self, site: PlayedSite) -> OperationWorker:
        state = self.api.app.state.kboss
        return OperationWorker(state.sessions, "api-worker", site.registry(), OpEnv(state.box), FAST)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.user.http.get(path, params=params, headers=self.user.headers)

    async def post(self, path: str) -> httpx.Response:
        return await self.user.http.post(path, headers=self.user.headers)


async def _org(api: Api, username: str, org: str) -> Org:
    user = await api.user(username, org)
    cpcid = (await user.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    devices = [(await user.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, f"10.1.0.{i}")))["id"]
               for i in (1, 2)]  # fmt: skip
    cluster = await import_cluster(user, cpcid)
    async with api.app.state.kboss.sessions() as session:
        row = (await session.scalars(select(UserRow).where(UserRow.username == username))).one()
    return Org(api, user, Principal(row.id, row.username, row.orgid, row.role), cluster, devices)


async def test_list_show_log_retry_and_other_orgs(api: Api) -> None:
    acme = await _org(api, "alice", "acme")
    site = PlayedSite(SCALE)
    site.fail("kubeadm_join")
    op_id = await acme.start("join_worker", acme.devices)
    async with acme.worker(site):
        await _until(acme, op_id, "failed")
        listed = (await acme.get(OPS, cluster_id=acme.cluster, state="failed")).json()
        assert listed["total"] == 1 and listed["rows"][0]["id"] == op_id
        assert (await acme.get(OPS, state="succeeded")).json()["total"] == 0
        assert (await acme.get(OPS, state="exploded")).status_code == 422

        detail = (await acme.get(f"{OPS}/{op_id}")).json()
        assert detail["state"] == "failed" and "kubeadm_join" in detail["last_error"]
        failed = [s for s in detail["steps"] if s["state"] == "failed"]
        assert failed and failed[0]["error"] and failed[0]["duration_seconds"] is not None
        assert [h["to_state"] for h in detail["history"]] == ["pending", "running", "failed"]
        log = await acme.get(f"{OPS}/{op_id}/log")
        assert log.headers["content-type"].startswith("text/plain") and "kubeadm_join@" in log.text

        mallory = await api.user("mallory", "evil-corp")
        for path in (f"{OPS}/{op_id}", f"{OPS}/{op_id}/log"):
            assert (await mallory.http.get(path, headers=mallory.headers)).status_code == 404
        assert (await mallory.http.post(f"{OPS}/{op_id}/retry", headers=mallory.headers)).status_code == 404
        assert (await mallory.http.get(OPS, headers=mallory.headers)).json()["total"] == 0
        assert (await acme.get(f"{OPS}/nope")).status_code == 404

        retried = await acme.post(f"{OPS}/{op_id}/retry")
        assert retried.status_code == 200 and retried.json()["state"] == "pending"
        await _until(acme, op_id, "succeeded")
        again = await acme.post(f"{OPS}/{op_id}/retry")
        assert again.status_code == 409 and "succeeded" in again.json()["detail"]
        assert (await acme.post(f"{OPS}/{op_id}/cancel")).status_code == 409


async def test_cancel_pending_then_running(api: Api) -> None:
    acme = await _org(api, "alice", "acme")
    waiting = await acme.start("create_cluster", acme.devices[:1])
    cancelled = await acme.post(f"{OPS}/{waiting}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

    site = PlayedSite(SCALE)
    site.hang("container_runtime")
    running = await acme.start("create_cluster", acme.devices[:1])
    async with acme.worker(site):
        await _until(acme, running, "running", step="container_runtime")
        asked = await acme.post(f"{OPS}/{running}/cancel")
        assert asked.status_code == 202 and asked.json()["cancel_requested"] is True
        await _until(acme, running, "cancelled")


async def test_follow_streams_server_sent_events_live(api: Api) -> None:
    acme = await _org(api, "alice", "acme")
    site = PlayedSite(SCALE)
    gate = site.pause("kubeadm_init")
    op_id = await acme.start("create_cluster", acme.devices[:1])
    async with acme.worker(site), _served(api) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        events: list[tuple[str, str]] = []
        path = f"{OPS}/{op_id}/log"
        async with http.stream("GET", path, params={"follow": "1"}, headers=acme.user.headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for kind, data in _sse(response):
                events.append((kind, data))
                if kind == "log" and "kubeadm_init: paused" in data:
                    gate.set()  # seen live, while the step waits: now let it finish
        kinds = [k for k, _ in events]
        assert kinds[-1] == "end" and json.loads(events[-1][1])["state"] == "succeeded"
        assert gate.is_set() and "progress" in kinds
        lines = [d for k, d in events if k == "log"]
        assert lines == (await acme.get(path)).text.splitlines()


async def test_follow_says_why_a_step_failed_as_it_fails(api: Api) -> None:
    acme = await _org(api, "alice", "acme")
    site = PlayedSite(SCALE)
    site.fail("kubeadm_init")
    op_id = await acme.start("create_cluster", acme.devices[:1])
    async with acme.worker(site), _served(api) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        path = f"{OPS}/{op_id}/log"
        async with http.stream("GET", path, params={"follow": "1"}, headers=acme.user.headers) as response:
            progress = [json.loads(data) async for kind, data in _sse(response) if kind == "progress"]
    steps = {s["name"]: s for s in progress[-1]["steps"]}
    assert steps["kubeadm_init"]["state"] == "failed" and "kubeadm_init" in steps["kubeadm_init"]["error"], steps
    assert steps["preflight"]["error"] == ""


async def _sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    kind, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and kind:
            yield kind, data
            kind, data = "", ""


@asynccontextmanager
async def _served(api: Api) -> AsyncIterator[str]:
    """The already started app on real HTTP (uvicorn on loopback), so that streaming is real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _until(org: Org, op_id: str, state: str, step: str | None = None) -> None:
    async with asyncio.timeout(10):
        while True:
            detail = (await org.get(f"{OPS}/{op_id}")).json()
            if detail["state"] == state and (step is None or detail["current_step"] == step):
                return
            await asyncio.sleep(0.02)
