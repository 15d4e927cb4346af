"""The console's probe button: platform → the center's site agent over HTTP → a real sshd test host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.test_compat_catalog import CENTER, CPCC, device_params
from tests.support.api import Api
from tests.support.site import SITE_PASSWORD, SITE_USER, site_agent
from tests.support.sshhosts import SshHost

pytestmark = pytest.mark.sshd


async def test_probe_fills_the_device_fields(api: Api, ssh_host: SshHost, tmp_path: Path) -> None:
    admin = await api.user("alice", "acme")
    target = ssh_host.target()
    async with site_agent(tmp_path / "site") as site:
        center = {**CENTER, "pcapi_url": str(site.base_url), "api_user": SITE_USER, "api_pwd": SITE_PASSWORD}
        cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **center))["id"]
        device = await admin.ok(
            f"{CPCC}/cpcnode/add_cpcnode.dspy",
            **device_params(
                cpcid,
                ip=target.host,
                sshport=str(target.port),
                adminuser=target.username,
                adminpwd=target.password,
                cpu_stock="0",
                memory_stock="0",
            ),
        )
        response = await api.http.post(f"/api/v1/devices/{device['id']}/probe", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["facts"]["hostname"] and body["facts"]["gpu_source"] == "none"
    assert body["suggested"]["cpu_stock"] >= 1 and body["suggested"]["memory_stock"] >= 0
    assert target.password not in response.text


async def test_probe_of_an_unreachable_agent_is_a_clear_error(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    device = await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid))
    response = await api.http.post(f"/api/v1/devices/{device['id']}/probe", headers=admin.headers)
    assert response.status_code == 502 and "127.0.0.1:9" in response.json()["detail"]
