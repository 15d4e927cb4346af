"""An operator's whole first visit, in headless Chromium against the real app (no stubbed API, no route fulfilled in
the browser): the app's own operation worker plays a simulated center's builds at a tiny time scale.

Sign in through the form; add a simulated center and two devices, probed; build a cluster from an idle device and
add a worker, following each operation's steps and log to the end; label a node; price components, create an
instance and see its pod on the board and the instance in the list; quote in the calculator; cordon and uncordon a
node, drain one (an operation: its steps and log, then the board); remove the worker; switch to English. Every step
leaves a screenshot in test-artifacts/console/."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from kboss.cli.demo import add_demo_center
from tests.support.databases import SqliteFactory
from tests.web.browser import PASSWORD, Console, api, running_console, shot
from tests.web.test_console import fill

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
# A cluster in ≈1.4 s instead of ≈4.5 min.
TIME_SCALE = 0.005
OPERATION_SECONDS = 60_000  # ms: generous, the machine is shared
# A simulated probe picks a machine by address: this one has 8 GPUs, the worker's a plain 32-core server.
MASTER = {"name": "gpu-a", "ip": "10.9.0.1"}
WORKER = {"name": "cpu-b", "ip": "10.9.0.3"}
CLUSTER = "试用集群"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory, sqlite_factory: SqliteFactory) -> AsyncIterator[Console]:
    async with running_console(
        tmp_path_factory.mktemp("journey"), sqlite_factory, simulated_time_scale=TIME_SCALE, worker_poll_seconds=0.2
    ) as running:
        yield running


async def sign_in(console: Console) -> Page:
    username = await console.user()
    page = await console.open("/", login=False)
    # The first page of a fresh server and browser: give a busy machine time to load the modules.
    await expect(page.get_by_test_id("login-form")).to_be_visible(timeout=20000)
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await shot(page, "journey-01-login")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("page-title")).to_have_text("算力中心")
    return page


async def add_simulated_center(page: Page) -> str:
    await page.get_by_test_id("center-add").click()
    await page.get_by_test_id("field-simulated").check()
    # No site agent for a simulated center: its fields are hidden and not asked for.
    await expect(page.get_by_test_id("field-pcapi_url")).to_be_hidden()
    await fill(page, {"name": "试用中心", "contactname": "Ahexl", "contactphone": "13141005621"})
    await shot(page, "journey-02-center-dialog")
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("center-试用中心")
    await expect(row.get_by_test_id("simulated-badge")).to_have_text("模拟")
    await shot(page, "journey-03-centers")
    await row.get_by_role("link", name="算力设备").click()
    await expect(page.get_by_test_id("simulated-note")).to_contain_text("模拟算力中心")
    return page.url.rsplit("/", 1)[1]


async def add_device(page: Page, device: dict[str, str], cores: str) -> None:
    await page.get_by_test_id("device-add").click()
    await fill(page, {**device, "adminpwd": "any-pass-1"})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id(f"device-{device['name']}")
    await expect(row).to_contain_text("× 0")
    # Nothing recorded yet: the simulated probe answers a plausible machine, said to be made up.
    await row.get_by_test_id("device-probe").click()
    await expect(page.get_by_test_id("probe-note")).to_contain_text("模拟算力中心")
    await expect(page.get_by_test_id("field-cpu_stock")).to_have_value(cores)
    await shot(page, f"journey-04-probe-{device['name']}")
    await page.get_by_test_id("dialog-submit").click()
    await expect(row).to_contain_text(f"× {cores}")


async def follow_operation(page: Page, name: str, first_step: str, ending: str = "成功") -> None:
    """On the operation's page: its log and steps until it ends (successfully, unless `ending` says otherwise)."""
    await expect(page).to_have_url(re.compile(r"#/operations/[\w-]+$"))
    status = page.get_by_test_id("op-follow-status")
    await expect(status).to_have_text(f"操作已结束: {ending}", timeout=OPERATION_SECONDS)
    await expect(page.get_by_test_id("op-log")).to_contain_text(f"--- {first_step}")  # the step's first run began
    steps = page.get_by_test_id("op-steps")
    await expect(steps.locator("tbody tr")).not_to_have_count(0)
    if ending == "成功":
        unfinished = steps.locator("tbody tr").filter(has_not=page.get_by_test_id("op-state-succeeded"))
        await expect(unfinished).to_have_count(0)
    await shot(page, f"journey-{name}")


