"""Instances end to end: the platform in process, a real site agent over HTTP, the Kubernetes API fake behind it.

`site` (here, used by the other instance, board and buy tests too) is an org with a center whose agent runs on
loopback, a cluster recorded from the fake's kubeconfig, two nodes, and components with stock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from kboss.app import create_site_app
from kboss.db.models import Center
from kboss.kube.labels import instance_name, namespace_name, service_name
from kboss.settings import Settings
from tests.api.test_compat_catalog import CENTER, CPCC, assert_fields_like_spec
from tests.kubefake import KubeFake
from tests.support.api import Api, User
from tests.support.site import SITE_PASSWORD, SITE_USER, serve
from tests.support.spec import success_example

NEW = f"{CPCC}/cpcpodyaml/new_cpcpodyaml.dspy"
GET = f"{CPCC}/cpcpodyaml/get_cpcpodyaml.dspy"
UPDATE = f"{CPCC}/cpcpodyaml/update_cpcpodyaml.dspy"
DELETE = f"{CPCC}/cpcpodyaml/delete_cpcpodyaml.dspy"
WIDGETS = f"{CPCC}/cpcwidget/get_cpcwidget.dspy"
# Memory is sold per Gi here, so 512Mi takes a whole Gi: the conversion and the rounding up are both visible.
COMPONENTS = [
    {"type": "cpu", "model": "STANDARD", "unit_price": 2, "resource_unit": "核", "stock": 64},
    {"type": "memory", "model": "STANDARD", "unit_price": 0.1, "resource_unit": "Gi", "stock": 256},
    {"type": "disk", "model": "SYS", "unit_price": 0.005, "resource_unit": "Gi", "stock": 1000},
    {"type": "disk", "model": "DATA", "unit_price": 0.01, "resource_unit": "Gi", "stock": 2000},
    {"type": "gpu", "model": "RTX5090-32G", "unit_price": 6, "resource_unit": "卡", "stock": 8},
]
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob", "Pod")


@dataclass
class Site:
    api: Api
    admin: User
    cpcid: str
    clusterid: str
    fake: KubeFake
    kubeconfig: str
    orgid: str

    @property
    def namespace(self) -> str:
        """The org's namespace in the cluster, named as the spec's example names it."""
        return namespace_name(self.clusterid, self.orgid)


@asynccontextmanager
async def site_agent_url(data_dir: Path) -> AsyncIterator[str]:
    settings = Settings(data_dir=data_dir, site_user=SITE_USER, site_password=SITE_PASSWORD, ssh_connect_timeout=3)
    async with serve(create_site_app(settings)) as url:
        yield url


def seed_nodes(fake: KubeFake) -> None:
    fake.add_node("k8s-master", roles=["control-plane"], cpu="4", memory="16Gi", labels={"kyy-gpu": "false"})
    fake.add_node(
        "k8s-worker-1",
        cpu="16",
        memory="64Gi",
        gpus=4,
        internal_ip="192.168.0.2",
        labels={"kboss.io/gpu-model": "RTX5090-32G", "kyy-gpu": "true"},
    )


async def record_cluster(user: User, cpcid: str, kubeconfig: str, name: str = "朝阳区") -> str:
    response = await user.http.post(
        "/api/v1/clusters/import",
        json={"cpcid": cpcid, "name": name, "kubeconfig": kubeconfig},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    cluster_id: str = response.json()["id"]
    return cluster_id


async def add_components(admin: User, cpcid: str, clusterid: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        await admin.ok(f"{CPCC}/cpcwidget/add_cpcwidget.dspy", cpcid=cpcid, clusterid=clusterid, add_opt="yes", **row)


async def add_center(admin: User, url: str) -> str:
    center = {**CENTER, "pcapi_url": url, "api_user": SITE_USER, "api_pwd": SITE_PASSWORD}
    cpcid: str = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **center))["id"]
    return cpcid


@pytest.fixture
async def site(api: Api, data_dir: Path, fake: KubeFake, kubeconfig: str) -> AsyncIterator[Site]:
    seed_nodes(fake)
    async with site_agent_url(data_dir / "site") as url:
        admin = await api.user("alice", "acme")
        cpcid = await add_center(admin, url)
        clusterid = await record_cluster(admin, cpcid, kubeconfig)
        await add_components(admin, cpcid, clusterid, COMPONENTS)
        orgid = (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["rows"][0]["orgid"]
        fake.clear_requests()
        yield Site(api, admin, cpcid, clusterid, fake, kubeconfig, orgid)


def instance_params(clusterid: str, **extra: Any) -> dict[str, Any]:
    """The spec's example order, with a 10Gi system disk and no GPU."""
    example = success_example(NEW)["data"]
    names = ("action", "namespace_name", "serviceaccount_name", "podcd_name", "service_name", "id", "cpcid", "orgid")
    params = {key: str(value) for key, value in example.items() if key not in names}
    params.update(clusterid=clusterid, source_gpu="0", cpu_model="STANDARD", gpu_model="", disk_sys_limit="10")
    params.update(extra)
    return params


