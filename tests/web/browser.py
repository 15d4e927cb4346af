"""A running console for browser tests: kboss + the web router on uvicorn, and Debian's headless Chromium.

One server and one browser per test module (starting Chromium costs more than most tests); each test gets a fresh
browser context (cookies, localStorage) and its own organisation, so tests do not see one another's data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from kboss.accounts import auth
from kboss.app import create_app
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER
from kboss.settings import Settings
from tests.support.databases import SqliteFactory
from tests.support.site import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
PASSWORD = "console-pass-1"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("KBOSS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is required (KBOSS_REQUIRE_BROWSER=1): apt-get install -y chromium")
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")


def console_app(db_url: str, data_dir: Path, **settings: Any) -> FastAPI:
    """kboss as `kboss serve` runs it (console, APIs, the operation worker), with `settings` overridden."""
    return create_app(Settings(data_dir=data_dir, database_url=db_url, secret_key="k", **settings))


@dataclass
class Console:
    app: FastAPI
    base: str
    browser: Browser
    # Uncaught script errors of every page opened: a test fails on any (see `open`).
    page_errors: list[str] = field(default_factory=list)

    async def user(self, admin: bool = True) -> str:
        """A user in an organisation of its own; answers the username (password: PASSWORD)."""
        name = f"u{uuid.uuid4().hex[:10]}"
        async with self.app.state.kboss.sessions() as session:
            await auth.create_user(session, name, PASSWORD, f"org-{name}", ROLE_ADMIN if admin else ROLE_MEMBER)
        return name

    async def context(self, viewport: dict[str, int] = LAPTOP, lang: str | None = None) -> BrowserContext:
        context = await self.browser.new_context(base_url=self.base, viewport=viewport, locale="zh-CN")
        if lang:
            await context.add_init_script(f"localStorage.setItem('kboss.lang', '{lang}')")
        return context

    async def open(self, path: str = "/", *, login: bool = True, admin: bool = True, **options: Any) -> Page:
        """A page of a fresh context, signed in (through the API, which sets the session cookie) unless told not."""
        context = await self.context(**options)
        if login:
            username = await self.user(admin)
            answer = await context.request.post("/api/v1/auth/login", data={"username": username, "password": PASSWORD})
            assert answer.ok, await answer.text()
        page = await context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        await page.goto(path)
        return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def api(page: Page, method: str, path: str, body: Any = None) -> Any:
    """Call the native API as the page's user (the context shares the session cookie), stating the page's origin
    as the page's own fetches do: a cookie request without it is refused as cross-site."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    answer = await page.context.request.fetch(path, method=method, data=body, headers={"Origin": origin})
    assert answer.ok, f"{method} {path}: {answer.status} {await answer.text()}"
    return await answer.json() if answer.status != 204 else None


async def operation_end(page: Page, op_id: str, seconds: float = 60) -> dict[str, Any]:
    """The operation once it has ended (the app's worker runs it), whatever its state."""
    for _ in range(int(seconds * 10)):
        op: dict[str, Any] = await api(page, "GET", f"/api/v1/operations/{op_id}")
        if op["state"] not in ("pending", "running"):
            return op
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op_id} did not end in {seconds} s")


@asynccontextmanager
async def running_console(tmp: Path, sqlite: SqliteFactory, **settings: Any) -> AsyncIterator[Console]:
    """A console for one test module; `settings` e.g. `simulated_time_scale` for a build that takes seconds."""
    require_chromium()
    app = console_app(sqlite.new(), tmp, **settings)
    async with serve(app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Console(app, base, browser)
        finally:
            await browser.close()