async def build_cluster(page: Page, cpcid: str) -> None:
    await page.get_by_test_id("nav-clusters").click()
    await expect(page.get_by_test_id("empty")).to_contain_text("还没有集群")
    await page.get_by_test_id("cluster-create").click()
    await page.get_by_test_id("field-device_id").select_option(label=f"{MASTER['name']} ({MASTER['ip']})")
    await fill(page, {"name": CLUSTER})
    await page.get_by_test_id("dialog-submit").click()
    await follow_operation(page, "05-create-cluster", "preflight")

    await page.goto(f"/#/clusters/{cpcid}")
    await page.get_by_test_id(f"cluster-{CLUSTER}").get_by_test_id("cluster-add-worker").click()
    await page.get_by_test_id("field-device_id").select_option(label=f"{WORKER['name']} ({WORKER['ip']})")
    await page.get_by_test_id("dialog-submit").click()
    await follow_operation(page, "06-add-worker", "preflight")


async def add_catalog(page: Page, cpcid: str) -> None:
    """A node label for the catalog, and priced components with stock in the cluster."""
    await page.get_by_test_id("nav-labels").click()
    await page.get_by_test_id("label-add").click()
    await fill(page, {"name": "通用节点", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "false"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("label-text")).to_have_text("kyy-gpu=false")
    await page.goto(f"/#/components/{cpcid}")
    for line in (("cpu", "STANDARD", "核", "2", "32"), ("memory", "STANDARD", "Gi", "0.1", "128")):
        await page.get_by_test_id("component-add").click()
        await fill(page, dict(zip(("type", "model", "resource_unit", "unit_price", "stock"), line, strict=True)))
        await page.get_by_test_id("dialog-submit").click()
        await expect(page.get_by_test_id(f"component-{line[0]}-STANDARD")).to_be_visible()
    await shot(page, "journey-07-components")


async def open_board(page: Page, cpcid: str) -> None:
    await page.goto(f"/#/clusters/{cpcid}")
    await page.get_by_test_id(f"cluster-{CLUSTER}").get_by_test_id("cluster-board").click()
    await expect(page.get_by_test_id("nodes-table").locator("tbody tr")).to_have_count(2)


async def label_worker(page: Page, cpcid: str) -> None:
    await open_board(page, cpcid)
    node = page.get_by_test_id(f"node-{WORKER['name']}")
    await node.get_by_test_id("node-label").click()
    await page.get_by_test_id("field-label").select_option("kyy-gpu=false")
    await page.get_by_test_id("dialog-submit").click()
    await expect(node.get_by_test_id("node-label-chip").filter(has_text="kyy-gpu=false")).to_be_visible()
    await shot(page, "journey-08-node-labelled")


async def create_instance(page: Page, cpcid: str) -> None:
    await page.get_by_test_id("nav-instances").click()
    await expect(page.get_by_test_id("empty")).to_contain_text("该集群还没有实例")
    await page.get_by_test_id("instance-create").click()
    await fill(page, {"source_name": "web1", "source_authpasswd": "a-long-secret", "source_cpurate": "2"})
    await fill(page, {"source_memrate": "4", "source_nodeselector": "kyy-gpu=false", "source_outsideport": "30080"})
    await fill(page, {"source_selflabel": "app:web"})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("instance-web1")
    await expect(row.get_by_test_id("instance-replicas")).to_have_text("StatefulSet × 1")
    cluster = (await api(page, "GET", f"/api/v1/centers/{cpcid}/clusters"))["rows"][0]
    created = (await api(page, "GET", f"/api/v1/clusters/{cluster['id']}/instances"))["rows"][0]
    assert (created["source_selflabel"], created["source_nodeselector"]) == ("app:web", "kyy-gpu=false")
    await shot(page, "journey-09-instances")

    await open_board(page, cpcid)
    pod = page.get_by_test_id("pods-table").locator("tbody tr")
    await expect(pod).to_have_count(1)
    await expect(pod).to_contain_text("Running")
    await expect(pod).to_contain_text(WORKER["name"])
    await expect(pod).to_contain_text("web1")
    await shot(page, "journey-10-pod-board")


async def quote(page: Page, cpcid: str) -> None:
    await page.goto(f"/#/calculator/{cpcid}")
    line = page.get_by_test_id("quote-line").first
    await line.get_by_test_id("line-amount").fill("4")
    await page.get_by_test_id("quote-duration").fill("2")
    await page.get_by_test_id("quote-duration-unit").select_option("天")
    await page.get_by_test_id("quote-submit").click()
    # 4 cores × 2 元 × 48 h; the page shows what the API computed.
    await expect(page.get_by_test_id("quote-total")).to_have_text("384.00")
    await expect(page.get_by_test_id("quote-message")).to_have_text("汇算正常")
    await shot(page, "journey-11-quote")


async def cordon_drain_uncordon(page: Page, cpcid: str) -> None:
    await open_board(page, cpcid)
    node = page.get_by_test_id(f"node-{MASTER['name']}")
    await node.get_by_test_id("node-cordon").click()
    await expect(page.get_by_test_id("confirm")).to_contain_text("禁止调度节点")
    await page.get_by_test_id("confirm-yes").click()
    await expect(node).to_contain_text("已就绪,禁止调度")
    await shot(page, "journey-12-cordoned")
    await node.get_by_test_id("node-uncordon").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(node.get_by_test_id("node-cordon")).to_be_visible()

    # Draining the worker is an operation: its page follows cordon and evict. It moves the pod's StatefulSet
    # replica, which nowhere else fits (no other node has the label): Pending.
    worker = page.get_by_test_id(f"node-{WORKER['name']}")
    await worker.get_by_test_id("node-drain").click()
    await expect(page.get_by_test_id("confirm")).to_contain_text("排空作为一项操作执行")
    await page.get_by_test_id("confirm-yes").click()
    await follow_operation(page, "13-drain", "cordon")
    await expect(page.get_by_test_id("op-log")).to_contain_text("已驱逐 ")
    await open_board(page, cpcid)
    await expect(page.get_by_test_id("pods-table")).to_contain_text("Pending")
    await expect(worker).to_contain_text("已就绪,禁止调度")
    await shot(page, "journey-13-drained")
    await worker.get_by_test_id("node-uncordon").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("pods-table")).to_contain_text("Running")
    await expect(worker.get_by_test_id("node-cordon")).to_be_visible()


