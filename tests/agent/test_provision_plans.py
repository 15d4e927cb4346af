"""Provisioning plans run over real SSH against test hosts whose system programs are recording substitutes.

What runs, in which order and with which arguments is read from the recorders' logs; the simulated
programs keep just enough state for each step's observations (see tests/support/recorders.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kboss.agent.provision import (
    OutputLine,
    PlanResult,
    ProvisionParams,
    parse_join_command,
    plan,
    run_plan,
    run_step,
    step_for,
    upload_bundle,
)
from kboss.agent.provision.runner import Event
from kboss.ssh import ConnectOptions, KnownHostsStore, connect
from tests.support.recorders import DEBIAN_12, Call, add_machine, changes, make_bundle, system_snapshot
from tests.support.sshhosts import SshHost, SshLab

pytestmark = pytest.mark.sshd

JOIN_TOKEN = "q7x2ab.k3m9p0r5t8w1y4z6"
CA_HASH = "sha256:" + "7b" * 32
JOIN = f"kubeadm join 192.168.0.3:6443 --token {JOIN_TOKEN} --discovery-token-ca-cert-hash {CA_HASH}"
APT = "apt-get -q -o DPkg::Lock::Timeout=600"
CRI = "unix:///run/containerd/containerd.sock"


@pytest.fixture(scope="module", autouse=True)
def real_system_untouched(ssh_lab: SshLab) -> Iterator[None]:
    before = system_snapshot()
    yield
    assert changes(before, system_snapshot()) == [], "a simulated machine changed this machine's real files"


def is_observation(call: Call) -> bool:
    """Calls that only look: the order of what changes things is what the tests compare."""
    argv, program = call.argv, call.program
    return (
        program in ("dpkg-query", "lspci", "nvidia-smi")
        or (program == "systemctl" and argv[0].startswith("is-"))
        or (program == "sysctl" and "-n" in argv)
        or (program == "ctr" and "ls" in argv)
        or (program == "kubectl" and ("get" in argv or "wait" in argv))
        or (program == "kubeadm" and (argv[:1] == ["version"] or argv[:3] == ["config", "images", "list"]))
        or (program == "apt-mark" and argv == ["showhold"])
        or (program == "containerd" and argv == ["config", "default"])
    )


def actions(calls: list[Call]) -> list[str]:
    return [str(call) for call in calls if not is_observation(call)]


async def provision(
    host: SshHost,
    known_hosts: KnownHostsStore,
    options: ConnectOptions,
    events: list[Event] | None = None,
    role: str = "master",
    **params: Any,
) -> PlanResult:
    target = host.target()
    provision = ProvisionParams.from_mapping(params, role, host=target.host, need_join=role == "worker")  # type: ignore[arg-type]
    async with connect(target, known_hosts=known_hosts, options=options) as ssh:
        return await run_plan(ssh, plan(provision), provision, events.append if events is not None else None)


def statuses(outcome: PlanResult) -> dict[str, str]:
    return {r.name: r.status for r in outcome.results}


def everything_shown(outcome: PlanResult, events: list[Event], caplog: pytest.LogCaptureFixture) -> str:
    """All text a caller, a log or an error could show."""
    lines = [e.line for e in events if isinstance(e, OutputLine)]
    texts = [r.output + (r.error or "") + repr(r) for r in outcome.results]
    return "\n".join([*lines, *texts, caplog.text])


def master_actions(host: SshHost) -> list[str]:
    return [
        "swapoff -a",
        "modprobe overlay",
        "modprobe br_netfilter",
        "sysctl --system",
        f"{APT} update",
        f"{APT} install -y containerd",
        "systemctl restart containerd",
        "curl -fsSL --retry 3 https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key",
        "gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg",
        f"{APT} update",
        f"{APT} install -y kubelet kubeadm kubectl",
        "apt-mark hold kubelet",
        "apt-mark hold kubeadm",
        "apt-mark hold kubectl",
        f"kubeadm config images pull --kubernetes-version v1.30.4 --cri-socket {CRI}",
        "kubeadm init --pod-network-cidr=10.244.0.0/16 --kubernetes-version=v1.30.4 "
        f"--node-name={host.hostname} --cri-socket={CRI} --apiserver-advertise-address={host.address}",
        "curl -fsSL --retry 3 https://github.com/flannel-io/flannel/releases/download/v0.25.5/kube-flannel.yml",
        "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -",
        "kubeadm token create --print-join-command --ttl 24h0m0s",
    ]


async def test_master_plan_runs_in_order_and_a_second_run_changes_nothing(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kboss")
    host, machine = add_machine(ssh_lab, "master")
    events: list[Event] = []
    try:
        first = await provision(host, known_hosts, fast, events)
        first_calls = machine.calls()
        second = await provision(host, known_hosts, fast, events)
    finally:
        host.close()
    assert first.ok, first.error
    assert statuses(first) == {
        **dict.fromkeys(["preflight", "container_runtime", "kubernetes_packages", "images"], "changed"),
        "gpu_runtime": "skipped",
        "kubeadm_init": "changed",
        "network_plugin": "changed",
        "gpu_device_plugin": "skipped",
        "wait_ready": "unchanged",
        "fetch_credentials": "unchanged",
    }
    assert first.results[4].reason == "no NVIDIA GPU"
    assert actions(first_calls) == master_actions(host)
    # The second run observes and does nothing but issue a fresh join token.
    assert second.ok and set(statuses(second).values()) == {"unchanged", "skipped"}
    assert actions(machine.calls()[len(first_calls) :]) == ["kubeadm token create --print-join-command --ttl 24h0m0s"]
    # Credentials come back in the result fields only.
    join = parse_join_command(first.secrets["join_command"])
    assert join.endpoint == f"{host.address}:6443" and join.token in machine.state()["tokens"]
    client_key = machine.state()["client_key_data"]
    assert client_key in first.secrets["kubeconfig"]
    shown = everything_shown(first, events, caplog) + everything_shown(second, [], caplog)
    for token in machine.state()["tokens"]:  # kubeadm init printed one; token create made the others
        assert token not in shown
    assert client_key not in shown and "--token ******" in shown
    # The files the steps wrote, on the simulated machine.
    assert machine.path("/etc/modules-load.d/k8s.conf").read_text() == "overlay\nbr_netfilter\n"
    assert "net.ipv4.ip_forward = 1" in machine.path("/etc/sysctl.d/k8s.conf").read_text()
    assert "#kboss-swapoff# /swap.img none swap sw 0 0" in machine.path("/etc/fstab").read_text()
    config = machine.path("/etc/containerd/config.toml").read_text()
    assert "SystemdCgroup = true" in config and 'sandbox_image = "registry.k8s.io/pause:3.9"' in config


async def test_a_failing_step_stops_the_plan_and_a_rerun_resumes(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    host, machine = add_machine(ssh_lab, "failing")
    machine.fail("kubeadm", "init", output="[ERROR Port-6443]: Port 6443 is in use")
    try:
        failed = await provision(host, known_hosts, fast)
        calls_before_retry = len(machine.calls())
        machine.clear_faults()
        resumed = await provision(host, known_hosts, fast)
    finally:
        host.close()
    assert not failed.ok and failed.failed is not None and failed.failed.name == "kubeadm_init"
    assert [r.name for r in failed.results][-1] == "kubeadm_init"  # nothing after it ran
    assert "退出码 1" in (failed.error or "") and "[ERROR Port-6443]: Port 6443 is in use" in (failed.error or "")
    assert not [c for c in machine.calls()[:calls_before_retry] if c.program == "kubectl" and "apply" in c.argv]
    assert resumed.ok
    assert statuses(resumed)["container_runtime"] == "unchanged" and statuses(resumed)["kubeadm_init"] == "changed"
    assert [a for a in actions(machine.calls()[calls_before_retry:]) if "install" in a] == []


async def test_worker_joins_with_the_parsed_command_and_the_token_stays_secret(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kboss")
    host, machine = add_machine(ssh_lab, "worker")
    events: list[Event] = []
    try:
        first = await provision(host, known_hosts, fast, events, role="worker", join_command=JOIN, gpu="off")
        count = len(machine.calls())
        again = await provision(host, known_hosts, fast, events, role="worker", join_command=JOIN, gpu="off")
    finally:
        host.close()
    assert first.ok, first.error
    assert list(statuses(first)) == ["preflight", "container_runtime", "kubernetes_packages", "images", "kubeadm_join"]
    assert actions(machine.calls()[:count])[-3:] == [
        "ctr -n k8s.io images pull registry.k8s.io/kube-proxy:v1.30.4",
        "ctr -n k8s.io images pull registry.k8s.io/pause:3.9",
        f"kubeadm join 192.168.0.3:6443 --token {JOIN_TOKEN} --discovery-token-ca-cert-hash {CA_HASH} "
        f"--node-name {host.hostname} --cri-socket {CRI}",
    ]
    assert [c.program for c in machine.calls() if JOIN_TOKEN in " ".join(c.argv)] == ["kubeadm"]
    assert JOIN_TOKEN not in everything_shown(first, events, caplog)
    assert again.ok and set(statuses(again).values()) == {"unchanged"} and actions(machine.calls()[count:]) == []


async def test_gpu_worker_gets_the_nvidia_runtime(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    host, machine = add_machine(ssh_lab, "gpu-worker", gpu=True)
    try:
        outcome = await provision(host, known_hosts, fast, role="worker", join_command=JOIN)
    finally:
        host.close()
    assert outcome.ok, outcome.error
    assert statuses(outcome)["gpu_runtime"] == "changed"
    done = actions(machine.calls())
    gpu_part = done[done.index("curl -fsSL --retry 3 https://nvidia.github.io/libnvidia-container/gpgkey") :]
    assert gpu_part == [
        "curl -fsSL --retry 3 https://nvidia.github.io/libnvidia-container/gpgkey",
        "gpg --batch --yes --dearmor -o /etc/apt/keyrings/nvidia-container-toolkit-keyring.gpg",
        f"{APT} update",
        f"{APT} install -y nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=containerd --set-as-default",
        "systemctl restart containerd",
        f"kubeadm join 192.168.0.3:6443 --token {JOIN_TOKEN} --discovery-token-ca-cert-hash {CA_HASH} "
        f"--node-name {host.hostname} --cri-socket {CRI}",
    ]
    sources = machine.path("/etc/apt/sources.list.d/nvidia-container-toolkit.list").read_text()
    assert sources == (
        "deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit-keyring.gpg] "
        "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
    )
    assert 'default_runtime_name = "nvidia"' in machine.path("/etc/containerd/config.toml").read_text()


async def test_offline_gpu_master_from_an_uploaded_bundle(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle")
    remote = "/var/lib/kboss/bundle"
    host, machine = add_machine(ssh_lab, "offline", gpu=True)
    try:
        async with connect(host.target(), known_hosts=known_hosts, options=fast) as ssh:
            uploaded = await upload_bundle(ssh, bundle, remote)
            again = await upload_bundle(ssh, bundle, remote)
        outcome = await provision(host, known_hosts, fast, install_mode="offline", bundle=remote)
    finally:
        host.close()
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert sorted(uploaded.uploaded) == files and again.uploaded == [] and sorted(again.unchanged) == files
    assert machine.path(f"{remote}/debs/kubernetes/kubeadm_1.30.4-1.1_amd64.deb").is_file()
    assert outcome.ok, outcome.error
    assert statuses(outcome)["gpu_runtime"] == "changed" and statuses(outcome)["gpu_device_plugin"] == "changed"
    programs = {call.program for call in machine.calls()}
    assert not programs & {"apt-get", "curl", "gpg"}
    dpkg = [c.argv for c in machine.calls("dpkg")]
    assert [argv[0] for argv in dpkg] == ["-i", "-i", "-i"]
    groups = [{Path(p).parent.as_posix() for p in argv[1:]} for argv in dpkg]
    assert groups == [{f"{remote}/debs/containerd"}, {f"{remote}/debs/kubernetes"}, {f"{remote}/debs/nvidia"}]
    imports = [c.argv for c in machine.calls("ctr") if "import" in c.argv]
    assert imports == [
        ["-n", "k8s.io", "images", "import", f"{remote}/images/{name}"] for name in ("flannel.tar", "kubernetes.tar")
    ]
    assert {"kube-flannel/daemonset/kube-flannel-ds", "kube-system/daemonset/nvidia-device-plugin-daemonset"} <= set(
        machine.state()["objects"]
    )


async def test_unsupported_os_is_refused_unless_allowed(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    host, machine = add_machine(ssh_lab, "debian", os_release=DEBIAN_12)
    step = step_for("preflight", "master")
    try:
        async with connect(host.target(), known_hosts=known_hosts, options=fast) as ssh:
            refused = await run_step(ssh, step, ProvisionParams.from_mapping({}, "master"))
            refused_calls = machine.calls()
            allowed = await run_step(ssh, step, ProvisionParams.from_mapping({"allow_unsupported_os": "1"}, "master"))
    finally:
        host.close()
    assert refused.status == "failed" and refused_calls == []
    assert "unsupported OS: debian 12" in (refused.error or "") and "allow_unsupported_os" in (refused.error or "")
    assert allowed.status == "changed" and "WARNING: unsupported OS debian 12" in allowed.output


async def test_a_connection_lost_during_a_step_fails_it_with_the_output_so_far(
    ssh_lab: SshLab, known_hosts: KnownHostsStore, fast: ConnectOptions
) -> None:
    host, machine = add_machine(ssh_lab, "dropped")
    machine.fail("sysctl", "--system", code=0, sleep=30)
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line == "kboss: wrote /etc/sysctl.d/k8s.conf":  # next: sysctl --system, which hangs
            host.drop_connections()

    try:
        async with connect(host.target(), known_hosts=known_hosts, options=fast) as ssh:
            params = ProvisionParams.from_mapping({}, "master")
            result = await run_step(ssh, step_for("preflight", "master"), params, on_line)
    finally:
        host.close()
    assert result.status == "failed" and result.seconds < 20
    assert "SSH 连接在执行命令时中断" in (result.error or "") and "kboss: OS: Ubuntu 22.04" in (result.error or "")
    assert "kboss: OS: Ubuntu 22.04" in lines
