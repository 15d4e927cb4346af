"""The simulated machine of the recording substitutes: its state (`Sim`), shared data, and its Kubernetes
programs (`kubeadm`, `kubectl`, `kubelet`). Program side: runs inside a test host, standard library only.

`recorder_programs` is what a substitute runs (it dispatches to these handlers and to the OS programs);
`recorders` is the test side (Machine, add_machine) and imports the data below for make_bundle.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
KUBE_PACKAGES = {"kubelet", "kubeadm", "kubectl"}
PACKAGE_OF = {"ctr": "containerd", "nvidia-ctk": "nvidia-container-toolkit"} | {
    p: p for p in (*KUBE_PACKAGES, "containerd")
}
UNIT_PACKAGE = {"containerd": "containerd", "kubelet": "kubelet"}
FLANNEL = """---
apiVersion: v1
kind: Namespace
metadata:
  name: kube-flannel
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
"""
DEVICE_PLUGIN = """apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nvidia-device-plugin-daemonset
  namespace: kube-system
"""
CONTAINERD_DEFAULT = """disabled_plugins = []
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"""


def kubeadm_images(version: str, repository: str) -> list[str]:
    repo = repository or "registry.k8s.io"
    coredns = f"{repo}/coredns:v1.11.1" if repository else f"{repo}/coredns/coredns:v1.11.1"
    names = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    return [f"{repo}/{n}:{version}" for n in names] + [coredns, f"{repo}/pause:3.9", f"{repo}/etcd:3.5.12-0"]


class Sim:
    def __init__(self, root: Path, program: str, argv: list[str], stdin: bytes) -> None:
        self.root, self.program, self.argv, self.stdin = root, program, argv, stdin
        self.state: dict[str, Any] = json.loads((root / "state.json").read_text())

    def save(self) -> None:
        (self.root / "state.json").write_text(json.dumps(self.state, indent=1, sort_keys=True))

    def packages(self) -> dict[str, str]:
        return self.state.setdefault("packages", {})  # type: ignore[no-any-return]

    def installed(self, package: str) -> bool:
        return package in self.packages()

    def services(self) -> dict[str, dict[str, bool]]:
        return self.state.setdefault("services", {})  # type: ignore[no-any-return]

    def install(self, package: str, version: str) -> None:
        self.packages()[package] = version
        if package in ("containerd", "containerd.io"):  # Debian's postinst enables and starts the unit
            self.services()["containerd"] = {"enabled": True, "active": True}
        if package == "kubelet":
            self.services()["kubelet"] = {"enabled": True, "active": False}

    def kube_version(self) -> str:
        return "v" + self.packages().get("kubeadm", "0.0.0")

    def set_list(self, key: str, values: list[str]) -> None:
        self.state[key] = sorted(set(values))


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def options(argv: list[str], with_value: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """Positional words and `--flag value` / `--flag=value` options (flags without value map to "")."""
    words, opts, queue = [], {}, list(argv)
    while queue:
        word = queue.pop(0)
        if word.startswith("-") and word != "-":
            flag, eq, value = word.partition("=")
            if not eq and flag in with_value and queue:
                value = queue.pop(0)
            opts[flag] = value
        else:
            words.append(word)
    return words, opts


KUBEADM_VALUE_FLAGS = (
    *("-o", "--kubernetes-version", "--image-repository", "--cri-socket", "--ttl", "--token", "--node-name"),
    *("--discovery-token-ca-cert-hash", "--certificate-key"),
)


def kubeadm(sim: Sim) -> int:
    words, opts = options(sim.argv, KUBEADM_VALUE_FLAGS)
    if words[:1] == ["version"]:
        out(sim.kube_version())
        return 0
    if words[:3] in (["config", "images", "list"], ["config", "images", "pull"]):
        images = kubeadm_images(
            opts.get("--kubernetes-version", sim.kube_version()), opts.get("--image-repository", "")
        )
        if words[2] == "pull":
            sim.set_list("images", sim.state.get("images", []) + images)
            images = [f"[config/images] Pulled {image}" for image in images]
        out("\n".join(images))
        return 0
    handler = {"init": kubeadm_init, "join": kubeadm_join, "token": kubeadm_token, "reset": kubeadm_reset}
    return handler[words[0]](sim, words, opts) if words[:1] and words[0] in handler else 0


def _preflight_errors(sim: Sim) -> list[str]:
    errors = []
    if not sim.services().get("containerd", {}).get("active"):
        errors.append("[ERROR CRI]: container runtime is not running")
    if Path("/proc/swaps").read_text().count("\n") > 1:
        errors.append("[ERROR Swap]: running with swap on is not supported. Please disable swap")
    for key in ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"):
        if sim.state.get("sysctl", {}).get(key) != "1":
            errors.append(f"[ERROR FileContent--proc-sys-{key.replace('.', '-')}]: contents are not set to 1")
    if Path("/etc/kubernetes/kubelet.conf").exists():
        errors.append("[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists")
    return errors


def _new_token(sim: Sim) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    letters = "".join(alphabet[byte % len(alphabet)] for byte in os.urandom(22))
    token = f"{letters[:6]}.{letters[6:]}"
    sim.set_list("tokens", [*sim.state.get("tokens", []), token])
    return token


def _join_line(sim: Sim, endpoint: str) -> str:
    return f"kubeadm join {endpoint} --token {_new_token(sim)} --discovery-token-ca-cert-hash sha256:{'ab' * 32} "


def kubeadm_init(sim: Sim, words: list[str], opts: dict[str, str]) -> int:
    errors = _preflight_errors(sim)
    if errors:
        out("[preflight] Running pre-flight checks\nerror execution phase preflight:\n" + "\n".join(errors))
        return 1
    address = opts.get("--apiserver-advertise-address", "127.0.0.1")
    key = base64.b64encode(os.urandom(48)).decode()
    sim.state["client_key_data"] = key
    admin = (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EK\n"
        f"    server: https://{address}:6443\n  name: kubernetes\nkind: Config\nusers:\n- name: kubernetes-admin\n"
        f"  user:\n    client-certificate-data: Q0VSVAo=\n    client-key-data: {key}\n"
    )
    for name, text in {
        "admin.conf": admin,
        "kubelet.conf": admin,
        "manifests/kube-apiserver.yaml": "kind: Pod\n",
    }.items():
        Path("/etc/kubernetes", name).parent.mkdir(parents=True, exist_ok=True)
        Path("/etc/kubernetes", name).write_text(text)
    sim.services()["kubelet"] = {"enabled": True, "active": True}
    sim.state["node"] = opts.get("--node-name", os.uname().nodename)
    out(f'[init] Using Kubernetes version: {opts.get("--kubernetes-version")}\n[certs] Generating "ca" certificate')
    out("Your Kubernetes control-plane has initialized successfully!\n\nThen you can join any number of worker nodes:")
    # As kubeadm prints it: the token in plain text, the command split over two lines.
    out(_join_line(sim, f"{address}:6443").rstrip().replace(" --discovery", " \\\n\t--discovery"))
    return 0


def kubeadm_join(sim: Sim, words: list[str], opts: dict[str, str]) -> int:
    errors = _preflight_errors(sim)
    if errors or len(words) != 2 or "--token" not in opts or "--discovery-token-ca-cert-hash" not in opts:
        out("error execution phase preflight:\n" + "\n".join(errors or ["missing arguments"]))
        return 1
    Path("/etc/kubernetes/kubelet.conf").write_text(f"server: https://{words[1]}\n")
    sim.services()["kubelet"] = {"enabled": True, "active": True}
    out("This node has joined the cluster:\n* Certificate signing request was sent to apiserver")
    return 0


def kubeadm_token(sim: Sim, words: list[str], opts: dict[str, str]) -> int:
    if not Path("/etc/kubernetes/admin.conf").exists():
        err("failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory")
        return 1
    server = re.search(r"server: https://(\S+)", Path("/etc/kubernetes/admin.conf").read_text())
    out(_join_line(sim, server.group(1) if server else "127.0.0.1:6443"))
    return 0


def kubeadm_reset(sim: Sim, words: list[str], opts: dict[str, str]) -> int:
    for root in (Path("/etc/kubernetes"), Path("/var/lib/kubelet")):
        for path in sorted(root.rglob("*"), reverse=True):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
    sim.services().get("kubelet", {})["active"] = False
    sim.state.pop("node", None)
    out("[reset] Deleted contents of the etcd data directory\n[reset] Stopping the kubelet service")
    return 0


def kubectl(sim: Sim) -> int:
    words, opts = options(sim.argv, ("--kubeconfig", "-n", "--namespace", "-f", "--for", "--timeout"))
    if not Path(opts.get("--kubeconfig", "/root/.kube/config")).exists():
        err("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
        return 1
    objects = sim.state.get("objects", [])
    if words[:1] == ["apply"]:
        source = opts.get("-f", "-")
        text = sim.stdin.decode() if source == "-" else Path(source).read_text()
        applied = [f"{ns or 'default'}/{kind.lower()}/{name}" for kind, name, ns in _manifest_objects(text)]
        sim.set_list("objects", objects + applied)
        if "kube-flannel/daemonset/kube-flannel-ds" in applied:  # what flannel's pod writes on this node
            Path("/etc/cni/net.d").mkdir(parents=True, exist_ok=True)
            Path("/etc/cni/net.d/10-flannel.conflist").write_text('{"name": "cbr0"}\n')
        out("\n".join(f"{o.split('/')[1]}/{o.split('/')[2]} created" for o in applied))
        return 0
    if words[:1] == ["get"] and "--raw" in opts:
        out("ok")
        return 0
    if words[:1] == ["get"] and len(words) == 2:
        kind, _, name = words[1].partition("/")
        if f"{opts.get('-n', 'default')}/{kind}/{name}" in objects:
            out(name)
            return 0
        err(f'Error from server (NotFound): {kind}s "{name}" not found')
        return 1
    if words[:1] == ["wait"]:
        return _wait_ready(sim, words[1].partition("/")[2])
    return 0


def _manifest_objects(text: str) -> list[tuple[str, str, str]]:
    found = []
    for doc in re.split(r"(?m)^---\s*$", text):
        kind = re.search(r"(?m)^kind:\s*(\S+)", doc)
        name = re.search(r"(?m)^  name:\s*(\S+)", doc)
        namespace = re.search(r"(?m)^  namespace:\s*(\S+)", doc)
        if kind and name:
            found.append((kind.group(1), name.group(1), namespace.group(1) if namespace else ""))
    return found


def _wait_ready(sim: Sim, node: str) -> int:
    # Ready once the node is registered and the pod network (flannel) runs.
    if sim.state.get("node") == node and "kube-flannel/daemonset/kube-flannel-ds" in sim.state.get("objects", []):
        out(f"node/{node} condition met")
        return 0
    err(f"error: timed out waiting for the condition on nodes/{node}")
    return 1


def kubelet(sim: Sim) -> int:
    out(f"Kubernetes {sim.kube_version()}")
    return 0
