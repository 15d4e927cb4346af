"""Selling instances on a simulated center: the in-memory site (`kboss.sites.simulated.site`) answers the
instance flow, the boards, node labels and the buy page's capacity check; a real center never gets it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kboss.catalog.centers import SIMULATED_URL
from kboss.cli.demo import add_demo_center
from kboss.clusters.plan import register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.db.models import Center
from kboss.operations.steps import Registry
from kboss.sites import SiteClient
from kboss.sites.audited import AuditedSite
from kboss.sites.simulated.machines import SimulatedMachines
from kboss.sites.simulated.site import SimulatedSiteClient, forget, site_for_center
from tests.api.test_buy import BUY, product
from tests.api.test_cluster_ops_kit import NEW_CLUSTER, NEW_WORKER, create_params, running_worker
from tests.api.test_compat_catalog import CENTER
from tests.api.test_instances import COMPONENTS, DELETE, NEW, add_components, instance_params
from tests.api.test_node_drain import ended
from tests.operations.kit import SCALE
from tests.support.api import Api, User, running_api

CPCC = "/dev/cpcc"
PODS = f"{CPCC}/cpcpod/get_cpcpod.dspy"
NODES = f"{CPCC}/cpcworker/get_cpcworker.dspy"
LABEL = f"{CPCC}/cpclabel/setup_cpclabel.dspy"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        yield running
    forget()


async def _simulated_cluster(api: Api, admin: User, components: list[dict[str, Any]] = COMPONENTS) -> tuple[str, str]:
    state = api.app.state.kboss
    async with state.sessions() as session:
        made = await add_demo_center(session, state.box, "acme")
    master, worker, *_ = made.device_ids
    async with running_worker(
        api, register_cluster_kinds(Registry()), SiteEnv(state.box, machines=SimulatedMachines(SCALE))
    ):
        built = await admin.ok(NEW_CLUSTER, **create_params(made.center_id, master))
        cid = str(built["clusterid"])
        await admin.ok(NEW_WORKER, cpcid=made.center_id, clusterid=cid, worker_nodeid=worker)
    await add_components(admin, made.center_id, cid, components)
    return made.center_id, cid


async def test_an_instance_is_sold_seen_labelled_and_deleted_on_a_simulated_center(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, admin)
    where = {"cpcid": cpcid, "clusterid": cid}

    nodes = {row["node_name"]: row for row in (await admin.ok(NODES, "GET", **where))["rows"]}
    assert set(nodes) == {"sim-01-gpu", "sim-02"}
    assert nodes["sim-01-gpu"]["node_role"] == "控制节点" and nodes["sim-02"]["node_role"] == "工作节点"
    assert "kboss.io/gpu-model=RTX4090-24G" in nodes["sim-01-gpu"]["node_labels"]

    bound = await admin.ok(LABEL, **where, worker_node="sim-02", label="kyy-gpu=false", opt="label")
    assert "kyy-gpu=false" in bound["node_labels"]
    nodes = {row["node_name"]: row for row in (await admin.ok(NODES, "GET", **where))["rows"]}
    assert "kyy-gpu=false" in nodes["sim-02"]["node_labels"]
    refused = await admin.refused(LABEL, **where, worker_node="sim-02", label="kyy-gpu=true", opt="unlabel")
    assert 'kyy-gpu 当前值为 "false"' in refused, refused
    nodes = {row["node_name"]: row for row in (await admin.ok(NODES, "GET", **where))["rows"]}
    assert "kyy-gpu=false" in nodes["sim-02"]["node_labels"]

    created = await admin.ok(NEW, **instance_params(cid))
    pods = (await admin.ok(PODS, "GET", **where))["rows"]
    assert [(p["pod_name"], p["pod_running"], p["instance_id"]) for p in pods] == [
        (f"{created['podcd_name']}-0", "Running", created["id"])
    ]
    assert pods[0]["pod_node"] == "sim-02"  # the spec example asks for kyy-gpu=false nodes

    products = [
        product("small", ("cpu", 2), ("memory", 2048)),
        product("gpu9", ("gpu", 9, "RTX4090-24G")),
        product("off-label", ("cpu", 1), labels=["kyy-gpu=true"]),
    ]
    answer = await admin.call(BUY, "GET", **where, resources=json.dumps(products), kyylabels="")
    assert (answer["status"], answer["reason"]) == (True, "dynamic"), answer
    assert answer["data"] == ["gpu9", "off-label"]

    await admin.ok(LABEL, **where, worker_node="sim-02", label="kyy-gpu", opt="unlabel")
    nodes = {row["node_name"]: row for row in (await admin.ok(NODES, "GET", **where))["rows"]}
    assert not any(label.startswith("kyy-gpu") for label in nodes["sim-02"]["node_labels"])

    await admin.ok(DELETE, id=created["id"])
    assert (await admin.ok(PODS, "GET", **where))["rows"] == []


async def test_a_real_center_never_gets_the_simulated_site(api: Api) -> None:
    state = api.app.state.kboss
    real = Center(id="c1", name="真实", simulated=False, pcapi_url="https://site.example", api_user="u")
    real.api_pwd = state.box.seal("p")
    simulated = Center(id="c2", name="模拟", simulated=True, pcapi_url="", api_user="", api_pwd="")
    async with state.sessions() as session:
        site = site_for_center(real, state.box, session, "cluster")
        assert isinstance(site, AuditedSite) and isinstance(site.site, SiteClient)
        await site.site.aclose()
        played = site_for_center(simulated, state.box, session, "cluster")
        assert isinstance(played, AuditedSite) and isinstance(played.site, SimulatedSiteClient)
        with pytest.raises(ValueError):
            SimulatedSiteClient(real, session, "cluster")


async def test_probing_a_simulated_device_answers_its_recorded_facts(api: Api) -> None:
    admin = await api.user("alice", "acme")
    state = api.app.state.kboss
    async with state.sessions() as session:
        made = await add_demo_center(session, state.box, "acme")
    response = await api.http.post(f"/api/v1/devices/{made.device_ids[0]}/probe", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    data = body.get("data", body)
    assert data["facts"]["simulated"] is True
    assert (data["suggested"]["cpu_stock"], data["suggested"]["memory_stock"]) == (64, 512)
    assert (data["suggested"]["gpu_model"], data["suggested"]["gpu_stock"]) == ("RTX4090-24G", 8)


async def test_a_simulated_node_is_cordoned_drained_and_uncordoned(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, admin)
    where = {"cpcid": cpcid, "clusterid": cid}
    await admin.ok(LABEL, **where, worker_node="sim-02", label="kyy-gpu=false", opt="label")
    created = await admin.ok(NEW, **instance_params(cid))
    pod = f"{created['podcd_name']}-0"
    assert await _pod_nodes(admin, where) == {pod: "sim-02"}  # the spec example asks for kyy-gpu=false nodes

    # Drained (an operation), its StatefulSet pod is recreated under the same name, Pending: no other node may
    # take it.
    detail = await drained(api, admin, cid, "sim-02")
    assert detail["state"] == "succeeded", detail["last_error"]
    assert detail["steps"][-1]["result"]["evicted"] == [f"{created['namespace_name']}/{pod}"]
    pods = (await admin.ok(PODS, "GET", **where))["rows"]
    assert [(p["pod_name"], p["pod_running"], p["pod_node"]) for p in pods] == [(pod, "Pending", "无")]
    nodes = {row["node_name"]: row for row in (await admin.ok(NODES, "GET", **where))["rows"]}
    assert (nodes["sim-02"]["node_status"], nodes["sim-02"]["node_schedulable"]) == ("已就绪,禁止调度", False)
    assert nodes["sim-01-gpu"]["node_status"] == "已就绪"

    # The capacity check refuses cordoned nodes, as the scheduler does; uncordoned, the pod runs again.
    await _schedule(api, admin, cid, "sim-01-gpu", state="cordon")
    products = json.dumps([product("small", ("cpu", 1))])
    answer = await admin.call(BUY, "GET", **where, resources=products, kyylabels="")
    assert answer["data"] == ["small"], answer
    for node in ("sim-01-gpu", "sim-02"):
        await _schedule(api, admin, cid, node, state="uncordon")
    answer = await admin.call(BUY, "GET", **where, resources=products, kyylabels="")
    assert answer["data"] == [], answer
    assert await _pod_nodes(admin, where) == {pod: "sim-02"}

    # A pod no controller owns (a Standalone instance) is not evicted: the drain fails and names it.
    lone = await admin.ok(NEW, **instance_params(cid, source_name="lone", source_podengine="Standalone",
                                                 source_outsideport="30064"))  # fmt: skip
    detail = await drained(api, admin, cid, "sim-02")
    assert detail["state"] == "failed"
    assert lone["podcd_name"] in detail["last_error"] and "不受任何控制器管理" in detail["last_error"]
    assert (await _pod_nodes(admin, where))[lone["podcd_name"]] == "sim-02"

    response = await api.http.post(
        f"/api/v1/clusters/{cid}/nodes/sim-09/schedule", json={"state": "cordon"}, headers=admin.headers
    )
    assert response.status_code == 404 and "sim-09" in response.json()["detail"]


async def drained(api: Api, admin: User, cid: str, node: str) -> dict[str, Any]:
    """Drain `node` with a simulated worker running, and wait for the operation to end."""
    env = SiteEnv(api.app.state.kboss.box, machines=SimulatedMachines(SCALE))
    async with running_worker(api, register_cluster_kinds(Registry()), env):
        started = await api.http.post(f"/api/v1/clusters/{cid}/nodes/{node}/drain", headers=admin.headers)
        assert started.status_code == 202, started.text
        return await ended(admin, started.json()["id"])


async def _schedule(api: Api, admin: User, cid: str, node: str, **body: object) -> dict[str, object]:
    response = await api.http.post(f"/api/v1/clusters/{cid}/nodes/{node}/schedule", json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def _pod_nodes(admin: User, where: dict[str, str]) -> dict[str, str]:
    return {row["pod_name"]: row["pod_node"] for row in (await admin.ok(PODS, "GET", **where))["rows"]}


async def test_probing_a_device_added_by_hand_answers_a_plausible_simulated_machine(api: Api) -> None:
    admin = await api.user("alice", "acme")
    state = api.app.state.kboss
    async with state.sessions() as session:
        made = await add_demo_center(session, state.box, "acme")
    device = {"cpcid": made.center_id, "name": "hand-made", "ip": "10.250.0.99", "devicetype": "1"}
    response = await api.http.post("/api/v1/devices", json={**device, "adminuser": "root", "adminpwd": "pw-1"},
                                   headers=admin.headers)  # fmt: skip
    assert response.status_code == 201, response.text
    answers = [
        await api.http.post(f"/api/v1/devices/{response.json()['id']}/probe", headers=admin.headers) for _ in (1, 2)
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    facts, suggested = answers[0].json()["facts"], answers[0].json()["suggested"]
    assert facts["simulated"] is True and "(simulated)" in facts["os"] and "(simulated)" in facts["cpu_model"]
    assert suggested["cpu_stock"] > 0 and suggested["memory_stock"] > 0 and suggested["sysdisk_stock"] > 0
    assert answers[1].json() == answers[0].json()  # the same machine every time


async def test_a_simulated_center_is_created_only_when_asked_for_explicitly(api: Api) -> None:
    admin = await api.user("alice", "acme")
    contact = {"name": "试用中心", "contactname": "Ahexl", "contactphone": "13141005621"}

    async def create(body: dict[str, object]) -> httpx.Response:
        return await api.http.post("/api/v1/centers", json=body, headers=admin.headers)

    made = await create({**contact, "simulated": True})
    assert made.status_code == 201, made.text
    assert (made.json()["simulated"], made.json()["pcapi_url"]) == (True, SIMULATED_URL)
    real = await create({**CENTER, "name": "真实中心"})
    assert real.status_code == 201 and real.json()["simulated"] is False  # never the default
    for body, named in [
        ({**contact, "simulated": "yes"}, "simulated"),
        ({**contact, "simulated": True, "pcapi_url": "http://10.0.0.2:8000"}, "pcapi_url"),
        ({**contact, "simulated": True, "name": ""}, "name"),
        ({**contact, "simulated": False}, "pcapi_url"),
    ]:
        refused = await create(body)
        assert refused.status_code == 422 and f"参数 {named} 无效" in refused.json()["detail"], refused.text
    # The compat API stays as the spec has it: no such parameter, a center there is a real one.
    compat = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **{**CENTER, "name": "兼容中心", "simulated": "true"})
    assert compat["simulated"] is False
