"""The console in a real headless Chromium against the real app: sign in, language, and the catalog pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from playwright.async_api import Page, expect

from tests.web.browser import ARTIFACTS, PASSWORD, PHONE, Console, api, operation_end, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: admin, user: {token: not-a-real-token}}]
contexts: [{name: demo, context: {cluster: demo, user: admin}}]
current-context: demo
"""
# Elements sticking out past the right edge of the viewport (what makes a phone scroll sideways).
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5)
    .map((el) => `${el.tagName}.${el.className} ${el.dataset.testid || ""}`)"""
CENTER = {
    "name": "首都算力中心",
    "pcapi_url": "http://127.0.0.1:9",
    "api_user": "kboss",
    "api_pwd": "site-secret",
    "contactname": "Ahexl",
    "contactphone": "13141005621",
}
# A simulated center: no site agent, its machines and clusters are played in memory by the app itself.
SIMULATED = {"name": "模拟中心", "simulated": True, "contactname": "Ahexl", "contactphone": "13141005621"}
# A simulated machine with its figures recorded: the simulated cluster's node is this device.
GPU_MACHINE = {"name": "sim-gpu", "ip": "10.8.0.1", "devicetype": 1, "adminuser": "root", "adminpwd": "any-pass-1",
               "cpu_stock": 64, "memory_stock": 512, "sysdisk_stock": 200, "datadisk_stock": 4000,
               "gpu_model": "RTX4090-24G", "gpu_stock": 8}  # fmt: skip


async def fill(page: Page, values: dict[str, str]) -> None:
    """Fill the open dialog's fields by name (selects are chosen by value)."""
    for name, value in values.items():
        control = page.get_by_test_id(f"field-{name}")
        if await control.evaluate("el => el.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)


async def center_with_cluster(page: Page) -> tuple[str, str]:
    center = await api(page, "POST", "/api/v1/centers", CENTER)
    cluster = await api(
        page, "POST", "/api/v1/clusters/import", {"cpcid": center["id"], "name": "朝阳区", "kubeconfig": KUBECONFIG}
    )
    return center["id"], cluster["id"]


async def simulated_cluster(page: Page, name: str = "模拟集群") -> tuple[str, str]:
    """A simulated center's cluster, built from GPU_MACHINE by the real operation (the app's worker plays its steps
    at the module's tiny time scale); answers (center id, cluster id)."""
    center = await api(page, "POST", "/api/v1/centers", SIMULATED)
    device = await api(page, "POST", "/api/v1/devices", {**GPU_MACHINE, "cpcid": center["id"]})
    op = await api(page, "POST", "/api/v1/clusters", {"cpcid": center["id"], "device_id": device["id"], "name": name})
    built = await operation_end(page, op["id"])
    assert built["state"] == "succeeded", built
    return center["id"], built["cluster_id"]


async def test_login_and_language(console: Console, no_page_errors: Callable[[], None]) -> None:
    username = await console.user()
    page = await console.open("/", login=False)
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.locator("h1")).to_have_text("登录 kboss")
    await shot(page, "login")

    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill("wrong-password")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误")

    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("page-title")).to_have_text("算力中心")
    await expect(page.get_by_test_id("whoami")).to_contain_text(username)

    await page.get_by_test_id("lang-switch").select_option("en")
    await expect(page.get_by_test_id("page-title")).to_have_text("Centers")
    await expect(page.get_by_test_id("nav-devices")).to_have_text("Devices")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.reload()
    await expect(page.get_by_test_id("nav-labels")).to_have_text("Labels")
    await expect(page.get_by_test_id("lang-switch")).to_have_value("en")
    await expect(page.get_by_test_id("logout")).to_have_text("Sign out")
    await shot(page, "centers-english")

    await page.get_by_test_id("lang-switch").select_option("zh")
    await expect(page.get_by_test_id("nav-labels")).to_have_text("标签")
    await page.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    no_page_errors()


