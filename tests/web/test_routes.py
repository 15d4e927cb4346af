"""The console's static routes: content types, revalidation, the security policy, nothing outside the folder."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kboss.api.security import SecurityMiddleware
from kboss.web.routes import STATIC_DIR, router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router)
    app.add_middleware(SecurityMiddleware)  # as `create_app` does: the headers come from there
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kboss.test") as client:
        yield client


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/pages/centers.js", "text/javascript; charset=utf-8"),
        ("/static/style.css", "text/css; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
    ],
)
async def test_content_types_and_headers(http: httpx.AsyncClient, path: str, content_type: str) -> None:
    answer = await http.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in answer.headers["content-security-policy"]


async def test_revalidation_answers_304(http: httpx.AsyncClient) -> None:
    first = await http.get("/static/app.js")
    again = await http.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = await http.head("/static/app.js")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)


@pytest.mark.parametrize(
    "path",
    [
        "/static/../routes.py",
        "/static/..%2Froutes.py",
        "/static/%2e%2e/__init__.py",
        "/static/nope.js",
        "/static/pages",
    ],
)
async def test_nothing_outside_the_static_folder(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)
    assert answer.status_code == 404


# Anything that would make the browser load code or styles from another origin.
REMOTE = re.compile(
    r"""(?:src|href)=["']?(?:https?:)?//|from\s+["'](?:https?:)?//|import\(["'](?:https?:)?//|url\(["']?(?:https?:)?//|@import"""
)


def test_no_third_party_assets() -> None:
    """Every asset is kboss's own and loaded from kboss; modules stay small enough to read in one sitting."""
    for path in STATIC_DIR.rglob("*"):
        if path.is_dir():
            continue
        text = path.read_text(encoding="utf-8")
        assert not REMOTE.search(text), f"{path}: {REMOTE.search(text)}"
        if path.suffix == ".js":
            assert len(text.splitlines()) < 400, path
