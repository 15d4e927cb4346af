"""Plain value types of the SSH adapter: where to connect, how, and what a command returned."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from kboss.settings import Settings


def quote(value: str) -> str:
    """Quote one value for a POSIX shell on the remote machine.

    Every value interpolated into a remote shell command string goes through this function (or the
    command is given as an argv list, which `SshClient.run` joins with `shlex.join`). Host names,
    paths, tokens, labels: they all come from users or from other machines, and one unquoted `;`
    or `$(...)` would run on a machine we hold root on.
    """
    return shlex.quote(value)


@dataclass(frozen=True)
class SshTarget:
    """One machine account. `private_key` is PEM/OpenSSH text, never a path on this machine."""

    host: str
    username: str
    port: int = 22
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        # Only say which credentials exist: reprs end up in logs and tracebacks.
        auth = [name for name in ("password", "private_key") if getattr(self, name)]
        return (
            f"SshTarget(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"auth={'+'.join(auth) or 'none'})"
        )

    @property
    def address(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    @property
    def is_root(self) -> bool:
        return self.username == "root"


@dataclass(frozen=True)
class ConnectOptions:
    """Connection policy. Retries cover transient network failures only, never bad credentials."""

    connect_timeout: float = 10.0
    command_timeout: float = 900.0
    attempts: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    keepalive_interval: float = 15.0
    # Run commands as root by default (via sudo when the account is not root): provisioning needs it.
    sudo: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectOptions:
        return cls(connect_timeout=settings.ssh_connect_timeout, command_timeout=settings.ssh_command_timeout)

    def backoff(self, attempt: int) -> float:
        """Delay before attempt number `attempt + 1` (attempt counts from 1)."""
        return float(min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1))))


@dataclass(frozen=True)
class CommandResult:
    """What a remote command did; stdout and stderr are already redacted."""

    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def output_tail(self, limit: int = 2000) -> str:
        gap = "\n" if self.stdout and self.stderr and not self.stdout.endswith("\n") else ""
        combined = self.stdout + gap + self.stderr
        return combined[-limit:]