async def consumed(site: Site, clusterid: str | None = None) -> dict[str, int]:
    """`type model` → consumed in the cluster, as get_cpcwidget shows it."""
    rows = (await site.admin.ok(WIDGETS, "GET", cpcid=site.cpcid))["rows"]
    wanted = clusterid or site.clusterid
    found = {}
    for row in rows:
        stocks = [s["consumed"] for s in row["import_export"] if s["clusterid"] == wanted]
        found[f"{row['type']} {row['model']}"] = sum(stocks)
    return found


def workload(fake: KubeFake, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = fake.get(kind, name, namespace)
    assert found is not None, f"{kind} {namespace}/{name} missing"
    return found


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    if obj["kind"] == "Pod":
        return list(spec["containers"])
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return list(spec["template"]["spec"]["containers"])


def leftovers(fake: KubeFake, namespace: str) -> list[str]:
    """Every object of the namespace but the ServiceAccount the org's instances share."""
    kinds = (*WORKLOAD_KINDS, "Service", "Ingress", "Secret", "PersistentVolumeClaim", "ConfigMap")
    return [f"{kind}/{obj['metadata']['name']}" for kind in kinds for obj in fake.list(kind, namespace)]


# ---------------------------------------------------------------------------------------------


async def test_the_spec_example_is_created_scaled_and_deleted(site: Site) -> None:
    admin, fake = site.admin, site.fake
    created = await admin.ok(NEW, **instance_params(site.clusterid))
    assert_fields_like_spec(NEW, created)
    name = instance_name(created["id"])
    assert created["namespace_name"] == site.namespace == namespace_name(site.clusterid, site.orgid)
    assert created["podcd_name"] == f"{name}-statefulset"
    assert created["service_name"] == service_name(created["id"])  # svc- prefixed when the id starts with a digit
    assert created["serviceaccount_name"] == f"{site.namespace}-serviceaccount"
    assert (created["source_authpasswd"], created["cpcid"], created["action"]) == ("******", site.cpcid, "apply")

    statefulset = workload(fake, "StatefulSet", created["podcd_name"], site.namespace)
    assert statefulset["spec"]["replicas"] == 1
    assert containers(statefulset)[0]["resources"]["limits"] == {
        "cpu": "1",
        "memory": "512Mi",
        "ephemeral-storage": "10Gi",
    }
    service = workload(fake, "Service", created["service_name"], site.namespace)
    assert (service["spec"]["type"], service["spec"]["ports"][0]["nodePort"]) == ("NodePort", 30063)
    assert fake.get("Secret", f"{name}-credentials", site.namespace) is not None
    # 1 core, 512Mi → 1Gi (memory is sold per Gi), a 10Gi system disk and the 49Gi data disk of one replica.
    assert await consumed(site) == {
        "cpu STANDARD": 1,
        "memory STANDARD": 1,
        "disk SYS": 10,
        "disk DATA": 49,
        "gpu RTX5090-32G": 0,
    }

    listed = await admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert_fields_like_spec(GET, listed)
    row = listed["rows"][0]
    assert (listed["total"], row["username"], row["source_replicasetnum"], row["source_apiport"]) == (
        1,
        "alice",
        1,
        6035,
    )
    assert row["source_authpasswd"] == "******"
    revealed = await admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid, reveal=1)
    assert revealed["rows"][0]["source_authpasswd"] == "kyycloud"

    scaled = await admin.ok(UPDATE, **instance_params(site.clusterid, id=created["id"], source_replicasetnum="2"))
    assert_fields_like_spec(UPDATE, scaled)
    assert scaled["source_replicasetnum"] == "2"
    assert workload(fake, "StatefulSet", created["podcd_name"], site.namespace)["spec"]["replicas"] == 2
    assert await consumed(site) == {
        "cpu STANDARD": 2,
        "memory STANDARD": 1,
        "disk SYS": 20,
        "disk DATA": 98,
        "gpu RTX5090-32G": 0,
    }

    assert await admin.ok(DELETE, id=created["id"]) == {"id": created["id"]}
    assert leftovers(fake, site.namespace) == []
    assert set((await consumed(site)).values()) == {0}
    assert (await admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid))["total"] == 0


ENGINES = ("StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob", "Standalone")
PORT_MODES = {"NodePort": "LinuxOS", "LoadBalancer": "RelationalDB", "Ingress": "Jupyter"}


