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
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kboss.ssh import SshTarget

SSHD = "/usr/sbin/sshd"
TEST_USER = "kbosst"
STATE_DIR = Path("/var/lib/kboss-sshhosts")  # the test account's password survives between runs
RUN_DIR = Path("/run/kboss-sshhosts")  # one marker per network namespace: which process owns it
NETNS_PREFIX = "kbt-"
LAB_DIR_PREFIX = "kboss-sshhosts-"
SUDOERS_DIR = Path("/etc/sudoers.d")
Mode = Literal["auto", "loopback", "netns"]


def _run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def is_root() -> bool:
    return os.geteuid() == 0


def write_executable(path: Path, text: str) -> Path:
    """Write a script readable and executable by everyone (a substitute runs as the session user)."""
    path.write_text(text)
    path.chmod(0o755)
    return path


def _process_identity(pid: int) -> str | None:
    """pid plus start time, so a recycled pid is not mistaken for the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def _owner_alive(marker: Path) -> bool:
    try:
        identity = marker.read_text().strip()
    except OSError:
        return False
    return bool(identity) and _process_identity(int(identity.split()[0])) == identity


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _kill(pids: Iterable[int]) -> None:
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
    if _run("id", "-u", name, check=False).returncode != 0:
        _run("useradd", "--create-home", "--shell", "/bin/bash", name)
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    pw_file = STATE_DIR / f"{name}.password"
    if not pw_file.exists():
        pw_file.write_text(secrets.token_urlsafe(18))
        pw_file.chmod(0o600)
    password = pw_file.read_text().strip()
    # SHA512-crypt, not PAM's yescrypt default: yescrypt is deliberately slow, and with 20 hosts sharing
    # this machine's CPUs a fan-out would mostly measure password hashing.
    _run("chpasswd", "-c", "SHA512", input=f"{name}:{password}\n")
    rule = f"{name} ALL=(ALL:ALL) {'NOPASSWD: ' if sudo_nopasswd else ''}ALL\n"
    sudoers = SUDOERS_DIR / f"kboss-sshhosts-{name}"
    if not sudoers.exists() or sudoers.read_text() != rule:
        sudoers.write_text(rule)
        sudoers.chmod(0o440)
    return UserAccount(name, password)


def netns_supported() -> bool:
    probe = f"{NETNS_PREFIX}probe-{os.getpid()}"
    if _run("ip", "netns", "add", probe, check=False).returncode != 0:
        return False
    ok = _run("ip", "netns", "exec", probe, "unshare", "--uts", "--mount", "true", check=False).returncode
    _run("ip", "netns", "del", probe, check=False)
    return ok == 0


def _addresses(index: int) -> tuple[str, str]:
    return f"10.231.{index}.1", f"10.231.{index}.2"


def _destroy_netns(ns: str) -> None:
    pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
    _kill(int(p) for p in pids)
    with contextlib.suppress(ValueError):
        index = int(ns.removeprefix(NETNS_PREFIX))
        _run("ip", "route", "del", "unreachable", f"{_addresses(index)[1]}/32", check=False)
        _run("ip", "link", "del", f"{ns}-h", check=False)
    _run("ip", "netns", "del", ns, check=False)


def cleanup_stale() -> None:
    """Remove what a crashed earlier run left: namespaces, veths, routes, sshd processes, temp dirs."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    for marker in RUN_DIR.glob(NETNS_PREFIX + "*"):
        if not _owner_alive(marker):
            _destroy_netns(marker.name)
            marker.unlink(missing_ok=True)
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if ns.startswith(NETNS_PREFIX) and not (RUN_DIR / ns).exists():
            _destroy_netns(ns)
    for lab_dir in Path(tempfile.gettempdir()).glob(LAB_DIR_PREFIX + "*"):
        if not _owner_alive(lab_dir / "owner"):
            _kill_sshd_using(lab_dir)
            shutil.rmtree(lab_dir, ignore_errors=True)


def _kill_sshd_using(lab_dir: Path) -> None:
    needle = str(lab_dir).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if needle in cmdline.read_bytes():
                _kill([int(cmdline.parent.name)])


def _claim_netns() -> tuple[str, int]:
    """Reserve a free index: the marker is created first (O_EXCL), so concurrent runs never share one."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    me = _process_identity(os.getpid()) or str(os.getpid())
    for index in range(1, 251):
        ns = f"{NETNS_PREFIX}{index}"
        try:
            fd = os.open(RUN_DIR / ns, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as marker:
            marker.write(me)
        _destroy_netns(ns)  # whatever is left under this name is not ours
        return ns, index
    raise RuntimeError("no free test network namespace index (1..250)")


def _create_netns(ns: str, index: int) -> str:
    """Namespace plus veth pair `<ns>-h` (here, .1) / `<ns>-g` (inside, .2) on 10.231.<index>.0/30."""
    outer, inner = _addresses(index)
    outside = [f"netns add {ns}", f"link add {ns}-h type veth peer name {ns}-g", f"link set {ns}-g netns {ns}"]
    outside += [f"addr add {outer}/30 dev {ns}-h", f"link set {ns}-h up"]
    _run("ip", "-batch", "-", input="\n".join(outside) + "\n")
    inside = [f"addr add {inner}/30 dev {ns}-g", f"link set {ns}-g up", "link set lo up"]
    _run("ip", "-n", ns, "-batch", "-", input="\n".join(inside) + "\n")
    return inner


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
            self.netns, index = _claim_netns()
            self.address, self.port = _create_netns(self.netns, index), 22
        else:
            self.address, self.port = "127.0.0.1", _free_port()
        self._keygen(key_type)

    def _keygen(self, key_type: str) -> None:
        for suffix in ("", ".pub"):
            (self.dir / f"ssh_host_key{suffix}").unlink(missing_ok=True)
        extra = ["-b", "2048"] if key_type == "rsa" else []
        _run("ssh-keygen", "-q", "-t", key_type, *extra, "-N", "", "-f", str(self.dir / "ssh_host_key"))

    @property
    def host_key_fingerprint(self) -> str:
        out = _run("ssh-keygen", "-l", "-E", "sha256", "-f", str(self.dir / "ssh_host_key.pub")).stdout
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
        _kill([*_descendants(self._proc.pid), self._proc.pid])
        self._proc.wait()
        self._proc = None

    def restart(self, *, new_host_key: bool = False, key_type: str = "ed25519") -> None:
        self.stop()
        if new_host_key:
            self._keygen(key_type)
        self.start()

    def drop_connections(self) -> int:
        """Kill the sshd processes serving sessions (not the listener); clients see the link drop."""
        pids = _descendants(self._proc.pid) if self._proc else []
        _kill(pids)
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
            _run("ip", "route", "add" if unreachable else "del", "unreachable", f"{self.address}/32")
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
            _destroy_netns(self.netns)
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
        (self.dir / "owner").write_text(_process_identity(os.getpid()) or str(os.getpid()))
        self.mode: Literal["loopback", "netns"] = (
            ("netns" if netns_supported() else "loopback") if mode == "auto" else mode
        )
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kboss-test", "-f", str(self.dir / "id"))
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
