"""The provider's customers in the console: a provider admin creates a customer in the dialog (a refused password is
shown in it), tops it up (a bad amount is refused, naming it, and writes nothing), reads its ledger and publishes a
center to it; the customer's admin signs in through the form and lands on its own account, without the provider's
menu entries; a provider's member has no customers page. Real app, real Chromium, both languages."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.browser import Console, api, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SIMULATED = {"name": "发布中心", "simulated": True, "contactname": "Ahexl", "contactphone": "13141005621"}
CUSTOMER_PASSWORD = "customer-pass-1"
SCREEN = {"width": 1366, "height": 768}
PROVIDER_ONLY = ["centers", "devices", "clusters", "labels", "operations", "customers", "audit"]


async def new_customer(page: Page, name: str, username: str) -> None:
    """Create a customer in the dialog: first with a password the server refuses (its message, naming the field,
    stays in the open dialog), then a good one."""
    await page.get_by_test_id("customer-add").click()
    dialog = page.get_by_test_id("customer-dialog")
    await dialog.get_by_test_id("field-name").fill(name)
    await dialog.get_by_test_id("field-username").fill(username)
    await dialog.get_by_test_id("field-password").fill("abc")
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog.get_by_test_id("form-error")).to_contain_text("参数 password 无效")
    await expect(dialog.get_by_test_id("field-password")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_test_id("field-password").fill(CUSTOMER_PASSWORD)
    await dialog.get_by_test_id("dialog-submit").click()
    await expect(dialog).to_have_count(0)


async def top_up(page: Page, row: Locator, amount: str, note: str = "") -> None:
    await row.get_by_test_id("customer-topup").click()
    dialog = page.get_by_test_id("topup-dialog")
    await dialog.get_by_test_id("field-amount").fill(amount)
    await dialog.get_by_test_id("field-note").fill(note)
    await dialog.get_by_test_id("dialog-submit").click()


async def sign_in(console: Console, username: str, lang: str | None = None) -> Page:
    """The customer's admin signs in through the login form, in a context of its own."""
    context = await console.context(viewport=SCREEN, lang=lang)
    page = await context.new_page()
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    await page.goto("/")
    await page.get_by_test_id("login-form").get_by_test_id("field-username").fill(username)
    await page.get_by_test_id("login-form").get_by_test_id("field-password").fill(CUSTOMER_PASSWORD)
    await page.get_by_test_id("login-submit").click()
    return page