async def remove_worker(page: Page, cpcid: str) -> None:
    await page.goto(f"/#/clusters/{cpcid}")
    await page.get_by_test_id(f"cluster-{CLUSTER}").get_by_test_id("cluster-remove-worker").click()
    dialog = page.get_by_test_id("remove-worker-dialog")
    await expect(dialog.get_by_test_id("remove-worker-note")).to_contain_text("排空")
    # Only the worker is offered: the control plane goes with the whole cluster.
    await expect(dialog.get_by_test_id("field-device_id").locator("option")).to_have_text(
        [f"{WORKER['name']} ({WORKER['ip']})"]
    )
    # web1 runs on the worker and nowhere else fits (only the worker has its label): refused at once, naming it.
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog.get_by_test_id("form-error")).to_contain_text("无法调度到其他节点")
    await expect(dialog.get_by_test_id("form-error")).to_contain_text("web1")
    await page.get_by_test_id("dialog-cancel").click()
    cluster = (await api(page, "GET", f"/api/v1/centers/{cpcid}/clusters"))["rows"][0]
    (web1,) = (await api(page, "GET", f"/api/v1/clusters/{cluster['id']}/instances"))["rows"]
    await api(page, "DELETE", f"/api/v1/instances/{web1['id']}")
    await page.get_by_test_id(f"cluster-{CLUSTER}").get_by_test_id("cluster-remove-worker").click()
    await dialog.get_by_test_id("dialog-submit").click()
    await follow_operation(page, "14-remove-worker", "drain")
    await page.goto(f"/#/devices/{cpcid}")
    await expect(page.get_by_test_id(f"device-{WORKER['name']}").get_by_test_id("status-idle")).to_be_visible()


