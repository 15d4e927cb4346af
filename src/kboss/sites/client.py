"""The platform's HTTP client to a center's site agent (`/pcapi/...`), one method per agent endpoint it uses.

The agent answers every call `{"status", "info", "data"}` with HTTP 200, failures included. Failures become
kboss errors carrying the agent's own message (never a traceback, never the site password):

- the agent cannot be reached at all → `SiteUnreachable(sent=False)`: the request never left, so nothing
  happened on the cluster; a timeout or a dropped connection → `SiteUnreachable(sent=True)`: it may have;
- the agent says the cluster cannot be reached → `ClusterUnreachable`; any other refusal → `UpstreamError`.

Secrets (the kubeconfig) travel in POST bodies only, never in URLs, which end up in access logs. A center marked
`simulated` has no agent to call: `for_center` refuses it instead of silently calling something else; the
services ask `kboss.sites.simulated.site.site_for_center`, which gives such a center (only) the in-memory site.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from functools import cache
from types import TracebackType
from typing import Any

import httpx

from kboss.crypto import SecretBox
from kboss.db.models import Center
from kboss.errors import ClusterUnreachable, UpstreamError
from kboss.redaction import Redactor

PCAPI = "/pcapi/api/v1/cluster/common"
NATIVE = "/pcapi/api/v1/native"
CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0
# Applying or deleting an instance is a dozen API calls on the cluster; give it room, but a bound.
APPLY_SECONDS = 120.0
# Error codes an agent may send (`code`) that mean the cluster, not the request, is the problem.
_UNREACHABLE_CODES = frozenset({"cluster_unreachable", "host_unreachable", "connection_refused", "command_timeout"})
# Older agents send no code: these are the words of kboss.kube.client.translate_error and the SSH errors.
_UNREACHABLE_WORDS = ("无法连接", "响应超时", "主机不可达", "连接被拒绝")


@cache
def _tls() -> ssl.SSLContext:
    """The system's CAs, loaded once: loading them takes tens of milliseconds, and every call makes a client."""
    return ssl.create_default_context()


PROBE_SECONDS = 90.0


class SiteUnreachable(UpstreamError):
    """The site agent itself did not answer. `sent` tells whether the request may have reached it."""

    code = "site_unreachable"
    default_message = "无法连接站点服务"

    def __init__(self, message: str, *, sent: bool) -> None:
        self.sent = sent
        super().__init__(message)


class SimulatedCenter(UpstreamError):
    code = "simulated_center"
    http_status = 501
    default_message = "模拟算力中心没有站点服务"


