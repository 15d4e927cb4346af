"""The agent backend end to end over real HTTP: platform (compat endpoints, operation worker) → a real site agent
on loopback (uvicorn) → real OpenSSH test hosts whose system programs are recording substitutes
(tests/support/recorders.py), and the fake Kubernetes API for drain and node deletion.

The substitutes run no API server, so once the cluster is built the test points the cluster's stored kubeconfig
at the fake API server (seeded with the machines' nodes): what the platform sends the agent is unchanged.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kboss.agent.provision import routes as provision_routes
from kboss.app import create_site_app
from kboss.cli.demo import add_demo_center
from kboss.clusters.plan import register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.db.models import Cluster
from kboss.operations.steps import Registry
from kboss.settings import Settings
from kboss.sites import client as site_client
from kboss.sites.simulated.machines import SimulatedMachines
from tests.api.test_cluster_ops_kit import (
    CPCC,
    DELETE_CLUSTER,
    DELETE_WORKER,
    NEW_CLUSTER,
    NEW_WORKER,
    assert_idle,
    assert_member,
    cluster,
    create_params,
    device,
    running_worker,
)
from tests.api.test_compat_catalog import CENTER
from tests.kubefake import KubeFake
from tests.support.api import Api, User, running_api
from tests.support.recorders import Machine, add_machine
from tests.support.site import SITE_PASSWORD, SITE_USER, serve
from tests.support.sshhosts import SshHost, SshLab

pytestmark = pytest.mark.sshd
OPS = "/api/v1/operations"


def site_app(data_dir: Path) -> FastAPI:
    settings = Settings(
        data_dir=data_dir, site_user=SITE_USER, site_password=SITE_PASSWORD, ssh_connect_timeout=3,
        ssh_command_timeout=60,
    )  # fmt: skip
    app = create_site_app(settings)
    # Until kboss.agent.api includes the provisioning routes.
    if not any(getattr(r, "path", "").startswith(provision_routes.PROVISION) for r in app.routes):
        app.include_router(provision_routes.router)
    return app


@dataclass
class Host:
    ssh: SshHost
    machine: Machine
    device_id: str = ""
    node: str = ""

    def calls(self, *words: str) -> list[str]:
        """Recorded `kubeadm` calls whose argv starts with `words`."""
        return [str(c) for c in self.machine.calls("kubeadm") if c.argv[: len(words)] == list(words)]


@dataclass
class Site:
    api: Api
    admin: User
    center: str
    hosts: list[Host]
    agent: httpx.AsyncClient
    urls: list[str]


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The platform's real transport to the agent, remembering every URL it requested."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__()
        self.urls = urls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await super().handle_async_request(request)


@pytest.fixture
async def site(ssh_lab: SshLab, db_url: str, data_dir: Path, tmp_path: Path) -> AsyncIterator[Site]:
    tag = secrets.token_hex(3)
    hosts = [Host(*add_machine(ssh_lab, f"{role}-{tag}")) for role in ("master", "w1", "w2")]
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    auth = httpx.BasicAuth(SITE_USER, SITE_PASSWORD)
    async with (
        serve(site_app(agent_dir)) as agent_url,
        httpx.AsyncClient(base_url=agent_url, auth=auth, timeout=60) as agent,
        running_api(db_url, data_dir, worker_enabled=False) as api,
    ):
        admin = await api.user("alice", "acme")
        center = {**CENTER, "pcapi_url": agent_url, "api_user": SITE_USER, "api_pwd": SITE_PASSWORD}
        cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **center))["id"]
        for i, host in enumerate(hosts):
            host.device_id = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **_device(ssh_lab, host, cpcid, i)))[
                "id"
            ]
        urls: list[str] = []
        # A simulated center in the same org builds on fast simulated machines, with the same steps.
        machines = SimulatedMachines(0.001)
        env = SiteEnv(api.app.state.kboss.box, transport=lambda: RecordingTransport(urls), machines=machines)
        async with running_worker(api, register_cluster_kinds(Registry()), env, 120):
            yield Site(api, admin, cpcid, hosts, agent, urls)
    for host in hosts:
        host.ssh.close()


def _device(lab: SshLab, host: Host, cpcid: str, index: int) -> dict[str, str]:
    return {
        "cpcid": cpcid, "ip": host.ssh.address, "sshport": str(host.ssh.port), "name": f"machine-{index}",
        "devicetype": "0", "adminuser": lab.account.name, "adminpwd": lab.account.password, "node_status": "0",
        "role": "worker",
    }  # fmt: skip


async def _node_name(site: Site, lab: SshLab, host: Host) -> str:
    """What the agent's probe reports for the machine: the name its node got (its host name, lower-cased)."""
    form = {"host": host.ssh.address, "port": str(host.ssh.port), "user": lab.account.name}
    response = await site.agent.post("/pcapi/api/v1/native/probe", data={**form, "psssword": lab.account.password})
    return str(response.json()["data"]["hostname"]).lower()


