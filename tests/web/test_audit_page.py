"""The audit page: an admin sees its org's trail (its login, a write, a refused write) and filters it; a member
finds no menu entry and, going there anyway, is told it is for admins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.async_api import expect

from tests.api.test_compat_catalog import CENTER
from tests.web.browser import Console, api, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_admins_read_and_filter_the_trail(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/audit")
    table = page.get_by_test_id("audit-table")
    await expect(table).to_contain_text("登录", timeout=20000)
    created = await api(page, "POST", "/api/v1/centers", CENTER)
    origin = {"Origin": console.base}
    refused = await page.context.request.post("/api/v1/centers", data={"name": "x"}, headers=origin)
    assert refused.status == 422
    await page.reload()
    await expect(table).to_contain_text("POST /api/v1/centers")
    await expect(table).to_contain_text(f"center:{created['id']}")
    await expect(page.get_by_test_id("nav-audit")).to_be_visible()
    await shot(page, "audit")
    await page.get_by_test_id("audit-action").select_option("auth.")
    await expect(table).not_to_contain_text("POST /api/v1/centers")
    await expect(page.get_by_test_id("audit-ok")).to_have_count(1)
    await page.get_by_test_id("audit-outcome").select_option("refused")
    await expect(page.get_by_test_id("empty")).to_be_visible()  # no refused login
    await page.get_by_test_id("audit-action").select_option("")
    await expect(page.get_by_test_id("audit-refused")).to_have_count(1)
    await expect(table).to_contain_text("invalid_parameter")
    no_page_errors()


async def test_members_have_no_audit_page(console: Console, no_page_errors: Callable[[], None]) -> None:
    page = await console.open("/#/audit", admin=False)
    await expect(page.get_by_test_id("empty")).to_contain_text("仅组织管理员", timeout=20000)
    await expect(page.get_by_test_id("nav-operations")).to_be_visible()
    await expect(page.get_by_test_id("nav-audit")).to_have_count(0)
    no_page_errors()
