"""The platform's HTTP client to a center's site agent (`/pcapi/...`): the `Site` of a real center
(`kboss.sites.protocol`), one method per agent endpoint it uses, for the services and the operations alike.

The agent answers every call `{"status", "info", "data", "code"}` with HTTP 200, failures included. Failures
become kboss errors carrying the agent's own message (never a traceback, never the site password), classified by
the agent's error code only:

- the agent cannot be reached at all → `SiteUnreachable(sent=False)`: the request never left, so nothing
  happened on the cluster; a timeout or a dropped connection → `SiteUnreachable(sent=True)`: it may have;
- the agent says the cluster cannot be reached → `ClusterUnreachable`; a node it does not find → `NotFound`;
  any other refusal → `UpstreamError`. A provisioning step and a node call answer a report instead
  (`StepReport`, `NodeAnswer`); a machine busy with another call of ours is waited for.

Secrets (the kubeconfig) travel in POST bodies only, never in URLs, which end up in access logs. A center marked
`simulated` has no agent to call: `for_center` refuses it instead of silently calling something else; the
services ask `kboss.sites.simulated.site.site_for_center`, which gives such a center (only) the in-memory site.

Transport (`AgentTrust`, docs/security.md "TLS to site agents"): an `https` agent is trusted only through the
certificate its center pins (`kboss.sites.tls.pinned_context`); another certificate fails the handshake, before any
request is written, and becomes `SiteCertificateChanged`. An https center with nothing pinned yet is pinned first
(`settle`, run on `async with`: `kboss.sites.pinning.ensure_pinned`); without a pin no connection is made. Plain
`http` to an agent off this machine is refused before connecting (`InsecureSite`) unless the center allows it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from typing import Any, Self

import httpx

from kboss.crypto import SecretBox
from kboss.db.models import Center
from kboss.errors import ClusterUnreachable, NotFound, UpstreamError
from kboss.redaction import Redactor
from kboss.sites import tls
from kboss.sites.events import read_events
from kboss.sites.protocol import FAILED, ClosedOnExit, NodeAnswer, OnLine, StepReport, pods_left
from kboss.sites.trust import AgentTrust, Settle, certificate_refusal, certificate_refused, refuse_plain_http
from kboss.wire.plan import Role

PCAPI = "/pcapi/api/v1/cluster/common"
NATIVE = "/pcapi/api/v1/native"
CONNECT_SECONDS = 5.0
READ_SECONDS = 30.0
PROBE_SECONDS = 90.0
# Applying or deleting an instance is a dozen API calls on the cluster; give it room, but a bound.
APPLY_SECONDS = 120.0
# Between two chunks of a streamed step; the agent sends a keep-alive comment every 15 s while a step is silent.
STREAM_IDLE_SECONDS = 90.0
# The agent answers a drain when it ends or its own timeout passes: room to report.
DRAIN_READ_EXTRA = 60.0
# A provisioning call is tried again when the connection could not be made (nothing was sent).
CONNECT_ATTEMPTS = 3
BUSY_RETRY_SECONDS = 5.0
# Error codes an agent may send that mean the cluster, not the request, is the problem.
_UNREACHABLE_CODES = frozenset({"cluster_unreachable", "host_unreachable", "connection_refused", "command_timeout"})
BUSY = "machine_busy"  # the agent still runs an earlier provisioning call on the same machine
GONE = "not_found"


@cache
def _tls() -> ssl.SSLContext:
    """The system's CAs, loaded once: loading them takes tens of milliseconds, and every call makes a client."""
    return ssl.create_default_context()


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


