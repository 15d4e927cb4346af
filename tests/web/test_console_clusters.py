"""The console's instances page, cluster boards, cluster operations and buy-page products, in headless Chromium
against the real app (no route fulfilled in the browser).

Error paths use a cluster imported with a kubeconfig whose API server (127.0.0.1:1) and a center whose site agent
(127.0.0.1:9) do not answer: every page must say so clearly rather than hang or fail silently. Happy paths use a
simulated center's cluster, built by the real operation (the app's worker plays it at a tiny time scale): its
boards, node labels, instances and capacity are the simulated site's, served by the app itself."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.async_api import Page, expect

from tests.web.browser import Console, api, operation_end, shot
from tests.web.test_console import center_with_cluster, fill, simulated_cluster

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


def instance(name: str) -> dict[str, str]:
    """A MySQL StatefulSet of 2 cores and 4 Gi (the create-instance body, as the dialog sends it)."""
    return {
        "source_name": name,
        "instance_type": "RelationalDB",
        "pod_imagepath": "docker.io/library/mysql:8.0",
        "source_podengine": "StatefulSet",
        "source_restartpolicy": "Always",
        "source_authpasswd": "a-long-secret",
        "source_cpurate": "2",
        "source_memrate": "4Gi",
        "cpu_model": "STANDARD",
        "memory_model": "STANDARD",
    }


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

    # Add worker with no idle device: said so.
    await row.get_by_test_id("cluster-add-worker").click()
    await expect(page.get_by_test_id("toast-warn")).to_contain_text("空闲设备")
    # Create from an idle device: the 202 opens the operation's page, where the build fails at its first step
    # because the center's site agent does not answer, and the page says so.
    device = {"name": "idle1", "ip": "192.168.7.7", "devicetype": "1", "adminuser": "root", "adminpwd": "secret"}
    idle = await api(page, "POST", "/api/v1/devices", {**device, "cpcid": cpcid})
    await page.get_by_test_id("cluster-create").click()
    await expect(page.get_by_test_id("field-device_id").locator("option")).to_have_text(["idle1 (192.168.7.7)"])
    await fill(page, {"name": "新集群"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page).to_have_url(re.compile(r"#/operations/[\w-]+$"))
    await expect(page.get_by_test_id("op-follow-status")).to_have_text("操作已结束: 失败", timeout=20000)
    await expect(page.get_by_test_id("op-state-failed").first).to_be_visible()
    await expect(page.get_by_test_id("op-last-error")).to_contain_text("无法连接站点服务 http://127.0.0.1:9")
    failed_step = page.get_by_test_id("op-steps").locator("tbody tr").filter(has=page.get_by_test_id("op-state-failed"))
    await expect(failed_step).to_contain_text("无法连接站点服务 http://127.0.0.1:9")
    await expect(page.get_by_test_id("op-retry")).to_be_visible()
    await shot(page, "cluster-create-unreachable")
    op = await api(page, "GET", f"/api/v1/operations/{page.url.rsplit('/', 1)[1]}")
    cluster = await api(page, "GET", f"/api/v1/clusters/{op['cluster_id']}")
    assert (op["kind"], op["device_ids"], cluster["name"]) == ("create_cluster", [idle["id"]], "新集群"), op
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


async def test_buy_products_live(console: Console, no_page_errors: Callable[[], None]) -> None:
    """A simulated cluster answers: the verdicts come from its nodes (one with 8 RTX4090-24G) and the stock."""
    page = await console.open("/#/centers")
    cpcid, clusterid = await simulated_cluster(page)
    await component(page, cpcid, clusterid, "cpu", "STANDARD", "核", "64")
    await component(page, cpcid, clusterid, "memory", "STANDARD", "Gi", "256")
    await page.goto("/#/buy")
    await page.get_by_test_id("buy-center").select_option(cpcid)
    await page.get_by_test_id("buy-cluster").select_option(clusterid)
    await expect(page.get_by_test_id("capacity-source")).to_have_text("依据集群实时数据与部件库存", timeout=20000)
    await expect(page.get_by_test_id("product-cpu-4c8g").get_by_test_id("product-state")).to_have_text("可部署")
    # The default GPU product wants an RTX5090-32G: no node has one.
    gpu = page.get_by_test_id("product-gpu-1card")
    await expect(gpu).to_have_attribute("aria-disabled", "true")
    await expect(gpu.get_by_test_id("product-reasons")).to_contain_text("didn't have the requested GPU model")
    await shot(page, "buy-products-live")
    no_page_errors()


async def test_board_rows_and_labels(console: Console, no_page_errors: Callable[[], None]) -> None:
    """The boards of a simulated cluster: its node (the device it was built from) and an instance's pod; label
    and unlabel the node from the catalog. Labelling a node of a cluster removed meanwhile says why it failed."""
    page = await console.open("/#/centers")
    cpcid, clusterid = await simulated_cluster(page)
    await api(
        page, "POST", "/api/v1/labels", {"name": "GPU", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "true"}
    )
    await component(page, cpcid, clusterid, "cpu", "STANDARD", "核", "64")
    await component(page, cpcid, clusterid, "memory", "STANDARD", "Gi", "256")
    await api(page, "POST", f"/api/v1/clusters/{clusterid}/instances", instance("web1"))
    await page.goto(f"/#/clusters/{cpcid}?board={clusterid}")
    node = page.get_by_test_id("node-sim-gpu")
    await expect(node.get_by_test_id("node-available")).to_contain_text("GPU 8 (RTX4090-24G)", timeout=20000)
    await expect(node).to_contain_text("10.8.0.1")
    pod = page.get_by_test_id("pods-table").locator("tbody tr")
    await expect(pod).to_have_count(1)
    await expect(pod).to_contain_text("Running")
    await expect(pod.locator("td").nth(7)).to_have_text("web1")  # the instance it belongs to
    chip = node.get_by_test_id("node-label-chip").filter(has_text="kyy-gpu=true")
    await expect(chip).to_have_count(0)

    await node.get_by_test_id("node-label").click()
    await expect(page.get_by_test_id("field-label")).to_have_value("kyy-gpu=true")
    await page.get_by_test_id("dialog-submit").click()
    await expect(chip).to_have_text("kyy-gpu=true×")
    await shot(page, "cluster-board")

    await chip.get_by_test_id("node-unlabel").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("toast-success").last).to_contain_text("kyy-gpu=true")
    await expect(chip).to_have_count(0)

    # The dialog is open while someone removes the cluster: the API's message, in the dialog.
    await node.get_by_test_id("node-label").click()
    removal = await api(page, "DELETE", f"/api/v1/clusters/{clusterid}?force=true")
    assert (await operation_end(page, removal["id"]))["state"] == "succeeded"
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("不存在")
    await page.get_by_test_id("dialog-cancel").click()
    no_page_errors()


async def test_instance_rows_scale_delete(console: Console, no_page_errors: Callable[[], None]) -> None:
    """An instance of a simulated cluster, as the API lists it: scale it (a bad count is named), then delete it."""
    page = await console.open("/#/centers")
    cpcid, clusterid = await simulated_cluster(page)
    await component(page, cpcid, clusterid, "cpu", "STANDARD", "核", "64")
    await component(page, cpcid, clusterid, "memory", "STANDARD", "Gi", "256")
    await api(page, "POST", f"/api/v1/clusters/{clusterid}/instances", instance("db1"))
    await page.goto(f"/#/instances/{cpcid}")
    item = page.get_by_test_id("instance-db1")
    await expect(item.get_by_test_id("instance-replicas")).to_have_text("StatefulSet × 1")
    await expect(item).to_contain_text("docker.io/library/mysql:8.0")
    await expect(item.get_by_test_id("instance-state")).to_have_text("就绪")  # its pod runs
    await page.get_by_test_id("lang-switch").select_option("en")
    await expect(item.get_by_test_id("instance-state")).to_have_text("ready")
    await page.get_by_test_id("lang-switch").select_option("zh")
    await item.get_by_test_id("instance-scale").click()
    await fill(page, {"replicas": "0"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("replicas")
    await fill(page, {"replicas": "3"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("scale-dialog")).to_have_count(0)
    await expect(item.get_by_test_id("instance-replicas")).to_have_text("StatefulSet × 3")
    pods = (await api(page, "GET", f"/api/v1/clusters/{clusterid}/pods"))["rows"]
    assert [p["source_name"] for p in pods] == ["db1"] * 3, pods
    await shot(page, "instances")

    await item.get_by_test_id("instance-delete").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("toast-success").last).to_contain_text("db1")
    await expect(page.get_by_test_id("empty")).to_contain_text("该集群还没有实例")
    assert (await api(page, "GET", f"/api/v1/clusters/{clusterid}/pods"))["rows"] == []
    no_page_errors()
