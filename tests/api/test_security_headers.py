"""What a browser is told (security headers, no caching of API answers) and which cookie requests it may make."""

from __future__ import annotations

import httpx
import pytest

from kboss.api.security import CONTENT_SECURITY_POLICY
from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import Api

OWN = "http://kboss.test"  # the test client's base URL: the server's own scheme://host
EVIL = "https://evil.example"
NEW_CENTER = {k: v for k, v in CENTER.items() if k not in ("enable_date", "expire_date")}


async def _console(api: Api) -> httpx.AsyncClient:
    """The shared client logged in as the console is: the session cookie, no Authorization header."""
    await api.user("alice", "acme")
    login = await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "pass-word-1"})
    assert login.status_code == 200 and "kboss_session" in api.http.cookies
    return api.http


@pytest.mark.parametrize(
    "path", ["/api/v1/centers", f"{CPCC}/cpclist/get_cpclist.dspy", "/pcapi/api/v1/native/capacity", "/computing/x"]
)
async def test_api_answers_carry_the_security_headers_and_are_never_cached(api: Api, path: str) -> None:
    answer = await api.http.get(path)  # refused (no login): failures must carry them too
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css"])
async def test_the_console_is_framed_by_no_one_and_its_files_stay_cacheable(api: Api, path: str) -> None:
    answer = await api.http.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-cache"  # revalidated, not refused: the assets have ETags


async def test_index_has_no_inline_script_or_style(api: Api) -> None:
    page = (await api.http.get("/")).text
    assert "<style" not in page and " style=" not in page
    assert all('src="' in tag for tag in page.split("<script")[1:])  # every script is a file of this origin


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": EVIL}, {"Origin": "null"}, {"Referer": f"{EVIL}/page"}, {"Origin": "http://kboss.test:8080"}],
)
async def test_a_cookie_request_from_elsewhere_changes_nothing(api: Api, headers: dict[str, str]) -> None:
    http = await _console(api)
    refused = await http.post("/api/v1/centers", json=NEW_CENTER, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden" and "跨站请求被拒绝" in refused.json()["detail"]
    compat = await http.post(f"{CPCC}/cpclist/add_cpclist.dspy", data=CENTER, headers=headers)
    assert compat.status_code == 403 and compat.json()["status"] is False and "跨站" in compat.json()["msg"]
    listed = await http.get("/api/v1/centers")  # reading is allowed: a foreign page cannot see the answer
    assert listed.status_code == 200 and listed.json()["total"] == 0


@pytest.mark.parametrize("headers", [{"Origin": OWN}, {"Referer": f"{OWN}/#/centers"}, {"Origin": "HTTP://KBOSS.TEST"}])
async def test_the_console_itself_may_change_things(api: Api, headers: dict[str, str]) -> None:
    http = await _console(api)
    created = await http.post("/api/v1/centers", json=NEW_CENTER, headers=headers)
    assert created.status_code == 201, created.text
    deleted = await http.delete(f"/api/v1/centers/{created.json()['id']}", headers=headers)
    assert deleted.status_code == 204, deleted.text


async def test_bearer_clients_are_not_asked_for_an_origin(api: Api) -> None:
    admin = await api.user("bob", "beta")
    api.http.cookies.set("kboss_session", "stale-cookie")  # a cookie too: the header is what authenticates
    answer = await api.http.post(
        f"{CPCC}/cpclist/add_cpclist.dspy", data=CENTER, headers={**admin.headers, "Origin": EVIL}
    )
    assert answer.status_code == 200 and answer.json()["status"] is True