async def switch_to_english(page: Page, cpcid: str) -> None:
    await page.goto(f"/#/clusters/{cpcid}")
    row = page.get_by_test_id(f"cluster-{CLUSTER}")
    await expect(row.get_by_test_id("cluster-remove-worker")).to_have_text("移除工作节点")
    await page.get_by_test_id("lang-switch").select_option("en")
    await expect(page.get_by_test_id("page-title")).to_have_text("Clusters · 试用中心")
    await expect(row.get_by_test_id("cluster-remove-worker")).to_have_text("Remove worker")
    await expect(row.get_by_test_id("cluster-remove")).to_have_text("Remove cluster")
    await expect(page.get_by_test_id("nav-instances")).to_have_text("Instances")
    await shot(page, "journey-15-english")


async def test_an_operators_first_visit(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await sign_in(console)
    cpcid = await add_simulated_center(page)
    await add_device(page, MASTER, "64")
    await add_device(page, WORKER, "32")
    await build_cluster(page, cpcid)
    await add_catalog(page, cpcid)
    await label_worker(page, cpcid)
    await create_instance(page, cpcid)
    await quote(page, cpcid)
    await cordon_drain_uncordon(page, cpcid)
    await remove_worker(page, cpcid)
    await switch_to_english(page, cpcid)
    no_page_errors()


async def finished(page: Page, op: dict[str, Any]) -> dict[str, Any]:
    for _ in range(600):
        found: dict[str, Any] = await api(page, "GET", f"/api/v1/operations/{op['id']}")
        if found["state"] not in ("pending", "running"):
            assert found["state"] == "succeeded", found
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op['id']} did not finish")


async def simulated_cluster_with_a_lone_pod(console: Console, page: Page) -> tuple[str, str, str]:
    """A demo center's cluster (sim-01-gpu + worker sim-02) running a Standalone instance on the worker: a pod no
    controller owns, which a drain must not evict. Set up through the API: the first test went through the forms."""
    me = await api(page, "GET", "/api/v1/auth/me")
    async with console.app.state.kboss.sessions() as session:
        demo = await add_demo_center(session, console.app.state.kboss.box, f"org-{me['username']}")
    master, worker = demo.device_ids[:2]
    create = {"cpcid": demo.center_id, "device_id": master, "name": CLUSTER}
    built = await finished(page, await api(page, "POST", "/api/v1/clusters", create))
    cid = built["cluster_id"]
    await finished(page, await api(page, "POST", f"/api/v1/clusters/{cid}/workers", {"device_id": worker}))
    for type_, unit, stock in (("cpu", "核", "32"), ("memory", "Gi", "64")):
        line = {"type": type_, "model": "STANDARD", "resource_unit": unit, "unit_price": "1", "stock": stock}
        await api(page, "POST", "/api/v1/components", {"cpcid": demo.center_id, "clusterid": cid, **line})
    lone = {"instance_type": "LinuxOS", "pod_imagepath": "docker.io/library/ubuntu:22.04", "source_name": "lone",
            "source_podengine": "Standalone", "source_restartpolicy": "Always",
            "source_authpasswd": "a-long-secret", "source_cpurate": "1", "source_memrate": "1Gi",
            "cpu_model": "STANDARD", "memory_model": "STANDARD"}  # fmt: skip
    # Placed on the worker while the control plane is closed; it could run on either, so a removal is accepted
    # and it is the drain that finds a pod no controller owns.
    schedule = f"/api/v1/clusters/{cid}/nodes/sim-01-gpu/schedule"
    await api(page, "POST", schedule, {"state": "cordon"})
    await api(page, "POST", f"/api/v1/clusters/{cid}/instances", lone)
    await api(page, "POST", schedule, {"state": "uncordon"})
    return demo.center_id, cid, worker


