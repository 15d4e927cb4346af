"""TLS between the platform and a real site agent, on both databases: the first contact pins the agent's
certificate, another certificate is refused before anything is sent, an operator's fingerprint is checked, plain
HTTP off loopback needs the center's permission, and the center fields are validated."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from kboss.db.models import Center
from kboss.sites import tls
from kboss.sites.pinning import ensure_pinned
from tests.api.test_compat_catalog import CENTER, CPCC, device_params
from tests.support.api import Api, User
from tests.support.site import SITE_PASSWORD, SITE_USER, free_port
from tests.support.tls_agent import agent, certificate, outward_address

PROBE = "/pcapi/api/v1/native/probe"


async def add_center(admin: User, url: str, **extra: Any) -> str:
    center = {**CENTER, "pcapi_url": url, "api_user": SITE_USER, "api_pwd": SITE_PASSWORD, **extra}
    cpcid: str = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **center))["id"]
    return cpcid


async def add_device(admin: User, cpcid: str) -> str:
    # SSH to a closed port of this machine: the agent answers at once that it cannot log in.
    params = device_params(cpcid, ip="127.0.0.1", sshport="1", cpu_stock="0", memory_stock="0")
    device_id: str = (await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **params))["id"]
    return device_id


async def probe(api: Api, admin: User, device_id: str) -> httpx.Response:
    return await api.http.post(f"/api/v1/devices/{device_id}/probe", headers=admin.headers)


async def stored(api: Api, cpcid: str) -> Center:
    async with api.app.state.kboss.sessions() as session:
        row = await session.get(Center, cpcid)
    assert row is not None
    return row


def answered_by_agent(response: httpx.Response) -> bool:
    """The agent's own refusal (it could not log into the machine), not a failure to reach the agent."""
    return response.status_code == 502 and response.json()["detail"].startswith("站点服务:")