async def test_login_throttled_shows_the_wait(console: Console, no_page_errors: Callable[[], None]) -> None:
    username = await console.user()
    page = await console.open("/", login=False)
    error, submit = page.get_by_test_id("login-error"), page.get_by_test_id("login-submit")
    await page.get_by_label("用户名").fill(username)
    waits: list[int] = []
    # Wrong passwords until the backoff is a few seconds long (the third failure waits 1 s, then 2, 4 ...).
    while not waits or waits[-1] < 3:
        assert len(waits) < 40, waits
        await page.get_by_label("密码").fill("wrong-password")
        await submit.click()
        await expect(submit).to_be_enabled()
        found = re.search(r"请 (\d+) 秒后再试", await error.text_content() or "")
        waits.append(int(found.group(1)) if found else 0)
        await asyncio.sleep(0.25)
    # The API's own 429 message, naming the wait, even for the right password.
    await page.get_by_label("密码").fill(PASSWORD)
    await submit.click()
    await expect(error).to_have_text(re.compile(r"^该账号登录失败次数过多,请 \d+ 秒后再试$"))
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    no_page_errors()


async def test_centers(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    await expect(page.get_by_test_id("empty")).to_be_visible()
    await page.get_by_test_id("center-add").click()
    await fill(page, {**CENTER, "contactphone": "12"})
    await page.get_by_test_id("dialog-submit").click()
    # The API's message names the parameter; the dialog stays open on it.
    await expect(page.get_by_test_id("form-error")).to_contain_text("contactphone")
    await expect(page.get_by_test_id("field-contactphone")).to_have_attribute("aria-invalid", "true")
    await fill(page, {"contactphone": CENTER["contactphone"]})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("center-首都算力中心")
    await expect(row).to_contain_text("http://127.0.0.1:9")

    await row.get_by_test_id("center-edit").click()
    await fill(page, {"name": "首都算力中心二号", "expire_date": "2030-12-31"})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("center-首都算力中心二号")
    await expect(row).to_contain_text("2030-12-31")

    # TLS to the agent: a fingerprint as the operator pastes it is stored normalised; plain HTTP is a box.
    await row.get_by_test_id("center-edit").click()
    await fill(page, {"agent_cert_sha256": "ab" * 32})
    await page.get_by_test_id("field-allow_plain_http").check()
    await shot(page, "center-dialog-tls")
    await page.get_by_test_id("dialog-submit").click()
    # The save's toast reads as the last one did, so wait for the dialog to close instead (it does once saved).
    await expect(page.get_by_test_id("dialog-submit")).to_have_count(0)
    saved = (await api(page, "GET", "/api/v1/centers"))["rows"][0]
    assert (saved["agent_cert_sha256"], saved["allow_plain_http"]) == (":".join(["AB"] * 32), True)

    # A simulated center (no real site agent) is badged.
    contact = {key: CENTER[key] for key in ("contactname", "contactphone")}
    await api(page, "POST", "/api/v1/centers", {**contact, "name": "模拟中心", "simulated": True})
    await page.reload()
    await expect(page.get_by_test_id("center-模拟中心").get_by_test_id("simulated-badge")).to_have_text("模拟")
    await shot(page, "centers")

    await page.get_by_test_id("center-模拟中心").get_by_test_id("center-delete").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("center-模拟中心")).to_have_count(0)
    await expect(page.get_by_test_id("toast-success").last).to_contain_text("模拟中心")
    no_page_errors()