def _variant(clusterid: str, engine: str, port_mode: str, index: int) -> dict[str, Any]:
    """An order of `engine` and `port_mode`, with the defaults of its instance type (image, ports, mount)."""
    storage = "0" if engine in ("DaemonSet", "Deployment") else "5Gi"  # neither can share a ReadWriteOnce volume
    return instance_params(
        clusterid,
        source_name=f"{engine}-{port_mode}".lower(),
        source_podengine=engine,
        source_portmode=port_mode,
        instance_type=PORT_MODES[port_mode],
        source_restartpolicy="OnFailure" if engine in ("Job", "CronJob") else "Always",
        source_outsideport=str(30100 + index) if port_mode == "NodePort" else "",
        source_storagelimits=storage,
        pod_imagepath="",
        source_insideport="",
        source_apiport="",
        source_mountpath="",
    )


def _check_objects(fake: KubeFake, created: dict[str, Any], port_mode: str) -> dict[str, Any]:
    namespace, name = created["namespace_name"], instance_name(created["id"])
    kind = "Pod" if created["source_podengine"] == "Standalone" else created["source_podengine"]
    found = workload(fake, kind, created["podcd_name"], namespace)
    service = workload(fake, "Service", created["service_name"], namespace)
    assert service["spec"]["type"] == ("ClusterIP" if port_mode == "Ingress" else port_mode)
    assert (fake.get("Ingress", f"{name}-ingress", namespace) is not None) == (port_mode == "Ingress")
    claim = fake.get("PersistentVolumeClaim", f"{name}-data", namespace)
    separate_claim = created["source_storagelimits"] != "0" and kind != "StatefulSet"
    assert (claim is not None) == separate_claim
    return found


async def test_every_engine_and_port_mode_is_created_changed_and_deleted(site: Site) -> None:
    admin, fake = site.admin, site.fake
    made = []
    # Every engine once, every port mode twice (each combination would only repeat the same code paths).
    modes = list(PORT_MODES) * 2
    for index, (engine, port_mode) in enumerate(zip(ENGINES, modes, strict=True)):
        params = _variant(site.clusterid, engine, port_mode, index)
        created = await admin.ok(NEW, **params)
        _check_objects(fake, created, port_mode)
        made.append((created, params, port_mode))
    assert (await consumed(site))["cpu STANDARD"] == len(made)

    for created, params, port_mode in made:
        await _change(site, created, params, port_mode)

    for created, _, _ in made:
        await admin.ok(DELETE, id=created["id"])
    assert leftovers(fake, site.namespace) == []
    assert set((await consumed(site)).values()) == {0}


async def _change(site: Site, created: dict[str, Any], params: dict[str, Any], port_mode: str) -> None:
    """Scale what has replicas; give the others 2 cores. A Job's or a bare Pod's spec cannot change: the API
    refuses, and the instance stays as it was, stock included."""
    engine, before = created["source_podengine"], await consumed(site)
    if engine in ("StatefulSet", "Deployment"):
        await site.admin.ok(UPDATE, **{**params, "id": created["id"], "source_replicasetnum": "2"})
        assert _check_objects(site.fake, created, port_mode)["spec"]["replicas"] == 2
        return
    change = {**params, "id": created["id"], "source_cpurate": "2"}
    if engine in ("Job", "Standalone"):
        assert "站点服务" in await site.admin.refused(UPDATE, **change)
        assert containers(_check_objects(site.fake, created, port_mode))[0]["resources"]["limits"]["cpu"] == "1"
        assert await consumed(site) == before
        return
    await site.admin.ok(UPDATE, **change)
    assert containers(_check_objects(site.fake, created, port_mode))[0]["resources"]["limits"]["cpu"] == "2"
    assert (await consumed(site))["cpu STANDARD"] == before["cpu STANDARD"] + 1


async def test_members_see_and_change_only_their_own_instances(site: Site) -> None:
    admin, api = site.admin, site.api
    bob = await api.user("bob", "acme", admin=False)
    mine = await admin.ok(NEW, **instance_params(site.clusterid, source_name="alice-box"))
    his = await bob.ok(NEW, **instance_params(site.clusterid, source_name="bob-box", source_outsideport="30064"))
    where = {"cpcid": site.cpcid, "clusterid": site.clusterid}

    seen_by_bob = await bob.ok(GET, "GET", **where, reveal=1)
    assert [(r["id"], r["username"], r["source_authpasswd"]) for r in seen_by_bob["rows"]] == [
        (his["id"], "bob", "******")
    ]
    seen_by_alice = await admin.ok(GET, "GET", **where)
    assert {r["username"] for r in seen_by_alice["rows"]} == {"alice", "bob"}

    assert "不存在" in await bob.refused(DELETE, id=mine["id"])
    assert "不存在" in await bob.refused(UPDATE, **instance_params(site.clusterid, id=mine["id"]))
    assert site.fake.get("StatefulSet", mine["podcd_name"], site.namespace) is not None

    mallory = await api.user("mallory", "evil-corp")
    assert "不存在" in await mallory.refused(GET, "GET", **where)
    assert "不存在" in await mallory.refused(DELETE, id=his["id"])

    await admin.ok(DELETE, id=his["id"])  # an admin manages the whole org's instances
    await bob.refused(DELETE, id=his["id"])
    assert (await admin.ok(GET, "GET", **where))["total"] == 1


