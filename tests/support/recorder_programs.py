"""What a recording substitute runs: `main` records the call, applies faults and hangs, and dispatches to
the simulated program (OS programs here, Kubernetes ones in `recorder_sim`).

A test host runs it with the system's python3 -I -S (see `_BOOT` in recorders.py): only the standard
library is available, and `tests/support` is sys.path[0], so sibling modules are imported by their own name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path

# Only ever run by a substitute, where tests/support is sys.path[0] (never imported as tests.support.*).
from recorder_sim import (
    CONTAINERD_DEFAULT,
    DEVICE_PLUGIN,
    FLANNEL,
    KUBE_PACKAGES,
    PACKAGE_OF,
    SWAPS_HEADER,
    UNIT_PACKAGE,
    Sim,
    err,
    kubeadm,
    kubectl,
    kubelet,
    options,
    out,
)

# Every call of a simulated program starts a Python: only cheap imports at run time (no typing,
# dataclasses, secrets, socket); the modules are imported, not run, so that their bytecode is cached.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

HANG_LIMIT_SECONDS = 300.0


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
        if fault is not None and not fault.get("hang_after"):
            out(fault["output"])
            sys.stdout.flush()
            time.sleep(fault["sleep"])
            return int(fault["code"])
        code = _run(sim)
    if fault is not None:
        sys.stdout.flush()  # the caller sees what was done before the wait
        _hang(root)  # outside the lock: the machine's other programs are not held up
    return code


def _run(sim: Sim) -> int:
    package = PACKAGE_OF.get(sim.program)
    if package and not sim.installed(package) and not (package == "containerd" and sim.installed("containerd.io")):
        err(f"bash: {sim.program}: command not found")
        return 127
    code = HANDLERS[sim.program](sim)
    sim.save()
    return int(code)


def _hang(root: Path) -> None:
    """A `hang_after` fault: say so (Machine.hung), then wait for Machine.release (bounded, should a test die)."""
    with open(root / "hung", "a") as marker:
        marker.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + HANG_LIMIT_SECONDS
    while not (root / "released").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv))
