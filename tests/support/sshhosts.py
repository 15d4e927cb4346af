"""Real OpenSSH test hosts, started by the test suite on this machine (needs root).

Each host is a real `/usr/sbin/sshd` with its own host key, config and log, running in its own UTS
and mount namespace (own hostname, private bind mounts) and — when network namespaces work — in its
own network namespace with its own address (10.231.<n>.2, port 22) behind a veth pair. Otherwise it
listens on 127.0.0.1 with a free port ("loopback" mode). Nothing here sends traffic anywhere but
loopback and those veth addresses.

    account = ensure_test_account()            # user `kbosst`, random password, sudo *with* password
    with SshLab(account) as lab:
        host = lab.add_host(substitutes=[Substitute(fake_kubeadm, "/usr/bin/kubeadm")])
        target = host.target()                 # kboss.ssh.SshTarget for kbosst with its password
        host.stop(); host.start()              # closed port, then back
        host.restart(new_host_key=True)        # same address, different host key
        host.drop_connections()                # kill every session's sshd process
        host.set_unreachable(True)             # netns mode: "no route to host"

Bind-mount substitutes
----------------------
`Substitute(source, target)` makes processes of that one sshd (the sessions, whatever they run) see the
file `source` (on this machine's filesystem) at the absolute path `target`. The real file at `target`
is untouched and other processes on the machine still see it. When `target` does not exist, or is a
symlink (e.g. /sbin/modprobe -> kmod on Debian), its directory is overlaid with a tmpfs-backed
overlayfs inside the host's private mount namespace only, the file is created there, and `source` is
bound onto it. `source` must be readable and executable by the session user (`write_executable`
does that); a recording script that wants to leave a trace should append to a file under a
world-writable directory it is given (e.g. via its own text). Substitutes are applied when the host
starts; change `host.substitutes` and `restart()` to change them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kboss.ssh import SshTarget
from tests.support.hostsystem import (
    LAB_DIR_PREFIX,
    RUN_DIR,
    UserAccount,
    claim_netns,
    cleanup_stale,
    create_netns,
    descendants,
    destroy_netns,
    kill_all,
    netns_supported,
    process_identity,
    run,
)

SSHD = "/usr/sbin/sshd"
Mode = Literal["auto", "loopback", "netns"]


def is_root() -> bool:
    return os.geteuid() == 0


def write_executable(path: Path, text: str) -> Path:
    """Write a script readable and executable by everyone (a substitute runs as the session user)."""
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Substitute:
    """Inside one test host, the file `source` appears at the absolute path `target`.

    When `source` is a directory, the directory is bind-mounted over the directory `target` (created
    inside a private overlay when it does not exist): everything that host's processes write there lands
    in `source`, on this machine's filesystem where a test can read it, and never in the real `target`.
    Do not nest substitutes inside a directory substitute's target.
    """

    source: Path
    target: str


def _nearest_dir(path: Path) -> Path:
    while not path.is_dir():
        path = path.parent
    return path


def _real_target(target: str) -> Path:
    parent = Path(os.path.realpath(Path(target).parent)) if Path(target).parent.exists() else None
    return (parent or Path(target).parent) / Path(target).name


def _mount_script(substitutes: Iterable[Substitute], scratch: Path) -> list[str]:
    """Shell lines (run inside the private mount namespace) applying the substitutes."""
    binds, creates, dir_creates, overlays = [], [], [], set()
    for sub in substitutes:
        source = Path(sub.source)
        if not sub.target.startswith("/") or not (source.is_file() or source.is_dir()):
            raise ValueError(f"substitute needs an absolute target and an existing source file: {sub}")
        real = _real_target(sub.target)
        if source.is_dir():
            if real.is_symlink() or (real.exists() and not real.is_dir()):
                raise ValueError(f"directory substitute needs a directory target: {sub.target}")
            if not real.is_dir():
                overlays.add(_nearest_dir(real.parent))
                dir_creates.append(real)
        elif real.is_dir():
            raise ValueError(f"substitute target is a directory: {sub.target}")
        elif not real.is_file() or real.is_symlink():
            overlays.add(_nearest_dir(real.parent))
            creates.append(real)
        binds.append((source, real))
    roots = sorted(d for d in overlays if not any(o != d and d.is_relative_to(o) for o in overlays))
    if Path("/") in roots:
        raise ValueError("refusing to overlay / ; create the target's parent directory first")
    lines = [f"mount -t tmpfs -o mode=0755 kbt-scratch {shlex.quote(str(scratch))}"] if roots else []
    for i, root in enumerate(roots):
        upper, work = scratch / f"{i}-upper", scratch / f"{i}-work"
        lines.append(f"mkdir -p {shlex.quote(str(upper))} {shlex.quote(str(work))}")
        lines.append(f"mount -t overlay overlay -o lowerdir={root},upperdir={upper},workdir={work} {root}")
    for path in creates:  # inside the overlay now: the real directory is untouched
        q = shlex.quote(str(path))
        lines.append(f"mkdir -p {shlex.quote(str(path.parent))} && rm -f {q} && touch {q}")
    lines += [f"mkdir -p {shlex.quote(str(path))}" for path in dir_creates]
    lines += [f"mount --bind {shlex.quote(str(s))} {shlex.quote(str(t))}" for s, t in binds]
    return lines


_SSHD_CONFIG = """\
Port {port}
ListenAddress {address}
HostKey {dir}/ssh_host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {lab}/authorized_keys
UsePAM no
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
MaxStartups 200
MaxSessions 100
Subsystem sftp internal-sftp
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SshHost:
    """One running sshd. Created by `SshLab.add_host`; everything is undone by `close()`."""

    def __init__(self, lab: SshLab, name: str, substitutes: list[Substitute], key_type: str) -> None:
        self.lab, self.name, self.hostname = lab, name, name
        self.substitutes = substitutes
        self.dir = lab.dir / name
        self.dir.mkdir()
        self.log_path = self.dir / "sshd.log"
        self.netns: str | None = None
        self.unreachable = False
        self._proc: subprocess.Popen[bytes] | None = None
        if lab.mode == "netns":
            self.netns, index = claim_netns()
            self.address, self.port = create_netns(self.netns, index), 22
        else:
            self.address, self.port = "127.0.0.1", _free_port()
        self._keygen(key_type)

    def _keygen(self, key_type: str) -> None:
        for suffix in ("", ".pub"):
            (self.dir / f"ssh_host_key{suffix}").unlink(missing_ok=True)
        extra = ["-b", "2048"] if key_type == "rsa" else []
        run("ssh-keygen", "-q", "-t", key_type, *extra, "-N", "", "-f", str(self.dir / "ssh_host_key"))

    @property
    def host_key_fingerprint(self) -> str:
        out = run("ssh-keygen", "-l", "-E", "sha256", "-f", str(self.dir / "ssh_host_key.pub")).stdout
        return out.split()[1]

    def _command(self) -> list[str]:
        config = self.dir / "sshd_config"
        config.write_text(_SSHD_CONFIG.format(port=self.port, address=self.address, dir=self.dir, lab=self.lab.dir))
        (self.dir / "scratch").mkdir(exist_ok=True)
        # Its own /etc/hosts naming itself, as on a real machine (sudo warns when the name won't resolve).
        hosts = self.dir / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{self.address} {self.hostname}\n")
        hosts.chmod(0o644)
        lines = [
            "set -eu",
            f"hostname {shlex.quote(self.hostname)}",
            f"mount --bind {shlex.quote(str(hosts))} /etc/hosts",
        ]
        lines += _mount_script(self.substitutes, self.dir / "scratch")
        if not any(_real_target(sub.target) == Path("/etc/hosts") for sub in self.substitutes):
            # Again: an overlay of /etc made by a substitute hides the bind mount made above.
            lines.append(f"mount --bind {shlex.quote(str(hosts))} /etc/hosts")
        lines.append(f"exec {SSHD} -D -e -f {shlex.quote(str(config))}")
        boot = self.dir / "boot.sh"
        boot.write_text("\n".join(lines) + "\n")
        command = ["unshare", "--uts", "--mount", "--propagation", "private", "sh", str(boot)]
        return ["ip", "netns", "exec", self.netns, *command] if self.netns else command

    def spawn(self) -> None:
        """Start sshd without waiting for it (see `wait_ready`); `start` does both."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} is already running")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        with open(self.log_path, "ab") as log:
            # One pid from Popen to sshd: ip netns exec, unshare and `sh -c exec` all exec in place.
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"sshd for {self.name} exited:\n{self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((self.address, self.port), 1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
            time.sleep(0.02)
        raise RuntimeError(f"sshd for {self.name} not ready after {timeout}s:\n{self.log()}")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def stop(self) -> None:
        """Kill sshd and every session it started: the port is closed afterwards."""
        if self._proc is None:
            return
        kill_all([*descendants(self._proc.pid), self._proc.pid])
        self._proc.wait()
        self._proc = None

    def restart(self, *, new_host_key: bool = False, key_type: str = "ed25519") -> None:
        self.stop()
        if new_host_key:
            self._keygen(key_type)
        self.start()

    def drop_connections(self) -> int:
        """Kill the sshd processes serving sessions (not the listener); clients see the link drop."""
        pids = descendants(self._proc.pid) if self._proc else []
        kill_all(pids)
        return len(pids)

    def cpu_seconds(self) -> float:
        """CPU used by this sshd and its finished sessions (benchmarks: the simulated machine's share)."""
        if self._proc is None:
            return 0.0
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime

    def set_unreachable(self, unreachable: bool) -> None:
        """Netns mode only: an `unreachable` route makes connects fail with EHOSTUNREACH at once."""
        if self.netns is None:
            raise RuntimeError("set_unreachable needs netns mode")
        if unreachable != self.unreachable:
            run("ip", "route", "add" if unreachable else "del", "unreachable", f"{self.address}/32")
            self.unreachable = unreachable

    def target(self, user: str | None = None, *, password: bool = True, key: bool = False) -> SshTarget:
        """Credentials for the test account (default) or, with user="root", root by key."""
        user = user or self.lab.account.name
        is_root = user == "root"
        return SshTarget(
            host=self.address,
            port=self.port,
            username=user,
            password=self.lab.account.password if password and not is_root else None,
            private_key=self.lab.client_key if key or is_root else None,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        if self.netns:
            destroy_netns(self.netns)
            (RUN_DIR / self.netns).unlink(missing_ok=True)
            self.netns = None


class SshLab:
    """A set of test hosts sharing one temp dir, one client key pair and one test account."""

    def __init__(self, account: UserAccount, *, mode: Mode = "auto") -> None:
        if not is_root():
            raise PermissionError("SshLab needs root (sshd, useradd, namespaces)")
        cleanup_stale()
        self.account = account
        # World-traversable: sshd reads AuthorizedKeysFile as the session user, not as root.
        self.dir = Path(tempfile.mkdtemp(prefix=LAB_DIR_PREFIX))
        self.dir.chmod(0o755)
        (self.dir / "owner").write_text(process_identity(os.getpid()) or str(os.getpid()))
        self.mode: Literal["loopback", "netns"] = (
            ("netns" if netns_supported() else "loopback") if mode == "auto" else mode
        )
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kboss-test", "-f", str(self.dir / "id"))
        self.client_key = (self.dir / "id").read_text()
        self.client_public_key = (self.dir / "id.pub").read_text().strip()
        (self.dir / "authorized_keys").write_text(self.client_public_key + "\n")
        (self.dir / "authorized_keys").chmod(0o644)
        self.hosts: list[SshHost] = []

    def add_hosts(
        self, count: int, *, substitutes: Iterable[Substitute | tuple[Path, str]] = (), key_type: str = "ed25519"
    ) -> list[SshHost]:
        """Start `count` hosts together (sshd starts overlap, so 20 hosts take well under a second)."""
        subs = [s if isinstance(s, Substitute) else Substitute(Path(s[0]), s[1]) for s in substitutes]
        hosts = []
        for _ in range(count):
            hosts.append(SshHost(self, f"kbt-host{len(self.hosts) + 1}", subs, key_type))
            self.hosts.append(hosts[-1])
            hosts[-1].spawn()
        for host in hosts:
            host.wait_ready()
        return hosts

    def add_host(
        self, *, substitutes: Iterable[Substitute | tuple[Path, str]] = (), key_type: str = "ed25519"
    ) -> SshHost:
        return self.add_hosts(1, substitutes=substitutes, key_type=key_type)[0]

    def close(self) -> None:
        for host in self.hosts:
            host.close()
        self.hosts.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SshLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP but never speaks SSH: connecting to it times out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])