async def test_devices(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    center = await api(page, "POST", "/api/v1/centers", CENTER)
    await page.goto(f"/#/devices/{center['id']}")
    await expect(page.get_by_test_id("page-title")).to_have_text("算力设备 · 首都算力中心")

    await page.get_by_test_id("device-add").click()
    gpu1 = {"name": "gpu1", "ip": "999.168.0.8", "adminpwd": "secret", "cpu_stock": "64", "memory_stock": "256"}
    await fill(page, {**gpu1, "gpu_model": "RTX5090-32G", "gpu_stock": "8", "datadisk_stock": "1000"})
    await page.get_by_test_id("dialog-submit").click()
    # A bad IP: the API's message, naming `ip`, is shown in the page.
    await expect(page.get_by_test_id("form-error")).to_contain_text("参数 ip 无效")
    await expect(page.get_by_test_id("field-ip")).to_have_attribute("aria-invalid", "true")
    await shot(page, "device-dialog-error")
    await fill(page, {"ip": "192.168.0.8"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("device-gpu1")).to_contain_text("RTX5090-32G × 8")
    await expect(page.get_by_test_id("device-gpu1").get_by_test_id("status-idle")).to_have_text("空闲")

    await page.get_by_test_id("device-add").click()
    await fill(page, {"name": "cpu1", "ip": "192.168.0.9", "adminpwd": "secret", "node_status": "1", "devicetype": "0"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("device-cpu1").get_by_test_id("status-occupied")).to_have_text("占用")
    await expect(page.get_by_test_id("device-summary")).to_have_text("共 2 台,空闲 1 台")

    # The same address twice: refused, and the conflict is shown.
    await page.get_by_test_id("device-add").click()
    await fill(page, {"name": "dup", "ip": "192.168.0.9", "adminpwd": "secret"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("192.168.0.9:22")
    await page.get_by_test_id("dialog-cancel").click()

    # The site agent does not answer (127.0.0.1:9): the platform's message, naming it, is shown, not a silent
    # failure; the same from the edit dialog's probe button, where the message replaces the note.
    await page.get_by_test_id("device-gpu1").get_by_test_id("device-probe").click()
    await expect(page.get_by_test_id("toast-error")).to_contain_text("127.0.0.1:9")
    await shot(page, "devices")
    await page.get_by_test_id("device-gpu1").get_by_test_id("device-edit").click()
    await page.get_by_test_id("dialog-probe").click()
    note = page.get_by_test_id("probe-note")
    await expect(note).to_contain_text("无法连接站点服务 http://127.0.0.1:9")
    await expect(note).to_have_attribute("role", "alert")
    await expect(note).to_have_class(re.compile(r"\bnotice-error\b"))
    await expect(page.get_by_test_id("field-cpu_stock")).to_have_value("64")  # nothing typed is replaced
    await shot(page, "device-probe-error")
    await page.get_by_test_id("dialog-cancel").click()

    await page.get_by_test_id("device-cpu1").get_by_test_id("device-edit").click()
    await fill(page, {"memory_stock": "128"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("device-cpu1")).to_contain_text("128 GiB")
    await page.get_by_test_id("device-cpu1").get_by_test_id("device-delete").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("device-cpu1")).to_have_count(0)

    # A simulated center's probe answers: the edit dialog opens with the hardware filled in and says the figures
    # are made up. This address picks a 64-core machine with 8 GPUs; nothing is saved until 保存.
    simulated = await api(page, "POST", "/api/v1/centers", SIMULATED)
    machine = {"name": "gpu9", "ip": "10.9.0.1", "devicetype": 1, "adminuser": "root", "adminpwd": "any-pass-1"}
    await api(page, "POST", "/api/v1/devices", {**machine, "cpcid": simulated["id"]})
    await page.goto(f"/#/devices/{simulated['id']}")
    row = page.get_by_test_id("device-gpu9")
    await expect(row).to_contain_text("× 0")
    await row.get_by_test_id("device-probe").click()
    await expect(page.get_by_test_id("probe-note")).to_contain_text("模拟算力中心")
    for name, value in {
        "cpu_stock": "64",
        "memory_stock": "512",
        "sysdisk_stock": "200",
        "datadisk_stock": "4000",
        "gpu_model": "RTX4090-24G",
        "gpu_stock": "8",
    }.items():
        await expect(page.get_by_test_id(f"field-{name}")).to_have_value(value)
    await shot(page, "device-probed")
    await page.get_by_test_id("dialog-submit").click()
    await expect(row).to_contain_text("AMD EPYC 7543 (simulated) × 64")
    await expect(row).to_contain_text("RTX4090-24G × 8")
    no_page_errors()


async def test_labels(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/labels")
    await page.get_by_test_id("label-add").click()
    await fill(page, {"name": "GPU设备", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "true"})
    await expect(page.get_by_test_id("label-preview")).to_have_text("kyy-gpu=true")
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("label-kyy-gpu").get_by_test_id("label-text")).to_have_text("kyy-gpu=true")

    await page.get_by_test_id("label-add").click()
    await fill(page, {"name": "应用", "labeltype": "0", "label_key": "app", "label_value": "web"})
    await expect(page.get_by_test_id("label-preview")).to_have_text("app:web")
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("label-app").get_by_test_id("label-text")).to_have_text("app:web")

    await page.get_by_test_id("label-add").click()
    await fill(page, {"name": "坏标签", "label_key": "bad key;rm", "label_value": "x"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("label_key")
    await page.get_by_test_id("dialog-cancel").click()

    await page.get_by_test_id("label-filter").select_option("0")
    await expect(page.get_by_test_id("label-kyy-gpu")).to_have_count(0)
    await expect(page.get_by_test_id("label-app")).to_have_count(1)
    await page.get_by_test_id("label-filter").select_option("")
    await expect(page.get_by_test_id("label-kyy-gpu")).to_have_count(1)
    await shot(page, "labels")
    await page.get_by_test_id("label-app").get_by_test_id("label-delete").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(page.get_by_test_id("label-app")).to_have_count(0)
    no_page_errors()


async def test_clusters(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    center = await api(page, "POST", "/api/v1/centers", CENTER)
    await page.goto(f"/#/clusters/{center['id']}")
    await expect(page.get_by_test_id("empty")).to_be_visible()
    await expect(page.get_by_test_id("cluster-create")).to_be_enabled()

    await page.get_by_test_id("cluster-import").click()
    await fill(page, {"name": "朝阳区", "kubeconfig": "not: [a kubeconfig"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("kubeconfig")
    await fill(page, {"kubeconfig": KUBECONFIG})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("cluster-朝阳区")
    await expect(row).to_contain_text("就绪")
    # Imported even though its API server does not answer; the operator is told.
    await expect(page.get_by_test_id("toast-warn")).to_contain_text("127.0.0.1:1")

    await row.get_by_test_id("cluster-edit").click()
    await fill(page, {"name": "朝阳区一号", "enable_date": "2026-01-01", "export_date": "2025-01-01"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("export_date")
    await fill(page, {"export_date": "2027-01-01"})
    await page.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id("cluster-朝阳区一号")
    await expect(row).to_contain_text("2026-01-01 ~ 2027-01-01")
    await expect(row.get_by_test_id("cluster-add-worker")).to_be_enabled()
    await shot(page, "clusters")
    no_page_errors()


async def test_components_and_quote(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers")
    cpcid, _ = await center_with_cluster(page)
    await page.goto(f"/#/components/{cpcid}")
    await expect(page.get_by_test_id("empty")).to_be_visible()

    await page.get_by_test_id("component-add").click()
    await fill(page, {"type": "cpu", "model": "STANDARD", "resource_unit": "核", "unit_price": "1.5", "stock": "64"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("component-cpu-STANDARD")).to_contain_text("1.5 元 / 核 / 小时")

    await page.get_by_test_id("component-add").click()
    await fill(page, {"type": "gpu", "model": "RTX5090-32G", "resource_unit": "卡", "unit_price": "6", "stock": "8"})
    await page.get_by_test_id("dialog-submit").click()
    gpu = page.get_by_test_id("component-gpu-RTX5090-32G")
    await expect(gpu.get_by_test_id("component-available")).to_have_text("8")

    # The same type + model again without add_opt: the API's message is shown; with add_opt the stock grows.
    await page.get_by_test_id("component-add").click()
    await fill(page, {"type": "gpu", "model": "RTX5090-32G", "resource_unit": "卡", "unit_price": "6", "stock": "4"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_have_text("该部件已存在,请前往编辑!")
    await page.get_by_test_id("field-add_opt").check()
    await page.get_by_test_id("dialog-submit").click()
    await expect(gpu.get_by_test_id("component-available")).to_have_text("12")
    await expect(gpu).to_contain_text("朝阳区 0 / 12")

    await gpu.get_by_test_id("component-price-edit").click()
    await fill(page, {"unit_price": "-1"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("unit_price")
    await fill(page, {"unit_price": "6.5"})
    await page.get_by_test_id("dialog-submit").click()
    await expect(gpu.get_by_test_id("component-price")).to_have_text("6.5 元 / 卡 / 小时")
    await shot(page, "components")

    # The calculator: 4 cores + 2 cards for 2 days, priced by the API; the page shows the API's total.
    await page.get_by_test_id("go-calculator").click()
    await expect(page.get_by_test_id("quote-line")).to_have_count(1)
    await page.get_by_test_id("line-add").click()
    second = page.get_by_test_id("quote-line").nth(1)
    await second.get_by_test_id("line-type").select_option("gpu")
    await expect(second.get_by_test_id("line-model")).to_have_value("RTX5090-32G")
    await expect(second.get_by_test_id("line-unit")).to_have_text("卡")
    await second.get_by_test_id("line-amount").fill("2")
    await page.get_by_test_id("quote-duration").fill("2")
    await page.get_by_test_id("quote-duration-unit").select_option("天")
    await page.get_by_test_id("quote-submit").click()
    body = {
        "cpcid": cpcid,
        "resources": [
            {"type": "cpu", "model": "STANDARD", "amount": 4},
            {"type": "gpu", "model": "RTX5090-32G", "amount": 2},
        ],
        "duration": 2,
        "duration_unit": "天",
    }
    expected = await api(page, "POST", "/api/v1/quotes", body)
    assert Decimal(expected["total_price"]) == Decimal("912.00")  # (4 × 1.5 + 2 × 6.5) × 48 h
    await expect(page.get_by_test_id("quote-total")).to_have_text(expected["total_price"])
    await expect(page.get_by_test_id("line-subtotal")).to_have_text(["288 元", "624 元"])
    await expect(page.get_by_test_id("quote-message")).to_have_text("汇算正常")
    await shot(page, "calculator")

    # Per-line errors: an unknown model and too much stock are named on their lines; the rest is still priced.
    await second.get_by_test_id("line-model").fill("H100")
    await page.get_by_test_id("line-add").click()
    third = page.get_by_test_id("quote-line").nth(2)
    await third.get_by_test_id("line-type").select_option("cpu")
    await third.get_by_test_id("line-amount").fill("100")
    await page.get_by_test_id("quote-submit").click()
    await expect(second.get_by_test_id("line-error")).to_have_text("无效的 gpu 部件型号: H100")
    await expect(third.get_by_test_id("line-error")).to_contain_text("库存不足")
    await expect(page.get_by_test_id("quote-total")).to_have_text("288.00")
    await expect(page.get_by_test_id("quote-message")).to_have_text("无效的 gpu 部件型号: H100")
    await shot(page, "calculator-errors")

    # A malformed request is refused whole, naming the line.
    await third.get_by_test_id("line-amount").fill("1.5")
    await page.get_by_test_id("quote-submit").click()
    await expect(page.get_by_test_id("quote-error")).to_contain_text("resources[2].amount")
    await expect(third.get_by_test_id("line-amount")).to_have_attribute("aria-invalid", "true")

    # The buy page: cards available per GPU model.
    await page.get_by_test_id("nav-buy").click()
    card = page.get_by_test_id("gpu-RTX5090-32G")
    await expect(card.get_by_test_id("gpu-available")).to_have_text("12")
    inventory = await api(page, "GET", "/api/v1/gpu-inventory")
    assert inventory == {"RTX5090-32G": 12}
    await page.get_by_test_id("buy-center").select_option(cpcid)
    await expect(page.get_by_test_id("buy-cluster")).to_be_enabled()
    await page.get_by_test_id("buy-cluster").select_option(label="朝阳区")
    await expect(page.get_by_test_id("loading")).to_have_count(0)
    await expect(card.get_by_test_id("gpu-available")).to_have_text("12")
    await shot(page, "buy")
    no_page_errors()


async def test_operations_and_instances_empty(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/operations")
    await expect(page.get_by_test_id("empty")).to_have_text("还没有操作记录")
    await shot(page, "operations")

    # A link to an operation that does not exist (or of another organisation): the API's message, in the page
    # rather than a toast, and no steps or log to wait for.
    await page.goto("/#/operations/no-such-op")
    await expect(page.get_by_test_id("op-error")).to_have_text("操作不存在: no-such-op")
    await expect(page.get_by_test_id("op-log")).to_have_count(0)
    await expect(page.get_by_test_id("toast-error")).to_have_count(0)

    # Instances live in a cluster: a center without one says so, and nothing can be created.
    await api(page, "POST", "/api/v1/centers", CENTER)
    await page.goto("/#/instances")
    await expect(page.get_by_test_id("empty")).to_contain_text("还没有集群")
    await expect(page.get_by_test_id("instance-create")).to_be_disabled()
    await shot(page, "instances-no-cluster")
    no_page_errors()


async def test_member_and_expired_session(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/labels", admin=False)
    await expect(page.get_by_test_id("whoami")).to_contain_text("成员")
    await expect(page.get_by_test_id("empty")).to_be_visible()
    await expect(page.get_by_test_id("label-add")).to_have_count(0)  # members read the catalog, admins change it

    # The session ends mid-use: back to the login page with a message, then back to where the user was.
    username = (await api(page, "GET", "/api/v1/auth/me"))["username"]
    await page.context.clear_cookies()
    await page.get_by_test_id("nav-centers").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()
    await expect(page.get_by_test_id("toast-error")).to_contain_text("登录已过期")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("page-title")).to_have_text("算力中心")
    await expect(page.get_by_test_id("center-add")).to_have_count(0)
    no_page_errors()


async def test_phone(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/centers", viewport=PHONE)
    cpcid, clusterid = await center_with_cluster(page)
    await api(
        page,
        "POST",
        "/api/v1/devices",
        {"cpcid": cpcid, "name": "gpu1", "ip": "10.0.0.8", "adminuser": "root", "adminpwd": "x", "devicetype": 1},
    )
    await page.reload()
    toggle = page.get_by_test_id("nav-toggle")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_test_id("nav-devices")).not_to_be_in_viewport()
    await shot(page, "phone-centers")

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_test_id("nav-operations")).to_be_in_viewport(ratio=1)  # the drawer has slid in
    await shot(page, "phone-nav-open")
    await page.get_by_test_id("nav-devices").click()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_test_id("device-gpu1")).to_be_visible()
    # Table rows become cards: no horizontal scrolling on a phone.
    assert await page.evaluate(OVERFLOWING) == []
    await shot(page, "phone-devices")
    await page.get_by_test_id("device-gpu1").get_by_test_id("device-edit").click()
    await expect(page.get_by_test_id("device-dialog")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "phone-device-dialog.png"))
    await page.get_by_test_id("dialog-cancel").click()
    await expect(page.get_by_test_id("device-dialog")).to_have_count(0)

    # The product editor and the cluster boards fit a phone too.
    await page.goto("/#/buy")
    await expect(page.get_by_test_id("product-line").first).to_be_visible()
    assert await page.evaluate(OVERFLOWING) == []
    await shot(page, "phone-buy")
    await page.goto(f"/#/clusters/{cpcid}?board={clusterid}")
    await expect(page.get_by_test_id("pod-board").get_by_test_id("board-error")).to_be_visible(timeout=20000)
    assert await page.evaluate(OVERFLOWING) == []
    await shot(page, "phone-cluster-board")
    no_page_errors()
