"""Required means required on /pcapi too: without any of the document's required parameters of an endpoint the
agent answers `{"status": false, "info": ...}` naming it, and neither the cluster nor any machine is contacted.

Driven by the contract; the SSH account's quirks (a kubeconfig stands in for the master's account, `password`
or `private_key` for `psssword`, `port` defaults to 22) are the tables of `kboss.wire.required`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kboss.wire import contract, required
from tests.kubefake import KubeFake
from tests.support.site import site_agent

PCAPI = "/pcapi/api/v1/cluster/common"


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for entry in contract.endpoints():
        if not entry["path"].startswith("/pcapi/"):
            continue
        defaulted = required.DEFAULTED.get(entry["path"], {})
        cases += [
            (entry["method"], entry["path"], name)
            for name in contract.required_params(entry["path"])
            if name not in defaulted
        ]
    return cases


@pytest.fixture
async def ssh_door() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP port that counts the connections made to it (an SSH attempt would be one)."""
    seen: list[int] = []

    async def knock(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        writer.close()

    server = await asyncio.start_server(knock, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen


def _full(path: str, kubeconfig: str, port: int) -> dict[str, Any]:
    return {
        "kubeconfig": kubeconfig,
        "host": "127.0.0.1",
        "port": str(port),
        "user": "root",
        "psssword": "pw",
        "worker_node": "w1",
        "node_name": "w1",
        "label": "a=b",
        "opt": "label",
        "state": "cordon",
        "resources": json.dumps([{"id": "p", "resources": [{"type": "cpu", "amount": 1}]}]),
        "role": "worker" if path.endswith("new_worker") else "master",
        "join_command": "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef "
        "--discovery-token-ca-cert-hash sha256:" + "0" * 64,
    }


def test_the_issues_examples_are_cases() -> None:
    cases = {(path.rsplit("/", 1)[-1], name) for _, path, name in _cases()}
    assert {("new_cluster", "role"), ("new_worker", "role"), ("determine_accommodat", "kubeconfig")} <= cases


@pytest.mark.parametrize(("method", "path", "name"), _cases())
async def test_each_required_parameter_is_required(
    data_dir: Path, fake: KubeFake, kubeconfig: str, ssh_door: tuple[int, list[int]], method: str, path: str, name: str
) -> None:
    port, knocks = ssh_door
    fake.add_node("w1")
    fake.clear_requests()
    params = _full(path, kubeconfig, port)
    for left_out in (name, *required.STAND_INS.get(path, {}).get(name, ())):
        params.pop(left_out, None)
    async with site_agent(data_dir) as site:
        response = await site.request(method, path, **({"params": params} if method == "GET" else {"data": params}))
    body = response.json()
    assert isinstance(body, dict) and body["status"] is False, body
    assert body["info"] == f"参数 {name} 无效: 缺少该参数", body
    assert fake.requests == []
    assert knocks == []


async def test_determine_accommodat_names_kubeconfig_and_reads_a_get_body(
    data_dir: Path, fake: KubeFake, kubeconfig: str
) -> None:
    fake.add_node("w1")
    path = f"{PCAPI}/determine_accommodat"
    resources = [{"id": "p", "resources": [{"type": "cpu", "amount": 1}]}]
    async with site_agent(data_dir) as site:
        missing = (await site.get(path, params={"resources": json.dumps(resources)})).json()
        # The document's examples send a JSON body with GET: it is read.
        answered = (await site.request("GET", path, json={"kubeconfig": kubeconfig, "resources": resources})).json()
    assert missing["info"] == "参数 kubeconfig 无效: 缺少该参数"
    assert answered == []