async def test_a_blocked_drain_says_why_and_a_blocked_removal_is_forced(
    console: Console, no_page_errors: Callable[[], None]
) -> None:
    page = await console.open("/#/centers")
    cpcid, cid, worker = await simulated_cluster_with_a_lone_pod(console, page)
    (pod,) = (await api(page, "GET", f"/api/v1/clusters/{cid}/pods"))["rows"]
    node_name = pod["pod_node"]
    assert node_name == "sim-02", pod
    await page.goto(f"/#/clusters/{cpcid}?board={cid}")
    node = page.get_by_test_id(f"node-{node_name}")
    await node.get_by_test_id("node-drain").click()
    await page.get_by_test_id("confirm-yes").click()
    # The drain's operation fails at its evict step, naming the pod and why; the node stays cordoned.
    await follow_operation(page, "drain-blocked", "cordon", ending="失败")
    steps = page.get_by_test_id("op-steps")
    await expect(steps.locator("tbody tr").filter(has_text="evict").get_by_test_id("op-state-failed")).to_be_visible()
    await expect(page.get_by_text(f"节点 {node_name} 未能排空").first).to_be_visible()
    await expect(page.get_by_text(pod["pod_name"]).first).to_be_visible()
    await expect(page.get_by_test_id("op-log")).to_contain_text("不受任何控制器管理")
    await expect(page.get_by_test_id("op-retry")).to_be_visible()
    await expect(page.get_by_test_id("op-force")).to_have_count(0)  # a drain is never forced
    await open_board_of(page, cpcid, cid)
    await expect(node).to_contain_text("禁止调度")

    # Removing the worker drains it first: the same pod blocks it, and the operation's page offers force.
    await page.goto(f"/#/clusters/{cpcid}")
    await page.get_by_test_id(f"cluster-{CLUSTER}").get_by_test_id("cluster-remove-worker").click()
    await page.get_by_test_id("remove-worker-dialog").get_by_test_id("dialog-submit").click()
    await follow_operation(page, "removal-blocked", "drain", ending="失败")
    await expect(page.get_by_text("不受任何控制器管理").first).to_be_visible()
    await expect(page.get_by_text("未删除节点").first).to_be_visible()
    await page.get_by_test_id("op-force").click()
    await expect(page.get_by_test_id("confirm")).to_contain_text("强制移除会直接删除无法驱逐的 Pod")
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("op-follow-status")).to_have_text("操作已结束: 成功", timeout=OPERATION_SECONDS)
    forced = await api(page, "GET", f"/api/v1/operations/{page.url.rsplit('/', 1)[1]}")
    assert (forced["kind"], forced["params"]["force"], forced["device_ids"]) == ("remove_worker", True, [worker])
    drain = next(step for step in forced["steps"] if step["name"] == "drain")
    assert drain["result"]["deleted"] == [f"{pod['pod_namespace']}/{pod['pod_name']}"]
    await expect(page.get_by_test_id("op-force")).to_have_count(0)
    await shot(page, "journey-removal-forced")
    assert (await api(page, "GET", f"/api/v1/clusters/{cid}/pods"))["rows"] == []
    no_page_errors()


async def open_board_of(page: Page, cpcid: str, cid: str) -> None:
    await page.goto(f"/#/clusters/{cpcid}?board={cid}")
    await expect(page.get_by_test_id("nodes-table").locator("tbody tr")).to_have_count(2)
