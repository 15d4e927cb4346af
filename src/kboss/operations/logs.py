"""Step output: redacted, bounded to a tail per step, flushed in batches so that it is readable while it runs.

Each step row keeps the last `limit` characters of its output and the count of characters ever written
(`output_size`), so a follower that remembers how far it read knows what is new and what was dropped.
Lines are stored whole: the tail is cut at a line boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.models_ops import OperationStep, now
from kboss.redaction import Redactor

DEFAULT_TAIL_CHARS = 64 * 1024
log = logging.getLogger("kboss.operations")


def append_tail(current: str, addition: str, limit: int) -> str:
    text = current + addition
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    newline = cut.find("\n")
    # Drop the partial first line; a single line longer than the limit is kept cut rather than lost.
    return cut[newline + 1 :] if 0 <= newline < len(cut) - 1 else cut


class StepLog:
    """The output of one step row: `write` buffers (never blocks the step), a background task flushes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        step_id: str,
        output: str,
        output_size: int,
        mask: Redactor,
        limit: int = DEFAULT_TAIL_CHARS,
        flush_seconds: float = 0.5,
    ) -> None:
        self._sessions, self._step_id, self._mask = sessions, step_id, mask
        self._output, self._size, self._limit, self._interval = output, output_size, limit, flush_seconds
        self._pending: list[str] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    @property
    def text(self) -> str:
        return self._output

    @property
    def size(self) -> int:
        return self._size

    def write(self, line: str) -> None:
        stamp = now().strftime("%H:%M:%S")
        for part in str(line).splitlines() or [""]:
            self._pending.append(f"[{stamp}] {self._mask(part)}\n")

    async def flush(self) -> None:
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        self._output = append_tail(self._output, text, self._limit)
        self._size += len(text)
        async with self._sessions() as session:
            await session.execute(
                update(OperationStep)
                .where(OperationStep.id == self._step_id)
                .values(output=self._output, output_size=self._size)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _flush_forever(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._interval)
            try:
                await self.flush()
            except Exception:  # a transient database error must not kill the step; the next flush retries
                log.warning("could not store output of step %s", self._step_id, exc_info=True)

    async def __aenter__(self) -> StepLog:
        self._flusher = asyncio.create_task(self._flush_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Not cancelled: a flush cut midway would leave its connection to the pool to reset.
        self._closing.set()
        if self._flusher:
            await asyncio.gather(self._flusher, return_exceptions=True)
        # Shielded: the last lines of an interrupted step are the ones an operator needs most.
        await asyncio.shield(self.flush())


def step_label(name: str, node: str) -> str:
    return f"{name}@{node}" if node else name


@dataclass
class LogCursor:
    """How far a follower has read one step row, in `output_size` coordinates."""

    consumed: int = 0

    def advance(self, output: str, output_size: int) -> tuple[str, int]:
        """New text since the last call, and how many characters were dropped from the tail before we read them."""
        if output_size <= self.consumed:
            return "", 0
        start = output_size - len(output)
        dropped = max(0, start - self.consumed)
        text = output[max(0, self.consumed - start) :]
        self.consumed = output_size
        return text, dropped


def labelled_lines(label: str, text: str, dropped: int) -> list[str]:
    lines = [f"{label} | [... 已省略 {dropped} 个字符 ...]"] if dropped else []
    return lines + [f"{label} | {line}" for line in text.splitlines()]
