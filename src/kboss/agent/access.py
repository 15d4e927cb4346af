"""Reaching a cluster's API from the site agent.

With a `kubeconfig` the agent talks to its server directly. With the master's SSH account it reads
/etc/kubernetes/admin.conf over SSH and talks to the API server it names, directly when that address answers,
otherwise through an SSH tunnel to the master (the TLS name stays the original host, so verification holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lightkube import AsyncClient

from kboss.agent.targets import ClusterAccess
from kboss.kube.client import KubeTarget, open_client, parse_kubeconfig
from kboss.ssh import ConnectOptions, KnownHostsStore, SshClient, connect

ADMIN_CONF = "/etc/kubernetes/admin.conf"
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class SiteState:
    user: str
    password: str
    known_hosts: KnownHostsStore
    ssh_options: ConnectOptions
    data_dir: Path


@asynccontextmanager
async def open_cluster(access: ClusterAccess, site: SiteState) -> AsyncIterator[AsyncClient]:
    if access.kubeconfig is not None:
        async with open_client(access.kubeconfig) as client:
            yield client
        return
    assert access.master is not None
    async with connect(access.master, known_hosts=site.known_hosts, options=site.ssh_options) as ssh:
        target = await read_admin_conf(ssh)
        if await _answers(target.server):
            async with open_client(target) as client:
                yield client
            return
        parts = urlsplit(target.server)
        tunnel = ssh.forward_local_port(parts.hostname or "127.0.0.1", parts.port or 443)
        async with (
            tunnel as local_port,
            open_client(target, server=f"{parts.scheme}://127.0.0.1:{local_port}") as client,
        ):
            yield client


async def read_admin_conf(ssh: SshClient) -> KubeTarget:
    result = await ssh.run(["cat", ADMIN_CONF], sudo=True, check=True, name=f"read {ADMIN_CONF}")
    return parse_kubeconfig(result.stdout)


async def _answers(server: str) -> bool:
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
