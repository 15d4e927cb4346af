"""The console's instances page, cluster boards, cluster operations and buy-page products, in headless Chromium,
against a cluster imported with a kubeconfig whose API server (127.0.0.1:1) and site agent (127.0.0.1:9) do not
answer: every page must say so clearly rather than hang or fail silently."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.async_api import Page, Route, expect

from tests.web.browser import Console, api, shot
from tests.web.test_console import center_with_cluster, fill

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def component(page: Page, cpcid: str, clusterid: str, type_: str, model: str, unit: str, stock: str) -> None:
    await api(
        page,
        "POST",
        "/api/v1/components",
        {
            "cpcid": cpcid,
            "clusterid": clusterid,
            "type": type_,
            "model": model,
            "resource_unit": unit,
            "unit_price": "1",
            "charge_unit": "小时",
            "account_unit": "元",
            "stock": stock,
        },
    )


async def test_instances_page(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    cpcid, clusterid = await center_with_cluster(page)
    await component(page, cpcid, clusterid, "cpu", "STANDARD", "核", "64")
    await component(page, cpcid, clusterid, "memory", "STANDARD", "Gi", "256")
    await page.goto(f"/#/instances/{cpcid}")
    await expect(page.get_by_test_id("empty")).to_contain_text("该集群还没有实例")

    await page.get_by_test_id("instance-create").click()
    dialog = page.get_by_test_id("instance-dialog")
    # The spec's dropdowns: the image follows the instance type, the restart policy the engine.
    await fill(page, {"instance_type": "RelationalDB"})
    await expect(page.get_by_test_id("field-pod_imagepath")).to_have_value("docker.io/library/mysql:8.0")
    await fill(page, {"source_podengine": "Job"})
    await expect(page.get_by_test_id("field-source_restartpolicy").locator("option")).to_have_text(
        ["OnFailure", "Never"]
    )
    await fill(page, {"instance_type": "LinuxOS", "source_podengine": "StatefulSet"})
    await expect(page.get_by_test_id("field-source_portmode").locator("option")).to_have_text(
        ["NodePort", "Ingress", "LoadBalancer"]
    )
    await fill(page, {"source_name": "web1", "source_authpasswd": "a-long-secret", "source_cpurate": "lots"})
    await dialog.get_by_test_id("dialog-submit").click()
    # The API names the bad field; the dialog marks it and stays open.
    await expect(page.get_by_test_id("form-error")).to_contain_text("source_cpurate")
    await expect(page.get_by_test_id("field-source_cpurate")).to_have_attribute("aria-invalid", "true")

    await fill(page, {"source_cpurate": "2"})
    await page.get_by_test_id("unit-source_memrate").select_option("Gi")
    await dialog.get_by_test_id("dialog-submit").click()
    # Neither the site agent nor the cluster answers: a message, not a spinner forever.
    error = page.get_by_test_id("form-error")
    await expect(error).to_be_visible(timeout=20000)
    await expect(error).not_to_be_empty()
    await shot(page, "instance-dialog-error")
    await dialog.get_by_test_id("dialog-cancel").click()
    await expect(page.get_by_test_id("empty")).to_contain_text("该集群还没有实例")
    no_page_errors()


async def test_cluster_board_and_operations(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    cpcid, _ = await center_with_cluster(page)
    await page.goto(f"/#/clusters/{cpcid}")
    row = page.get_by_test_id("cluster-朝阳区")
    await row.get_by_test_id("cluster-board").click()
    # Both boards say why they are empty: the cluster does not answer.
    await expect(page.get_by_test_id("node-board").get_by_test_id("board-error")).to_be_visible(timeout=20000)
    await expect(page.get_by_test_id("pod-board").get_by_test_id("board-error")).to_be_visible()
    await expect(page.get_by_test_id("board-status")).to_contain_text("10")
    await shot(page, "cluster-board-unreachable")

    # Leaving the page stops the refresh: no board request after it.
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if "/nodes" in request.url else None)
    await page.get_by_test_id("board-close").click()
    await expect(page.get_by_test_id("node-board")).to_have_count(0)

    # Add worker with no idle device: said so. Create from an idle device: 202 and the operation's live log.
    await row.get_by_test_id("cluster-add-worker").click()
    await expect(page.get_by_test_id("toast-warn")).to_contain_text("空闲设备")
    await api(
        page,
        "POST",
        "/api/v1/devices",
        {
            "cpcid": cpcid,
            "name": "idle1",
            "ip": "192.168.7.7",
            "devicetype": "1",
            "role": "master",
            "adminuser": "root",
            "adminpwd": "secret",
        },
    )
    created: list[dict] = []

    async def accepted(route: Route) -> None:
        created.append(json.loads(route.request.post_data or "{}"))
        await route.fulfill(status=202, json={"id": "op-test-1", "kind": "create_cluster", "state": "pending"})

    await page.route("**/api/v1/clusters", accepted)
    await page.get_by_test_id("cluster-create").click()
    await fill(page, {"name": "新集群"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page).to_have_url(f"{console.base}/#/operations/op-test-1")
    assert created[0]["name"] == "新集群" and created[0]["cpcid"] == cpcid and created[0]["device_id"]
    await page.unroute("**/api/v1/clusters")
    assert not seen, seen
    no_page_errors()


async def test_buy_products(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    cpcid, clusterid = await center_with_cluster(page)
    await component(page, cpcid, clusterid, "cpu", "STANDARD", "核", "64")
    await component(page, cpcid, clusterid, "memory", "STANDARD", "Gi", "256")
    await page.goto("/#/buy")
    await expect(page.get_by_test_id("products-pick")).to_be_visible()
    await page.get_by_test_id("buy-center").select_option(cpcid)
    await page.get_by_test_id("buy-cluster").select_option(clusterid)
    # The cluster does not answer: verdicts from the catalog, and the page says so.
    await expect(page.get_by_test_id("capacity-source")).to_contain_text("仅依据部件库存", timeout=20000)
    cpu = page.get_by_test_id("product-cpu-4c8g")
    await expect(cpu.get_by_test_id("product-state")).to_have_text("可部署")
    gpu = page.get_by_test_id("product-gpu-1card")
    await expect(gpu).to_have_attribute("aria-disabled", "true")
    await expect(gpu.get_by_test_id("product-reasons")).to_contain_text("gpu")

    # Edit a product: 4 cores → 100 cores is more than the catalog's 64.
    await page.get_by_test_id("product").first.get_by_test_id("product-line-amount").first.fill("100")
    await page.get_by_test_id("product-check").click()
    await expect(cpu).to_have_attribute("aria-disabled", "true")
    await expect(cpu.get_by_test_id("product-reasons")).not_to_be_empty()
    await shot(page, "buy-products")
    no_page_errors()


NODE = {
    "node_name": "gpu-node-1",
    "node_role": "工作节点",
    "node_status": "就绪",
    "node_schedulable": True,
    "node_internalip": "192.168.0.8",
    "node_labels": ["kyy-gpu=true"],
    "available_cpu": "60.00核",
    "available_memory": "250.00Gi",
    "available_gpu": 7,
    "node_gpu_model": "RTX5090-32G",
    "node_cpurate": "6.3%",
    "node_memrate": "2.0%",
    "node_gpu": "12.5%",
}
POD = {
    "pod_namespace": "org1",
    "pod_name": "web1-0",
    "pod_ready": "1/1",
    "pod_running": "Running",
    "pod_restart": 0,
    "pod_node": "gpu-node-1",
    "pod_ip": "10.0.0.5",
    "pod_cpu_limit": "2",
    "pod_memory_limit": "2Gi",
    "pod_gpu_limit": "1",
    "source_name": "web1",
    "pod_age": "3m",
}


async def test_board_rows_and_labels(console: Console, no_page_errors: Callable[[], None]) -> None:
    """The boards as the API answers them (fulfilled in the browser); label and unlabel go to the real API,
    whose site agent does not answer: its message is shown in the page."""
    page = await console.open("/#/centers")
    cpcid, clusterid = await center_with_cluster(page)
    await api(
        page, "POST", "/api/v1/labels", {"name": "GPU", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "true"}
    )
    board = {"nodes": NODE, "pods": POD}

    async def rows(route: Route) -> None:
        if route.request.method != "GET":
            return await route.fallback()
        await route.fulfill(json={"total": 1, "rows": [board[route.request.url.rsplit("/", 1)[1]]]})

    await page.route(f"**/api/v1/clusters/{clusterid}/nodes", rows)
    await page.route(f"**/api/v1/clusters/{clusterid}/pods", rows)
    await page.goto(f"/#/clusters/{cpcid}?board={clusterid}")
    node = page.get_by_test_id("node-gpu-node-1")
    await expect(node.get_by_test_id("node-available")).to_contain_text("GPU 7 (RTX5090-32G)")
    await expect(node.get_by_test_id("node-label-chip")).to_have_text("kyy-gpu=true×")
    await expect(page.get_by_test_id("pods-table")).to_contain_text("web1-0")
    await shot(page, "cluster-board")

    await node.get_by_test_id("node-label").click()
    await expect(page.get_by_test_id("field-label")).to_have_value("kyy-gpu=true")
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("127.0.0.1:9")
    await page.get_by_test_id("dialog-cancel").click()

    await node.get_by_test_id("node-unlabel").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("node-board").get_by_test_id("board-error")).to_contain_text("127.0.0.1:9")
    no_page_errors()


async def test_instance_rows_scale_delete(console: Console, no_page_errors: Callable[[], None]) -> None:
    """An instance row as the API lists it; scale and delete go to the real API (no such instance there)."""
    page = await console.open("/#/centers")
    cpcid, clusterid = await center_with_cluster(page)
    row = {
        "id": "inst-1",
        "source_name": "db1",
        "source_podengine": "StatefulSet",
        "source_replicasetnum": 1,
        "pod_imagepath": "docker.io/library/mysql:8.0",
        "state": "running",
        "state_text": "运行中",
        "username": "admin",
        "created_at": "2026-11-27 10:00:00",
    }
    await page.route(
        f"**/api/v1/clusters/{clusterid}/instances?*", lambda route: route.fulfill(json={"total": 1, "rows": [row]})
    )
    await page.goto(f"/#/instances/{cpcid}")
    item = page.get_by_test_id("instance-db1")
    await expect(item.get_by_test_id("instance-replicas")).to_have_text("StatefulSet × 1")
    await item.get_by_test_id("instance-scale").click()
    await fill(page, {"replicas": "0"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("replicas")
    await fill(page, {"replicas": "3"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("不存在")
    await page.get_by_test_id("dialog-cancel").click()
    await shot(page, "instances")
    no_page_errors()
