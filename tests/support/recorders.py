"""Recording substitutes: a simulated Ubuntu machine behind a real sshd test host, for provisioning tests.

Nothing here can install Kubernetes. Instead every program provisioning changes the system with
(`apt-get`, `dpkg`, `systemctl`, `kubeadm`, `kubectl`, `modprobe`, `sysctl`, `ctr`, `curl`, ...) is
replaced, inside one test host only (see `Substitute` in sshhosts.py), by this file run as a program.
It appends its argv as one JSON line to the machine's `calls.jsonl` and simulates the state change the
next observation needs: `apt-get install kubeadm` marks the package installed for `dpkg-query`,
`kubeadm init` writes /etc/kubernetes/admin.conf, `modprobe` creates /sys/module/<name>, and so on.
The simulated programs check what the real ones would (kubeadm init refuses with swap on or containerd
stopped; apt cannot find kubeadm before its repository was added), so a step in the wrong order fails.

Every directory and file the scripts write is a per-machine directory of this machine's filesystem,
bind-mounted over the real path in that host's private mount namespace: /etc/kubernetes, /etc/sysctl.d,
/etc/fstab, /proc/swaps, /sys/module, ... The real ones are never touched.

    machine = Machine(lab_dir / "m1", gpu=True)
    host = lab.add_host(substitutes=machine.substitutes())
    ... provision host ...
    machine.calls()                 # [Call("apt-get", ["-q", ..., "update"]), ...]
    machine.fail("kubeadm", "init") # the next `kubeadm init` exits 1

When run as a program (by the test host, with the system's python3 -I -S) only the standard library
is available: keep the imports at the top of this file to the standard library.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import pwd
import re
import sys
import time
from pathlib import Path

# Every call of a simulated program starts a Python: only cheap imports at run time (no typing,
# dataclasses, secrets, socket), and the module is imported, not run, so that its bytecode is cached.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from tests.support.sshhosts import SshHost, SshLab

# Where each simulated program is put (sudo's secure_path finds it there); nvidia-smi only on GPU machines.
_BIN = "apt-get apt-mark dpkg dpkg-query systemctl kubeadm kubectl kubelet containerd ctr nvidia-ctk curl gpg lspci"
PROGRAMS = {name: f"/usr/bin/{name}" for name in _BIN.split()} | {
    name: f"/usr/sbin/{name}" for name in ("modprobe", "sysctl", "swapoff")
}
GPU_PROGRAMS = {"nvidia-smi": "/usr/bin/nvidia-smi"}
PRIVATE_DIRS = (
    *("/etc/kubernetes", "/etc/containerd", "/etc/modules-load.d", "/etc/sysctl.d", "/etc/apt/keyrings"),
    *("/etc/apt/sources.list.d", "/etc/cni", "/var/lib/kubelet", "/var/lib/kboss", "/sys/module"),
)
UBUNTU_2204 = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
FSTAB = "# /etc/fstab of a simulated machine\nUUID=0a1b / ext4 errors=remount-ro 0 1\n/swap.img none swap sw 0 0\n"
SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
SWAPS_ON = SWAPS_HEADER + "/swap.img                               file\t\t4194300\t\t0\t\t-2\n"
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


class Call:
    """One recorded invocation: the program's name and its arguments."""

    def __init__(self, program: str, argv: list[str]) -> None:
        self.program, self.argv = program, argv

    def __repr__(self) -> str:
        return f"Call({self.program!r}, {self.argv!r})"

    def __str__(self) -> str:
        return " ".join([self.program, *self.argv])


# ---------------------------------------------------------------------------------------------------------
# Test side: one simulated machine's files on this machine, and what its programs recorded.
# ---------------------------------------------------------------------------------------------------------


_BOOT = "'import sys; sys.path.insert(0, sys.argv.pop(1)); import recorders; sys.exit(recorders.main(sys.argv))'"