async def _log(site: Site, op_id: str) -> str:
    return (await site.admin.http.get(f"{OPS}/{op_id}/log", headers=site.admin.headers)).text


async def test_build_join_remove_and_dismantle_through_the_site_agent(
    site: Site, ssh_lab: SshLab, fake: KubeFake, kubeconfig: str
) -> None:
    master, w1, w2 = site.hosts
    api, admin = site.api, site.admin
    built = await admin.call(NEW_CLUSTER, **create_params(site.center, master.device_id, gpu="off"))
    assert built["status"] is True, built
    cid = built["data"]["clusterid"]
    assert len(master.calls("init")) == 1 and built["msg"].startswith("操作成功!\n加入集群凭证: kubeadm join ")
    row = await cluster(api, cid)
    assert row is not None and (row.ready, row.controllerid) == (1, master.device_id)
    box = api.app.state.kboss.box
    assert box.open(row.clusterjoin) in built["msg"] and "client-key-data" in box.open(row.kubeconfig)
    assert_member(await device(api, master.device_id), cid, "master")
    log = await _log(site, built["data"]["operation_id"])
    assert "kubeadm_init@" in log and ssh_lab.account.password not in log and SITE_PASSWORD not in log

    for worker in (w1, w2):
        joined = await admin.call(NEW_WORKER, cpcid=site.center, clusterid=cid, worker_nodeid=worker.device_id)
        assert joined["status"] is True, joined
        assert_member(await device(api, worker.device_id), cid, "worker")
        assert len(worker.calls("join")) == 1 and not worker.calls("init")
        token = worker.calls("join")[0].split("--token ")[1].split()[0]
        assert token not in await _log(site, joined["data"]["operation_id"])
    assert len(master.calls("token", "create")) >= 3  # a fresh join command for each worker

    await _point_at_fake_api(site, cid, kubeconfig)
    for host in site.hosts:
        host.node = await _node_name(site, ssh_lab, host)
        if fake.get("Node", host.node) is None:
            fake.add_node(host.node, internal_ip=host.ssh.address)
    fake.add_pod("hand-made", node=w1.node)  # no controller: a drain refuses to evict it unless forced

    refused = await admin.call(DELETE_WORKER, cpcid=site.center, clusterid=cid, worker_nodeid=w1.device_id)
    assert refused["status"] is False and "排空节点" in refused["msg"], refused
    assert fake.get("Node", w1.node) is not None and not w1.calls("reset")
    assert_member(await device(api, w1.device_id), cid, "worker")

    forced = await admin.call(DELETE_WORKER, cpcid=site.center, clusterid=cid, worker_nodeid=w1.device_id, force="1")
    assert forced["status"] is True and forced["data"]["node_status"] == "0", forced
    assert fake.get("Node", w1.node) is None and fake.get("Pod", "hand-made", "default") is None
    assert len(w1.calls("reset")) == 1
    assert_idle(await device(api, w1.device_id))

    dismantled = await admin.call(DELETE_CLUSTER, id=cid)
    assert dismantled["status"] is True, dismantled
    assert await cluster(api, cid) is None
    for host in site.hosts:
        assert_idle(await device(api, host.device_id))
        assert len(host.calls("reset")) == 1, host.calls()
    assert len(master.calls("init")) == 1 and [len(w.calls("join")) for w in (w1, w2)] == [1, 1]
    # Credentials travel in bodies only: URLs end up in access logs.
    assert any("/provision/plan?" in url for url in site.urls)
    assert not [url for url in site.urls if ssh_lab.account.password in url or SITE_PASSWORD in url]


