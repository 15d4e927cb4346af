"""Requests per second of `accrual_price` (the spec's 4-line quote) against a trivial endpoint, same server, same run.

Starts `kboss serve` on a fresh SQLite data dir (or KBOSS_DATABASE_URL), loads the spec's catalog, then drives each
endpoint with 50 concurrent keep-alive clients for a fixed time. Target: the quote reaches >= 60 % of the trivial
endpoint's rate.

    .venv/bin/python bench/quote_rps.py [--seconds 10] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.test_compat_prices import SPEC_RESOURCES, spec_catalog  # noqa: E402

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
    "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KBOSS_DATA_DIR": data_dir, "KBOSS_LOG_LEVEL": "WARNING"}
    kboss = str(ROOT / ".venv" / "bin" / "kboss")
    subprocess.run(
        [kboss, "user", "create", "--username", "bench", "--password", "bench-pass", "--org", "bench", "--admin"],
        env=env,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen([kboss, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


async def prepare(base: str) -> tuple[dict[str, str], dict[str, str]]:
    async with httpx.AsyncClient(base_url=base) as http:
        token = (await http.post("/api/v1/auth/login", json={"username": "bench", "password": "bench-pass"})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        center = {
            "name": "bench",
            "pcapi_url": "http://127.0.0.1:1",
            "api_user": "u",
            "api_pwd": "p",
            "contactname": "c",
            "contactphone": "13141005621",
        }
        cpcid = (await http.post("/dev/cpcc/cpclist/add_cpclist.dspy", data=center, headers=headers)).json()["data"][
            "id"
        ]
        imported = await http.post(
            "/api/v1/clusters/import", headers=headers, json={"cpcid": cpcid, "name": "c", "kubeconfig": KUBECONFIG}
        )
        clusterid = imported.json()["id"]
        for row in spec_catalog():
            params = {
                k: row[k] for k in ("type", "model", "unit_price", "resource_unit", "charge_unit", "account_unit")
            }
            await http.post(
                "/dev/cpcc/cpcwidget/add_cpcwidget.dspy",
                headers=headers,
                data={**params, "cpcid": cpcid, "clusterid": clusterid, "stock": 100000},
            )
        query = {"cpcid": cpcid, "resources": json.dumps(SPEC_RESOURCES), "duration": "2", "duration_unit": "天"}
        check = (await http.get("/dev/cpcc/cpcwidget/accrual_price.dspy", params=query, headers=headers)).json()
        assert check["status"] is True, check
        return headers, query


async def drive(
    base: str, path: str, headers: dict[str, str], params: dict[str, str], clients: int, seconds: float
) -> float:
    """Requests per second: with wrk when installed (a C client leaves the CPU to the server), else in Python."""
    if shutil.which("wrk"):
        return await asyncio.to_thread(drive_wrk, base, path, headers, params, clients, seconds)
    return await drive_python(base, path, headers, params, clients, seconds)


def drive_wrk(
    base: str, path: str, headers: dict[str, str], params: dict[str, str], clients: int, seconds: float
) -> float:
    url = str(httpx.URL(base + path, params=params))
    argv = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if "Non-2xx" in out or found is None:
        raise RuntimeError(out)
    return float(found.group(1))


async def drive_python(
    base: str, path: str, headers: dict[str, str], params: dict[str, str], clients: int, seconds: float
) -> float:
    """Keep-alive GET loops on raw sockets: httpx's pool costs more CPU than the server under 50 clients."""
    host, port = base.removeprefix("http://").split(":")
    target = str(httpx.URL(path, params=params))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode()
    deadline = time.perf_counter() + seconds
    counts = [0] * clients

    async def client(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if b" 200 " not in status:
                raise RuntimeError(status.decode())
            counts[index] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return sum(counts) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating pairs of runs; the median pair counts")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    quote_path = "/dev/cpcc/cpcwidget/accrual_price.dspy"
    pairs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_server(data_dir, port)
        try:
            headers, query = await prepare(base)
            await drive(base, "/healthz", headers, {}, args.clients, 1)  # warm-up
            # Alternating short runs, so that a change in the machine's load hits both endpoints alike.
            for _ in range(args.rounds):
                trivial = await drive(base, "/healthz", headers, {}, args.clients, args.seconds)
                quote = await drive(base, quote_path, headers, query, args.clients, args.seconds)
                pairs.append((trivial, quote))
        finally:
            server.terminate()
            server.wait()
    for trivial, quote in pairs:
        print(
            f"trivial /healthz {trivial:8.0f} req/s   accrual_price {quote:8.0f} req/s   ratio {quote / trivial:6.1%}"
        )
    trivial, quote = sorted(pairs, key=lambda pair: pair[1] / pair[0])[len(pairs) // 2]
    ratio = quote / trivial
    client = "wrk" if shutil.which("wrk") else "python client"
    print(
        f"median pair: {trivial:.0f} vs {quote:.0f} req/s, ratio {ratio:.1%} "
        f"(target >= 60%: {'met' if ratio >= 0.6 else 'NOT met'}; {args.clients} clients, {client})"
    )


if __name__ == "__main__":
    asyncio.run(main())
