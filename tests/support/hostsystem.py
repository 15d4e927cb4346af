"""The machine side of the SSH test hosts (needs root): the test account with its sudo rule, process trees, and
the network namespaces each host gets (see sshhosts.py for the hosts themselves)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TEST_USER = "kbosst"
STATE_DIR = Path("/var/lib/kboss-sshhosts")  # the test account's password survives between runs
RUN_DIR = Path("/run/kboss-sshhosts")  # one marker per network namespace: which process owns it
NETNS_PREFIX = "kbt-"
LAB_DIR_PREFIX = "kboss-sshhosts-"
SUDOERS_DIR = Path("/etc/sudoers.d")


def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def process_identity(pid: int) -> str | None:
    """pid plus start time, so a recycled pid is not mistaken for the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def owner_alive(marker: Path) -> bool:
    try:
        identity = marker.read_text().strip()
    except OSError:
        return False
    return bool(identity) and process_identity(int(identity.split()[0])) == identity


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class UserAccount:
    name: str
    password: str = ""


def ensure_sudo() -> None:
    """Install Debian's `sudo` if missing, so the password-sudo path is really exercised."""
    if shutil.which("sudo"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "sudo"]
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        subprocess.run(install, capture_output=True, env=env, check=True)


def ensure_test_account(name: str = TEST_USER, *, sudo_nopasswd: bool = False) -> UserAccount:
    """A non-root user with a random password and sudo rights that require that password
    (or, with `sudo_nopasswd`, that do not: the other common setup of cloud images)."""
    ensure_sudo()
    if run("id", "-u", name, check=False).returncode != 0:
        run("useradd", "--create-home", "--shell", "/bin/bash", name)
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    pw_file = STATE_DIR / f"{name}.password"
    if not pw_file.exists():
        pw_file.write_text(secrets.token_urlsafe(18))
        pw_file.chmod(0o600)
    password = pw_file.read_text().strip()
    # SHA512-crypt, not PAM's yescrypt default: yescrypt is deliberately slow, and with 20 hosts sharing
    # this machine's CPUs a fan-out would mostly measure password hashing.
    run("chpasswd", "-c", "SHA512", input=f"{name}:{password}\n")
    rule = f"{name} ALL=(ALL:ALL) {'NOPASSWD: ' if sudo_nopasswd else ''}ALL\n"
    sudoers = SUDOERS_DIR / f"kboss-sshhosts-{name}"
    if not sudoers.exists() or sudoers.read_text() != rule:
        sudoers.write_text(rule)
        sudoers.chmod(0o440)
    return UserAccount(name, password)


def netns_supported() -> bool:
    probe = f"{NETNS_PREFIX}probe-{os.getpid()}"
    if run("ip", "netns", "add", probe, check=False).returncode != 0:
        return False
    ok = run("ip", "netns", "exec", probe, "unshare", "--uts", "--mount", "true", check=False).returncode
    run("ip", "netns", "del", probe, check=False)
    return ok == 0


def addresses(index: int) -> tuple[str, str]:
    return f"10.231.{index}.1", f"10.231.{index}.2"


def destroy_netns(ns: str) -> None:
    pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
    kill_all(int(p) for p in pids)
    with contextlib.suppress(ValueError):
        index = int(ns.removeprefix(NETNS_PREFIX))
        run("ip", "route", "del", "unreachable", f"{addresses(index)[1]}/32", check=False)
        run("ip", "link", "del", f"{ns}-h", check=False)
    run("ip", "netns", "del", ns, check=False)


def cleanup_stale() -> None:
    """Remove what a crashed earlier run left: namespaces, veths, routes, sshd processes, temp dirs."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for marker in RUN_DIR.glob(NETNS_PREFIX + "*"):
        if not owner_alive(marker):
            destroy_netns(marker.name)
            marker.unlink(missing_ok=True)
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if ns.startswith(NETNS_PREFIX) and not (RUN_DIR / ns).exists():
            destroy_netns(ns)
    for lab_dir in Path(tempfile.gettempdir()).glob(LAB_DIR_PREFIX + "*"):
        if not owner_alive(lab_dir / "owner"):
            kill_sshd_using(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)


def kill_sshd_using(lab_dir: Path) -> None:
    needle = str(lab_dir).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if needle in cmdline.read_bytes():
                kill_all([int(cmdline.parent.name)])


def claim_netns() -> tuple[str, int]:
    """Reserve a free index: the marker is created first (O_EXCL), so concurrent runs never share one."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    me = process_identity(os.getpid()) or str(os.getpid())
    for index in range(1, 251):
        ns = f"{NETNS_PREFIX}{index}"
        try:
            fd = os.open(RUN_DIR / ns, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as marker:
            marker.write(me)
        destroy_netns(ns)  # whatever is left under this name is not ours
        return ns, index
    raise RuntimeError("no free test network namespace index (1..250)")


def create_netns(ns: str, index: int) -> str:
    """Namespace plus veth pair `<ns>-h` (here, .1) / `<ns>-g` (inside, .2) on 10.231.<index>.0/30."""
    outer, inner = addresses(index)
    outside = [f"netns add {ns}", f"link add {ns}-h type veth peer name {ns}-g", f"link set {ns}-g netns {ns}"]
    outside += [f"addr add {outer}/30 dev {ns}-h", f"link set {ns}-h up"]
    run("ip", "-batch", "-", input="\n".join(outside) + "\n")
    inside = [f"addr add {inner}/30 dev {ns}-g", f"link set {ns}-g up", "link set lo up"]
    run("ip", "-n", ns, "-batch", "-", input="\n".join(inside) + "\n")
    return inner