class Machine:
    """The private state of one simulated machine, under `root` (world-traversable, like the lab dir)."""

    def __init__(self, root: Path, *, gpu: bool = False, os_release: str = UBUNTU_2204) -> None:
        self.root, self.gpu = root, gpu
        for directory in (root, root / "bin", root / "fs"):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)
        for target in PRIVATE_DIRS:
            self.path(target).mkdir(parents=True, exist_ok=True)
        self._files = {"/etc/fstab": FSTAB, "/proc/swaps": SWAPS_ON, "/usr/lib/os-release": os_release}
        for target, text in self._files.items():
            self.path(target).parent.mkdir(parents=True, exist_ok=True)
            self.path(target).write_text(text)
        (root / "calls.jsonl").write_text("")
        (root / "faults.json").write_text("[]")
        (root / "state.json").write_text(json.dumps({"gpu": gpu}))
        programs = {**PROGRAMS, **(GPU_PROGRAMS if gpu else {})}
        for name in programs:
            wrapper = root / "bin" / name
            here = Path(__file__).resolve().parent
            wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/python3 -I -S -c {_BOOT} {here} {root} {name} "$@"\n')
            wrapper.chmod(0o755)
        self._programs = programs

    def path(self, target: str) -> Path:
        """Where the simulated machine's `target` lives on this machine."""
        return self.root / "fs" / target.lstrip("/")

    def substitutes(self) -> list[tuple[Path, str]]:
        subs = [(self.root / "bin" / name, path) for name, path in self._programs.items()]
        subs += [(self.path(target), target) for target in PRIVATE_DIRS]
        subs += [(self.path(target), target) for target in self._files]
        return subs

    def calls(self, program: str | None = None) -> list[Call]:
        lines = (self.root / "calls.jsonl").read_text().splitlines()
        calls = [Call(*json.loads(line)) for line in lines if line.strip()]
        return [c for c in calls if program is None or c.program == program]

    def call_log(self) -> str:
        return (self.root / "calls.jsonl").read_text()

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "state.json").read_text()))

    def fail(
        self, program: str, *words: str, code: int = 1, output: str = "simulated failure", sleep: float = 0
    ) -> None:
        """Calls of `program` whose argv contains `words` (in order) print `output`, hang for `sleep`
        seconds, and exit `code`, until `clear_faults`."""
        faults = json.loads((self.root / "faults.json").read_text())
        faults.append({"program": program, "words": list(words), "code": code, "output": output, "sleep": sleep})
        (self.root / "faults.json").write_text(json.dumps(faults))

    def clear_faults(self) -> None:
        (self.root / "faults.json").write_text("[]")


def add_machine(lab: SshLab, name: str, *, gpu: bool = False, os_release: str = UBUNTU_2204) -> tuple[SshHost, Machine]:
    """A started test host whose system programs and system directories are those of a new Machine.

    The test account's home is private too: SFTP uploads stage files there.
    """
    machine = Machine(lab.dir / f"machine-{name}", gpu=gpu, os_release=os_release)
    account = pwd.getpwnam(lab.account.name)
    home = machine.path(account.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, account.pw_uid, account.pw_gid)
    substitutes = [*machine.substitutes(), (home, account.pw_dir)]
    return lab.add_host(substitutes=substitutes), machine


# Changed by the test harness itself (ensure_test_account, in this or another concurrent test session).
_HARNESS_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid")


def system_snapshot() -> dict[str, object]:
    """This machine's real state that simulated machines must never change (compare before and after)."""
    state: dict[str, object] = {}
    for directory, _, files in os.walk("/etc"):
        for name in files:
            path = os.path.join(directory, name)
            if path.startswith(_HARNESS_FILES) or path.startswith("/etc/sudoers.d/"):
                continue
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                state[path] = (info.st_size, info.st_mtime_ns)
    for path in (*PRIVATE_DIRS, "/usr/bin/kubeadm", "/usr/bin/ctr", "/usr/sbin/modprobe", "/root/.kube"):
        state[f"exists {path}"] = os.path.lexists(path) if path != "/sys/module" else sorted(os.listdir(path))
    for path in ("/etc/fstab", "/proc/swaps", "/usr/lib/os-release"):
        state[f"text {path}"] = Path(path).read_text()
    return state


