"""An attacker's view: every secret-bearing parameter, in every encoding, on both APIs, through a real uvicorn.

Each secret carries a distinctive marker (`LEAK…`, letters and digits only, so that it survives any encoding); the
whole log at DEBUG (uvicorn's access log included, written by uvicorn itself as `kboss serve` runs it) and every
answer, headers included, must be free of every marker.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.test_compat_catalog import CENTER, CPCC, device_params
from tests.support.api import Api
from tests.support.site import serve

SECRET_NAMES = [
    "password", "adminpwd", "api_pwd", "psssword", "private_key", "ssh_key", "kubeconfig", "token",
    "join_command", "source_authpasswd", "clusterjoin", "ctl_psssword", "worker_psssword",
]  # fmt: skip
# How a name may be spelled on the wire; a server decodes each of them to the name itself.
NAME_SPELLINGS = [
    lambda name: name,
    str.upper,
    lambda name: "".join(f"%{ord(c):02X}" for c in name),  # every character percent-encoded
    lambda name: "%25" + f"{ord(name[0]):02X}" + name[1:],  # doubly encoded first character
]
COMPAT_PATHS = [f"{CPCC}/cpclist/add_cpclist.dspy", f"{CPCC}/cpcnode/add_cpcnode.dspy", "/computing/x.dspy"]
AGENT = "/pcapi/api/v1/cluster/common"
AGENT_PATHS = [
    f"{AGENT}/get_cluster_nodes",
    f"{AGENT}/yaml_apply_delete",
    f"{AGENT}/new_worker",
    "/pcapi/api/v1/native/provision/plan",
    "/pcapi/api/v1/native/provision/steps/kubeadm_join",
]
NATIVE_PATHS = ["/api/v1/centers", "/api/v1/devices", "/api/v1/clusters/import", "/api/v1/auth/login"]


@dataclass
class Secrets:
    """Mints distinctive secret values and remembers the markers that must never come back."""

    markers: list[str] = field(default_factory=list)
    _count: itertools.count[int] = field(default_factory=itertools.count)

    def marker(self, name: str) -> str:
        """A bare marker, for places that accept only letters and digits (a join command, a YAML key)."""
        marker = f"LEAK{next(self._count):04d}Z{name.replace('_', '')}"
        self.markers.append(marker)
        return marker

    def new(self, name: str) -> str:
        marker = self.marker(name)
        if name == "kubeconfig":  # a kubeconfig that fails to parse, with its token in it
            return f"apiVersion: v1\nusers: [{{name: a, user: {{token: {marker}}}}}]\ncontexts: *{marker}\n  ["
        return f"p@ss {marker}#&="  # characters that percent-encoding changes

    def form(self, spell: Any = str) -> dict[str, str]:
        return {spell(name): self.new(name) for name in SECRET_NAMES}


@pytest.fixture
async def served(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind a real uvicorn, configured as `kboss serve` runs it (`log_config=None`, uvicorn's own access
    log on); the `api` fixture has run the lifespan already."""
    async with serve(api.app, log_config=None, log_level=None, lifespan="off") as base:
        http = httpx.AsyncClient(base_url=base, timeout=30)
        async with http:
            yield http


async def _send_everything(api: Api, http: httpx.AsyncClient, secrets: Secrets) -> list[httpx.Response]:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    bearer, basic = admin.headers, httpx.BasicAuth(api.app.state.site.user, api.app.state.site.password)
    answers: list[httpx.Response] = []
    for spell in NAME_SPELLINGS:
        for path in COMPAT_PATHS:
            base = {**device_params(cpcid), **CENTER} if "cpcnode" in path else CENTER
            answers.append(await http.post(path, data={**base, **secrets.form(spell)}, headers=bearer))
            answers.append(await http.get(path, params=secrets.form(spell), headers=bearer))
            answers.append(await http.post(path, json={**base, **secrets.form(spell)}, headers=bearer))
        for path in AGENT_PATHS:
            target = {"host": "127.0.0.1", "port": "9", "user": "root", "action": "apply", "yaml": "a: *x"}
            answers.append(await http.post(path, data={**target, **secrets.form(spell)}, auth=basic))
            answers.append(await http.get(path, params={**target, **secrets.form(spell)}, auth=basic))
        for path in NATIVE_PATHS:
            body = {"cpcid": cpcid, "name": "n", "username": "alice", **secrets.form(spell)}
            answers.append(await http.post(path, json=body, headers=bearer))
            answers.append(await http.get(path, params=secrets.form(spell), headers=bearer))
    answers.extend(await _raw_encodings(http, secrets, bearer))
    answers.extend(await _kubeconfigs(http, secrets, bearer, basic, cpcid))
    return answers


