"""The platform as a real separate process (`kboss serve`), for fault tests that kill it and start it again.

    env = platform_env(db_url, tmp_path / "var", worker_id="replica-1", KBOSS_WORKER_POLL_SECONDS="0.2")
    async with PlatformProcesses(tmp_path) as processes:
        first = await processes.start("first", env)      # waits for /healthz
        await first.kill()                                # SIGKILL: no shutdown, no claim released
        second = await processes.start("second", env)    # same worker id: resumes its operations at once

Each process writes stdout and stderr to `<dir>/<name>.log`; `PlatformProcesses` kills whatever still runs
when it exits and prints every log, which pytest shows when the test failed. `wait_until` polls a condition
(never a bare sleep) and says what it waited for when it times out.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.support.api import TEST_KEY
from tests.support.site import free_port

START_SECONDS = 60.0
STOP_SECONDS = 15.0


def kboss_command() -> list[str]:
    """The installed `kboss` entry point of this interpreter's environment (`[project.scripts]`)."""
    script = shutil.which("kboss", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from kboss.cli.main import main; main()"]


def platform_env(db_url: str, data_dir: Path, worker_id: str, **extra: str) -> dict[str, str]:
    """The environment of a `kboss serve` process: this one's without any KBOSS_ variable, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBOSS_")}
    return env | {
        "KBOSS_DATABASE_URL": db_url,
        "KBOSS_DATA_DIR": str(data_dir),
        "KBOSS_SECRET_KEY": TEST_KEY,
        "KBOSS_WORKER_ID": worker_id,
        "KBOSS_LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class PlatformProcess:
    name: str
    port: int
    log_path: Path
    proc: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def kill(self) -> int:
        """SIGKILL, as a crash or the OOM killer would: nothing runs on the way out."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        return await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM (uvicorn shuts down, the worker releases its claims), SIGKILL if that takes too long."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_SECONDS)
            except TimeoutError:
                await self.kill()

    async def ready(self, limit: float = START_SECONDS) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2, trust_env=False) as http:

            async def up() -> bool:
                if self.proc.returncode is not None:
                    raise AssertionError(f"kboss serve {self.name} exited ({self.proc.returncode}):\n{self.log()}")
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, limit, f"kboss serve {self.name} to answer /healthz")


@dataclass
class PlatformProcesses:
    """Every `kboss serve` started in a test; all are stopped (killed if need be) and their logs printed."""

    directory: Path
    started: list[PlatformProcess] = field(default_factory=list)

    async def start(self, name: str, env: dict[str, str]) -> PlatformProcess:
        port = free_port()
        log_path = self.directory / f"{name}.log"
        command = [*kboss_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *command, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
            )
        process = PlatformProcess(name, port, log_path, proc)
        self.started.append(process)
        await process.ready()
        return process

    def logs(self) -> str:
        return "\n".join(
            f"----- kboss serve {p.name} (exit {p.proc.returncode}) -----\n{p.log()}" for p in self.started
        )

    async def __aenter__(self) -> PlatformProcesses:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in self.started:
            await process.stop()
        print(self.logs())  # captured by pytest, shown with a failure


async def wait_until(check: Callable[[], Any], limit: float, what: str, poll: float = 0.1) -> Any:
    """The first truthy value of `check()` (awaited when it is a coroutine), polled until `limit` seconds;
    fails naming `what` otherwise."""

    async def value() -> Any:
        result = check()
        return await result if inspect.isawaitable(result) else result

    try:
        async with asyncio.timeout(limit):
            while not (found := await value()):  # noqa: ASYNC110 (state of other processes)
                await asyncio.sleep(poll)
            return found
    except TimeoutError:
        raise AssertionError(f"timed out after {limit:g} s waiting for {what}") from None
