"""Durable operations under faults, over the real agent path with the platform as a real separate process:
`kboss serve` subprocesses (the test's database, fixed worker ids) → a real site agent on loopback (in this
process) → real OpenSSH test hosts whose system programs are recording substitutes (tests/support/recorders.py).

- `kill -9` of the platform while `kubeadm init` has acted but not answered, then a restart with the same
  worker id: the operation resumes at once and succeeds, and every side effect happened exactly once.
- Two platform processes on one PostgreSQL database: each operation is claimed and run by exactly one.

Determinism: the substitute `kubeadm init` hangs after acting until the test releases it (`hang_after`), and
every wait polls a condition with a limit (`wait_until`); nothing depends on how long something takes.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.accounts import auth
from kboss.agent.provision import routes as provision_routes
from kboss.app import create_site_app
from kboss.common.context import ROLE_ADMIN
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import Cluster, Device
from kboss.settings import Settings
from tests.api.test_compat_catalog import CENTER
from tests.support.platform import PlatformProcess, PlatformProcesses, platform_env, wait_until
from tests.support.recorders import Call, Machine, add_machine
from tests.support.site import SITE_PASSWORD, SITE_USER, serve
from tests.support.sshhosts import SshHost, SshLab

pytestmark = pytest.mark.sshd
CPCC = "/dev/cpcc"
OPS = "/api/v1/operations"
PASSWORD = "pass-word-1"
BUSY = "正在执行另一个部署调用"  # the agent's refusal while it still runs the interrupted call on the machine
LIMIT = 60.0
INITIALIZED = "control-plane has initialized successfully"  # what the substitute kubeadm init prints
# Fast polling and heartbeats; a long stale time, so that nothing here resumes by staleness: the restarted
# process resumes because its worker id is stable, and two live processes never take each other's work.
WORKER = {"KBOSS_WORKER_POLL_SECONDS": "0.2", "KBOSS_WORKER_HEARTBEAT_SECONDS": "0.5"}
WORKER |= {"KBOSS_WORKER_STALE_SECONDS": "120", "KBOSS_COMPAT_WAIT_SECONDS": "0"}


@dataclass
class Lab:
    """The shared parts: the database (also read directly by the test), the site agent, the platform processes
    and the HTTP clients talking to them (closed by the fixture)."""

    db_url: str
    tmp: Path
    ssh: SshLab
    agent_url: str
    sessions: async_sessionmaker[AsyncSession]
    processes: PlatformProcesses
    clients: list[Client] = field(default_factory=list)

    def env(self, worker_id: str, **extra: str) -> dict[str, str]:
        return platform_env(self.db_url, self.tmp / "var", worker_id, **WORKER, **extra)

    def client(self, process: PlatformProcess, token: str) -> Client:
        self.clients.append(Client(process, token))
        return self.clients[-1]


@pytest.fixture
async def lab(ssh_lab: SshLab, db_url: str, tmp_path: Path) -> AsyncIterator[Lab]:
    settings = Settings(
        data_dir=tmp_path / "agent", site_user=SITE_USER, site_password=SITE_PASSWORD, ssh_connect_timeout=3,
        ssh_command_timeout=60,
    )  # fmt: skip
    engine = make_engine(db_url)
    try:
        async with (
            serve(create_site_app(settings)) as agent_url,
            PlatformProcesses(tmp_path / "platform") as processes,
        ):
            lab = Lab(db_url, tmp_path, ssh_lab, agent_url, make_sessionmaker(engine), processes)
            try:
                yield lab
            finally:
                await asyncio.gather(*(client.http.aclose() for client in lab.clients))
    finally:
        await engine.dispose()


@dataclass
class Machines:
    hosts: list[SshHost]
    machines: list[Machine]
    device_ids: list[str] = field(default_factory=list)


@pytest.fixture
def new_machines(ssh_lab: SshLab) -> Iterator[Callable[[int], Machines]]:
    """Simulated machines behind real sshd test hosts; devices are registered by the test. At the end every
    hang is released (nothing is left waiting on a failed test) and the hosts are stopped."""
    made: list[Machines] = []

    def make(count: int) -> Machines:
        tag = secrets.token_hex(3)
        pairs = [add_machine(ssh_lab, f"fault-{tag}-{i}") for i in range(count)]
        made.append(Machines([host for host, _ in pairs], [machine for _, machine in pairs]))
        return made[-1]

    yield make
    for machines in made:
        for host, machine in zip(machines.hosts, machines.machines, strict=True):
            machine.release()
            host.close()


class Client:
    """A logged-in admin talking to one platform process over HTTP; the token is valid on every process."""

    def __init__(self, process: PlatformProcess, token: str) -> None:
        self.token = token
        self.http = httpx.AsyncClient(
            base_url=process.url, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
        )

    async def compat(self, path: str, **form: str) -> Any:
        body = (await self.http.post(path, data=form)).json()
        assert body["status"] is True, body
        return body["data"]

    async def build(self, cpcid: str, device_id: str, name: str) -> str:
        body = {"cpcid": cpcid, "device_id": device_id, "name": name, "cluster_type": "0", "gpu": "off"}
        response = await self.http.post("/api/v1/clusters", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def detail(self, op_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{OPS}/{op_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def log(self, op_id: str) -> str:
        return (await self.http.get(f"{OPS}/{op_id}/log")).text

    async def ended(self, op_id: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            detail = await self.detail(op_id)
            return detail if detail["state"] not in ("pending", "running") else None

        return dict(await wait_until(check, LIMIT, f"operation {op_id} to end"))


async def login(lab: Lab, process: PlatformProcess, username: str) -> Client:
    async with lab.sessions() as session:
        await auth.create_user(session, username, PASSWORD, "acme", ROLE_ADMIN)
    async with httpx.AsyncClient(base_url=process.url, trust_env=False) as http:
        response = await http.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return lab.client(process, response.json()["access_token"])


async def register(lab: Lab, client: Client, machines: Machines) -> str:
    """The center (its agent: the one in this process) and the machines as devices, through compat endpoints."""
    center = {**CENTER, "pcapi_url": lab.agent_url, "api_user": SITE_USER, "api_pwd": SITE_PASSWORD}
    cpcid = str((await client.compat(f"{CPCC}/cpclist/add_cpclist.dspy", **center))["id"])
    for i, host in enumerate(machines.hosts):
        device = {
            "cpcid": cpcid, "ip": host.address, "sshport": str(host.port), "name": f"machine-{i}", "devicetype": "0",
            "adminuser": lab.ssh.account.name, "adminpwd": lab.ssh.account.password, "node_status": "0",
            "role": "worker",
        }  # fmt: skip
        machines.device_ids.append(str((await client.compat(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device))["id"]))
    return cpcid


# -- what the machines recorded -----------------------------------------------------------------------------

# Calls that change a machine (the rest only observe): each must appear once in a build, crash or not.
EFFECTS = {
    "apt-get": ("install",), "apt-mark": ("hold",), "dpkg": ("-i", "--install"), "swapoff": (), "modprobe": (),
    "sysctl": ("--system",), "systemctl": ("enable", "start", "restart"), "gpg": (), "ctr": ("import", "pull"),
    "kubeadm": ("init", "join", "reset", "pull", "create"), "kubectl": ("apply",),
}  # fmt: skip


def effects(machine: Machine) -> Counter[str]:
    def changes(call: Call) -> bool:
        words = EFFECTS.get(call.program)
        return words is not None and (not words or any(w in call.argv for w in words))

    return Counter(str(call) for call in machine.calls() if changes(call))


def assert_each_effect_once(machine: Machine) -> None:
    counts = effects(machine)
    repeated = {call: n for call, n in counts.items() if n > 1}
    assert counts and not repeated, repeated or machine.call_log()
    assert len([c for c in machine.calls("kubeadm") if c.argv[:1] == ["init"]]) == 1, machine.call_log()


async def cluster_row(lab: Lab, cluster_id: str) -> Cluster:
    async with lab.sessions() as session:
        return await session.get_one(Cluster, cluster_id)


async def device_row(lab: Lab, device_id: str) -> Device:
    async with lab.sessions() as session:
        return await session.get_one(Device, device_id)


async def assert_built(lab: Lab, detail: dict[str, Any], device_id: str) -> None:
    assert detail["state"] == "succeeded", (detail["last_error"], detail["steps"])
    cluster = await cluster_row(lab, detail["cluster_id"])
    assert (cluster.ready, cluster.controllerid) == (1, device_id)
    device = await device_row(lab, device_id)
    assert (device.node_status, device.clusterid, device.role) == (1, cluster.id, "master")


def claims(detail: dict[str, Any]) -> list[str]:
    """Who took the operation from pending to running (exactly one row when nobody ran it twice)."""
    return [h["actor"] for h in detail["history"] if (h["from_state"], h["to_state"]) == ("pending", "running")]


def steps(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in detail["steps"]}


# -- the tests ----------------------------------------------------------------------------------------------


async def test_kill_9_mid_step_then_a_restart_resumes_and_every_effect_happens_once(
    lab: Lab, new_machines: Callable[[int], Machines]
) -> None:
    machines = new_machines(1)
    host, master = machines.hosts[0], machines.machines[0]
    first = await lab.processes.start("first", lab.env("replica-1"))
    client = await login(lab, first, "alice")
    cpcid = await register(lab, client, machines)
    master.hang_after("kubeadm", "init")  # init done, its answer not yet back: the worst moment to die
    op_id = await client.build(cpcid, machines.device_ids[0], "kill-9")
    await wait_until(master.hung, LIMIT, "kubeadm init to act and hang")
    # Its output reached the platform's store while the step was in flight (flushed every 0.5 s).
    await wait_until(lambda: _logged(client, op_id, INITIALIZED), LIMIT, "the output of kubeadm init to be stored")
    before = await client.detail(op_id)
    assert before["claimed_by"] == "replica-1" and steps(before)["kubeadm_init"]["state"] == "running", before
    assert await first.kill() == -signal.SIGKILL

    client = lab.client(await lab.processes.start("second", lab.env("replica-1")), client.token)
    # Resumed at once (stale_seconds is 120): same worker id. The agent still runs the call whose caller died,
    # so the resumed step is refused as busy and waits; it can only run again once that call has ended.
    await wait_until(lambda: _logged(client, op_id, BUSY), LIMIT, "the resumed step to find the machine busy")
    assert (host.address, host.port) in provision_routes._busy
    master.release()
    detail = await client.ended(op_id)

    await assert_built(lab, detail, machines.device_ids[0])
    assert_each_effect_once(master)
    assert_resumed_once(detail, await client.log(op_id), machines.device_ids[0])


def assert_resumed_once(detail: dict[str, Any], log: str, device_id: str) -> None:
    """Only the interrupted step ran again, it found its effect done, and both runs are on record."""
    by_name = steps(detail)
    assert by_name["kubeadm_init"]["attempts"] == 2 and by_name["kubeadm_init"]["state"] == "skipped", by_name
    assert {s["attempts"] for name, s in by_name.items() if name != "kubeadm_init"} == {1}, by_name
    assert claims(detail) == ["replica-1"]
    reasons = [h["reason"] for h in detail["history"]]
    assert any("worker 重新启动" in r for r in reasons) and any("接手" in r for r in reasons), reasons
    assert "already initialised" in log, log
    runs = [f"kubeadm_init@{device_id}: 第 {n} 次执行 (worker replica-1)" for n in (1, 2)]
    assert all(run in log for run in runs) and INITIALIZED in log, log


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_platform_processes_on_one_postgres_never_run_an_operation_twice(
    lab: Lab, new_machines: Callable[[int], Machines]
) -> None:
    machines = new_machines(3)
    one = {"KBOSS_WORKER_CONCURRENCY": "1"}  # each process runs one operation at a time
    a = await lab.processes.start("a", lab.env("replica-a", **one))
    b = await lab.processes.start("b", lab.env("replica-b", **one))
    client_a = await login(lab, a, "alice")
    client_b = lab.client(b, client_a.token)
    cpcid = await register(lab, client_a, machines)
    for machine in machines.machines:
        machine.hang_after("kubeadm", "init")
    clients = [client_a, client_b, client_a]
    builds = (c.build(cpcid, d, f"pair-{i}") for i, (c, d) in enumerate(zip(clients, machines.device_ids, strict=True)))
    op_ids = await asyncio.gather(*builds)  # submitted at once, through both processes

    # Two builds hang in kubeadm init: with one slot per process, they are one per process.
    await wait_until(lambda: sum(m.hung() for m in machines.machines) == 2, LIMIT, "two builds to reach kubeadm init")
    during = [await client_a.detail(op_id) for op_id in op_ids]
    running = sorted(d["claimed_by"] for d in during if d["state"] == "running")
    assert running == ["replica-a", "replica-b"], [(d["state"], d["claimed_by"]) for d in during]
    assert [(d["state"], d["claimed_by"]) for d in during].count(("pending", None)) == 1, during
    for machine in machines.machines:
        machine.release()

    ended = [await client_b.ended(op_id) for op_id in op_ids]
    for detail, device_id, machine in zip(ended, machines.device_ids, machines.machines, strict=True):
        await assert_built(lab, detail, device_id)
        assert len(claims(detail)) == 1 and not [h for h in detail["history"] if "接手" in h["reason"]], detail
        assert {s["attempts"] for s in detail["steps"]} == {1}, detail["steps"]
        assert_each_effect_once(machine)
    assert {claims(d)[0] for d in ended} == {"replica-a", "replica-b"}


async def _logged(client: Client, op_id: str, text: str) -> bool:
    return text in await client.log(op_id)
