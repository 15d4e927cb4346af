"""Every endpoint of both APIs, called with a customer's token and with every id of the provider's machines and of
another customer's instance: only the buying endpoints answer, none of them shows anything of the other customer
or a secret of the provider, and nothing changes (a generated matrix: a new endpoint joins it by itself)."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from kboss.api.compat.registry import HANDLERS
from kboss.api.customer_gate import allowed_for_customers
from kboss.db.models import Cluster, Device
from kboss.db.models_instances import Instance
from tests.api.test_instances import NEW, instance_params
from tests.api.test_simulated_site import _simulated_cluster
from tests.customers.test_buying import _publish
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User


async def _world(api: Api) -> tuple[User, dict[str, str], list[str]]:
    """A provider's published simulated cluster, customer A's instance on it, and customer B's token."""
    provider = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, provider)
    first = await _customer(api, provider, "甲客户", "buyer-a")
    await _customer(api, provider, "乙客户", "buyer-b")
    await _publish(api, provider, cpcid, "all")
    await api.http.post(f"/api/v1/accounts/{first['id']}/credit", json={"amount": "50"}, headers=provider.headers)
    victim = await _login(api, "buyer-a")
    made = await victim.ok(NEW, **instance_params(cid, source_name="secret-box-of-a"))
    async with api.app.state.kboss.sessions() as session:
        device = (await session.scalars(select(Device).where(Device.cpcid == cpcid))).first()
        cluster = await session.get_one(Cluster, cid)
        box = api.app.state.kboss.box
        secrets = [box.open(cluster.kubeconfig), box.open(device.adminpwd)] if device else []
        user_a = (await api.http.get("/api/v1/auth/me", headers=victim.headers)).json()["user_id"]
    ids = {"cpcid": cpcid, "clusterid": cid, "instance": made["id"], "customer_a": first["id"], "user_a": user_a}
    ids["device"] = device.id if device else ""
    markers = [made["id"], "secret-box-of-a", first["id"], user_a, *[s for s in secrets if len(s) >= 8]]
    return await _login(api, "buyer-b"), ids, markers


def _compat_params(ids: dict[str, str]) -> dict[str, str]:
    resources = json.dumps([{"type": "cpu", "model": "STANDARD", "amount": 1}])
    return {
        "cpcid": ids["cpcid"], "clusterid": ids["clusterid"], "id": ids["instance"], "deviceid": ids["device"],
        "worker_nodeid": ids["device"], "ctl_nodeid": ids["device"], "orgid": ids["customer_a"], "reveal": "1",
        "resources": resources, "duration": "1", "duration_unit": "小时", "kyylabels": "", "worker_node": "sim-02",
        "node_name": "sim-02", "label": "k=v", "opt": "label", "state": "cordon", "name": "x", "unit_price": "0",
    }  # fmt: skip


def _native_calls(api: Api, ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """Every native route of the application as its OpenAPI document lists it (a new router joins by itself)."""
    values = {
        "center_id": ids["cpcid"], "cluster_id": ids["clusterid"], "device_id": ids["device"],
        "instance_id": ids["instance"], "customer_id": ids["customer_a"], "orgid": ids["customer_a"],
        "user_id": ids["user_a"], "op_id": "op", "node": "sim-02", "key": "kboss.io/x", "label_id": "l",
        "component_id": "c",
    }  # fmt: skip
    calls = []
    for template, operations in api.app.openapi()["paths"].items():
        # The caller's own login is left out: a logout would end the test.
        if template.startswith("/api/v1/") and not template.startswith("/api/v1/auth/"):
            path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
            calls += [(method.upper(), template.replace("{key}", "{key:path}"), path) for method in operations]
    assert len(calls) > 60
    return calls


async def _state(api: Api, ids: dict[str, str]) -> tuple[Any, ...]:
    async with api.app.state.kboss.sessions() as session:
        instance = await session.get_one(Instance, ids["instance"])
        return (instance.state, instance.source_name, instance.orgid)


async def test_a_customer_reaches_only_the_buying_endpoints_and_sees_nobody_elses(api: Api) -> None:
    attacker, ids, markers = await _world(api)
    before = await _state(api, ids)
    for path in sorted(HANDLERS):
        method = "GET" if "/get_" in path or "obtaining" in path or "accrual" in path else "POST"
        body = await attacker.call(path, method, **_compat_params(ids))
        # What an answer holds, not its message: a refusal may name the id the caller itself sent.
        text = json.dumps(body.get("data"), ensure_ascii=False)
        if not allowed_for_customers(method, path, path):
            assert body["status"] is False and "没有这个接口" in body["msg"], path
        assert not [m for m in markers if m in text], (path, text[:300])
    for method, template, path in _native_calls(api, ids):
        answer = await api.http.request(method, path, json={}, headers=attacker.headers)
        assert answer.status_code < 500, (method, path, answer.text[:300])
        if not allowed_for_customers(method, path, template):
            assert answer.status_code == 404 and "没有这个接口" in answer.text, (method, template, answer.text)
        # (The caller's own audit trail records the ids this very test sent: an echo of its acts, not a leak.)
        if answer.status_code < 400 and template != "/api/v1/audit":
            assert not [m for m in markers if m in answer.text], (method, path, answer.text[:300])
    assert await _state(api, ids) == before
    # Every call above was the attacker's, logged in throughout (a refusal for want of a login would prove nothing).
    assert (await api.http.get("/api/v1/auth/me", headers=attacker.headers)).status_code == 200
