"""SshClient: one authenticated connection to one machine, running commands and uploading files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets as _secrets
import time
from collections.abc import AsyncIterator, Generator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh

from kboss.errors import CommandFailed, CommandTimeout, SSHError
from kboss.redaction import Redactor
from kboss.ssh.commands import SUDO_PROBE, Command, Prepared, SudoMode, describe, prepare
from kboss.ssh.connect import connect_with_retries
from kboss.ssh.errmap import connection_dropped, is_connection_loss
from kboss.ssh.known_hosts import KnownHostsStore
from kboss.ssh.stream import CommandStream, exit_code
from kboss.ssh.types import CommandResult, ConnectOptions, SshTarget

log = logging.getLogger("kboss.ssh")

_SUDO_PROBE_TIMEOUT = 30.0


class SshClient:
    """An open connection. Use `connect()`; close with `await client.close()` or `async with`."""

    def __init__(self, target: SshTarget, conn: asyncssh.SSHClientConnection, options: ConnectOptions) -> None:
        self.target = target
        self.options = options
        self._conn = conn
        # The account's own credentials are always masked, whatever a caller forgets to pass.
        self.redact = Redactor([target.password, target.passphrase, target.private_key])
        self._sudo_mode: SudoMode | None = None
        self._sudo_lock = asyncio.Lock()

    async def __aenter__(self) -> SshClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._conn.close()
        await self._conn.wait_closed()

    async def run(
        self,
        command: Command,
        *,
        # A per-call remote timeout is the API the callers need; it also kills the remote process.
        timeout: float | None = None,  # noqa: ASYNC109
        sudo: bool | None = None,
        input: str | None = None,
        secrets: Iterable[str] = (),
        check: bool = False,
        name: str | None = None,
    ) -> CommandResult:
        """Run a command and capture its output.

        `command`: an argv list (quoted for you) or a shell string (quote values with `quote`).
        `sudo`: True runs as root (sudo when the account is not root), False as the account,
        None uses `ConnectOptions.sudo`. `secrets` are masked in the result, logs and errors.
        `check=True` raises CommandFailed on a non-zero exit; timeouts raise CommandTimeout.
        """
        redact = self.redact.with_secrets(secrets)
        what = redact(name or describe(command))
        limit = self.options.command_timeout if timeout is None else timeout
        prepared = await self._prepare(command, sudo, input, limit)
        started = time.monotonic()
        result = await self._execute(prepared, limit, what, redact)
        log.debug("%s: %s -> %d in %.2fs", self.target.address, what, result.exit_status, time.monotonic() - started)
        if check and not result.ok:
            raise CommandFailed(what, result.exit_status, result.output_tail())
        return result

    def stream(
        self,
        command: Command,
        *,
        timeout: float | None = None,
        sudo: bool | None = None,
        input: str | None = None,
        secrets: Iterable[str] = (),
        check: bool = False,
        name: str | None = None,
    ) -> CommandStream:
        """Run a command and yield its output lines (stdout and stderr merged) as they arrive.

            async with client.stream(["apt-get", "install", "-y", "containerd"], check=True) as out:
                async for line in out:
                    ...             # already redacted, without the trailing newline
            out.result.exit_status  # after the loop

        Same arguments as `run`; `timeout` bounds the whole command, not each line.
        """
        redact = self.redact.with_secrets(secrets)
        what = redact(name or describe(command))
        limit = self.options.command_timeout if timeout is None else timeout
        return CommandStream(self, lambda: self._prepare(command, sudo, input, limit), what, redact, limit, check)

    async def upload(
        self,
        source: bytes | os.PathLike[str],
        remote_path: str,
        *,
        mode: int = 0o644,
        sudo: bool | None = None,
    ) -> None:
        """Copy bytes or a local file to `remote_path` with permission bits `mode`, over SFTP.

        With sudo (the default for non-root accounts) the file goes to a private temporary file in the
        account's home first and is then installed as root, since SFTP itself runs unprivileged.
        """
        want_root = self.options.sudo if sudo is None else sudo
        if not want_root or self.target.is_root:
            await self._sftp_put(source, remote_path, mode)
            return
        staging = f".kboss-upload-{_secrets.token_hex(8)}"  # relative: in the account's home
        try:
            staging = await self._sftp_put(source, staging, 0o600)
            await self.run(
                ["install", "-m", f"{mode:04o}", "--", staging, remote_path],
                sudo=True,
                check=True,
                name=f"install {remote_path}",
            )
        finally:
            # Also after a failed or partial transfer; a dropped connection raises from here instead.
            await self.run(["rm", "-f", "--", staging], sudo=False)

    @contextlib.asynccontextmanager
    async def forward_local_port(self, dest_host: str, dest_port: int) -> AsyncIterator[int]:
        """A tunnel: connections to 127.0.0.1:<yielded port> here reach dest_host:dest_port from the machine."""
        try:
            listener = await self._conn.forward_local_port("127.0.0.1", 0, dest_host, dest_port)
        except (OSError, asyncssh.Error) as exc:
            raise self._translate(exc, f"tunnel to {dest_host}:{dest_port}") from exc
        try:
            yield listener.get_port()
        finally:
            listener.close()
            await listener.wait_closed()

    async def _sftp_put(self, source: bytes | os.PathLike[str], remote_path: str, mode: int) -> str:
        """Write the file and return its absolute remote path."""
        try:
            async with self._conn.start_sftp_client() as sftp:
                if isinstance(source, bytes):
                    # 'x' (O_EXCL) for staging files would be nicer but must also overwrite targets.
                    async with sftp.open(remote_path, "wb", asyncssh.SFTPAttrs(permissions=mode)) as handle:
                        await handle.write(source)
                else:
                    await sftp.put(os.fspath(source), remote_path)
                # The mode given at creation is reduced by the umask and ignored for existing files.
                await sftp.chmod(remote_path, mode)
                return str(await sftp.realpath(remote_path))
        except asyncssh.SFTPError as exc:
            raise SSHError(f"上传文件失败: {self.target.host}:{remote_path} (sftp: {exc.reason})") from None
        except Exception as exc:
            if is_connection_loss(exc):
                raise connection_dropped(self.target, f"upload {remote_path}", exc) from None
            raise

    async def _prepare(self, command: Command, sudo: bool | None, stdin: str | None, limit: float) -> Prepared:
        want_root = self.options.sudo if sudo is None else sudo
        mode = SudoMode.DIRECT
        if want_root and not self.target.is_root:
            mode = await self._detect_sudo()
        return prepare(command, mode, self.target.password, stdin, limit)

    async def _detect_sudo(self) -> SudoMode:
        # Once per connection: a NOPASSWD account must not get our password line on its stdin.
        async with self._sudo_lock:
            if self._sudo_mode is None:
                probe = await self._execute(
                    Prepared(SUDO_PROBE, None), _SUDO_PROBE_TIMEOUT, "sudo -n true", self.redact
                )
                self._sudo_mode = SudoMode.NOPASSWD if probe.ok else SudoMode.PASSWORD
            return self._sudo_mode

    async def open_process(self, prepared: Prepared, what: str, **kwargs: Any) -> asyncssh.SSHClientProcess[str]:
        """Start a remote process and feed its stdin (used by `run` and `CommandStream`)."""
        try:
            proc = await self._conn.create_process(prepared.line, encoding="utf-8", errors="replace", **kwargs)
        except Exception as exc:
            raise self._translate(exc, what) from None
        if prepared.stdin:
            proc.stdin.write(prepared.stdin)
        proc.stdin.write_eof()
        return proc

    async def _execute(self, prepared: Prepared, limit: float, what: str, redact: Redactor) -> CommandResult:
        proc = await self.open_process(prepared, what)
        try:
            done = await proc.wait(timeout=limit)
        except asyncssh.TimeoutError as exc:
            partial = str(exc.stdout or "") + str(exc.stderr or "")
            raise self.timeout_error(what, limit, redact(partial)) from None
        except Exception as exc:
            raise self._translate(exc, what) from None
        finally:
            await self.abort(proc)
        status = exit_code(done)
        if status is None:
            raise connection_dropped(self.target, what, ConnectionError("channel closed without exit status"))
        return CommandResult(status, redact(str(done.stdout or "")), redact(str(done.stderr or "")))

    def timeout_error(self, what: str, limit: float, partial: str) -> CommandTimeout:
        tail = partial[-2000:]
        return CommandTimeout(
            f"远程命令超时: {self.target.host} 上 {what} 超过 {limit:g} 秒未结束, 已终止 (command timeout)"
            + (f"; 输出末尾: {tail}" if tail else "")
        )

    def _translate(self, exc: Exception, what: str) -> Exception:
        if isinstance(exc, SSHError):
            return exc
        if is_connection_loss(exc):
            return connection_dropped(self.target, what, exc)
        return SSHError(f"SSH 命令执行出错: {self.target.host} {what} ({type(exc).__name__}: {self.redact(str(exc))})")

    async def abort(self, proc: asyncssh.SSHClientProcess[str]) -> None:
        """Kill the remote process if it still runs, then close the channel."""
        if proc.exit_status is None and proc.exit_signal is None:
            # Closing the channel alone leaves the remote process running. SIGTERM, not SIGKILL: a
            # sudo front end relays TERM to the remote `timeout` wrapper, which kills the whole
            # process group; KILL would only kill sudo and orphan the root command.
            with contextlib.suppress(OSError, asyncssh.Error):
                proc.terminate()
        proc.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(proc.wait_closed(), 5)


class Connecting:
    """What `connect()` returns: await it for a client, or use it as `async with connect(...) as c`."""

    def __init__(self, target: SshTarget, known_hosts: KnownHostsStore, options: ConnectOptions) -> None:
        self._args = (target, known_hosts, options)
        self._client: SshClient | None = None

    async def _open(self) -> SshClient:
        target, store, options = self._args
        return SshClient(target, await connect_with_retries(target, store, options), options)

    def __await__(self) -> Generator[Any, None, SshClient]:
        return self._open().__await__()

    async def __aenter__(self) -> SshClient:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()


def connect(
    target: SshTarget, *, known_hosts: KnownHostsStore | Path, options: ConnectOptions | None = None
) -> Connecting:
    """Connect and authenticate, retrying transient failures (see ConnectOptions) but never bad credentials.

    Raises HostUnreachable, ConnectionRefused, ConnectionDropped (handshake cut), AuthenticationFailed
    or HostKeyChanged. `known_hosts` is the trust-on-first-use store (or its file path).
    """
    store = known_hosts if isinstance(known_hosts, KnownHostsStore) else KnownHostsStore(known_hosts)
    return Connecting(target, store, options or ConnectOptions())
