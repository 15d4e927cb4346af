"""Shared setup for the operation tests: a seeded org (center, three devices, a cluster record), contexts,
fast workers over the simulated site. Imported by the test_operations_* modules; holds no tests itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kboss.clusters.site_access import SiteEnv
from kboss.common.context import ROLE_ADMIN, Ctx, Principal
from kboss.crypto import SecretBox
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import Center, Cluster, Device, Org, User
from kboss.db.models_ops import Operation, OperationHistory, OperationStep
from kboss.operations.service import start_operation
from kboss.operations.steps import Registry
from kboss.operations.worker import OperationWorker, WorkerConfig
from tests.operations.played import BACKEND, PlayedSite

KEY = "test-deployment-key-ops"
DEVICE_PASSWORD = "Ssh-Secret-Pa55"
# Fast enough for tests, slow enough that heartbeats and log flushes happen during a step.
FAST = WorkerConfig(
    concurrency=4, poll_seconds=0.02, heartbeat_seconds=0.1, stale_seconds=3.0, sweep_seconds=0.1,
    log_flush_seconds=0.02,
)  # fmt: skip
SCALE = 0.001


@dataclass
class Lab:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    admin: Principal
    member: Principal
    center_id: str
    cluster_id: str
    devices: list[str]

    @asynccontextmanager
    async def ctx(self, principal: Principal | None = None) -> AsyncIterator[Ctx]:
        async with self.sessions() as session:
            yield Ctx(session=session, principal=principal or self.admin, box=self.box)

    def worker(
        self, site: PlayedSite, worker_id: str = "w1", config: WorkerConfig = FAST, registry: Registry | None = None
    ) -> OperationWorker:
        return OperationWorker(
            self.sessions, worker_id, registry or site.registry(), SiteEnv(self.box, machines=site), config
        )

    async def start(self, kind: str, devices: list[str], limit: float | None = None, **params: Any) -> str:
        async with self.ctx() as ctx:
            op = await start_operation(ctx, kind, self.cluster_id, devices, params, limit, backend=BACKEND)
            return op.id

    async def op(self, op_id: str) -> Operation:
        async with self.sessions() as session:
            return await session.get_one(Operation, op_id)

    async def steps(self, op_id: str) -> list[OperationStep]:
        async with self.sessions() as session:
            query = select(OperationStep).where(OperationStep.operation_id == op_id)
            return list((await session.scalars(query.order_by(OperationStep.ordinal, OperationStep.node))).all())

    async def history(self, op_id: str) -> list[tuple[str, str]]:
        async with self.sessions() as session:
            query = select(OperationHistory).where(OperationHistory.operation_id == op_id).order_by(OperationHistory.id)
            return [(h.from_state, h.to_state) for h in (await session.scalars(query)).all()]

    async def wait_until(self, check: Callable[[], Awaitable[bool]], limit: float = 10.0) -> None:
        async with asyncio.timeout(limit):
            while not await check():  # noqa: ASYNC110 - the database is what changes
                await asyncio.sleep(0.01)

    async def wait_state(self, op_id: str, *states: str, limit: float = 10.0) -> Operation:
        async def reached() -> bool:
            return (await self.op(op_id)).state in states

        await self.wait_until(reached, limit)
        return await self.op(op_id)

    async def wait_step(self, op_id: str, name: str, state: str = "running", limit: float = 10.0) -> None:
        async def reached() -> bool:
            return any(s.name == name and s.state == state for s in await self.steps(op_id))

        await self.wait_until(reached, limit)


async def _seed(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> dict[str, Any]:
    async with sessions() as session:
        # Rows rather than auth.create_user: these tests never log in, and password hashing is slow on purpose.
        org = Org(name="ops-org")
        session.add(org)
        await session.flush()
        admin = User(orgid=org.id, username="opadmin", password_hash="-", role=ROLE_ADMIN)
        member = User(orgid=org.id, username="opviewer", password_hash="-", role="member")
        session.add_all([admin, member])
        center = Center(
            orgid=admin.orgid, name="sim", pcapi_url="http://127.0.0.1:1", api_user="u",
            api_pwd=box.seal("Center-Secret-1"), contactname="c", contactphone="1", simulated=True,
        )  # fmt: skip
        session.add(center)
        await session.flush()
        devices = [
            Device(
                orgid=admin.orgid,
                cpcid=center.id,
                name=f"m{i}",
                ip=f"10.0.0.{i}",
                adminuser="root",
                adminpwd=box.seal(DEVICE_PASSWORD),
            )
            for i in range(1, 4)
        ]
        cluster = Cluster(orgid=admin.orgid, cpcid=center.id, name="c1")
        session.add_all([*devices, cluster])
        await session.commit()
        return {
            "admin": Principal(admin.id, admin.username, admin.orgid, ROLE_ADMIN),
            "member": Principal(member.id, member.username, member.orgid, "member"),
            "center_id": center.id,
            "cluster_id": cluster.id,
            "devices": [d.id for d in devices],
        }


@asynccontextmanager
async def lab_on(db_url: str) -> AsyncIterator[Lab]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    box = SecretBox(KEY)
    try:
        yield Lab(engine, sessions, box, **(await _seed(sessions, box)))
    finally:
        await engine.dispose()
