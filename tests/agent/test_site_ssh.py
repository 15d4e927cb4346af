"""Site-agent endpoints that log into machines, over real HTTP against real sshd test hosts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.site import site_agent
from tests.support.sshhosts import SshHost

pytestmark = pytest.mark.sshd


def _ssh_params(host: SshHost) -> dict[str, str]:
    target = host.target()
    return {"host": target.host, "port": str(target.port), "user": target.username, "psssword": target.password or ""}


async def test_probe_reports_the_machine(ssh_host: SshHost, data_dir: Path) -> None:
    async with site_agent(data_dir) as site:
        body = (await site.post("/pcapi/api/v1/native/probe", data=_ssh_params(ssh_host))).json()
    assert body["status"] is True, body
    facts = body["data"]
    assert facts["cpu_cores"] >= 1 and facts["memory_mib"] > 0
    assert facts["hostname"] and facts["os_id"]
    assert facts["gpu_source"] == "none" and facts["gpus"] == []


async def test_wrong_password_is_a_clear_failure(ssh_host: SshHost, data_dir: Path) -> None:
    params = {**_ssh_params(ssh_host), "psssword": "wrong-password"}
    async with site_agent(data_dir) as site:
        body = (await site.post("/pcapi/api/v1/native/probe", data=params)).json()
    assert body["status"] is False
    assert "密码" in body["info"] and "wrong-password" not in body["info"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", "10.0.0.1;reboot"),
        ("host", "$(id)"),
        ("user", "root`id`"),
        ("port", "22 -oProxyCommand=x"),
        ("port", "0"),
    ],
)
async def test_shell_metacharacters_are_refused_before_connecting(
    ssh_host: SshHost, data_dir: Path, field: str, value: str
) -> None:
    params = {**_ssh_params(ssh_host), field: value}
    async with site_agent(data_dir) as site:
        body = (await site.post("/pcapi/api/v1/native/probe", data=params)).json()
    assert body["status"] is False and field in body["info"]
    assert not (data_dir / "known_hosts").exists() or ssh_host.address not in (data_dir / "known_hosts").read_text()


async def test_site_agent_requires_its_credentials(data_dir: Path) -> None:
    path = "/pcapi/api/v1/cluster/common/get_cluster_nodes"
    async with site_agent(data_dir) as site, httpx.AsyncClient(base_url=str(site.base_url)) as anonymous:
        missing = (await anonymous.get(path)).json()
        wrong = (await site.get(path, auth=httpx.BasicAuth("site-admin", "nope"))).json()
    assert missing["status"] is False and "Basic" in missing["info"]
    assert wrong["status"] is False and "站点账号或密码错误" in wrong["info"]
