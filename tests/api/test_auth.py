"""Login, tokens, the console cookie, roles, and the development-mode `orgid`; throttled logins (429 with
Retry-After, lockouts) and revocable sessions (logout, password change, sign out everywhere), also across two
app instances on one database."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

from kboss.accounts import sessions
from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import TEST_KEY, Api, running_api

LOGIN = "/api/v1/auth/login"
# Cookie-authenticated state changes must name the console's own origin (the CSRF check).
SAME_ORIGIN = {"Origin": "http://kboss.test"}


async def _login(api: Api, username: str, password: str) -> httpx.Response:
    response = await api.http.post(LOGIN, json={"username": username, "password": password})
    api.http.cookies.clear()  # tests authenticate explicitly
    return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_answers_a_bearer_token(api: Api) -> None:
    await api.user("alice", "acme", password="correct-horse")
    good = await _login(api, "alice", "correct-horse")
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer" and good.json()["access_token"]
    bad = await _login(api, "alice", "wrong-horse")
    assert bad.status_code == 401 and bad.json()["detail"] == "用户名或密码错误"
    nobody = await _login(api, "bob", "wrong-horse")
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
    login = await api.http.post(LOGIN, json={"username": "alice", "password": "pass-word-1"})
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert api.http.cookies.get("kboss_session")
    assert (await api.http.get("/api/v1/auth/me")).json()["username"] == "alice"
    await api.http.post("/api/v1/auth/logout", headers=SAME_ORIGIN)
    assert (await api.http.get("/api/v1/auth/me")).status_code == 401


async def test_the_cookie_is_secure_over_https(api: Api) -> None:
    await api.user("alice", "acme")
    login = await api.http.post("https://kboss.test" + LOGIN, json={"username": "alice", "password": "pass-word-1"})
    api.http.cookies.clear()
    assert "secure" in login.headers["set-cookie"].lower()


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


async def test_wrong_passwords_in_a_row_are_answered_429_with_retry_after(api: Api) -> None:
    await api.user("alice", "acme")
    statuses = [(await _login(api, "alice", "wrong-pass")).status_code for _ in range(50)]
    assert 429 in statuses[:5] and statuses[:3] == [401, 401, 401], statuses
    assert set(statuses[3:]) == {429}
    refused = await _login(api, "alice", "pass-word-1")  # the real password does not bypass the backoff
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_attempts"
    seconds = int(refused.headers["retry-after"])
    assert seconds >= 1 and f"请 {seconds} 秒后再试" in refused.json()["detail"]
    # An unknown username is throttled exactly alike: the answers do not tell who exists.
    nobody = [(await _login(api, "nobody", "wrong-pass")).status_code for _ in range(5)]
    assert nobody == statuses[:5]


async def test_a_lockout_refuses_the_right_password_until_it_passes(db_url: str, data_dir: Path) -> None:
    short = {"login_backoff_after": 100, "login_lockout_after": 4, "login_lockout_seconds": 1.5}
    async with running_api(db_url, data_dir, **short) as api:
        await api.user("alice", "acme")
        answers = [await _login(api, "alice", "wrong-pass") for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        locked = await _login(api, "alice", "pass-word-1")
        assert locked.status_code == 429 and "已临时锁定至" in locked.json()["detail"], locked.json()
        assert locked.json()["data"]["locked_until"] and int(locked.headers["retry-after"]) in (1, 2)
        await asyncio.sleep(1.6)
        assert (await _login(api, "alice", "pass-word-1")).status_code == 200
        # The success reset the account's counter: three wrong passwords are plain 401s again.
        assert [(await _login(api, "alice", "x-wrong-x")).status_code for _ in range(3)] == [401, 401, 401]


async def test_two_instances_share_throttling_and_revocations(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir) as one, running_api(db_url, data_dir) as two:
        await one.user("alice", "acme")
        for _ in range(3):
            assert (await _login(one, "alice", "wrong-pass")).status_code == 401
        assert (await _login(two, "alice", "pass-word-1")).status_code == 429

        await one.user("bob", "acme")
        token = (await _login(one, "bob", "pass-word-1")).json()["access_token"]
        assert (await two.http.get("/api/v1/auth/me", headers=_bearer(token))).status_code == 200
        assert (await one.http.post("/api/v1/auth/logout", headers=_bearer(token))).status_code == 204
        assert await _refused_within(two, token, seconds=1.0)


async def _refused_within(api: Api, token: str, seconds: float) -> bool:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        answer = await api.http.get("/api/v1/auth/me", headers=_bearer(token))
        if answer.status_code == 401:
            return "登录已" in answer.json()["detail"]
        await asyncio.sleep(0.05)
    return False


async def test_logout_revokes_the_token_at_once(api: Api) -> None:
    alice = await api.user("alice", "acme")
    assert (await api.http.post("/api/v1/auth/logout", headers=alice.headers)).status_code == 204
    answer = await api.http.get("/api/v1/centers", headers=alice.headers)
    assert answer.status_code == 401 and answer.json()["detail"] == "登录已注销,请重新登录"
    assert (await api.http.post("/api/v1/auth/logout", headers=alice.headers)).status_code == 204  # idempotent


async def test_changing_the_password_revokes_every_other_token(api: Api) -> None:
    alice = await api.user("alice", "acme")
    other = (await _login(api, "alice", "pass-word-1")).json()["access_token"]
    change = "/api/v1/auth/password"
    wrong = await api.http.post(
        change, json={"old_password": "nope-nope", "new_password": "new-pass-1"}, headers=alice.headers
    )
    assert wrong.status_code == 401 and wrong.json()["detail"] == "用户名或密码错误"
    short = await api.http.post(
        change, json={"old_password": "pass-word-1", "new_password": "short"}, headers=alice.headers
    )
    assert short.status_code == 422 and "new_password" in short.json()["detail"]
    changed = await api.http.post(
        change, json={"old_password": "pass-word-1", "new_password": "new-pass-1"}, headers=alice.headers
    )
    api.http.cookies.clear()
    assert changed.status_code == 200, changed.text
    for token in (alice.token, other):
        assert (await api.http.get("/api/v1/auth/me", headers=_bearer(token))).status_code == 401
    fresh = _bearer(changed.json()["access_token"])
    assert (await api.http.get("/api/v1/auth/me", headers=fresh)).json()["username"] == "alice"
    assert (await _login(api, "alice", "pass-word-1")).status_code == 401
    assert (await _login(api, "alice", "new-pass-1")).status_code == 200


async def test_an_admin_signs_a_member_out_everywhere(api: Api) -> None:
    admin = await api.user("alice", "acme")
    member = await api.user("bob", "acme", admin=False)
    stranger = await api.user("carol", "elsewhere")
    bob = (await api.http.get("/api/v1/auth/me", headers=member.headers)).json()["user_id"]
    signout = f"/api/v1/users/{bob}/signout"
    assert (await api.http.post(signout, headers=member.headers)).status_code == 403
    assert (await api.http.post(signout, headers=stranger.headers)).status_code == 404
    assert (await api.http.get("/api/v1/auth/me", headers=member.headers)).status_code == 200
    assert (await api.http.post(signout, headers=admin.headers)).status_code == 204
    answer = await api.http.get("/api/v1/auth/me", headers=member.headers)
    assert answer.status_code == 401 and "重新登录" in answer.json()["detail"]
    assert (await api.http.get("/api/v1/auth/me", headers=admin.headers)).status_code == 200


async def test_a_token_with_a_bad_claim_is_a_clear_401(api: Api) -> None:
    alice = await api.user("alice", "acme")
    claims: dict[str, Any] = jwt.decode(alice.token, options={"verify_signature": False})
    key = sessions._signing_key(TEST_KEY)
    for broken in ({**claims, "ver": "zero"}, {k: v for k, v in claims.items() if k != "jti"}):
        token = jwt.encode(broken, key, algorithm="HS256")
        answer = await api.http.get("/api/v1/centers", headers=_bearer(token))
        assert answer.status_code == 401 and "无效的登录凭证" in answer.json()["detail"], answer.text
        compat = await api.http.get(f"{CPCC}/cpclist/get_cpclist.dspy", headers=_bearer(token))
        assert compat.status_code == 200 and "无效的登录凭证" in compat.json()["msg"]


async def test_an_admin_removes_a_user_of_the_org_and_its_token_is_refused(db_url: str, data_dir: Path) -> None:
    async with running_api(db_url, data_dir, session_check_seconds=0) as api:
        admin = await api.user("alice", "acme")
        bob = await api.user("bob", "acme", admin=False)
        carol = await api.user("carol", "acme", admin=False)
        rival = await api.user("olga", "rival")
        me = "/api/v1/auth/me"
        bob_id = (await api.http.get(me, headers=bob.headers)).json()["user_id"]
        admin_id = (await api.http.get(me, headers=admin.headers)).json()["user_id"]
        assert (await api.http.delete(f"/api/v1/users/{bob_id}", headers=carol.headers)).status_code == 403
        assert (await api.http.delete(f"/api/v1/users/{bob_id}", headers=rival.headers)).status_code == 404
        assert (await api.http.delete(f"/api/v1/users/{admin_id}", headers=admin.headers)).status_code == 409
        assert (await api.http.delete(f"/api/v1/users/{bob_id}", headers=admin.headers)).status_code == 204
        assert (await api.http.get(me, headers=bob.headers)).status_code == 401
        assert (await api.http.delete(f"/api/v1/users/{bob_id}", headers=admin.headers)).status_code == 404