async def _raw_encodings(http: httpx.AsyncClient, secrets: Secrets, bearer: dict[str, str]) -> list[httpx.Response]:
    """Query strings written by hand: percent-encoded values, `+` for spaces, the spec's own `pssswor%64`."""
    pairs = [f"{quote(name)}={quote(secrets.new(name), safe='')}" for name in SECRET_NAMES]
    pairs += [f"pssswor%64={secrets.new('psssword')}", f"api+pwd={secrets.new('api_pwd')}", secrets.new("bare")]
    query = "&".join(pairs)
    return [
        await http.get(f"{CPCC}/cpclist/get_cpclist.dspy?{query}", headers=bearer),
        await http.get(f"/pcapi/api/v1/native/provision/plan?{query}"),  # unauthenticated: refused, still logged
        await http.get(f"/api/v1/centers?{query}"),
    ]


async def _kubeconfigs(
    http: httpx.AsyncClient, secrets: Secrets, bearer: dict[str, str], basic: httpx.BasicAuth, cpcid: str
) -> list[httpx.Response]:
    """Kubeconfigs that fail to parse in each way a parser can fail, and join commands, each holding a token."""
    shapes = [
        "users: [{name: a, user: {token: %s}}]\n  bad: [",
        "contexts: [{name: a, context: %s}]\ncurrent-context: a\n",
        "clusters: [{name: c, cluster: {server: 'https://u:%s@[h'}}]\ncontexts: [{name: a, context: {cluster: c}}]\n",
        "clusters: [{name: c, cluster: {server: 'ftp://%s'}}]\ncontexts: [{name: a, context: {cluster: c}}]\n",
        "current-context: %s\ncontexts: [{name: a, context: {cluster: b}}]\nclusters: [{name: b, cluster: {}}]\n",
        "\t%s: x\n",
        "kind: %s\n",
        "- %s\n",
    ]
    answers = []
    for shape in shapes:
        kubeconfig = shape % secrets.marker("token")
        body = {"cpcid": cpcid, "name": "n", "kubeconfig": kubeconfig}
        answers.append(await http.post("/api/v1/clusters/import", json=body, headers=bearer))
        form = {"kubeconfig": kubeconfig, "action": "apply", "yaml": "a: b"}
        answers.append(await http.post(f"{AGENT}/get_cluster_nodes", data=form, auth=basic))
    for join in ("kubeadm join 10.0.0.1:6443 --%s=x", "kubeadm join 10.0.0.1:6443 -%s", "kubeadm join %s:6443"):
        form = {"host": "127.0.0.1", "port": "9", "user": "root", "role": "worker", "cluster_type": "0"}
        form["join_command"] = join % secrets.marker("token")
        answers.append(await http.post(f"{AGENT}/new_worker", data={**form, "psssword": "x"}, auth=basic))
    return answers


def _leaks(markers: list[str], texts: list[str]) -> list[str]:
    return [marker for marker in markers if any(marker in text for text in texts)]


async def test_no_secret_reaches_a_log_line_or_an_answer(
    api: Api, served: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = Secrets()
    with caplog.at_level(logging.DEBUG):
        for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "kboss"):
            caplog.set_level(logging.DEBUG, logger=name)
        answers = await _send_everything(api, served, secrets)
    logged = [caplog.text, *(record.getMessage() for record in caplog.records)]
    answered = [answer.text + str(answer.headers) for answer in answers]
    assert len(secrets.markers) > 500
    assert not _leaks(secrets.markers, logged), "secrets in the log"
    assert not _leaks(secrets.markers, answered), [t[:300] for t in answered if _leaks(secrets.markers, [t])]
    # The access log was captured, and harmless values still show in it.
    access = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert len(access) == len(answers)
    assert any("/pcapi/api/v1/cluster/common/get_cluster_nodes?host=127.0.0.1&port=9" in line for line in access)
    assert any("/api/v1/clusters/import" in line for line in access)
    assert any(answer.status_code == 422 and "kubeconfig" in answer.text for answer in answers)
