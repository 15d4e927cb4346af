"""Recording substitutes: a simulated Ubuntu machine behind a real sshd test host, for provisioning tests.

Nothing here can install Kubernetes. Instead every program provisioning changes the system with
(`apt-get`, `dpkg`, `systemctl`, `kubeadm`, `kubectl`, `modprobe`, `sysctl`, `ctr`, `curl`, ...) is
replaced, inside one test host only (see `Substitute` in sshhosts.py), by `recorder_programs`.
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

    machine.hang_after("kubeadm", "init")  # the next `kubeadm init` acts, then waits for...
    machine.hung(); machine.release()        # ...the test to see it waiting and let it go on

This module is the test side. The substitutes themselves are `recorder_programs` (what a test host runs,
with the system's python3 -I -S: standard library only) and `recorder_sim` (the machine's state and its
Kubernetes programs; also the data make_bundle shares with them).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.recorder_sim import DEVICE_PLUGIN, FLANNEL, SWAPS_HEADER, kubeadm_images

if TYPE_CHECKING:
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
SWAPS_ON = SWAPS_HEADER + "/swap.img                               file\t\t4194300\t\t0\t\t-2\n"


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


_BOOT = "'import sys; sys.path.insert(0, sys.argv.pop(1)); import recorder_programs as p; sys.exit(p.main(sys.argv))'"


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
        self._add_fault({"program": program, "words": list(words), "code": code, "output": output, "sleep": sleep})

    def hang_after(self, program: str, *words: str) -> None:
        """Calls of `program` whose argv contains `words` act as usual (effect recorded, output printed), then
        wait until `release()`: a side effect done whose caller has not heard of it yet. Until `clear_faults`."""
        self._add_fault({"program": program, "words": list(words), "hang_after": True})

    def hung(self) -> int:
        """How many calls have reached a `hang_after` wait (released or not)."""
        marker = self.root / "hung"
        return len(marker.read_text().splitlines()) if marker.exists() else 0

    def release(self) -> None:
        """Let every waiting `hang_after` call end, and later ones pass without waiting."""
        (self.root / "released").touch()

    def _add_fault(self, fault: dict[str, Any]) -> None:
        faults = json.loads((self.root / "faults.json").read_text())
        (self.root / "faults.json").write_text(json.dumps([*faults, fault]))

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
    (directory / "images" / "kubernetes.tar").write_text("\n".join(kubeadm_images(f"v{version}", "")) + "\n")
    (directory / "images" / "flannel.tar").write_text("docker.io/flannel/flannel:v0.25.5\n")
    (directory / "manifests").mkdir(exist_ok=True)
    (directory / "manifests" / "kube-flannel.yaml").write_text(FLANNEL)
    (directory / "manifests" / "nvidia-device-plugin.yaml").write_text(DEVICE_PLUGIN)
    return directory
