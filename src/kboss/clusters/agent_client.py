"""How the `agent` backend's steps reach a center's site agent: `SiteAgent`, the only place that speaks HTTP to
it (Basic auth with the center's decrypted password, which never appears in an error or a log line), and the
helpers every real step uses to open it (`open_agent`, `cluster_agent`) and read its answers.

The steps themselves: `op_agent` (build, join), `op_agent_nodes` (drain, remove, dismantle).
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

from kboss.clusters import ops
from kboss.operations.steps import CenterAccess, DeviceAccess, OpEnv, StepContext, StepFailed, StepOutcome
from kboss.redaction import Redactor

Role = Literal["master", "worker"]
NATIVE = "/pcapi/api/v1/native"
COMMON = "/pcapi/api/v1/cluster/common"
CONNECT_SECONDS = 5.0
CALL_SECONDS = 120.0
# Between two chunks of a streamed step; the agent sends a keep-alive comment every 15 s while a step is silent.
STREAM_IDLE_SECONDS = 90.0
CONNECT_ATTEMPTS = 3
BUSY_RETRY_SECONDS = 5.0
DRAIN_SECONDS = 300  # the agent's wait for evictions in a removal's drain
DRAIN_READ_EXTRA = 60.0  # the agent answers a drain when it ends or its own timeout passes: room to report
MARGIN = 120.0  # on top of the agent's own timeout for a step: HTTP, SSH connection, queueing
_BUSY = "正在执行另一个部署调用"  # the agent's refusal while it provisions the same machine
GONE = "不存在"  # the agent's NotFound message for a node that is not (or no longer) in the cluster


@dataclass(frozen=True)
class StepReport:
    """What the agent says about one step: changed | unchanged | skipped | failed."""

    name: str
    status: str
    error: str = ""
    reason: str = ""
    seconds: float = 0.0
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class NodeAnswer:
    """The agent's answer to a node call: `info` its message (with the pods a drain left, and why), `report` the
    drain's report (evicted, deleted, skipped, failed; empty when there was no drain)."""

    ok: bool
    info: str
    report: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _system_cas() -> ssl.SSLContext:
    """The system's CA store (where operators install a private CA), loaded once: it takes tens of ms."""
    return ssl.create_default_context()


