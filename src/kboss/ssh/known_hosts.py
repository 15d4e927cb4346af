"""Trust-on-first-use store of SSH host keys.

The file uses OpenSSH known_hosts lines (`[host]:port ssh-ed25519 AAAA...`, plain `host` for port 22)
so an operator can read it or diff it against ~/.ssh/known_hosts. Every read-check-append runs under
an exclusive `flock` on a side lock file, so concurrent first contacts — from many coroutines,
threads or processes — never lose or interleave lines, and two contacts to the same new host agree
on one key.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


def _key_line(pattern: str, key: asyncssh.SSHKey) -> str:
    blob = base64.b64encode(key.public_data).decode()
    return f"{pattern} {key.get_algorithm()} {blob}\n"


def _parse_line(line: str) -> tuple[str, asyncssh.SSHKey] | None:
    fields = line.split()
    if len(fields) < 3 or fields[0].startswith("#"):
        return None
    try:
        key = asyncssh.import_public_key(f"{fields[1]} {fields[2]}")
    except (asyncssh.KeyImportError, binascii.Error, ValueError):
        return None  # a hand-edited or foreign line; never fatal, never trusted
    return fields[0], key


class KnownHostsStore:
    """Host keys by `host:port`. The first key seen is recorded; later ones must match it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _entries(self) -> list[tuple[str, asyncssh.SSHKey]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [entry for entry in map(_parse_line, text.splitlines()) if entry]

    def lookup(self, host: str, port: int) -> asyncssh.SSHKey | None:
        pattern = host_pattern(host, port)
        with self._locked():
            return next((key for pat, key in self._entries() if pat == pattern), None)

    def check_or_record(self, host: str, port: int, key: asyncssh.SSHKey) -> asyncssh.SSHKey | None:
        """Record `key` if the host is new. Return None when trusted, else the recorded (different) key."""
        pattern = host_pattern(host, port)
        with self._locked():
            known = next((k for pat, k in self._entries() if pat == pattern), None)
            if known is None:
                self._append(_key_line(pattern, key))
                return None
            return None if known.public_data == key.public_data else known

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def forget(self, host: str, port: int) -> bool:
        """Drop the recorded key (an operator accepted a re-installed machine). True if one was dropped."""
        pattern = host_pattern(host, port)
        with self._locked():
            try:
                lines = self.path.read_text().splitlines(keepends=True)
            except FileNotFoundError:
                return False
            # Keep every other line verbatim, including ones this module cannot parse.
            kept = [line for line in lines if (line.split() or [""])[0] != pattern]
            if len(kept) == len(lines):
                return False
            self._replace("".join(kept))
            return True

    def _replace(self, text: str) -> None:
        # Write-then-rename: a crash leaves either the old or the new file, never half of one.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
