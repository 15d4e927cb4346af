"""Issue 4's benchmark: ten workers joined by ten concurrent operations on ten clusters, against one worker.

    .venv/bin/python bench/join_workers.py [--scale 0.05] [--rounds 3] [--database-url URL]

Every join goes the way a request goes: `cluster_ops.start_join_worker` (checks, device reservation, operation
row and cluster lock in one transaction), then one `OperationWorker` (concurrency 10) claims and runs it: the real
join plan (`kboss.clusters.plan`) on a simulated center, whose machines take a fixed time per step: the simulated
machines' duration for it × `scale` (`kboss.sites.simulated.machines.PLAYED_SECONDS`). The target: ten at once
within 1.3× of one.
The database is a fresh SQLite file unless `--database-url` names another (e.g. an empty PostgreSQL database).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.clusters.ops import start_join_worker
from kboss.clusters.plan import cluster_kinds, register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.common.context import ROLE_ADMIN, Ctx, Principal
from kboss.crypto import SecretBox
from kboss.db.engine import make_engine, make_sessionmaker, upgrade
from kboss.db.models import Center, Cluster, Device, Org
from kboss.db.models_ops import Operation
from kboss.operations.steps import Registry
from kboss.operations.worker import OperationWorker, WorkerConfig
from kboss.sites.simulated.machines import PLAYED_SECONDS, SimulatedMachines

CLUSTERS = 10
CONFIG = WorkerConfig(
    concurrency=CLUSTERS, poll_seconds=0.05, heartbeat_seconds=1.0, stale_seconds=30.0, sweep_seconds=5.0,
    log_flush_seconds=0.2,
)  # fmt: skip


class Bench:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, principal: Principal) -> None:
        self.sessions, self.box, self.principal = sessions, box, principal
        self.center = ""
        self.clusters: list[str] = []
        self.free: list[str] = []

    async def seed(self, workers: int) -> None:
        """A simulated center; ten built clusters (records only: the benchmark measures joins); idle machines."""
        async with self.sessions() as session:
            center = Center(orgid=self.principal.orgid, name="bench (simulated)", pcapi_url="https://simulated.invalid",
                            api_user="x", api_pwd=self.box.seal("x"), contactname="b", contactphone="1",
                            simulated=True)  # fmt: skip
            session.add(center)
            await session.flush()
            self.center = center.id
            for i in range(CLUSTERS):
                self.clusters.append(await self._built_cluster(session, i))
            idle = [self._device(session, f"10.1.{i // 200}.{i % 200 + 1}") for i in range(workers)]
            await session.commit()
            self.free = [d.id for d in idle]

    async def _built_cluster(self, session: AsyncSession, index: int) -> str:
        master = self._device(session, f"10.0.0.{index + 1}")
        await session.flush()
        join = "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00"
        cluster = Cluster(orgid=self.principal.orgid, cpcid=self.center, name=f"bench-{index}", controllerid=master.id,
                          clusterjoin=self.box.seal(join), kubeconfig=self.box.seal("x"), ready=1)  # fmt: skip
        session.add(cluster)
        await session.flush()
        master.clusterid, master.node_status, master.role = cluster.id, 1, "master"
        return cluster.id

    def _device(self, session: AsyncSession, ip: str) -> Device:
        device = Device(orgid=self.principal.orgid, cpcid=self.center, name=ip, ip=ip, adminuser="root",
                        adminpwd=self.box.seal("x"))  # fmt: skip
        session.add(device)
        return device

    async def join(self, cluster_id: str) -> str:
        async with self.sessions() as session:
            ctx = Ctx(session, principal=self.principal, box=self.box)
            params = {"cpcid": self.center, "clusterid": cluster_id, "worker_nodeid": self.free.pop()}
            return (await start_join_worker(ctx, params)).operation.id

    async def wait(self, op_ids: Sequence[str]) -> None:
        while True:
            async with self.sessions() as session:
                states = list(await session.scalars(select(Operation.state).where(Operation.id.in_(op_ids))))
            if any(s not in ("pending", "running", "succeeded") for s in states):
                raise SystemExit(f"an operation ended badly: {states}")
            if states.count("succeeded") == len(op_ids):
                return
            await asyncio.sleep(0.02)

    async def timed(self, worker: OperationWorker, clusters: Sequence[str]) -> float:
        started = time.perf_counter()
        op_ids = await asyncio.gather(*(self.join(c) for c in clusters))
        await self.wait(op_ids)
        return time.perf_counter() - started


async def _principal(sessions: async_sessionmaker[AsyncSession]) -> Principal:
    async with sessions() as session:
        org = Org(name=f"bench-{secrets.token_hex(4)}")  # a database may hold earlier runs
        session.add(org)
        await session.commit()
        return Principal("bench", "bench", org.id, ROLE_ADMIN)


async def run(url: str, scale: float, rounds: int) -> None:
    await upgrade(url)
    engine = make_engine(url)
    sessions, box = make_sessionmaker(engine), SecretBox("bench-deployment-key")
    bench = Bench(sessions, box, await _principal(sessions))
    await bench.seed(workers=(CLUSTERS + 1) * rounds)
    env = SiteEnv(box, machines=SimulatedMachines(scale))
    one: list[float] = []
    ten: list[float] = []
    async with OperationWorker(sessions, "bench", register_cluster_kinds(Registry()), env, CONFIG) as worker:
        for _ in range(rounds):  # alternate, so that a warming cache or a noisy neighbour hits both alike
            one.append(await bench.timed(worker, bench.clusters[:1]))
            ten.append(await bench.timed(worker, bench.clusters))
    await engine.dispose()
    _print(url, scale, one, ten)


def _print(url: str, scale: float, one: list[float], ten: list[float]) -> None:
    # kubeadm_join fetches a fresh join command from the master first.
    played = {s.name: PLAYED_SECONDS.get(s.name, 0.0) for s in cluster_kinds()["join_worker"]}
    played["kubeadm_join"] += PLAYED_SECONDS["fetch_credentials"]
    steps = {name: round(seconds * scale, 3) for name, seconds in played.items()}
    print(f"database: {url.split('://')[0]}; join steps (s): {steps}; sum {sum(steps.values()):.2f} s")
    print(f"one worker:                   {' '.join(f'{t:.2f}' for t in one)}  median {statistics.median(one):.2f} s")
    print(f"ten workers, ten clusters:    {' '.join(f'{t:.2f}' for t in ten)}  median {statistics.median(ten):.2f} s")
    ratio = statistics.median(ten) / statistics.median(one)
    print(f"ratio ten/one: {ratio:.2f}  (target <= 1.30: {'met' if ratio <= 1.3 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=0.05, help="step durations × this (1.0 = realistic)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(run(url, args.scale, args.rounds))


if __name__ == "__main__":
    main()