class SiteAgent:
    """The provisioning and node endpoints of one center's site agent. `async with SiteAgent(center) as agent:`"""

    def __init__(self, center: CenterAccess, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = center.pcapi_url.rstrip("/")
        self._redact = Redactor([center.api_password])
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(center.api_user, center.api_password),
            timeout=httpx.Timeout(CALL_SECONDS, connect=CONNECT_SECONDS),
            trust_env=False,  # no proxy from the environment between the platform and its sites
            verify=_system_cas(),
            transport=transport,
        )

    async def __aenter__(self) -> SiteAgent:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def plan(self, role: Role, options: Mapping[str, str]) -> list[str]:
        body = await self._call("GET", f"{NATIVE}/provision/plan", {**options, "role": role})
        data = body.get("data")
        if body.get("status") is not True or not isinstance(data, dict):
            raise StepFailed(f"站点服务拒绝给出部署计划: {self._info(body)}")
        return [str(step.get("name")) for step in data.get("steps", []) if isinstance(step, dict)]

    async def run_step(self, name: str, form: Mapping[str, str], on_line: Callable[[str], None]) -> StepReport:
        return await self._provision(f"{NATIVE}/provision/steps/{name}", name, form, on_line)

    async def reset(self, form: Mapping[str, str], on_line: Callable[[str], None]) -> StepReport:
        return await self._provision(f"{NATIVE}/node/reset", "reset", form, on_line)

    async def probe(self, form: Mapping[str, str]) -> dict[str, Any]:
        body = await self._call("POST", f"{NATIVE}/probe", form)
        if body.get("status") is not True or not isinstance(body.get("data"), dict):
            raise StepFailed(f"读取设备信息失败: {self._info(body)}")
        return dict(body["data"])

    async def cordon(self, kubeconfig: str, node: str) -> NodeAnswer:
        return await self._node_call("node_state_switch", kubeconfig, node, {"state": "cordon", "drain": "0"})

    async def drain(self, kubeconfig: str, node: str, seconds: int = DRAIN_SECONDS) -> NodeAnswer:
        form = {"state": "cordon", "drain": "1", "timeout": str(seconds)}
        return await self._node_call("node_state_switch", kubeconfig, node, form, seconds)

    async def delete_node(self, kubeconfig: str, node: str, force: bool) -> NodeAnswer:
        form = {"force": "1" if force else "0", "timeout": str(DRAIN_SECONDS)}
        return await self._node_call("delete_cluster_node", kubeconfig, node, form, DRAIN_SECONDS)

    async def _node_call(
        self, action: str, kubeconfig: str, node: str, extra: dict[str, str], seconds: int = 0
    ) -> NodeAnswer:
        form = {"kubeconfig": kubeconfig, "node_name": node, **extra}
        read = seconds + DRAIN_READ_EXTRA if seconds else CALL_SECONDS
        body = await self._call("POST", f"{COMMON}/{action}", form, read)
        data = body.get("data")
        report = data.get("report") if isinstance(data, dict) else None
        info = self._info(body) + failed_pods(data)
        return NodeAnswer(body.get("status") is True, info, dict(report) if isinstance(report, dict) else {})

    async def _provision(
        self, path: str, name: str, form: Mapping[str, str], on_line: Callable[[str], None]
    ) -> StepReport:
        while True:
            body = await self._stream(path, form, on_line)
            if _BUSY not in self._info(body):
                return self._report(name, body)
            # The agent still runs an earlier call on this machine (e.g. the step interrupted by our crash).
            on_line(f"{name}: 该设备正在执行另一个部署调用,{BUSY_RETRY_SECONDS:g} 秒后重试")
            await asyncio.sleep(BUSY_RETRY_SECONDS)

    def _report(self, name: str, body: Mapping[str, Any]) -> StepReport:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        status = str(data.get("status") or ("changed" if body.get("status") is True else "failed"))
        error = "" if status != "failed" else self._redacted(str(data.get("error") or self._info(body)))
        secrets = data.get("secrets") if isinstance(data.get("secrets"), dict) else {}
        seconds = float(data.get("seconds") or 0.0)
        return StepReport(name, status, error, str(data.get("reason") or ""), seconds, dict(secrets or {}))

    async def _call(
        self, method: str, path: str, form: Mapping[str, str], read_seconds: float = CALL_SECONDS
    ) -> dict[str, Any]:
        # A query string for GET (the plan holds no secret), a form body otherwise (secrets never go in URLs).
        args: dict[str, Any] = {"params": dict(form)} if method == "GET" else {"data": dict(form)}
        timeout = httpx.Timeout(read_seconds, connect=CONNECT_SECONDS)

        async def send() -> dict[str, Any]:
            return self._envelope(await self._http.request(method, path, timeout=timeout, **args), path)

        return await self._sent(send)

    async def _stream(self, path: str, form: Mapping[str, str], on_line: Callable[[str], None]) -> dict[str, Any]:
        """POST with `?stream=1`: relay output lines as they come; the answer is the final `result` event."""
        timeout = httpx.Timeout(STREAM_IDLE_SECONDS, connect=CONNECT_SECONDS)

        async def send() -> dict[str, Any]:
            async with self._http.stream("POST", path, params={"stream": "1"}, data=dict(form), timeout=timeout) as r:
                if not r.headers.get("content-type", "").startswith("text/event-stream"):
                    await r.aread()  # refused before streaming (bad input, busy machine): a plain envelope
                    return self._envelope(r, path)
                return await _events(r, on_line)

        return await self._sent(send)

    async def _sent(self, send: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """`send()`, again when the connection could not be made (nothing was sent, so nothing happened)."""
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                return await send()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == CONNECT_ATTEMPTS:
                    raise StepFailed(f"无法连接站点服务 {self.base_url}: {self._redacted(str(exc))}") from None
                await asyncio.sleep(0.5 * attempt)
            except httpx.HTTPError as exc:
                cause = self._redacted(str(exc) or type(exc).__name__)
                raise StepFailed(f"与站点服务 {self.base_url} 的连接中断: {cause}") from None
        raise AssertionError("unreachable")

    def _envelope(self, response: httpx.Response, path: str) -> dict[str, Any]:
        if response.status_code in (401, 403):
            raise StepFailed(f"站点服务 {self.base_url} 拒绝了算力中心记录中的账号 (HTTP {response.status_code})")
        if response.status_code != 200:
            raise StepFailed(f"站点服务 {self.base_url} 对 {path} 返回 HTTP {response.status_code} (版本可能过旧)")
        try:
            body = response.json()
        except ValueError:
            raise StepFailed(f"站点服务 {self.base_url} 的应答不是 JSON") from None
        if not isinstance(body, dict):
            raise StepFailed(f"站点服务 {self.base_url} 的应答不是 JSON 对象")
        return body

    def _info(self, body: Mapping[str, Any]) -> str:
        return self._redacted(str(body.get("info") or body.get("msg") or ""))

    def _redacted(self, text: str) -> str:
        return self._redact(text)


async def _events(response: httpx.Response, on_line: Callable[[str], None]) -> dict[str, Any]:
    event, data = "", []
    async for raw in response.aiter_lines():
        if raw.startswith(":"):
            continue  # keep-alive
        if raw.startswith("event:"):
            event = raw[6:].strip()
        elif raw.startswith("data:"):
            data.append(raw[5:].removeprefix(" "))
        elif raw == "" and event:
            try:
                payload = json.loads("\n".join(data))
            except ValueError:
                raise StepFailed(f"站点服务发来的 {event} 事件不是 JSON") from None
            if event == "result":
                return dict(payload)
            if event == "line":
                on_line(str(payload.get("line", "")))
            event, data = "", []
    raise StepFailed("站点服务的事件流在给出结果之前中断")


def failed_pods(data: Any) -> str:
    report = data.get("report") if isinstance(data, dict) else None
    failed = report.get("failed") if isinstance(report, dict) else None
    return f" ({json.dumps(failed, ensure_ascii=False)[:800]})" if failed else ""


@dataclass(frozen=True)
class AgentEnv(OpEnv):
    """The worker's environment for real steps: how to reach a center's agent (tests may pass a transport)."""

    agent: Callable[[CenterAccess], SiteAgent] = SiteAgent


# -- what every real step uses ---------------------------------------------------------------------------------


def forced(ctx: StepContext) -> bool:
    return bool(ctx.operation.params.get("force"))


def _checked_real(ctx: StepContext, center: CenterAccess) -> SiteAgent:
    if center.simulated:
        raise StepFailed(f"算力中心 {center.id} 是模拟站点,不能由真实站点服务执行")
    return ctx.env_as(AgentEnv).agent(center)


async def open_agent(ctx: StepContext, device_id: str) -> tuple[DeviceAccess, SiteAgent]:
    """A device of the operation (its SSH account decrypted) and its center's agent."""
    device = await ctx.device(device_id)
    return device, _checked_real(ctx, await ctx.center(device.cpcid))


async def cluster_agent(ctx: StepContext) -> tuple[str, SiteAgent]:
    """The operation's cluster's kubeconfig (decrypted, masked in the output) and its center's agent."""
    cluster = await ctx.cluster()
    if cluster is None:
        raise StepFailed(f"集群 {ctx.operation.cluster_id} 的记录不存在")
    _, kubeconfig = await ops.cluster_secrets(ctx)
    if not kubeconfig:
        raise StepFailed(f"集群 {cluster.name} 没有 kubeconfig (尚未建成或未导入)")
    return kubeconfig, _checked_real(ctx, await ctx.center(cluster.cpcid))


def machine_form(device: DeviceAccess) -> dict[str, str]:
    form = {"host": device.ip, "port": str(device.port), "user": device.user}
    return form | ({"psssword": device.password} if device.password else {"private_key": device.ssh_key})


def step_outcome(report: StepReport) -> StepOutcome:
    if report.status == "failed":
        raise StepFailed(report.error or f"步骤 {report.name} 失败")
    result = {"status": report.status, "reason": report.reason, "agent_seconds": report.seconds}
    return StepOutcome(result=result, skipped=report.status != "changed")