async def _point_at_fake_api(site: Site, cluster_id: str, kubeconfig: str) -> None:
    state = site.api.app.state.kboss
    async with state.sessions() as session:
        row = await session.get_one(Cluster, cluster_id)
        row.kubeconfig = state.box.seal(kubeconfig)
        await session.commit()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_failing_machine_fails_the_step_and_a_retry_resumes_there(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    master, *_ = site.hosts
    master.machine.fail("kubeadm", "init", output="[ERROR Port-6443]: Port 6443 is in use")
    failed = await site.admin.call(NEW_CLUSTER, **create_params(site.center, master.device_id, gpu="off"))
    assert failed["status"] is False and "kubeadm_init" in failed["msg"] and "6443" in failed["msg"], failed
    assert_idle(await device(site.api, master.device_id))  # a failed build frees its machine
    op_id, cid = failed["data"]["operation_id"], failed["data"]["clusterid"]
    swapoffs = len(master.machine.calls("swapoff"))

    master.machine.clear_faults()
    # The agent still provisions this machine (as after our crash mid-step): the step waits for it to finish.
    monkeypatch.setattr(site_client, "BUSY_RETRY_SECONDS", 0.2)
    busy = (master.ssh.address, master.ssh.port)
    provision_routes._busy.add(busy)
    try:
        retried = await site.admin.http.post(f"{OPS}/{op_id}/retry", headers=site.admin.headers)
        assert retried.status_code == 200, retried.text
        async with asyncio.timeout(60):
            while "正在执行另一个部署调用" not in await _log(site, op_id):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        provision_routes._busy.discard(busy)
    detail = await _until_ended(site, op_id)
    assert detail["state"] == "succeeded", detail["last_error"]
    assert_member(await device(site.api, master.device_id), cid, "master")
    attempts = {s["name"]: s["attempts"] for s in detail["steps"]}
    assert attempts["preflight"] == 1 and attempts["kubeadm_init"] == 2  # only what failed ran again
    assert len(master.machine.calls("swapoff")) == swapoffs and len(master.calls("init")) == 2


async def _until_ended(site: Site, op_id: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            detail: dict[str, Any] = (await site.admin.http.get(f"{OPS}/{op_id}", headers=site.admin.headers)).json()
            if detail["state"] not in ("pending", "running"):
                return detail
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_ssh_dropped_mid_step_fails_clearly_and_a_retry_finds_the_work_done(site: Site) -> None:
    master, *_ = site.hosts
    master.machine.hang_after("kubeadm", "init")  # acts, then the connection dies before it answers
    body = {"cpcid": site.center, "device_id": master.device_id, "name": "dropped", "cluster_type": "0", "gpu": "off"}
    started = await site.admin.http.post("/api/v1/clusters", json=body, headers=site.admin.headers)
    assert started.status_code == 202, started.text
    op_id = started.json()["id"]
    async with asyncio.timeout(60):
        while not master.machine.hung():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert master.ssh.drop_connections() > 0
    master.machine.release()
    failed = await _until_ended(site, op_id)
    assert failed["state"] == "failed" and "SSH 连接在执行命令时中断" in failed["last_error"], failed["last_error"]

    retried = await site.admin.http.post(f"{OPS}/{op_id}/retry", headers=site.admin.headers)
    assert retried.status_code == 200, retried.text
    detail = await _until_ended(site, op_id)
    assert detail["state"] == "succeeded", detail["last_error"]
    assert len(master.calls("init")) == 1  # the re-run saw the control plane up and did not init again
    steps = {s["name"]: s for s in detail["steps"]}
    assert (steps["kubeadm_init"]["attempts"], steps["kubeadm_init"]["state"]) == (2, "skipped"), steps
    assert_member(await device(site.api, master.device_id), detail["cluster_id"], "master")


async def _recorded_steps(site: Site, op_id: str) -> list[tuple[int, str, int]]:
    """(ordinal, name, timeout) of each step of an operation, as its API answers them. (Not the state: a machine
    may find a step's work done already, e.g. a node ready by the time it is asked, and skip it.)"""
    response = await site.admin.http.get(f"{OPS}/{op_id}", headers=site.admin.headers)
    return [(s["ordinal"], s["name"], s["timeout_seconds"]) for s in response.json()["steps"]]


async def test_a_simulated_build_records_the_same_steps_and_timeouts_as_an_agent_build(site: Site) -> None:
    master, worker, _ = site.hosts
    state = site.api.app.state.kboss
    async with state.sessions() as session:
        demo = await add_demo_center(session, state.box, "acme")
    recorded = []
    for center, (sim_master, sim_worker) in (
        (site.center, (master.device_id, worker.device_id)),
        (demo.center_id, demo.device_ids[:2]),
    ):
        built = await site.admin.call(NEW_CLUSTER, **create_params(center, sim_master, gpu="off"))
        assert built["status"] is True, built
        cid = built["data"]["clusterid"]
        joined = await site.admin.call(NEW_WORKER, cpcid=center, clusterid=cid, worker_nodeid=sim_worker)
        assert joined["status"] is True, joined
        ops = (built["data"]["operation_id"], joined["data"]["operation_id"])
        recorded.append([await _recorded_steps(site, op_id) for op_id in ops])
    agent, simulated = recorded
    assert agent == simulated
    names = [name for _, name, _ in agent[0]]
    assert names[:2] == ["plan", "preflight"] and names[-1] == "fetch_credentials" and "gpu_runtime" in names
    assert dict((name, timeout) for _, name, timeout in agent[0])["wait_ready"] == 60 + 3600 + 120
