"""Worker provisioning benchmark: one worker plan, then N at once, against recording sshd test hosts.

    sudo .venv/bin/python bench/provision_join.py [--workers 10]

Needs root (real sshd hosts, see tests/support/sshhosts.py). The hosts' system programs are the recording
substitutes of tests/support/recorders.py, so this measures kboss's own cost per plan (SSH sessions,
sudo, piping the scripts, streaming and masking output) plus the simulated programs, not apt or kubeadm.
Reports wall time for one plan, for N concurrent plans, and the agent's own CPU time per plan.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from kboss.agent.provision import PlanResult, ProvisionParams, plan_worker, run_plan
from kboss.ssh import ConnectOptions, KnownHostsStore, SshTarget, connect
from tests.support.hostsystem import ensure_test_account
from tests.support.recorders import add_machine
from tests.support.sshhosts import SshLab, is_root

JOIN = "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:" + "7b" * 32


async def provision(target: SshTarget, store: KnownHostsStore) -> PlanResult:
    params = ProvisionParams.from_mapping({"join_command": JOIN, "gpu": "off"}, "worker", host=target.host)
    async with connect(target, known_hosts=store, options=ConnectOptions(connect_timeout=10)) as ssh:
        return await run_plan(ssh, plan_worker(params), params)


async def timed(targets: list[SshTarget], store: KnownHostsStore) -> tuple[float, float]:
    """(wall seconds, agent CPU seconds) for provisioning all targets at once."""
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = await asyncio.gather(*(provision(t, store) for t in targets))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} plans failed, first: {failed[0].error}")
    return time.perf_counter() - wall, time.process_time() - cpu


async def bench(lab: SshLab, workers: int) -> None:
    machines = [add_machine(lab, f"bench-{i}") for i in range(workers + 1)]
    targets = [host.target() for host, _ in machines]
    store = KnownHostsStore(lab.dir / "known_hosts")
    one_wall, one_cpu = await timed(targets[:1], store)
    all_wall, all_cpu = await timed(targets[1:], store)
    calls = sum(len(machine.calls()) for _, machine in machines[1:]) / workers
    print(f"1 worker plan: {one_wall:.2f}s wall, agent CPU {one_cpu:.2f}s")
    print(f"{workers} worker plans at once: {all_wall:.2f}s wall, agent CPU {all_cpu / workers:.2f}s per plan")
    print(f"simulated program calls per plan: {calls:.0f}; {len(plan_worker(ProvisionParams('worker')))} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    if not is_root():
        raise SystemExit("needs root: it starts sshd test hosts")
    with SshLab(ensure_test_account()) as lab:
        asyncio.run(bench(lab, args.workers))


if __name__ == "__main__":
    main()
