"""A real worker process is killed with SIGKILL in the middle of a step; a fresh worker completes the operation
and the shared side-effect record shows every effect exactly once."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from kboss.operations.service import read_log
from kboss.sites.simulated.machines import FileEffects
from tests.operations.kit import KEY, SCALE, lab_on
from tests.operations.played import PlayedSite

# The doomed worker acts in `kubernetes_packages`, then hangs before verifying: the worst moment to die.
CHILD = """
import asyncio, sys
from pathlib import Path
from kboss.crypto import SecretBox
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.sites.simulated.machines import FileEffects
from tests.operations.played import PlayedSite
from kboss.operations.service import read_log
from kboss.operations.steps import OpEnv
from kboss.operations.worker import OperationWorker, WorkerConfig

async def main(url, effects, key, scale):
    site = PlayedSite(float(scale), FileEffects(Path(effects)))
    site.hang_after("kubernetes_packages")
    config = WorkerConfig(poll_seconds=0.02, heartbeat_seconds=0.05, log_flush_seconds=0.02)
    sessions = make_sessionmaker(make_engine(url))
    worker = OperationWorker(sessions, "doomed", site.registry(), OpEnv(SecretBox(key)), config)
    await worker.start()
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_kill_9_mid_step_then_a_fresh_worker_completes(db_url: str, tmp_path: Path) -> None:
    effects = FileEffects(tmp_path / "effects.jsonl")
    async with lab_on(db_url) as lab:
        op_id = await lab.start("create_cluster", [lab.devices[0]])
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, db_url, str(effects.path), KEY, str(SCALE)
        )
        try:
            await lab.wait_until(_acted(effects, "kubernetes_packages"), limit=20)
            assert (await lab.op(op_id)).claimed_by == "doomed"
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        assert child.returncode == -signal.SIGKILL

        site = PlayedSite(SCALE, effects)
        async with lab.worker(site, "survivor"):
            op = await lab.wait_state(op_id, "succeeded", limit=20)
        assert op.claimed_by is None and op.last_error == ""
        counts = Counter(e.key for e in effects.all())
        assert len(counts) == 7 and set(counts.values()) == {1}, counts
        steps = {s.name: s for s in await lab.steps(op_id)}
        assert steps["kubernetes_packages"].state == "skipped" and steps["kubernetes_packages"].attempts == 2
        assert steps["preflight"].attempts == 1
        async with lab.ctx() as ctx:
            log = await read_log(ctx, op_id)
        assert "worker doomed" in log and "worker survivor" in log and "already done" in log


def _acted(effects: FileEffects, step: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return any(e.step == step for e in effects.all())

    return check
