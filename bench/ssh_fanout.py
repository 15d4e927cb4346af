"""Fan-out benchmark: probe 1 real sshd test host, then 20 at once with run_many.

    sudo .venv/bin/python bench/ssh_fanout.py [--hosts 20] [--rounds 3]

Needs root (it starts real sshd hosts, see tests/support/sshhosts.py). Each probe is a full
connect + password login + host probe script + disconnect, as the site agent does it. Target:
all hosts together take at most 2x the time of one host.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from kboss.agent.probe import HostFacts, probe
from kboss.ssh import ConnectOptions, KnownHostsStore, SshTarget, connect, run_many
from tests.support.hostsystem import ensure_test_account
from tests.support.sshhosts import SshLab, is_root


async def probe_one(target: SshTarget, store: KnownHostsStore) -> HostFacts:
    async with connect(target, known_hosts=store, options=ConnectOptions(connect_timeout=10)) as client:
        return await probe(client)


async def timed_fanout(targets: list[SshTarget], store: KnownHostsStore) -> float:
    started = time.perf_counter()
    outcomes = await run_many(targets, lambda t: probe_one(t, store), concurrency=len(targets))
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} probes failed, first: {failed[0].error}")
    return elapsed


def machine_busy_seconds() -> float:
    """CPU time (all CPUs, all processes, kernel included) spent on this machine so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v * 1000:.0f}" for v in values)


async def bench(lab: SshLab, count: int, rounds: int) -> None:
    started = time.perf_counter()
    hosts = lab.add_hosts(count)
    targets = [h.target() for h in hosts]
    print(f"started {count} sshd hosts ({lab.mode} mode) in {time.perf_counter() - started:.2f}s")
    store = KnownHostsStore(lab.dir / "known_hosts")
    await timed_fanout(targets, store)  # warm-up: first contact records host keys, imports settle
    singles, alls = [], []
    client_cpu, host_cpu = time.process_time(), sum(h.cpu_seconds() for h in hosts)
    busy = machine_busy_seconds()
    for _ in range(rounds):
        singles.append(await timed_fanout(targets[:1], store))
        alls.append(await timed_fanout(targets, store))
    probes = rounds * (count + 1)
    client_cpu = (time.process_time() - client_cpu) / probes
    host_cpu = (sum(h.cpu_seconds() for h in hosts) - host_cpu) / probes
    busy = (machine_busy_seconds() - busy) / probes
    one, many = statistics.median(singles), statistics.median(alls)
    print(f"1 host:   {one * 1000:7.1f} ms  (median of {rounds}: {_ms(singles)})")
    print(f"{count} hosts: {many * 1000:7.1f} ms  (median of {rounds}: {_ms(alls)})")
    verdict = "OK" if many <= 2 * one else "ABOVE TARGET"
    print(f"ratio {count} hosts / 1 host = {many / one:.2f}  (target <= 2.00: {verdict})")
    # All simulated machines share this machine's CPUs, unlike real ones: show where the time goes.
    cpus = os.cpu_count() or 1
    print(
        f"CPU per probe: kboss process {client_cpu * 1000:.1f} ms, test host sshd+session {host_cpu * 1000:.1f} ms, "
        f"whole machine (kernel and any other load included) {busy * 1000:.1f} ms"
    )
    print(
        f"{count} probes x {busy * 1000:.0f} ms on {cpus} CPUs => >= {count * busy / cpus * 1000:.0f} ms of wall "
        f"time on this machine; with real machines only the kboss share ({count * client_cpu * 1000:.0f} ms) "
        "is serialised"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["auto", "loopback", "netns"], default="auto")
    args = parser.parse_args()
    if not is_root():
        raise SystemExit("needs root: it starts real sshd test hosts")
    with SshLab(ensure_test_account(), mode=args.mode) as lab:
        asyncio.run(bench(lab, args.hosts, args.rounds))


if __name__ == "__main__":
    main()