async def test_first_contact_pins_and_a_changed_certificate_is_refused(api: Api, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    first, second = certificate(tmp_path / "a"), certificate(tmp_path / "b")
    port = free_port()
    async with agent(tmp_path / "site", first[:2], port) as (url, counting):
        cpcid = await add_center(admin, url)
        device_id = await add_device(admin, cpcid)
        row = await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET")
        assert row["rows"][0]["agent_cert_sha256"] == "" and row["rows"][0]["allow_plain_http"] is False
        assert answered_by_agent(await probe(api, admin, device_id))
        assert counting.paths == [PROBE]  # pinning itself sent nothing
        shown = (await api.http.get(f"/api/v1/centers/{cpcid}", headers=admin.headers)).json()
        assert shown["agent_cert_sha256"] == first[2] and "agent_cert_pem" not in shown
        assert tls.pem_fingerprint((await stored(api, cpcid)).agent_cert_pem) == first[2]
        trusted = (await api.http.get("/api/v1/audit?action=site.trust", headers=admin.headers)).json()["rows"]
        assert [(e["target_id"], e["detail"]["fingerprint"]) for e in trusted] == [(cpcid, first[2])]
        assert answered_by_agent(await probe(api, admin, device_id))
        assert counting.paths == [PROBE, PROBE]
    async with agent(tmp_path / "site", second[:2], port) as (url, counting):
        refused = await probe(api, admin, device_id)
        assert counting.paths == []  # the handshake failed: no request reached the agent
    body = refused.json()
    assert refused.status_code == 502 and body["code"] == "site_certificate_changed", body
    assert url in body["detail"] and first[2] in body["detail"] and second[2] in body["detail"]
    assert SITE_PASSWORD not in refused.text
    assert (await stored(api, cpcid)).agent_cert_sha256 == first[2]


async def test_an_operator_fingerprint_is_checked_before_anything_is_sent(api: Api, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    cert, key, fingerprint = certificate(tmp_path / "a")
    other = certificate(tmp_path / "b")[2]
    async with agent(tmp_path / "site", (cert, key)) as (url, counting):
        cpcid = await add_center(admin, url, agent_cert_sha256=other.replace(":", "").lower())
        assert (await stored(api, cpcid)).agent_cert_sha256 == other  # normalised
        device_id = await add_device(admin, cpcid)
        refused = await probe(api, admin, device_id)
        assert refused.json()["code"] == "site_certificate_changed" and counting.paths == []
        assert ((await stored(api, cpcid)).agent_cert_sha256, (await stored(api, cpcid)).agent_cert_pem) == (other, "")
        # The operator checks on the site (`kboss site fingerprint`) and enters the right one.
        updated = await admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", id=cpcid, agent_cert_sha256=fingerprint)
        assert updated["agent_cert_sha256"] == fingerprint
        assert answered_by_agent(await probe(api, admin, device_id)) and counting.paths == [PROBE]
    assert tls.pem_fingerprint((await stored(api, cpcid)).agent_cert_pem) == fingerprint


async def test_plain_http_off_loopback_needs_the_centers_permission(api: Api, tmp_path: Path) -> None:
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    admin = await api.user("alice", "acme")
    async with agent(tmp_path / "site", None, host=address) as (url, counting):
        cpcid = await add_center(admin, url)
        device_id = await add_device(admin, cpcid)
        refused = await probe(api, admin, device_id)
        assert refused.status_code == 502 and refused.json()["code"] == "site_plain_http"
        assert url in refused.json()["detail"] and counting.paths == []
        await admin.ok(f"{CPCC}/cpclist/update_cpclist.dspy", id=cpcid, allow_plain_http="true")
        assert answered_by_agent(await probe(api, admin, device_id)) and counting.paths == [PROBE]


async def test_loopback_plain_http_needs_no_permission(api: Api, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    async with agent(tmp_path / "site", None) as (url, counting):
        device_id = await add_device(admin, await add_center(admin, url))
        assert answered_by_agent(await probe(api, admin, device_id)) and counting.paths == [PROBE]


async def test_bad_tls_fields_are_refused_naming_them(api: Api) -> None:
    admin = await api.user("alice", "acme")
    msg = await admin.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER, agent_cert_sha256="AB:CD")
    assert msg.startswith("参数 agent_cert_sha256 无效") and "SHA-256" in msg
    msg = await admin.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER, allow_plain_http="maybe")
    assert msg.startswith("参数 allow_plain_http 无效")
    body = {k: v for k, v in CENTER.items() if k not in ("enable_date", "expire_date")}
    native = await api.http.post(
        "/api/v1/centers", json={**body, "agent_cert_sha256": "zz" * 32}, headers=admin.headers
    )
    assert native.status_code == 422 and native.json()["code"] == "invalid_parameter"
    assert "agent_cert_sha256" in native.json()["detail"]
    made = await api.http.post(
        "/api/v1/centers",
        json={**body, "allow_plain_http": True, "agent_cert_sha256": "ab" * 32},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["allow_plain_http"] is True and made.json()["agent_cert_sha256"] == ":".join(["AB"] * 32)
    patched = await api.http.patch(
        f"/api/v1/centers/{made.json()['id']}", json={"allow_plain_http": "yes"}, headers=admin.headers
    )
    assert patched.status_code == 422 and "allow_plain_http" in patched.json()["detail"]


async def test_a_new_agent_url_or_fingerprint_replaces_the_pin(api: Api, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    cert, key, fingerprint = certificate(tmp_path / "a")
    async with agent(tmp_path / "site", (cert, key)) as (url, _):
        cpcid = await add_center(admin, url)
        assert answered_by_agent(await probe(api, admin, await add_device(admin, cpcid)))
    update = f"{CPCC}/cpclist/update_cpclist.dspy"
    await admin.ok(update, id=cpcid, name="改名")  # nothing about the agent: the pin stays
    assert (await stored(api, cpcid)).agent_cert_pem and (await stored(api, cpcid)).agent_cert_sha256 == fingerprint
    await admin.ok(update, id=cpcid, pcapi_url=url, agent_cert_sha256=fingerprint.lower())  # the same one: kept
    assert (await stored(api, cpcid)).agent_cert_pem
    given = ":".join(["0F"] * 32)
    await admin.ok(update, id=cpcid, agent_cert_sha256=given)
    assert ((await stored(api, cpcid)).agent_cert_sha256, (await stored(api, cpcid)).agent_cert_pem) == (given, "")
    await admin.ok(update, id=cpcid, pcapi_url="https://127.0.0.1:9")  # another agent: a new first use
    assert ((await stored(api, cpcid)).agent_cert_sha256, (await stored(api, cpcid)).agent_cert_pem) == ("", "")


async def test_racing_first_contacts_agree_on_one_pin(api: Api, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    cert, key, fingerprint = certificate(tmp_path / "a")
    state = api.app.state.kboss
    async with agent(tmp_path / "site", (cert, key)) as (url, counting):
        cpcid = await add_center(admin, url)
        rows = []
        for _ in range(4):
            async with state.sessions() as session:
                rows.append(await session.get_one(Center, cpcid))
        pins = await asyncio.gather(*(ensure_pinned(state.sessions, row) for row in rows))
    assert {pin.cert_sha256 for pin in pins} == {fingerprint} and counting.paths == []
    assert all(row.agent_cert_sha256 == fingerprint for row in rows)
    assert (await stored(api, cpcid)).agent_cert_sha256 == fingerprint
