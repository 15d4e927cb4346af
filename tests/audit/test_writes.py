"""Writes of both APIs, logins and logouts each leave one audit row naming who, org, what, target, address and
outcome; refused writes are recorded as refused; no row holds a secret sent in a write."""

from __future__ import annotations

from typing import Any

from kboss.api.audit import COMPAT_READS, COMPAT_WRITES
from kboss.api.compat.registry import HANDLERS
from tests.api.test_compat_catalog import CENTER, CPCC, KUBECONFIG, device_params
from tests.audit.kit import as_text, events
from tests.support.api import Api

ADDRESS = "127.0.0.1"  # what httpx's ASGI transport reports as the peer
NEW_CENTER = {**CENTER, "api_pwd": "Secret-Center-Pwd-1"}


def test_every_compat_path_is_classified() -> None:
    assert set(COMPAT_WRITES) | COMPAT_READS == set(HANDLERS)
    assert not set(COMPAT_WRITES) & COMPAT_READS


async def test_a_native_write_is_one_row(api: Api) -> None:
    admin = await api.user("alice", "acme")
    created = await api.http.post("/api/v1/centers", json=NEW_CENTER, headers=admin.headers)
    assert created.status_code == 201
    center_id = created.json()["id"]
    patched = await api.http.patch(f"/api/v1/centers/{center_id}", json={"contactname": "B"}, headers=admin.headers)
    assert patched.status_code == 200
    await api.http.get("/api/v1/centers", headers=admin.headers)  # a read: not recorded
    create, update = await events(api, "api.write")
    assert (create.actor, create.outcome, create.address, create.target_type) == ("alice", "ok", ADDRESS, "center")
    assert create.target_id == center_id and create.actor_id and create.orgid
    assert create.detail["route"] == "/api/v1/centers" and create.detail["method"] == "POST"
    assert "api_pwd" in create.detail["params"]
    assert update.detail["route"] == "/api/v1/centers/{center_id}" and update.target_id == center_id
    assert update.detail["params"] == ["contactname"]


async def test_a_compat_write_is_one_row(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **NEW_CENTER))["id"]
    device = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid))
    await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid)
    center, node = await events(api, "api.write")
    assert (center.actor, center.target_type, center.target_id, center.outcome) == ("alice", "center", cpcid, "ok")
    assert center.detail["route"] == f"{CPCC}/cpclist/add_cpclist.dspy"
    assert (node.target_type, node.target_id, node.address) == ("device", device["id"], ADDRESS)
    assert node.detail["cpcid"] == cpcid
    assert "adminpwd" in node.detail["params"]


async def test_refused_writes_are_recorded_as_refused(api: Api) -> None:
    admin = await api.user("alice", "acme")
    member = await api.user("bob", "acme", admin=False)
    assert "管理员" in await member.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    bad = await api.http.post("/api/v1/centers", json={**CENTER, "contactphone": "x"}, headers=admin.headers)
    assert bad.status_code == 422
    anonymous = await api.http.post("/api/v1/centers", json=CENTER)
    assert anonymous.status_code == 401
    by_member, by_admin, by_nobody = await events(api, "api.write")
    assert (by_member.actor, by_member.outcome, by_member.code) == ("bob", "refused", "forbidden")
    assert (by_admin.actor, by_admin.outcome, by_admin.code) == ("alice", "refused", "invalid_parameter")
    assert (by_nobody.actor, by_nobody.outcome, by_nobody.code) == ("", "refused", "unauthenticated")


async def test_a_cross_site_write_is_recorded_as_refused(api: Api) -> None:
    await api.http.post("/api/v1/auth/login", json={"username": "nobody", "password": "x-123456"})
    api.http.cookies.set("kboss_session", "stale")
    refused = await api.http.post("/api/v1/centers", json=CENTER, headers={"Origin": "http://evil.test"})
    api.http.cookies.clear()
    assert refused.status_code == 403
    (write,) = await events(api, "api.write")
    assert (write.outcome, write.code, write.detail["route"]) == ("refused", "forbidden", "/api/v1/centers")


async def test_logins_and_logouts(api: Api) -> None:
    await api.user("alice", "acme", password="correct-horse")  # one successful login
    bad = await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong-horse-77"})
    nobody = await api.http.post("/api/v1/auth/login", json={"username": "mallory", "password": "guess-88"})
    assert bad.status_code == nobody.status_code == 401
    token = await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": "correct-horse"})
    api.http.cookies.clear()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await api.http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    first, wrong, unknown, again = await events(api, "auth.login")
    assert (first.actor, first.outcome) == ("alice", "ok") and first.actor_id and first.orgid
    assert (wrong.actor, wrong.outcome, wrong.code, wrong.actor_id) == ("alice", "refused", "unauthenticated", "")
    assert (unknown.actor, unknown.outcome) == ("mallory", "refused") and again.outcome == "ok"
    (logout,) = await events(api, "auth.logout")
    assert (logout.actor, logout.outcome, logout.address) == ("alice", "ok", ADDRESS)
    rows = " ".join(as_text(e) for e in await events(api))
    assert "wrong-horse-77" not in rows and "guess-88" not in rows and "correct-horse" not in rows


async def test_a_throttled_login_is_recorded(api: Api) -> None:
    await api.user("alice", "acme")
    answers = [
        (await api.http.post("/api/v1/auth/login", json={"username": "alice", "password": f"nope-{i}"})).status_code
        for i in range(5)
    ]
    assert 429 in answers
    codes = [e.code for e in await events(api, "auth.login")]
    assert "too_many_attempts" in codes


SECRETS = ("Secret-Center-Pwd-1", "Dev-Secret-Pwd-2", "PRIVATE-KEY-MARK-3", "kube-token-mark-4", "new-pass-word-5")


async def test_no_secret_reaches_the_table(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **NEW_CENTER))["id"]
    device: dict[str, Any] = device_params(cpcid, adminpwd=SECRETS[1], ssh_key=SECRETS[2])
    device_id = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device))["id"]
    kubeconfig = KUBECONFIG.replace("users:", "users:") + f"# {SECRETS[3]}\n"
    body = {"cpcid": cpcid, "name": "c", "kubeconfig": kubeconfig}
    await api.http.post("/api/v1/clusters/import", json=body, headers=admin.headers)
    await api.http.patch(f"/api/v1/devices/{device_id}", json={"adminpwd": SECRETS[1]}, headers=admin.headers)
    await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid, reveal="1")
    change = {"old_password": "pass-word-1", "new_password": SECRETS[4]}
    await api.http.post("/api/v1/auth/password", json=change, headers=admin.headers)
    rows = await events(api)
    assert {"api.write", "auth.password", "secret.reveal"} <= {e.action for e in rows}
    text = " ".join(as_text(e) for e in rows)
    assert not [secret for secret in SECRETS if secret in text]
    assert "pass-word-1" not in text