class SiteClient:
    """Use as `async with SiteClient.for_center(center, box) as site:`; the connection pool is closed on exit."""

    def __init__(
        self, base_url: str, user: str, password: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._redact = Redactor([password])
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(user, password),
            timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
            trust_env=False,  # no proxy from the environment between the platform and its sites
            verify=_tls(),
            transport=transport,
        )

    @classmethod
    def for_center(cls, center: Center, box: SecretBox) -> SiteClient:
        if center.simulated:
            raise SimulatedCenter(f"算力中心 {center.name} 是模拟站点,尚不支持此操作 (没有真实的站点服务可调用)")
        return cls(center.pcapi_url, center.api_user, box.open(center.api_pwd))

    async def __aenter__(self) -> SiteClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- endpoints ---------------------------------------------------------------------------------

    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Create or update every object of an instance (`yaml_apply_delete`, action=apply)."""
        body = {**params, "kubeconfig": kubeconfig, "action": "apply"}
        return _mapping(await self._call(f"{PCAPI}/yaml_apply_delete", body, APPLY_SECONDS))

    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Delete every object of an instance; objects already gone count as deleted."""
        body = {**params, "kubeconfig": kubeconfig, "action": "delete"}
        return _mapping(await self._call(f"{PCAPI}/yaml_apply_delete", body, APPLY_SECONDS))

    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]:
        """Delete the objects a YAML text names (what an update left behind, e.g. an Ingress no longer wanted)."""
        body = {"kubeconfig": kubeconfig, "action": "delete", "yaml": manifests_yaml}
        return _mapping(await self._call(f"{PCAPI}/yaml_apply_delete", body, APPLY_SECONDS))

    async def cluster_pods(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        """Rows of `kubectl get pods -A -o wide` (`get_cluster_pods`)."""
        return _rows(await self._call(f"{PCAPI}/get_cluster_pods", {"kubeconfig": kubeconfig}, read_seconds))

    async def cluster_nodes(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        """Nodes with labels, capacity, allocatable, taints and what their pods request (native endpoint)."""
        return _rows(await self._call(f"{NATIVE}/cluster/nodes", {"kubeconfig": kubeconfig}, read_seconds))

    async def label_node(self, kubeconfig: str, node: str, label: str, opt: str) -> dict[str, Any]:
        body = {"kubeconfig": kubeconfig, "worker_node": node, "label": label, "opt": opt}
        return _mapping(await self._call(f"{PCAPI}/node_label_opt", body))

    async def switch_node(self, kubeconfig: str, node: str, state: str) -> dict[str, Any]:
        """Cordon or uncordon a node (`node_state_switch` without drain: a drain is an operation, see
        `kboss.clusters.agent_nodes`)."""
        body = {"kubeconfig": kubeconfig, "node_name": node, "state": state, "drain": "false"}
        return _mapping(await self._call(f"{PCAPI}/node_state_switch", body))

    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """Per product: fits or not, on how many nodes, and the scheduler's reasons (native endpoint)."""
        body = {"kubeconfig": kubeconfig, "resources": products_json}
        return _rows(await self._call(f"{NATIVE}/capacity", body, read_seconds))

    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]:
        """Log into a machine and report its facts: OS, CPU, memory, disks, GPUs, swap, kubelet."""
        body = {"host": host, "port": str(port), "user": user, "psssword": password, "private_key": private_key}
        return _mapping(await self._call(f"{NATIVE}/probe", {k: v for k, v in body.items() if v}, PROBE_SECONDS))

    # -- transport ---------------------------------------------------------------------------------

    async def _call(self, path: str, body: Mapping[str, str], read_seconds: float | None = None) -> Any:
        timeout = httpx.Timeout(read_seconds or READ_SECONDS, connect=CONNECT_SECONDS)
        try:
            response = await self._http.post(path, data=dict(body), timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SiteUnreachable(f"无法连接站点服务 {self.base_url}: {_cause(exc)}", sent=False) from None
        except httpx.TimeoutException:
            seconds = int(read_seconds or READ_SECONDS)
            raise SiteUnreachable(f"站点服务 {self.base_url} 在 {seconds} 秒内没有应答", sent=True) from None
        except httpx.HTTPError as exc:
            raise SiteUnreachable(f"与站点服务 {self.base_url} 的连接中断: {_cause(exc)}", sent=True) from None
        return self._data(response, path)

    def _data(self, response: httpx.Response, path: str) -> Any:
        if response.status_code != 200:
            hint = " (站点服务版本可能过旧,缺少该接口)" if response.status_code in (404, 405) else ""
            raise UpstreamError(f"站点服务 {self.base_url} 对 {path} 返回 HTTP {response.status_code}{hint}")
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(f"站点服务 {self.base_url} 的应答不是 JSON") from None
        if not isinstance(body, dict) or "status" not in body:
            raise UpstreamError(f"站点服务 {self.base_url} 的应答缺少 status 字段")
        if body["status"] is not True:
            raise self._failure(body)
        return body.get("data")

    def _failure(self, body: Mapping[str, Any]) -> UpstreamError:
        info = self._redacted(str(body.get("info") or body.get("msg") or "未说明原因"))
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        code = str(body.get("code") or "")
        if code in _UNREACHABLE_CODES or (not code and any(word in info for word in _UNREACHABLE_WORDS)):
            return ClusterUnreachable(f"站点服务: {info}", data=data)
        return UpstreamError(f"站点服务: {info}", data=data)

    def _redacted(self, text: str) -> str:
        # The agent never echoes our credentials; this holds even if a future message did.
        return self._redact(text)


def _cause(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or exc.__class__.__name__


def _mapping(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def _rows(data: Any) -> list[dict[str, Any]]:
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise UpstreamError("站点服务的应答缺少 rows 列表")
    return [row for row in rows if isinstance(row, dict)]
