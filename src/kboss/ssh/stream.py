"""Line-by-line output of a running remote command, for callers that relay progress as it happens."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import asyncssh

from kboss.errors import CommandFailed
from kboss.redaction import Redactor
from kboss.ssh.commands import Prepared
from kboss.ssh.errmap import connection_dropped, is_connection_loss
from kboss.ssh.types import CommandResult

if TYPE_CHECKING:
    from kboss.ssh.client import SshClient

_TAIL_CHARS = 2000


def exit_code(done: asyncssh.SSHCompletedProcess) -> int | None:
    """The exit status, 128+N for a process killed by signal N (as a shell reports it), None if unknown."""
    if done.exit_status is not None and done.exit_status >= 0:
        return int(done.exit_status)
    if done.exit_signal:
        with contextlib.suppress(KeyError):
            return 128 + int(signal.Signals["SIG" + str(done.exit_signal[0])])
        return 255
    return None


class CommandStream:
    """Async context manager and async iterator of redacted output lines; see `SshClient.stream`.

    The context manager guarantees the remote process is killed and the channel closed even when the
    caller stops reading early. After the loop ends, `result` holds the exit status; its stdout is the
    last ~2000 characters of the merged output (the full output was handed out line by line).
    """

    def __init__(
        self,
        client: SshClient,
        prepare: Callable[[], Awaitable[Prepared]],
        what: str,
        redact: Redactor,
        limit: float,
        check: bool,
    ) -> None:
        self._client = client
        self._prepare = prepare
        self._what = what
        self._redact = redact
        self._limit = limit
        self._check = check
        self._proc: asyncssh.SSHClientProcess[str] | None = None
        self._deadline = 0.0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0
        self.result: CommandResult | None = None

    async def __aenter__(self) -> CommandStream:
        self._deadline = asyncio.get_running_loop().time() + self._limit
        prepared = await self._prepare()
        # stderr merged into stdout at the source keeps the lines in the order the host wrote them.
        self._proc = await self._client.open_process(prepared, self._what, stderr=asyncssh.STDOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None:
            await self._client.abort(self._proc)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        if self._proc is None:
            raise RuntimeError("use `async with client.stream(...) as out` before iterating")
        while line := await self._readline(self._proc):
            text = self._redact(line.rstrip("\n"))
            self._remember(text)
            yield text
        await self._finish(self._proc)

    async def _readline(self, proc: asyncssh.SSHClientProcess[str]) -> str:
        try:
            async with asyncio.timeout_at(self._deadline):
                return await proc.stdout.readline()
        except TimeoutError:
            raise self._client.timeout_error(self._what, self._limit, "\n".join(self._tail)) from None
        except Exception as exc:
            if is_connection_loss(exc):
                raise connection_dropped(self._client.target, self._what, exc) from None
            raise

    def _remember(self, text: str) -> None:
        self._tail.append(text)
        self._tail_len += len(text) + 1
        while self._tail_len > _TAIL_CHARS and len(self._tail) > 1:
            self._tail_len -= len(self._tail.popleft()) + 1

    async def _finish(self, proc: asyncssh.SSHClientProcess[str]) -> None:
        remaining = max(0.0, self._deadline - asyncio.get_running_loop().time())
        try:
            done = await proc.wait(timeout=remaining)
        except asyncssh.TimeoutError:
            raise self._client.timeout_error(self._what, self._limit, "\n".join(self._tail)) from None
        status = exit_code(done)
        if status is None:
            raise connection_dropped(self._client.target, self._what, ConnectionError("no exit status"))
        tail = "\n".join(self._tail)[-_TAIL_CHARS:]
        self.result = CommandResult(status, tail, "")
        if self._check and status != 0:
            raise CommandFailed(self._what, status, tail)