def changes(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def make_bundle(directory: Path, version: str = "1.30.4", *, gpu: bool = True) -> Path:
    """A fake offline bundle: .deb files named as real ones, image "archives" listing their images."""
    groups = {
        "containerd": ["containerd_1.7.12-0ubuntu2~22.04.1_amd64.deb", "runc_1.1.12-0ubuntu2~22.04.1_amd64.deb"],
        "kubernetes": [f"{p}_{version}-1.1_amd64.deb" for p in ("kubelet", "kubeadm", "kubectl")]
        + ["kubernetes-cni_1.4.0-1.1_amd64.deb", "cri-tools_1.30.1-1.1_amd64.deb", "conntrack_1.4.6-2build2_amd64.deb"],
        "nvidia": ["nvidia-container-toolkit_1.16.2-1_amd64.deb", "libnvidia-container1_1.16.2-1_amd64.deb"]
        if gpu
        else [],
    }
    for group, names in groups.items():
        (directory / "debs" / group).mkdir(parents=True, exist_ok=True)
        for name in names:
            (directory / "debs" / group / name).write_bytes(b"!<arch>\nfake deb " + name.encode())
    (directory / "images").mkdir(exist_ok=True)
    (directory / "images" / "kubernetes.tar").write_text("\n".join(_kubeadm_images(f"v{version}", "")) + "\n")
    (directory / "images" / "flannel.tar").write_text("docker.io/flannel/flannel:v0.25.5\n")
    (directory / "manifests").mkdir(exist_ok=True)
    (directory / "manifests" / "kube-flannel.yaml").write_text(FLANNEL)
    (directory / "manifests" / "nvidia-device-plugin.yaml").write_text(DEVICE_PLUGIN)
    return directory


def _kubeadm_images(version: str, repository: str) -> list[str]:
    repo = repository or "registry.k8s.io"
    coredns = f"{repo}/coredns:v1.11.1" if repository else f"{repo}/coredns/coredns:v1.11.1"
    names = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    return [f"{repo}/{n}:{version}" for n in names] + [coredns, f"{repo}/pause:3.9", f"{repo}/etcd:3.5.12-0"]


# ---------------------------------------------------------------------------------------------------------
# Program side: runs inside the test host (usually as root, through sudo), standard library only.
# ---------------------------------------------------------------------------------------------------------


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


def apt_get(sim: Sim) -> int:
    words, _ = options(sim.argv, ("-o",))
    if words[:1] == ["update"]:
        sim.set_list("apt_lists", [p.name for p in Path("/etc/apt/sources.list.d").glob("*.list")])
        out("Hit:1 http://archive.ubuntu.com/ubuntu jammy InRelease\nReading package lists...")
        return 0
    if words[:1] != ["install"]:
        return 0
    for spec in words[1:]:
        name, _, pin = spec.partition("=")
        repo = {"nvidia-container-toolkit": "nvidia-container-toolkit.list"}.get(name)
        repo = "kubernetes.list" if name in KUBE_PACKAGES else repo
        if repo and repo not in sim.state.get("apt_lists", []):
            err(f"E: Unable to locate package {name}")
            return 100
        version = pin.rstrip("*").rstrip("-") or _repo_version(name)
        sim.install(name, version)
        out(f"Setting up {name} ({version}) ...")
    return 0


def _repo_version(name: str) -> str:
    if name not in KUBE_PACKAGES:
        return "1.7.12-0ubuntu2~22.04.1" if name == "containerd" else "1.16.2-1"
    listing = Path("/etc/apt/sources.list.d/kubernetes.list").read_text()
    return re.search(r"/v(1\.\d+)/deb", listing).group(1) + ".4"  # type: ignore[union-attr]


def dpkg(sim: Sim) -> int:
    words, opts = options(sim.argv)
    if "-i" not in opts and "--install" not in opts:
        return 0
    for path in words:
        if not Path(path).is_file():
            err(f"dpkg: error: cannot access archive '{path}': No such file or directory")
            return 2
        name, version = Path(path).name.split("_")[:2]
        sim.install(name, version.split("-")[0] if name in KUBE_PACKAGES else version)
        out(f"Setting up {name} ({version}) ...")
    return 0


def dpkg_query(sim: Sim) -> int:
    words, _ = options(sim.argv)
    name = words[-1]
    if not sim.installed(name):
        err(f"dpkg-query: no packages found matching {name}")
        return 1
    sys.stdout.write("installed")
    return 0


def apt_mark(sim: Sim) -> int:
    words, _ = options(sim.argv)
    held = sim.state.get("held", [])
    if words[:1] == ["hold"]:
        sim.set_list("held", held + words[1:])
        out("\n".join(f"{w} set on hold." for w in words[1:]))
    elif words[:1] == ["showhold"]:
        out("\n".join(held))
    return 0


def systemctl(sim: Sim) -> int:
    words, opts = options(sim.argv)
    verb, units = words[0], words[1:]
    services, quiet = sim.services(), "--quiet" in opts or "-q" in opts
    for unit in units:
        if not sim.installed(UNIT_PACKAGE.get(unit, unit)):
            err(f"Unit {unit}.service could not be found.")
            return 4 if verb.startswith("is-") else 5
        service = services.setdefault(unit, {"enabled": False, "active": False})
        if verb in ("is-active", "is-enabled"):
            yes = service["active" if verb == "is-active" else "enabled"]
            if not quiet:
                out(("active" if yes else "inactive") if verb == "is-active" else ("enabled" if yes else "disabled"))
            return 0 if yes else 3
        service["enabled"] = service["enabled"] or verb == "enable"
        service["active"] = verb in ("start", "restart") or (verb == "enable" and "--now" in opts) or service["active"]
    return 0


def containerd(sim: Sim) -> int:
    if sim.argv[:2] == ["config", "default"]:
        out(CONTAINERD_DEFAULT)
    else:
        out("containerd containerd.io 1.7.12")
    return 0


def ctr(sim: Sim) -> int:
    words, _ = options(sim.argv, ("-n", "--namespace"))
    images = sim.state.get("images", [])
    if words[:2] == ["images", "import"]:
        refs = [line.strip() for line in Path(words[2]).read_text().splitlines() if line.strip()]
        sim.set_list("images", images + refs)
        out("\n".join(f"unpacking {ref} (sha256:{'0' * 64})...done" for ref in refs))
    elif words[:2] == ["images", "pull"]:
        sim.set_list("images", [*images, words[2]])
    elif words[:2] in (["images", "ls"], ["images", "list"]):
        out("\n".join(images))
    return 0


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
        images = _kubeadm_images(
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


def modprobe(sim: Sim) -> int:
    for name in options(sim.argv)[0]:
        Path("/sys/module", name).mkdir(exist_ok=True)
    return 0


def sysctl(sim: Sim) -> int:
    words, opts = options(sim.argv)
    values = sim.state.setdefault("sysctl", {})
    if "--system" in opts:
        for conf in sorted(Path("/etc/sysctl.d").glob("*.conf")):
            out(f"* Applying {conf} ...")
            for line in conf.read_text().splitlines():
                key, eq, value = line.partition("=")
                if eq and not line.lstrip().startswith(("#", ";")):
                    values[key.strip()] = value.strip()
        return 0
    for word in words:
        key, eq, value = word.partition("=")
        if eq:
            values[key] = value
        elif key not in values and not key.startswith(("net.ipv4", "net.bridge")):
            err(f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory")
            return 255
        else:
            out(values.get(key, "0") if "-n" in opts else f"{key} = {values.get(key, '0')}")
    return 0


def swapoff(sim: Sim) -> int:
    Path("/proc/swaps").write_text(SWAPS_HEADER)
    return 0


def curl(sim: Sim) -> int:
    words, opts = options(sim.argv, ("-o", "--output", "--retry"))
    url = next((w for w in words if w.startswith("https://")), "")
    if url.endswith(("Release.key", "/gpgkey")):
        body = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQINBGMHoXcBEADfake\n-----END PGP PUBLIC KEY BLOCK-----\n"
    elif "kube-flannel" in url:
        body = FLANNEL
    elif "nvidia-device-plugin" in url:
        body = DEVICE_PLUGIN
    else:
        err("curl: (22) The requested URL returned error: 404")
        return 22
    target = opts.get("-o") or opts.get("--output")
    if target:
        Path(target).write_text(body)
    else:
        sys.stdout.write(body)
    return 0


def gpg(sim: Sim) -> int:
    _, opts = options(sim.argv, ("-o", "--output"))
    target = Path(opts.get("-o") or opts.get("--output") or "/dev/stdout")
    if target.exists() and "--yes" not in opts and str(target) != "/dev/stdout":
        err(f"gpg: signal Interrupt caught ... File '{target}' exists. Overwrite? (y/N)")
        return 2
    target.write_bytes(b"fake keyring of: " + sim.stdin)
    return 0


def lspci(sim: Sim) -> int:
    out("00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma] (rev 02)")
    out("00:02.0 VGA compatible controller: Cirrus Logic GD 5446")
    if sim.state.get("gpu"):
        out("3b:00.0 3D controller: NVIDIA Corporation GA100 [A100 PCIe 80GB] (rev a1)")
    return 0


def nvidia_smi(sim: Sim) -> int:
    out("GPU 0: NVIDIA A100-PCIE-80GB (UUID: GPU-5a6b7c8d-0000-1111-2222-333344445555)")
    return 0


def nvidia_ctk(sim: Sim) -> int:
    if sim.argv[:2] == ["runtime", "configure"]:
        config = Path("/etc/containerd/config.toml")
        text = config.read_text().replace('default_runtime_name = "runc"', 'default_runtime_name = "nvidia"')
        runtime = (
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
            '  runtime_type = "io.containerd.runc.v2"\n'
        )
        config.write_text(text + runtime)
        out(f"INFO Wrote updated config to {config}")
    return 0


HANDLERS = {
    "apt-get": apt_get,
    "apt-mark": apt_mark,
    "dpkg": dpkg,
    "dpkg-query": dpkg_query,
    "systemctl": systemctl,
    "kubeadm": kubeadm,
    "kubectl": kubectl,
    "kubelet": kubelet,
    "modprobe": modprobe,
    "sysctl": sysctl,
    "swapoff": swapoff,
    "containerd": containerd,
    "ctr": ctr,
    "nvidia-ctk": nvidia_ctk,
    "curl": curl,
    "gpg": gpg,
    "lspci": lspci,
    "nvidia-smi": nvidia_smi,
}


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    # `curl | gpg` runs two of us at once; the state file is read, changed and written under a lock.
    with open(root / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _fault(sim: Sim) -> dict[str, Any] | None:
    for fault in json.loads((sim.root / "faults.json").read_text()):
        words = iter(sim.argv)
        if fault["program"] == sim.program and all(word in words for word in fault["words"]):
            return dict(fault)
    return None


def main(argv: list[str]) -> int:
    root, program, args = Path(argv[1]), argv[2], argv[3:]
    # Read stdin before taking the lock: in `curl | gpg` gpg may start first and would wait for curl,
    # which would wait for the lock.
    reads_stdin = program == "gpg" or (program == "kubectl" and "apply" in args and "-" in args)
    stdin = sys.stdin.buffer.read() if reads_stdin else b""
    with _locked(root):
        with open(root / "calls.jsonl", "a") as log:
            log.write(json.dumps([program, args]) + "\n")
        sim = Sim(root, program, args, stdin)
        fault = _fault(sim)
        if fault is not None:
            out(fault["output"])
            sys.stdout.flush()
            time.sleep(fault["sleep"])
            return int(fault["code"])
        package = PACKAGE_OF.get(program)
        if package and not sim.installed(package) and not (package == "containerd" and sim.installed("containerd.io")):
            err(f"bash: {program}: command not found")
            return 127
        code = HANDLERS[program](sim)
        sim.save()
        return int(code)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv))
