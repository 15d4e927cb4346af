"""Login, tokens, the console cookie, roles, and the development-mode `orgid`."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import Api, running_api


async def test_login_answers_a_bearer_token(api: Api) -> None:
    await api.user("alice", "acme", password="correct-horse")
    good = await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "correct-horse"})
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer" and good.json()["access_token"]
    bad = await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong-horse"})
    assert bad.status_code == 401 and bad.json()["detail"] == "用户名或密码错误"
    nobody = await api.http.post("/api/v1/auth/login", json={"username": "bob", "password": "wrong-horse"})
    assert nobody.status_code == 401


async def test_every_platform_endpoint_requires_a_login(api: Api) -> None:
    for path in (f"{CPCC}/cpclist/get_cpclist.dspy", f"{CPCC}/cpcwidget/accrual_price.dspy"):
        body = (await api.http.get(path)).json()
        assert body["status"] is False and "未登录" in body["msg"]
    assert (await api.http.get("/api/v1/centers")).status_code == 401
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await api.http.get("/api/v1/centers", headers=forged)).status_code == 401


async def test_console_cookie_authenticates(api: Api) -> None:
    await api.user("alice", "acme")
    assert (await api.http.get("/api/v1/auth/me")).status_code == 401
    await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "pass-word-1"})
    assert api.http.cookies.get("kboss_session")
    assert (await api.http.get("/api/v1/auth/me")).json()["username"] == "alice"
    await api.http.post("/api/v1/auth/logout")
    assert (await api.http.get("/api/v1/auth/me")).status_code == 401


async def test_members_read_the_catalog_but_do_not_change_it(api: Api) -> None:
    admin = await api.user("alice", "acme")
    await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    member = await api.user("bob", "acme", admin=False)
    listed = await member.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET", reveal="1")
    assert listed["total"] == 1 and listed["rows"][0]["api_pwd"] == "******"
    assert "管理员" in await member.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)


async def test_orgid_acts_for_that_org_in_development_mode(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, dev_mode=True) as api:
        admin = await api.user("alice", "acme")
        center = await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
        anonymous = await api.http.get(f"{CPCC}/cpclist/get_cpclist.dspy", params={"orgid": center["orgid"]})
        assert anonymous.json()["data"]["total"] == 1
        unknown = await api.http.get(f"{CPCC}/cpclist/get_cpclist.dspy", params={"orgid": "nope"})
        assert unknown.json()["status"] is False
