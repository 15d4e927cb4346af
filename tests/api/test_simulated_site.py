"""Selling instances on a simulated center: the in-memory site (`kboss.site_client.simulated`) answers the
instance flow, the boards, node labels and the buy page's capacity check; a real center never gets it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kboss.cli_demo import add_demo_center
from kboss.db.models import Center
from kboss.services.cluster_ops import register_simulated_steps
from kboss.services.op_simulated import SimulatedSite
from kboss.services.op_steps import OpEnv, Registry
from kboss.site_client import SiteClient
from kboss.site_client.simulated import SimulatedSiteClient, forget, site_for_center
from tests.api.test_buy import BUY, product
from tests.api.test_cluster_ops_kit import NEW_CLUSTER, NEW_WORKER, create_params, running_worker, wire
from tests.api.test_instances import COMPONENTS, DELETE, NEW, add_components, instance_params
from tests.services.test_operations_kit import SCALE
from tests.support.api import Api, User, running_api

CPCC = "/dev/cpcc"
PODS = f"{CPCC}/cpcpod/get_cpcpod.dspy"
NODES = f"{CPCC}/cpcworker/get_cpcworker.dspy"
LABEL = f"{CPCC}/cpclabel/setup_cpclabel.dspy"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        wire(running.app)
        yield running
    forget()


async def _simulated_cluster(api: Api, admin: User) -> tuple[str, str]:
    state = api.app.state.kboss
    async with state.sessions() as session:
        made = await add_demo_center(session, state.box, "acme")
    master, worker, *_ = made.device_ids
    async with running_worker(api, register_simulated_steps(Registry(), SimulatedSite(SCALE)), OpEnv(state.box)):
        built = await admin.ok(NEW_CLUSTER, **create_params(made.center_id, master))
        cid = str(built["clusterid"])
        await admin.ok(NEW_WORKER, cpcid=made.center_id, clusterid=cid, worker_nodeid=worker)
    await add_components(admin, made.center_id, cid, COMPONENTS)
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
        assert isinstance(site, SiteClient)
        await site.aclose()
        assert isinstance(site_for_center(simulated, state.box, session, "cluster"), SimulatedSiteClient)
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