async def test_short_stock_is_refused_with_the_quotes_words_and_nothing_happens(site: Site) -> None:
    params = instance_params(site.clusterid, source_gpu="9", gpu_model="RTX5090-32G")
    assert await site.admin.refused(NEW, **params) == "gpu RTX5090-32G 库存不足 (库存: 8, 请求: 9)"
    assert site.fake.requests == []
    assert set((await consumed(site)).values()) == {0}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"source_cpurate": "-1"}, "source_cpurate"),
        ({"source_memrate": "lots"}, "source_memrate"),
        ({"source_podengine": "Bash"}, "source_podengine"),
        ({"cpu_model": "XEON-9999"}, "cpu_model"),
        ({"cpu_model": ""}, "cpu_model"),
        ({"source_gpu": "1", "gpu_model": ""}, "gpu_model"),
        ({"source_outsideport": "80"}, "source_outsideport"),
        ({"source_selflabel": "app:$(reboot)"}, "source_selflabel"),
        ({"source_authpasswd": "short"}, "source_authpasswd"),
        ({"clusterid": "no-such-cluster"}, "算力集群不存在"),
    ],
)
async def test_bad_orders_are_refused_before_anything_is_written_or_sent(
    site: Site, change: dict[str, str], named: str
) -> None:
    assert named in await site.admin.refused(NEW, **{**instance_params(site.clusterid), **change})
    assert site.fake.requests == []
    assert set((await consumed(site)).values()) == {0}


async def test_callers_cannot_choose_object_names(site: Site) -> None:
    params = instance_params(site.clusterid, namespace_name="kube-system", podcd_name="coredns", service_name="x")
    created = await site.admin.ok(NEW, **params)
    assert created["namespace_name"] == site.namespace and created["podcd_name"] != "coredns"
    assert site.fake.list("StatefulSet", "kube-system") == []


async def test_a_refused_apply_takes_back_the_stock_the_row_and_the_objects(site: Site) -> None:
    first = await site.admin.ok(NEW, **instance_params(site.clusterid, source_name="first"))
    after_first = await consumed(site)
    # The node port is taken by the first: the API refuses the Service after the workload was applied.
    message = await site.admin.refused(NEW, **instance_params(site.clusterid, source_name="second"))
    assert "30063" in message
    assert await consumed(site) == after_first
    listed = await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert [row["id"] for row in listed["rows"]] == [first["id"]]
    assert [obj["metadata"]["name"] for obj in site.fake.list("StatefulSet", site.namespace)] == [first["podcd_name"]]
    assert len(site.fake.list("Secret", site.namespace)) == 1


async def test_an_agent_that_is_down_writes_nothing(site: Site) -> None:
    dead = {**CENTER, "id": site.cpcid, "pcapi_url": "http://127.0.0.1:9", "api_pwd": "******"}
    await site.admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", **dead)
    message = await site.admin.refused(NEW, **instance_params(site.clusterid))
    assert "无法连接站点服务" in message and SITE_PASSWORD not in message
    assert set((await consumed(site)).values()) == {0}
    assert (await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid))["total"] == 0
    assert site.fake.requests == []


async def test_deleting_needs_the_cluster_unless_an_admin_forces_it(site: Site) -> None:
    created = await site.admin.ok(NEW, **instance_params(site.clusterid))
    dead = {**CENTER, "id": site.cpcid, "pcapi_url": "http://127.0.0.1:9", "api_pwd": "******"}
    await site.admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", **dead)
    assert "无法连接站点服务" in await site.admin.refused(DELETE, id=created["id"])
    row = (await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid))["rows"][0]
    assert (row["state"], (await consumed(site))["cpu STANDARD"]) == ("ready", 1)

    await site.admin.ok(DELETE, id=created["id"], force=1)
    assert set((await consumed(site)).values()) == {0}


async def test_a_simulated_center_is_never_called_silently(site: Site) -> None:
    async with site.api.app.state.kboss.sessions() as session:
        await session.execute(update(Center).where(Center.id == site.cpcid).values(simulated=True))
        await session.commit()
    # A simulated center's instances go to the in-memory simulated site, never to the agent it records.
    await site.admin.ok(NEW, **instance_params(site.clusterid))
    assert site.fake.requests == []
