"""A real site agent over HTTPS (or plain HTTP on a chosen address) that counts the HTTP requests it receives,
and a bare TLS endpoint that records every application byte: to prove that a refused agent got nothing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from kboss.app import create_site_app
from kboss.settings import Settings
from kboss.sites import tls
from tests.support.site import SITE_PASSWORD, SITE_USER, free_port


@dataclass
class Counting:
    """ASGI wrapper: the path of every HTTP request that reached the app."""

    app: Any
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def certificate(folder: Path) -> tuple[Path, Path, str]:
    """A generated agent certificate in `folder`: its files and fingerprint."""
    cert, key = tls.ensure_certificate(folder)
    return cert, key, tls.file_fingerprint(cert)


@asynccontextmanager
async def agent(
    data_dir: Path, cert: tuple[Path, Path] | None, port: int = 0, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[str, Counting]]:
    """The site agent (uvicorn, this event loop) on host:port, HTTPS with `cert`, plain HTTP without."""
    settings = Settings(data_dir=data_dir, site_user=SITE_USER, site_password=SITE_PASSWORD, ssh_connect_timeout=3)
    counting = Counting(create_site_app(settings))
    port = port or free_port()
    ssl_files = {"ssl_certfile": str(cert[0]), "ssl_keyfile": str(cert[1])} if cert else {}
    config = uvicorn.Config(counting, host=host, port=port, log_level="warning", lifespan="on", **ssl_files)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"{'https' if cert else 'http'}://{host}:{port}", counting
    finally:
        server.should_exit = True
        await task


def outward_address() -> str | None:
    """An address of this machine that is not loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # UDP: nothing is sent, the kernel only picks the source address
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


ANSWER = b'{"status": true, "info": "", "data": {"hostname": "recorder"}, "code": ""}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER
)


class TlsRecorder:
    """A bare TLS server in a thread: counts completed handshakes and keeps every application byte received; it
    answers the first bytes with one JSON envelope."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = bytearray()
        self.handshakes = self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with contextlib.suppress(OSError), conn:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as secure:
                    self.handshakes += 1
                    if self._read_request(secure):
                        secure.sendall(RESPONSE)

    def _read_request(self, secure: ssl.SSLSocket) -> bool:
        """Read one whole request (headers and Content-Length body); whether anything came."""
        start = len(self.received)
        while True:
            data = secure.recv(65536)
            self.received += data
            request = bytes(self.received[start:])
            head, _, body = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                           if line.startswith(b"content-length:")), 0)  # fmt: skip
            if not data or (b"\r\n\r\n" in request and len(body) >= length):
                return bool(request)

    @contextlib.contextmanager
    def running(self) -> Iterator[TlsRecorder]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)
            self.listener.close()
