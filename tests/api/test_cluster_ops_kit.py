"""Shared setup for the cluster-operation tests (compat and native endpoints, simulated and agent backends).
Imported by the test_cluster_ops* modules; holds no tests itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.api.state import AppState
from kboss.api.v1 import cluster_ops as v1_cluster_ops
from kboss.api.v1 import operations as v1_operations
from kboss.db.models import Cluster, ComponentStock, Device
from kboss.db.models_ops import Operation
from kboss.operations.steps import OpEnv, Registry
from kboss.operations.worker import OperationWorker
from tests.operations.kit import FAST
from tests.support.api import Api

CPCC = "/dev/cpcc"
NEW_CLUSTER = f"{CPCC}/cpccluster/new_cluster.dspy"
NEW_WORKER = f"{CPCC}/cpcworker/new_cpcworker.dspy"
DELETE_WORKER = f"{CPCC}/cpcworker/delete_cpcworker.dspy"
DELETE_CLUSTER = "/computing/cpcluster_delete.dspy"
ADD_WIDGET = f"{CPCC}/cpcwidget/add_cpcwidget.dspy"


def wire(app: FastAPI) -> None:
    """Until create_app includes them: the native routers (the compat handlers register on import)."""
    paths = {getattr(route, "path", "") for route in app.routes}
    for router, path in ((v1_cluster_ops.router, "/api/v1/clusters"), (v1_operations.router, "/api/v1/operations")):
        if path not in paths:
            app.include_router(router)


@asynccontextmanager
async def running_worker(api: Api, registry: Registry, env: OpEnv, wait: float = 30.0) -> AsyncIterator[None]:
    """A fast worker over `registry`; compat endpoints wait up to `wait` seconds (starting an operation wakes it)."""
    state: AppState = api.app.state.kboss
    worker = OperationWorker(state.sessions, "cluster-ops-test", registry, env, FAST)
    set_wait(api, wait)
    try:
        async with worker:
            yield
    finally:
        set_wait(api, state.settings.compat_wait_seconds)


def set_wait(api: Api, seconds: float) -> None:
    """How long this app's compat cluster endpoints wait for their operation."""
    state: AppState = api.app.state.kboss
    state.compat_wait_seconds = seconds


def sessions(api: Api) -> async_sessionmaker[AsyncSession]:
    state: AppState = api.app.state.kboss
    return state.sessions


async def device(api: Api, device_id: str) -> Device:
    async with sessions(api)() as session:
        return await session.get_one(Device, device_id)


async def cluster(api: Api, cluster_id: str) -> Cluster | None:
    async with sessions(api)() as session:
        return await session.get(Cluster, cluster_id)


async def stock_rows(api: Api, cluster_id: str) -> int:
    async with sessions(api)() as session:
        query = select(func.count()).select_from(ComponentStock).where(ComponentStock.clusterid == cluster_id)
        return int(await session.scalar(query) or 0)


async def operation(api: Api, op_id: str) -> Operation:
    async with sessions(api)() as session:
        return await session.get_one(Operation, op_id)


def create_params(cpcid: str, device_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "cpcid": cpcid, "ctl_nodeid": device_id, "cluster_type": "0", "cluster_name": "朝阳区集群",
        "enable_date": "2025-05-16", "export_date": "2026-06-17", **extra,
    }  # fmt: skip


def assert_member(row: Device, cluster_id: str, role: str) -> None:
    assert (row.node_status, row.clusterid, row.role) == (1, cluster_id, role)


def assert_idle(row: Device) -> None:
    assert (row.node_status, row.clusterid) == (0, None)