class SiteClient(ClosedOnExit):
    """Use as `async with SiteClient.for_center(center, box) as site:`; the connection pool is closed on exit."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        trust: AgentTrust | None = None,
        settle: Settle | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.trust = trust or AgentTrust()
        refuse_plain_http(self.base_url, self.trust)  # before any connection is even attempted
        self._settle = settle
        self._redact = Redactor([password])
        self._auth = httpx.BasicAuth(user, password)
        self._transport = transport
        # Made on first use, once the pin is known (`__aenter__` may have to settle it first).
        self._http_client: httpx.AsyncClient | None = None

    @classmethod
    def for_center(
        cls,
        center: Center,
        box: SecretBox,
        transport: httpx.AsyncBaseTransport | None = None,
        settle: Settle | None = None,
    ) -> SiteClient:
        if center.simulated:
            raise SimulatedCenter(f"算力中心 {center.name} 是模拟站点,没有真实的站点服务可调用")
        password = box.open(center.api_pwd)
        return cls(
            center.pcapi_url, center.api_user, password, trust=AgentTrust.of(center), settle=settle, transport=transport
        )

    async def __aenter__(self) -> Self:
        if self._settle is not None and self._https and not self.trust.cert_pem:
            self.trust = await self._settle()
        return self

    async def aclose(self) -> None:
        if self._http_client is not None:
            await self._http_client.aclose()

    @property
    def _https(self) -> bool:
        return self.base_url.lower().startswith("https://")

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=self._auth,
                timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
                trust_env=False,  # no proxy from the environment between the platform and its sites
                # A given transport (tests) brings its own TLS, if any; httpx ignores `verify` then.
                verify=self._verify() if self._transport is None else True,
                transport=self._transport,
            )
        return self._http_client

    def _verify(self) -> ssl.SSLContext:
        if not self._https:
            return _tls()  # unused for http; httpx wants a context all the same
        if not self.trust.cert_pem:
            # Never fall back to unpinned TLS: the factories pin first (`kboss.sites.pinning`).
            raise UpstreamError(f"站点服务 {self.base_url} 的 TLS 证书尚未固定,未连接")
        return tls.pinned_context(self.trust.cert_pem)

    # -- machines ------------------------------------------------------------------------------------

    async def plan(self, role: Role, options: Mapping[str, str]) -> list[str]:
        """The agent's plan for a machine of this role; options and host only (a query string ends up in access
        logs, credentials must not)."""
        data = await self._call(f"{NATIVE}/provision/plan", {**options, "role": role}, method="GET")
        steps = data.get("steps", []) if isinstance(data, dict) else []
        return [str(step.get("name")) for step in steps if isinstance(step, dict)]

    async def run_step(self, name: str, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        return await self._provision(f"{NATIVE}/provision/steps/{name}", name, form, on_line)

    async def reset(self, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        return await self._provision(f"{NATIVE}/node/reset", "reset", form, on_line)

    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]:
        """Log into a machine and report its facts: OS, CPU, memory, disks, GPUs, swap, kubelet."""
        body = {"host": host, "port": str(port), "user": user, "psssword": password, "private_key": private_key}
        return _mapping(await self._call(f"{NATIVE}/probe", {k: v for k, v in body.items() if v}, PROBE_SECONDS))

    # -- nodes -----------------------------------------------------------------------------------------

    async def cordon(self, kubeconfig: str, node: str) -> NodeAnswer:
        return await self._node_call("node_state_switch", kubeconfig, node, {"state": "cordon", "drain": "0"})

    async def drain(self, kubeconfig: str, node: str, seconds: int, force: bool = False) -> NodeAnswer:
        """Cordon and evict (disruption budgets honoured, up to `seconds`); a forced drain is a node deletion's."""
        form = {"state": "cordon", "drain": "1", "timeout": str(seconds)}
        return await self._node_call("node_state_switch", kubeconfig, node, form, seconds)

    async def delete_node(self, kubeconfig: str, node: str, force: bool, seconds: int = 300) -> NodeAnswer:
        form = {"force": "1" if force else "0", "timeout": str(seconds)}
        return await self._node_call("delete_cluster_node", kubeconfig, node, form, seconds)

    async def switch_node(self, kubeconfig: str, node: str, state: str) -> dict[str, Any]:
        """Cordon or uncordon a node (`node_state_switch` without drain: a drain is an operation)."""
        body = {"kubeconfig": kubeconfig, "node_name": node, "state": state, "drain": "false"}
        return _mapping(await self._call(f"{PCAPI}/node_state_switch", body))

    async def label_node(self, kubeconfig: str, node: str, label: str, opt: str) -> dict[str, Any]:
        body = {"kubeconfig": kubeconfig, "worker_node": node, "label": label, "opt": opt}
        return _mapping(await self._call(f"{PCAPI}/node_label_opt", body))

    # -- cluster ---------------------------------------------------------------------------------------

    async def cluster_pods(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        """Rows of `kubectl get pods -A -o wide` (`get_cluster_pods`)."""
        return _rows(await self._call(f"{PCAPI}/get_cluster_pods", {"kubeconfig": kubeconfig}, read_seconds))

    async def cluster_nodes(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        """Nodes with labels, capacity, allocatable, taints and what their pods request (native endpoint)."""
        return _rows(await self._call(f"{NATIVE}/cluster/nodes", {"kubeconfig": kubeconfig}, read_seconds))

    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """Per product: fits or not, on how many nodes, and the scheduler's reasons (native endpoint)."""
        body = {"kubeconfig": kubeconfig, "resources": products_json}
        return _rows(await self._call(f"{NATIVE}/capacity", body, read_seconds))

    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Create or update every object of an instance (`yaml_apply_delete`, action=apply)."""
        return await self._apply_delete({**params, "kubeconfig": kubeconfig, "action": "apply"})

    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Delete every object of an instance; objects already gone count as deleted."""
        return await self._apply_delete({**params, "kubeconfig": kubeconfig, "action": "delete"})

    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]:
        """Delete the objects a YAML text names (what an update left behind, e.g. an Ingress no longer wanted)."""
        return await self._apply_delete({"kubeconfig": kubeconfig, "action": "delete", "yaml": manifests_yaml})

    async def _apply_delete(self, body: Mapping[str, str]) -> dict[str, Any]:
        return _mapping(await self._call(f"{PCAPI}/yaml_apply_delete", body, APPLY_SECONDS))

    # -- answers ---------------------------------------------------------------------------------------

    async def _node_call(
        self, action: str, kubeconfig: str, node: str, extra: dict[str, str], seconds: int = 0
    ) -> NodeAnswer:
        form = {"kubeconfig": kubeconfig, "node_name": node, **extra}
        read = seconds + DRAIN_READ_EXTRA if seconds else READ_SECONDS
        body = await self._send(lambda: self._post(f"{PCAPI}/{action}", form, read), read)
        data = body.get("data")
        report = data.get("report") if isinstance(data, dict) else None
        code = str(body.get("code") or "")
        if code in _UNREACHABLE_CODES:
            raise self._failure(body)
        info = self._info(body) + pods_left(report)
        return NodeAnswer(body.get("status") is True, info, dict(report or {}), code)

    async def _provision(self, path: str, name: str, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        while True:
            body = await self._send(lambda: self._stream(path, form, on_line), STREAM_IDLE_SECONDS, CONNECT_ATTEMPTS)
            if body.get("code") != BUSY:
                return self._report(name, body)
            # The agent still runs an earlier call on this machine (e.g. the step interrupted by our crash).
            on_line(f"{name}: 该设备正在执行另一个部署调用,{BUSY_RETRY_SECONDS:g} 秒后重试")
            await asyncio.sleep(BUSY_RETRY_SECONDS)

    def _report(self, name: str, body: Mapping[str, Any]) -> StepReport:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        status = str(data.get("status") or ("changed" if body.get("status") is True else FAILED))
        error = "" if status != FAILED else self._redact(str(data.get("error") or self._info(body)))
        secrets = data.get("secrets") if isinstance(data.get("secrets"), dict) else {}
        seconds = float(data.get("seconds") or 0.0)
        return StepReport(name, status, error, str(data.get("reason") or ""), seconds, dict(secrets or {}))

    def _failure(self, body: Mapping[str, Any]) -> UpstreamError | NotFound:
        info = self._info(body) or "未说明原因"
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        code = str(body.get("code") or "")
        if code in _UNREACHABLE_CODES:
            return ClusterUnreachable(f"站点服务: {info}", data=data)
        if code == GONE:
            return NotFound(f"站点服务: {info}", data=data)
        return UpstreamError(f"站点服务: {info}", data=data)

    def _info(self, body: Mapping[str, Any]) -> str:
        # The agent never echoes our credentials; this holds even if a future message did.
        return self._redact(str(body.get("info") or body.get("msg") or ""))

    # -- transport -------------------------------------------------------------------------------------

    async def _call(
        self, path: str, body: Mapping[str, str], read_seconds: float | None = None, method: str = "POST"
    ) -> Any:
        read = read_seconds or READ_SECONDS
        answer = await self._send(lambda: self._request(method, path, body, read), read)
        if answer["status"] is not True:
            raise self._failure(answer)
        return answer.get("data")

    async def _request(self, method: str, path: str, body: Mapping[str, str], read: float) -> dict[str, Any]:
        # A query string for GET (the plan holds no secret), a form body otherwise (secrets never go in URLs).
        args: dict[str, Any] = {"params": dict(body)} if method == "GET" else {"data": dict(body)}
        timeout = httpx.Timeout(read, connect=CONNECT_SECONDS)
        return self._envelope(await self._http.request(method, path, timeout=timeout, **args), path)

    async def _post(self, path: str, body: Mapping[str, str], read: float) -> dict[str, Any]:
        return await self._request("POST", path, body, read)

    async def _stream(self, path: str, form: Mapping[str, str], on_line: OnLine) -> dict[str, Any]:
        """POST with `?stream=1`: relay output lines as they come; the answer is the final `result` event."""
        timeout = httpx.Timeout(STREAM_IDLE_SECONDS, connect=CONNECT_SECONDS)
        async with self._http.stream("POST", path, params={"stream": "1"}, data=dict(form), timeout=timeout) as r:
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                await r.aread()  # refused before streaming (bad input, busy machine): a plain envelope
                return self._envelope(r, path)
            return await read_events(r, on_line)

    async def _send(
        self, send: Callable[[], Awaitable[dict[str, Any]]], read: float, attempts: int = 1
    ) -> dict[str, Any]:
        """`send()`, again (up to `attempts`) when the connection could not be made: nothing was sent."""
        for attempt in range(1, attempts + 1):
            try:
                return await send()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if certificate_refused(exc):
                    raise await self._certificate_refusal(exc) from None
                if attempt == attempts:
                    raise SiteUnreachable(f"无法连接站点服务 {self.base_url}: {self._cause(exc)}", sent=False) from None
                await asyncio.sleep(0.5 * attempt)
            except httpx.TimeoutException:
                raise SiteUnreachable(f"站点服务 {self.base_url} 在 {int(read)} 秒内没有应答", sent=True) from None
            except httpx.HTTPError as exc:
                raise SiteUnreachable(f"与站点服务 {self.base_url} 的连接中断: {self._cause(exc)}", sent=True) from None
        raise AssertionError("unreachable")

    def _envelope(self, response: httpx.Response, path: str) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise UpstreamError(f"站点服务 {self.base_url} 拒绝了算力中心记录中的账号 (HTTP {response.status_code})")
        if response.status_code != 200:
            hint = " (站点服务版本可能过旧,缺少该接口)" if response.status_code in (404, 405) else ""
            raise UpstreamError(f"站点服务 {self.base_url} 对 {path} 返回 HTTP {response.status_code}{hint}")
        try:
            body = response.json()
        except ValueError:
            raise UpstreamError(f"站点服务 {self.base_url} 的应答不是 JSON") from None
        if not isinstance(body, dict) or "status" not in body:
            raise UpstreamError(f"站点服务 {self.base_url} 的应答缺少 status 字段")
        return body

    def _cause(self, exc: BaseException) -> str:
        return self._redact(str(exc).strip() or exc.__class__.__name__)

    async def _certificate_refusal(self, exc: BaseException) -> UpstreamError:
        refusal = await certificate_refusal(self.base_url, self.trust, self._cause(exc))
        return refusal or SiteUnreachable(f"站点服务 {self.base_url} 的 TLS 握手失败: {self._cause(exc)}", sent=False)


def _mapping(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


def _rows(data: Any) -> list[dict[str, Any]]:
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise UpstreamError("站点服务的应答缺少 rows 列表")
    return [row for row in rows if isinstance(row, dict)]
