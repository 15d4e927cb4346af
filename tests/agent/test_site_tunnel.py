"""Reaching a cluster with only the master's SSH account: admin.conf read over SSH, then direct or tunnelled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.kubefake import FakeKubeServer, KubeFake
from tests.support.hostsystem import ensure_test_account
from tests.support.site import site_agent
from tests.support.sshhosts import SshHost, SshLab, Substitute, is_root

pytestmark = pytest.mark.sshd
PCAPI = "/pcapi/api/v1/cluster/common"


@pytest.fixture(scope="module")
def loopback_lab() -> Iterator[SshLab]:
    # The fake API server listens on this machine's loopback, which only loopback test hosts share.
    if not is_root():
        pytest.skip("真实 sshd 测试主机需要 root 权限")
    with SshLab(ensure_test_account(), mode="loopback") as lab:
        yield lab


def _master(lab: SshLab, tmp_path: Path, server: str, kube_server: FakeKubeServer) -> SshHost:
    admin_conf = tmp_path / "admin.conf"
    admin_conf.write_text(kube_server.kubeconfig(server=server))
    hosts = tmp_path / "hosts"
    # Only the master can resolve the API name, as when the API sits on a private network.
    hosts.write_text("127.0.0.1 localhost kube-api.internal\n")
    return lab.add_host(
        substitutes=[Substitute(admin_conf, "/etc/kubernetes/admin.conf"), Substitute(hosts, "/etc/hosts")]
    )


def _ssh_params(host: SshHost) -> dict[str, str]:
    target = host.target()
    return {"host": target.host, "port": str(target.port), "user": target.username, "psssword": target.password or ""}


@pytest.mark.parametrize("api_host", ["127.0.0.1", "kube-api.internal"], ids=["direct", "tunnel"])
async def test_nodes_through_the_masters_ssh_account(
    loopback_lab: SshLab, kube_server: FakeKubeServer, fake: KubeFake, data_dir: Path, tmp_path: Path, api_host: str
) -> None:
    fake.add_node("k8s-master", roles=["control-plane"])
    port = urlsplit(kube_server.url).port
    master = _master(loopback_lab, tmp_path, f"http://{api_host}:{port}", kube_server)
    try:
        async with site_agent(data_dir) as site:
            body = (await site.get(f"{PCAPI}/get_cluster_nodes", params=_ssh_params(master))).json()
    finally:
        master.close()
    assert body["status"] is True, body
    assert [row["node_name"] for row in body["data"]["rows"]] == ["k8s-master"]
    assert fake.requests_to("GET", "/api/v1/nodes")


async def test_a_machine_without_admin_conf_is_a_clear_failure(ssh_host: SshHost, data_dir: Path) -> None:
    async with site_agent(data_dir) as site:
        body = (await site.get(f"{PCAPI}/get_cluster_nodes", params=_ssh_params(ssh_host))).json()
    assert body["status"] is False and "admin.conf" in body["info"]