async def test_provider_serves_a_customer(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/customers", viewport=SCREEN)
    await expect(page.get_by_test_id("page-title")).to_have_text("客户", timeout=20000)
    await expect(page.get_by_test_id("empty")).to_contain_text("还没有客户")
    center = await api(page, "POST", "/api/v1/centers", SIMULATED)
    name, username = f"客户{uuid.uuid4().hex[:6]}", f"c{uuid.uuid4().hex[:10]}"

    await new_customer(page, name, username)
    await expect(page.get_by_test_id("toast-success")).to_contain_text(f"已新建客户 {name},管理员 {username}")
    row = page.get_by_test_id(f"customer-{name}")
    await expect(row.get_by_test_id("customer-balance")).to_have_text("0.00 元")
    customer = (await api(page, "GET", "/api/v1/customers"))["rows"][0]
    assert customer["name"] == name

    # 1.234 元 is not whole 分: the server's message names `amount`, the dialog stays open, nothing is written.
    await top_up(page, row, "1.234")
    dialog = page.get_by_test_id("topup-dialog")
    await expect(dialog.get_by_test_id("form-error")).to_contain_text("参数 amount 无效")
    await expect(dialog.get_by_test_id("field-amount")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_test_id("dialog-cancel").click()
    await expect(dialog).to_have_count(0)
    ledger = await api(page, "GET", f"/api/v1/accounts/{customer['id']}/ledger")
    assert ledger["total"] == 0
    await expect(row.get_by_test_id("customer-balance")).to_have_text("0.00 元")

    await top_up(page, row, "100.50", "首次充值")
    await expect(page.get_by_test_id("topup-dialog")).to_have_count(0)
    await expect(row.get_by_test_id("customer-balance")).to_have_text("100.50 元")
    await expect(page.get_by_test_id("toast-success").last).to_contain_text("余额 100.50 元")
    await shot(page, "customers")

    await row.get_by_test_id("customer-ledger").click()
    await expect(page.get_by_test_id("page-title")).to_have_text(f"账单明细 · {name}")
    await expect(page.get_by_test_id("account-balance")).to_have_text("100.50 元")
    entry = page.get_by_test_id("ledger-credit")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("充值")
    await expect(entry).to_contain_text("100.50 元")
    await expect(entry).to_contain_text("首次充值")
    await shot(page, "customer-ledger")

    # Publish the center to this customer (ticked), and see it in the publication.
    await page.get_by_test_id("customer-back").click()
    await page.get_by_test_id("publish-open").click()
    publish = page.get_by_test_id("publish-dialog")
    await expect(publish.get_by_test_id("publish-current")).to_have_text("未发布 (客户看不到此算力中心)")
    await publish.get_by_test_id("publish-center").select_option(center["id"])
    await publish.get_by_test_id(f"publish-customer-{name}").check()
    await expect(publish.get_by_test_id("publish-chosen")).to_be_checked()
    await publish.get_by_test_id("publish-save").click()
    await expect(publish.get_by_test_id("publish-current")).to_have_text(name)
    await shot(page, "customers-publish")
    published = await api(page, "GET", f"/api/v1/centers/{center['id']}/publication")
    chosen = {"id": center["id"], "all": False, "customers": [{"id": customer["id"], "name": name}]}
    assert published == chosen
    # To every customer, back to the chosen one (the API takes "all" back first), then to nobody (confirmed).
    await publish.get_by_test_id("publish-all").check()
    await publish.get_by_test_id("publish-save").click()
    await expect(publish.get_by_test_id("publish-current")).to_have_text("全部客户 (含以后新建的客户)")
    assert (await api(page, "GET", f"/api/v1/centers/{center['id']}/publication"))["all"] is True
    await publish.get_by_test_id("publish-chosen").check()
    await publish.get_by_test_id("publish-save").click()
    await expect(publish.get_by_test_id("publish-current")).to_have_text(name)
    assert await api(page, "GET", f"/api/v1/centers/{center['id']}/publication") == chosen
    await publish.get_by_test_id("publish-unpublish").click()
    await page.get_by_test_id("confirm-yes").click()
    await expect(publish.get_by_test_id("publish-current")).to_have_text("未发布 (客户看不到此算力中心)")
    await publish.get_by_test_id(f"publish-customer-{name}").check()
    await publish.get_by_test_id("publish-save").click()
    await expect(publish.get_by_test_id("publish-current")).to_have_text(name)
    assert await api(page, "GET", f"/api/v1/centers/{center['id']}/publication") == chosen
    await publish.get_by_test_id("publish-close").click()
    await expect(publish).to_have_count(0)

    # The customer's admin: sent to /centers by the login form, it lands on its own account.
    mine = await sign_in(console, username)
    await expect(mine.get_by_test_id("page-title")).to_have_text("我的账户", timeout=20000)
    assert mine.url.endswith("#/account")
    await expect(mine.get_by_test_id("account-balance")).to_have_text("100.50 元")
    await expect(mine.get_by_test_id("account-org")).to_have_text(name)
    await expect(mine.get_by_test_id("ledger-credit")).to_contain_text("首次充值")
    await expect(mine.get_by_test_id("nav-account")).to_be_visible()
    await expect(mine.get_by_test_id("nav-instances")).to_be_visible()
    for key in PROVIDER_ONLY:
        await expect(mine.get_by_test_id(f"nav-{key}")).to_have_count(0)
    await shot(mine, "account")
    await mine.goto("/#/centers")  # not its page: back to its account
    await expect(mine.get_by_test_id("page-title")).to_have_text("我的账户")
    await expect(page.get_by_test_id("nav-account")).to_have_count(0)  # the provider has no account of its own
    no_page_errors()


async def test_in_english(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/customers", lang="en")
    await expect(page.get_by_test_id("page-title")).to_have_text("Customers", timeout=20000)
    await expect(page.get_by_test_id("nav-customers")).to_have_text("Customers")
    name, username = f"Acme {uuid.uuid4().hex[:6]}", f"c{uuid.uuid4().hex[:10]}"
    await page.get_by_test_id("customer-add").click()
    dialog = page.get_by_test_id("customer-dialog")
    await expect(dialog.locator("h2")).to_have_text("New customer organisation")
    await dialog.get_by_test_id("field-name").fill(name)
    await dialog.get_by_test_id("field-username").fill(username)
    await dialog.get_by_test_id("field-password").fill(CUSTOMER_PASSWORD)
    await dialog.get_by_test_id("dialog-submit").click()
    row = page.get_by_test_id(f"customer-{name}")
    await expect(row.get_by_test_id("customer-balance")).to_have_text("0.00 CNY")
    await top_up(page, row, "-1")
    await expect(page.get_by_test_id("topup-dialog").get_by_test_id("form-error")).to_contain_text("amount")
    await page.get_by_test_id("topup-dialog").get_by_test_id("field-amount").fill("12")
    await page.get_by_test_id("topup-dialog").get_by_test_id("dialog-submit").click()
    await expect(row.get_by_test_id("customer-balance")).to_have_text("12.00 CNY")
    await page.get_by_test_id("publish-open").click()
    await expect(page.get_by_test_id("publish-dialog")).to_contain_text("No compute center yet")
    await page.get_by_test_id("publish-close").click()

    mine = await sign_in(console, username, lang="en")
    await expect(mine.get_by_test_id("page-title")).to_have_text("My account", timeout=20000)
    await expect(mine.get_by_test_id("account-balance")).to_have_text("12.00 CNY")
    await expect(mine.get_by_test_id("ledger-credit")).to_contain_text("credit")
    await expect(mine.get_by_test_id("nav-account")).to_have_text("My account")
    await expect(mine.get_by_test_id("nav-centers")).to_have_count(0)
    await shot(mine, "account-english")
    no_page_errors()


async def test_members_have_no_customers_page(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/customers", admin=False)
    await expect(page.get_by_test_id("empty")).to_contain_text("仅服务商的管理员", timeout=20000)
    await expect(page.get_by_test_id("nav-centers")).to_be_visible()
    await expect(page.get_by_test_id("nav-customers")).to_have_count(0)
    await expect(page.get_by_test_id("nav-account")).to_have_count(0)
    no_page_errors()


async def test_the_ledger_is_paged(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/customers")
    await expect(page.get_by_test_id("page-title")).to_have_text("客户", timeout=20000)
    name, username = f"客户{uuid.uuid4().hex[:6]}", f"c{uuid.uuid4().hex[:10]}"
    body = {"name": name, "username": username, "password": CUSTOMER_PASSWORD}
    customer = await api(page, "POST", "/api/v1/customers", body)
    for n in range(1, 22):  # 21 entries: a page of 20, newest first, and one older
        await api(page, "POST", f"/api/v1/accounts/{customer['id']}/credit", {"amount": f"{n}.00", "note": f"第{n}笔"})
    await page.goto(f"/#/customers/{customer['id']}")
    await expect(page.get_by_test_id("account-balance")).to_have_text("231.00 元")
    rows = page.get_by_test_id("ledger-credit")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("第21笔")
    await expect(page.get_by_test_id("ledger-newer")).to_have_count(0)
    await expect(page.locator(".pager")).to_contain_text("共 21 条,第 1/2 页")
    await page.get_by_test_id("ledger-older").click()
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("第1笔")
    await expect(page.get_by_test_id("ledger-older")).to_have_count(0)
    await page.get_by_test_id("ledger-newer").click()
    await expect(rows).to_have_count(20)
    no_page_errors()
