"""Shared setup for the cluster-operation tests (compat and native endpoints, simulated and agent backends).
Imported by the test_cluster_ops* modules; holds no tests itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.api.state import AppState
from kboss.cli.demo import add_demo_center
from kboss.clusters.plan import register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.db.models import Cluster, ComponentStock, Device
from kboss.db.models_ops import Operation
from kboss.operations.steps import OpEnv, Registry
from kboss.operations.worker import OperationWorker
from kboss.sites.simulated.machines import SimulatedMachines
from kboss.sites.simulated.site import forget
from tests.api.test_instances import add_components
from tests.operations.kit import FAST, SCALE
from tests.support.api import Api, User, running_api

CPCC = "/dev/cpcc"
NEW_CLUSTER = f"{CPCC}/cpccluster/new_cluster.dspy"
NEW_WORKER = f"{CPCC}/cpcworker/new_cpcworker.dspy"
DELETE_WORKER = f"{CPCC}/cpcworker/delete_cpcworker.dspy"
DELETE_CLUSTER = "/computing/cpcluster_delete.dspy"
ADD_WIDGET = f"{CPCC}/cpcwidget/add_cpcwidget.dspy"


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


@dataclass
class SimulatedCluster:
    """A demo center's cluster built through the compat endpoints, with a simulated worker still running."""

    api: Api
    admin: User
    machines: SimulatedMachines
    center_id: str
    cluster_id: str
    devices: list[str]  # the demo center's device ids, in its order (sim-01-gpu, sim-02, sim-03, ...)


@asynccontextmanager
async def simulated_cluster(
    db_url: str, data_dir: Path, master: int, worker: int, components: Sequence[Mapping[str, Any]]
) -> AsyncIterator[SimulatedCluster]:
    """Devices `master` and `worker` (indexes into the demo center's) built into a cluster priced with
    `components`; the in-memory cluster is forgotten afterwards."""
    async with running_api(db_url, data_dir, worker_enabled=False) as api:
        state = api.app.state.kboss
        admin = await api.user("alice", "acme")
        async with state.sessions() as session:
            made = await add_demo_center(session, state.box, "acme")
        machines = SimulatedMachines(SCALE)
        async with running_worker(api, register_cluster_kinds(Registry()), SiteEnv(state.box, machines=machines)):
            built = await admin.ok(NEW_CLUSTER, **create_params(made.center_id, made.device_ids[master]))
            cid = str(built["clusterid"])
            await admin.ok(NEW_WORKER, cpcid=made.center_id, clusterid=cid, worker_nodeid=made.device_ids[worker])
            await add_components(admin, made.center_id, cid, list(components))
            yield SimulatedCluster(api, admin, machines, made.center_id, cid, list(made.device_ids))
    forget()
