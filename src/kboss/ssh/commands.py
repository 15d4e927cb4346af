"""Building the remote command line: argv quoting and the sudo wrapper."""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

Command = Sequence[str] | str


class SudoMode(enum.Enum):
    """How root is reached on a connection; detected once per connection."""

    DIRECT = "direct"  # logged in as root (or elevation not requested)
    NOPASSWD = "nopasswd"  # sudoers lets the account in without a password
    PASSWORD = "password"  # sudo wants the account password, fed on stdin


# `-k` makes sudo ignore any cached credential so it always reads exactly one password line from
# stdin; otherwise a cached timestamp would leave our password line in the command's own stdin.
# `-p ''` keeps the prompt out of stderr. The password is never on the command line: it would be
# visible in `ps` on the remote machine and in our logs.
_SUDO_PASSWORD = ["sudo", "-k", "-S", "-p", ""]
_SUDO_NOPASSWD = ["sudo", "-n"]
SUDO_PROBE = "sudo -k -n true 2>/dev/null"


# The remote `timeout` is a backstop a little after our own deadline: when we give up we send
# SIGTERM over the channel, but if that signal cannot be delivered (old sshd, dropped connection)
# the command and its children are still killed on the host instead of running on forever.
REMOTE_GRACE = 2.0
REMOTE_KILL_AFTER = "5"


@dataclass(frozen=True)
class Prepared:
    line: str
    stdin: str | None


def to_line(command: Command) -> str:
    """Argv lists are joined with `shlex.join`; strings are taken as shell code, already quoted."""
    if isinstance(command, str):
        return command
    if not command:
        raise ValueError("empty command")
    return shlex.join(command)


def _argv(command: Command, limit: float | None) -> list[str]:
    # Shell strings always run under /bin/sh, not the account's login shell (which might be
    # anything), so the same string means the same thing with and without sudo.
    argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("empty command")
    if limit is None:
        return argv
    # GNU timeout runs the command in its own process group and signals the whole group, so
    # grandchildren die too; it also forwards the SIGTERM we send on our own timeout.
    return ["timeout", "-k", REMOTE_KILL_AFTER, f"{limit + REMOTE_GRACE:.3f}", *argv]


def prepare(command: Command, mode: SudoMode, password: str | None, stdin: str | None, limit: float | None) -> Prepared:
    """The remote command line and stdin for `command`, elevated per `mode`, bounded by `limit` seconds."""
    argv = _argv(command, limit)
    if mode is SudoMode.DIRECT:
        return Prepared(shlex.join(argv), stdin)
    if mode is SudoMode.NOPASSWD or not password:
        # Without a password `sudo -n` fails fast with "a password is required" instead of hanging.
        return Prepared(shlex.join([*_SUDO_NOPASSWD, "--", *argv]), stdin)
    return Prepared(shlex.join([*_SUDO_PASSWORD, "--", *argv]), password + "\n" + (stdin or ""))


def describe(command: Command, limit: int = 200) -> str:
    """A short human-readable name of the command for logs and errors (redact it before use)."""
    line = to_line(command)
    return line if len(line) <= limit else line[: limit - 3] + "..."
