"""Shell metacharacters in any string parameter of the spec's /pcapi endpoints: a clear error, nothing runs.

Built from the spec itself, so a parameter added there is covered here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.kubefake import KubeFake
from tests.support.site import site_agent
from tests.support.spec import endpoints, success_example

HOSTILE = "x;touch /tmp/kboss-pwned`id`$(id)"
# Secrets may contain anything: they are never put on a command line (tested in tests/ssh).
FREE_TEXT = {"Authorization", "psssword", "password", "source_authpasswd", "kubeconfig", "resources", "join_command"}
PROVISIONING = {"new_cluster", "new_worker"}  # tested with the provisioning steps


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for entry in endpoints():
        name = entry["path"].rsplit("/", 1)[-1]
        if not entry["path"].startswith("/pcapi/") or name in PROVISIONING:
            continue
        for param in entry["params"]:
            if param["type"] in ("string", "boolean") and param["name"] not in FREE_TEXT:
                cases.append((entry["method"], entry["path"], param["name"]))
    return cases


def _valid_params(path: str, kubeconfig: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kubeconfig": kubeconfig,
        "worker_node": "w1",
        "node_name": "w1",
        "label": "a=b",
        "opt": "label",
        "state": "cordon",
        "action": "apply",
        "force": "false",
    }
    if path.endswith("yaml_apply_delete"):
        example = success_example("/dev/cpcc/cpcpodyaml/new_cpcpodyaml.dspy")["data"]
        base |= {key: str(value) for key, value in example.items()}
    if path.endswith("determine_accommodat"):
        base["resources"] = json.dumps([{"id": "p", "resources": [{"type": "cpu", "amount": 1}]}])
    return base


@pytest.mark.parametrize(("method", "path", "param"), _cases())
async def test_hostile_text_is_refused_before_anything_runs(
    data_dir: Path, fake: KubeFake, kubeconfig: str, method: str, path: str, param: str
) -> None:
    fake.add_node("w1")
    fake.clear_requests()
    params = {**_valid_params(path, kubeconfig), param: HOSTILE}
    if param in ("host", "user", "port"):
        params.pop("kubeconfig")
        params |= {"host": "127.0.0.1", "user": "root", "port": "22", "psssword": "pw", param: HOSTILE}
    async with site_agent(data_dir) as site:
        response = await site.request(method, path, **({"params": params} if method == "GET" else {"data": params}))
    body = response.json()
    assert isinstance(body, dict) and body["status"] is False, (param, body)
    assert param in body["info"] or param.replace("_", "") in body["info"], (param, body["info"])
    assert fake.requests == []
    assert not os.path.exists("/tmp/kboss-pwned")  # noqa: ASYNC240


async def test_unknown_node_and_negative_amounts(data_dir: Path, fake: KubeFake, kubeconfig: str) -> None:
    fake.add_node("w1")
    async with site_agent(data_dir) as site:
        ghost = (
            await site.post(
                "/pcapi/api/v1/cluster/common/node_state_switch",
                data={"kubeconfig": kubeconfig, "node_name": "ghost", "state": "cordon"},
            )
        ).json()
        negative = (
            await site.get(
                "/pcapi/api/v1/cluster/common/determine_accommodat",
                params={
                    "kubeconfig": kubeconfig,
                    "resources": json.dumps([{"id": "p", "resources": [{"type": "cpu", "amount": -2}]}]),
                },
            )
        ).json()
    assert ghost["status"] is False and "ghost" in ghost["info"]
    assert negative["status"] is False and "amount" in negative["info"]


async def test_unknown_paths_are_not_found(data_dir: Path) -> None:
    async with site_agent(data_dir) as site:
        response = await site.get("/pcapi/api/v1/cluster/common/nope")
    assert response.status_code == 404
