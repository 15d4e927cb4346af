"""A real site agent over HTTP: uvicorn on loopback, called with Basic auth as the platform does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from kboss.app import create_site_app
from kboss.settings import Settings

SITE_USER = "site-admin"
SITE_PASSWORD = "site-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: Any, **config: Any) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 inside this event loop; yield its base URL. `config` overrides
    uvicorn's settings (e.g. `log_config=None` as `kboss serve` runs it)."""
    port = free_port()
    settings: dict[str, Any] = {"log_level": "warning", "lifespan": "on", **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **settings))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def site_agent(data_dir: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=data_dir,
        site_user=SITE_USER,
        site_password=SITE_PASSWORD,
        ssh_connect_timeout=3,
        ssh_command_timeout=30,
        **overrides,
    )
    async with serve(create_site_app(settings)) as base:
        auth = httpx.BasicAuth(SITE_USER, SITE_PASSWORD)
        async with httpx.AsyncClient(base_url=base, auth=auth, timeout=60) as client:
            yield client
