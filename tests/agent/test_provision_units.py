"""Provisioning without machines: join command parsing, parameters, plans, masking, and shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kboss.agent.provision import ALL_STEPS, ProvisionParams, mask_secrets, parse_join_command, plan, step_for
from kboss.agent.provision.params import parse_role, remote_path
from kboss.agent.provision.steps import KUBEADM_JOIN, SECRET_VARIABLES, script_text
from kboss.errors import InvalidParameter

TOKEN = "nt80u6.gzpj9dxsrw79270c"
HASH = "sha256:7b33439b2a1b37a8d8938513bd45405f57c3255771c3b9b9b90af448d886b0c2"
JOIN = f"kubeadm join 192.168.0.3:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH} "
CERT_KEY = "f" * 64


def test_join_command_as_kubeadm_prints_it() -> None:
    join = parse_join_command(JOIN)
    assert (join.endpoint, join.token, join.ca_cert_hash) == ("192.168.0.3:6443", TOKEN, HASH)
    assert join.argv() == [
        "kubeadm",
        "join",
        "192.168.0.3:6443",
        "--token",
        TOKEN,
        "--discovery-token-ca-cert-hash",
        HASH,
    ]
    assert TOKEN not in repr(join)


def test_join_command_with_line_continuations_and_control_plane_flags() -> None:
    text = (
        f"kubeadm join [fd00::5]:6443 --token={TOKEN} \\\n\t--discovery-token-ca-cert-hash {HASH} \\\n"
        f"\t--control-plane --certificate-key {CERT_KEY} --cri-socket unix:///run/containerd/containerd.sock"
    )
    join = parse_join_command(text)
    assert join.endpoint == "[fd00::5]:6443" and join.control_plane and join.certificate_key == CERT_KEY
    assert join.argv()[-5:] == ["--control-plane", "--certificate-key", CERT_KEY, "--cri-socket", join.cri_socket]
    assert join.secrets() == [TOKEN, CERT_KEY]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (JOIN + "; rm -rf /", "不允许的字符"),
        (JOIN + "$(reboot)", "不允许的字符"),
        (JOIN + "`id`", "不允许的字符"),
        (JOIN.replace("kubeadm join", "'kubeadm' join"), "不允许的字符"),
        (JOIN + "| sh", "不允许的字符"),
        (JOIN + "--ignore-preflight-errors=all", "不支持的参数 --ignore-preflight-errors"),
        (JOIN + "--config /tmp/x", "不支持的参数 --config"),
        (JOIN.replace(TOKEN, "NT80U6.gzpj9dxsrw79270c"), "--token 格式不正确"),
        (JOIN.replace(HASH, "sha256:abc"), "--discovery-token-ca-cert-hash 格式不正确"),
        (f"kubeadm join 192.168.0.3:6443 --token {TOKEN}", "缺少 --discovery-token-ca-cert-hash"),
        (JOIN + "10.0.0.9:6443", "只有一个 API 地址"),
        (JOIN.replace("192.168.0.3:6443", "192.168.0.3"), "host:port"),
        (JOIN.replace("192.168.0.3:6443", "bad_host:6443"), "host:port"),
        (JOIN + f"--token {TOKEN}", "重复"),
        (JOIN + "--certificate-key", "缺少取值"),
        ("kubeadm init", "应以 kubeadm join 开头"),
        ("", "应以 kubeadm join 开头"),
    ],
)
def test_anything_but_a_join_command_is_refused(text: str, problem: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_join_command(text)
    assert caught.value.parameter == "join_command" and problem in caught.value.message
    assert TOKEN not in caught.value.message


def test_parameters_are_validated_and_named() -> None:
    cases = {
        "install_mode": {"install_mode": "sideways"},
        "bundle": {"install_mode": "offline"},
        "kubernetes_version": {"kubernetes_version": "latest"},
        "gpu": {"gpu": "maybe"},
        "image_repository": {"image_repository": "registry.example.com/$(id)"},
        "sandbox_image": {"sandbox_image": "pause;reboot"},
        "advertise_address": {"advertise_address": "kube.example.com"},
        "wait_timeout": {"wait_timeout": "9999"},
        "flannel_manifest_url": {"flannel_manifest_url": "http://example.com/x.yml"},
        "token_ttl": {"token_ttl": "1 day"},
    }
    for name, params in cases.items():
        with pytest.raises(InvalidParameter) as caught:
            ProvisionParams.from_mapping(params, "master")
        assert caught.value.parameter == name, params
    with pytest.raises(InvalidParameter) as caught:
        ProvisionParams.from_mapping({"install_mode": "offline", "bundle": "/opt/../etc"}, "master")
    assert caught.value.parameter == "bundle"
    assert remote_path("/opt/kboss/bundle/", "bundle") == "/opt/kboss/bundle"


def test_parameter_defaults_and_versions() -> None:
    params = ProvisionParams.from_mapping({}, "master", host="10.0.0.5")
    env = params.environment()
    assert env["KBOSS_K8S_MINOR"] == "v1.30" and env["KBOSS_K8S_PATCH"] == ""
    assert env["KBOSS_SANDBOX_IMAGE"] == "registry.k8s.io/pause:3.9" and env["KBOSS_POD_CIDR"] == "10.244.0.0/16"
    assert (env["KBOSS_ADVERTISE_ADDRESS"], env["KBOSS_ADVERTISE_STRICT"]) == ("10.0.0.5", "0")
    mirrored = ProvisionParams.from_mapping(
        {"kubernetes_version": "1.29.6", "image_repository": "registry.aliyuncs.com/google_containers"}, "master"
    )
    assert (mirrored.kubernetes_minor, mirrored.kubernetes_patch) == ("v1.29", "1.29.6")
    assert mirrored.sandbox_image == "registry.aliyuncs.com/google_containers/pause:3.9"
    assert ProvisionParams.from_mapping({}, "master", host="node7.example.com").advertise_address == ""


def test_plans_and_single_steps() -> None:
    master = ProvisionParams.from_mapping({}, "master")
    assert [s.name for s in plan(master)] == [
        "preflight", "container_runtime", "kubernetes_packages", "images", "gpu_runtime", "kubeadm_init",
        "network_plugin", "gpu_device_plugin", "wait_ready", "fetch_credentials",
    ]  # fmt: skip
    worker = ProvisionParams.from_mapping({"gpu": "off", "join_command": JOIN}, "worker")
    assert [s.name for s in plan(worker)] == [
        "preflight", "container_runtime", "kubernetes_packages", "images", "kubeadm_join",
    ]  # fmt: skip
    assert step_for("kubeadm_join", "worker") is KUBEADM_JOIN
    for name, role, parameter in [("kubeadm_join", "master", "role"), ("rm -rf", "master", "name")]:
        with pytest.raises(InvalidParameter) as caught:
            step_for(name, role)  # type: ignore[arg-type]
        assert caught.value.parameter == parameter
    assert parse_role({"role": "control-plane"}, "worker") == "master"
    with pytest.raises(InvalidParameter):
        parse_role({"role": "worker"}, "master", allowed=("master",))


def test_secrets_travel_on_stdin_never_on_the_command_line() -> None:
    params = ProvisionParams.from_mapping({"join_command": JOIN + f"--certificate-key {CERT_KEY}"}, "worker")
    command = KUBEADM_JOIN.command(params)
    stdin = KUBEADM_JOIN.stdin(params)
    assert not any(TOKEN in word or CERT_KEY in word for word in command)
    assert stdin.startswith(f"KBOSS_JOIN_CERT_KEY={CERT_KEY}\nKBOSS_JOIN_TOKEN={TOKEN}\n\n") or stdin.startswith(
        f"KBOSS_JOIN_TOKEN={TOKEN}\nKBOSS_JOIN_CERT_KEY={CERT_KEY}\n\n"
    )
    assert "KBOSS_JOIN_ENDPOINT=192.168.0.3:6443" in command
    assert set(KUBEADM_JOIN.reads) >= SECRET_VARIABLES


def test_secret_shapes_are_masked() -> None:
    text = (
        f"kubeadm join 10.0.0.1:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH}\n"
        f"Using certificate key:\n{CERT_KEY}\n    client-key-data: LS0tLS1CRUdJTi\nkboss-secret: kubeconfig YWJj"
    )
    masked = mask_secrets(text)
    assert TOKEN not in masked and CERT_KEY not in masked and "LS0tLS1CRUdJTi" not in masked and "YWJj" not in masked
    assert HASH in masked  # the CA hash is public and useful when debugging


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_every_script_passes_shellcheck(tmp_path: Path) -> None:
    files = []
    for name in ["common.sh", *(step.file_name for step in ALL_STEPS.values())]:
        files.append(tmp_path / name)
        files[-1].write_text(script_text(name))
    # Each file stands alone (steps use only functions of common.sh, no variables), so checking the files
    # covers what is sent; one text as sent is checked too. One process: shellcheck is slow to start.
    files.append(tmp_path / "sent-kubeadm_join.sh")
    files[-1].write_text(KUBEADM_JOIN.text())
    checked = subprocess.run(["shellcheck", "-s", "bash", *map(str, files)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
