"""The real steps of the `agent` backend: build, join, remove and dismantle through a center's site agent.

Provisioning runs the agent's own plan one named step at a time (`POST .../provision/steps/{name}?stream=1`), so
each step is a row of the operation with its own timing, timeout, retry and live output. The agent's scripts
observe, act only if needed and verify, so a step re-run after a crash or a retry changes nothing that is done.
The catalog rows change in the step that makes them true (see `cluster_ops`), never in a result: secrets (join
command, kubeconfig) go to the cluster row, encrypted.

`SiteAgent` is the only place that speaks HTTP to the agent (Basic auth with the center's decrypted password,
which never appears in an error or a log line).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

from kboss.services import cluster_ops as ops
from kboss.services.op_steps import (
    CenterAccess,
    DeviceAccess,
    OpEnv,
    OperationInfo,
    Registry,
    StepContext,
    StepDef,
    StepFailed,
    StepOutcome,
)

Role = Literal["master", "worker"]
NATIVE = "/pcapi/api/v1/native"
COMMON = "/pcapi/api/v1/cluster/common"
CONNECT_SECONDS = 5.0
CALL_SECONDS = 120.0
# Between two chunks of a streamed step; the agent sends a keep-alive comment every 15 s while a step is silent.
STREAM_IDLE_SECONDS = 90.0
CONNECT_ATTEMPTS = 3
BUSY_RETRY_SECONDS = 5.0
DRAIN_SECONDS = 300
DRAIN_READ = DRAIN_SECONDS + 60.0  # the agent answers a drain when it ends or its own timeout passes
MARGIN = 120.0  # on top of the agent's own timeout for a step: HTTP, SSH connection, queueing
# The agent's plans (kboss.site.provision.steps) with each step's own timeout; wait_ready waits up to 3600 s more.
MASTER_STEPS = (
    ("preflight", 300), ("container_runtime", 1200), ("kubernetes_packages", 1200), ("images", 1800),
    ("gpu_runtime", 1200), ("kubeadm_init", 900), ("network_plugin", 300), ("gpu_device_plugin", 300),
    ("wait_ready", 3660), ("fetch_credentials", 120),
)  # fmt: skip
WORKER_STEPS = (
    ("preflight", 300), ("container_runtime", 1200), ("kubernetes_packages", 1200), ("images", 1800),
    ("gpu_runtime", 1200), ("kubeadm_join", 900),
)  # fmt: skip
RESET_SECONDS = 600
_BUSY = "正在执行另一个部署调用"  # the agent's refusal while it provisions the same machine
_GONE = "不存在"  # the agent's NotFound message for a node that is not (or no longer) in the cluster
_TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")


@dataclass(frozen=True)
class StepReport:
    """What the agent says about one step: changed | unchanged | skipped | failed."""

    name: str
    status: str
    error: str = ""
    reason: str = ""
    seconds: float = 0.0
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@functools.cache
def _system_cas() -> ssl.SSLContext:
    """The system's CA store (where operators install a private CA), loaded once: it takes tens of ms."""
    return ssl.create_default_context()


class SiteAgent:
    """The provisioning and node endpoints of one center's site agent. `async with SiteAgent(center) as agent:`"""

    def __init__(self, center: CenterAccess, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = center.pcapi_url.rstrip("/")
        self._password = center.api_password
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

    async def drain(self, kubeconfig: str, node: str) -> tuple[bool, str]:
        return await self._node_call("node_state_switch", kubeconfig, node, {"state": "cordon", "drain": "1"})

    async def delete_node(self, kubeconfig: str, node: str, force: bool) -> tuple[bool, str]:
        return await self._node_call("delete_cluster_node", kubeconfig, node, {"force": "1" if force else "0"})

    async def _node_call(self, action: str, kubeconfig: str, node: str, extra: dict[str, str]) -> tuple[bool, str]:
        form = {"kubeconfig": kubeconfig, "node_name": node, "timeout": str(DRAIN_SECONDS), **extra}
        body = await self._call("POST", f"{COMMON}/{action}", form, DRAIN_READ)
        return body.get("status") is True, self._info(body) + _failed_pods(body.get("data"))

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
        return text.replace(self._password, "******") if self._password else text


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


def _failed_pods(data: Any) -> str:
    report = data.get("report") if isinstance(data, dict) else None
    failed = report.get("failed") if isinstance(report, dict) else None
    return f" ({json.dumps(failed, ensure_ascii=False)[:800]})" if failed else ""


@dataclass(frozen=True)
class AgentEnv(OpEnv):
    """The worker's environment for real steps: how to reach a center's agent (tests may pass a transport)."""

    agent: Callable[[CenterAccess], SiteAgent] = SiteAgent


# -- helpers of the steps -----------------------------------------------------------------------------------


def _node(ctx: StepContext) -> str:
    return ctx.node or ctx.operation.device_ids[0]


def _first(op: OperationInfo) -> Sequence[str]:
    return op.device_ids[:1]


def _forced(ctx: StepContext) -> bool:
    return bool(ctx.operation.params.get("force"))


async def _open(ctx: StepContext, device_id: str) -> tuple[DeviceAccess, SiteAgent]:
    device = await ctx.device(device_id)
    center = await ctx.center(device.cpcid)
    if center.simulated:
        raise StepFailed(f"算力中心 {center.id} 是模拟站点,不能由真实站点服务执行")
    return device, ctx.env_as(AgentEnv).agent(center)


def _machine(device: DeviceAccess) -> dict[str, str]:
    form = {"host": device.ip, "port": str(device.port), "user": device.user}
    return form | ({"psssword": device.password} if device.password else {"private_key": device.ssh_key})


def _options(ctx: StepContext) -> dict[str, str]:
    return {str(k): str(v) for k, v in (ctx.operation.params.get("provision") or {}).items()}


def _provision_form(ctx: StepContext, device: DeviceAccess, role: Role) -> dict[str, str]:
    return {**_options(ctx), **_machine(device), "role": role}


def _outcome(report: StepReport) -> StepOutcome:
    if report.status == "failed":
        raise StepFailed(report.error or f"步骤 {report.name} 失败")
    result = {"status": report.status, "reason": report.reason, "agent_seconds": report.seconds}
    return StepOutcome(result=result, skipped=report.status != "changed")


def _role(ctx: StepContext) -> Role:
    return "master" if ctx.operation.kind == ops.CREATE else "worker"


# -- create_cluster and join_worker ---------------------------------------------------------------------------


async def plan_step(ctx: StepContext) -> StepOutcome:
    """The agent's plan for this machine; a step we do not know means the agent is newer than the platform."""
    role = _role(ctx)
    device, agent = await _open(ctx, _node(ctx))
    async with agent:  # options and host only: a query string ends up in access logs, credentials must not
        steps = await agent.plan(role, {**_options(ctx), "host": device.ip})
    known = [name for name, _ in (MASTER_STEPS if role == "master" else WORKER_STEPS)]
    if [s for s in known if s in steps] != steps:
        raise StepFailed(f"站点服务的 {role} 部署计划与本平台不一致 ({', '.join(steps)}); 请升级 kboss 平台")
    ctx.log(f"计划 ({role}): {', '.join(steps)}")
    return StepOutcome(result={"steps": steps})


def provision_step(name: str, seconds: float) -> StepDef:
    async def run(ctx: StepContext) -> StepOutcome:
        planned = (await ctx.result_of("plan", _node(ctx)) or {}).get("steps", [])
        if name not in planned:
            ctx.log(f"{name}: 不在站点服务的计划中 (例如 gpu=off),跳过")
            return StepOutcome(skipped=True, result={"status": "not_planned"})
        device, agent = await _open(ctx, _node(ctx))
        async with agent:
            report = await agent.run_step(name, _provision_form(ctx, device, _role(ctx)), ctx.log)
        return _outcome(report)

    return StepDef(name, run, seconds + MARGIN, per_node=True, nodes=_first)


async def _credentials(ctx: StepContext, master_id: str) -> tuple[str, str]:
    """A fresh join command and the admin kubeconfig from the master (registered as secrets at once)."""
    device, agent = await _open(ctx, master_id)
    async with agent:
        report = await agent.run_step("fetch_credentials", _provision_form(ctx, device, "master"), ctx.log)
    join, kubeconfig = report.secrets.get("join_command", ""), report.secrets.get("kubeconfig", "")
    for secret in (join, kubeconfig, *_TOKEN.findall(join)):
        ctx.secret(secret)
    _outcome(report)
    if not join.startswith("kubeadm join ") or "apiVersion" not in kubeconfig:
        raise StepFailed("站点服务没有返回可用的加入命令和 kubeconfig")
    return join, kubeconfig


async def fetch_credentials(ctx: StepContext) -> StepOutcome:
    """The cluster's join command and kubeconfig, stored encrypted; the cluster ready; its master a member."""
    master = _node(ctx)
    if await ops.control_plane_recorded(ctx, master):
        ctx.log("集群凭证已保存,集群已就绪")
        return StepOutcome(skipped=True, result={"controller": master, "ready": 1})
    await ops.record_control_plane(ctx, master, *await _credentials(ctx, master))
    if not await ops.control_plane_recorded(ctx, master):
        raise StepFailed("保存集群凭证后检查未通过")
    ctx.log("集群凭证已加密保存,集群已就绪")
    return StepOutcome(result={"controller": master, "ready": 1})


async def kubeadm_join(ctx: StepContext) -> StepOutcome:
    """Join with a fresh token (a stored one expires after a day), then the device is a worker of the cluster."""
    cluster = await ctx.cluster()
    if cluster is None or not cluster.controllerid:
        raise StepFailed("集群没有控制节点记录,无法取得加入命令")
    ctx.log("向控制节点取新的加入命令")
    join, _ = await _credentials(ctx, cluster.controllerid)
    await ops.store_join_command(ctx, join)
    worker = _node(ctx)
    device, agent = await _open(ctx, worker)
    async with agent:
        form = {**_provision_form(ctx, device, "worker"), "join_command": join}
        outcome = _outcome(await agent.run_step("kubeadm_join", form, ctx.log))
    await ops.record_worker(ctx, worker)
    return outcome


# -- remove_worker and remove_cluster -------------------------------------------------------------------------


async def find_node(ctx: StepContext) -> StepOutcome:
    """The machine's Kubernetes node name: its host name, lower-cased, as the provisioning scripts use it."""
    device, agent = await _open(ctx, _node(ctx))
    try:
        async with agent:
            facts = await agent.probe(_machine(device))
    except StepFailed as exc:
        if not _forced(ctx):
            raise StepFailed(f"无法登录设备 {device.name} 读取节点名: {exc.message}") from None
        ctx.log(f"警告: 无法登录设备 {device.name} ({exc.message}); 强制移除,跳过排空和删除节点")
        return StepOutcome(result={"node_name": ""})
    name = str(facts.get("hostname") or "").strip().lower()
    ctx.log(f"节点名: {name}")
    return StepOutcome(result={"node_name": name})


async def _cluster_node(ctx: StepContext) -> tuple[str, str]:
    node = str((await ctx.result_of("find_node", _node(ctx)) or {}).get("node_name") or "")
    _, kubeconfig = await ops.cluster_secrets(ctx)
    return node, kubeconfig


async def drain(ctx: StepContext) -> StepOutcome:
    """Cordon and evict; a failed drain stops the removal (nothing deleted) unless it is forced."""
    node, kubeconfig = await _cluster_node(ctx)
    if not node or not kubeconfig:
        return StepOutcome(skipped=True)
    _, agent = await _open(ctx, _node(ctx))
    async with agent:
        drained, info = await agent.drain(kubeconfig, node)
    if not drained and _GONE in info:
        ctx.log(f"节点 {node} 不在集群中")
        return StepOutcome(skipped=True, result={"present": False})
    if not drained and not _forced(ctx):
        raise StepFailed(f"排空节点 {node} 失败,未删除节点: {info}。处理后重试,或以 force=1 强制移除")
    ctx.log(f"节点 {node} 已排空" if drained else f"警告: 排空节点 {node} 失败 ({info}); 强制移除,继续")
    return StepOutcome(result={"drained": drained})


async def delete_node(ctx: StepContext) -> StepOutcome:
    node, kubeconfig = await _cluster_node(ctx)
    if not node or not kubeconfig:
        return StepOutcome(skipped=True)
    _, agent = await _open(ctx, _node(ctx))
    async with agent:
        deleted, info = await agent.delete_node(kubeconfig, node, _forced(ctx))
    if not deleted and _GONE in info:
        ctx.log(f"节点 {node} 已不在集群中")
        return StepOutcome(skipped=True, result={"deleted": False})
    if not deleted and not _forced(ctx):
        raise StepFailed(f"删除节点 {node} 失败: {info}")
    ctx.log(f"节点 {node} 已从集群删除" if deleted else f"警告: 删除节点 {node} 失败 ({info}); 强制移除,继续")
    return StepOutcome(result={"deleted": deleted})


async def reset_machine(ctx: StepContext) -> StepOutcome:
    """kubeadm reset and CNI cleanup on the machine; an unreachable machine stops the removal unless forced."""
    device, agent = await _open(ctx, _node(ctx))
    try:
        async with agent:
            return _outcome(await agent.reset(_machine(device), ctx.log))
    except StepFailed as exc:
        if not _forced(ctx):
            raise
        ctx.log(f"警告: 重置设备 {device.name} 失败 ({exc.message}); 强制移除,继续")
        return StepOutcome(result={"reset": False})


async def release_step(ctx: StepContext) -> StepOutcome:
    """This node's device (remove_worker), or every device of the cluster (remove_cluster), back to idle."""
    freed = await ops.release_devices(ctx, [ctx.node] if ctx.node else None)
    ctx.log(f"已释放 {freed} 台设备")
    return StepOutcome(result={"released": freed}, skipped=not freed)


def _master(op: OperationInfo) -> Sequence[str]:
    master = str(op.params.get("master") or "")
    return [master] if master else []


def _workers(op: OperationInfo) -> Sequence[str]:
    return [d for d in op.device_ids if d not in _master(op)]


_per_node = functools.partial(StepDef, per_node=True)


def register_agent_steps(registry: Registry) -> Registry:
    """Every kind on the `agent` backend."""
    plan = _per_node("plan", plan_step, 60 + MARGIN, nodes=_first)
    master = [plan, *(provision_step(n, s) for n, s in MASTER_STEPS if n != "fetch_credentials")]
    master.append(_per_node("fetch_credentials", fetch_credentials, 120 + MARGIN, nodes=_first))
    registry.register(ops.CREATE, [ops.reserving(s, "master") for s in master], backend=ops.AGENT)
    worker = [plan, *(provision_step(n, s) for n, s in WORKER_STEPS if n != "kubeadm_join")]
    worker.append(_per_node("kubeadm_join", kubeadm_join, 900 + 120 + 2 * MARGIN, nodes=_first))
    registry.register(ops.JOIN, [ops.reserving(s, "worker") for s in worker], backend=ops.AGENT)
    drain_seconds = DRAIN_SECONDS + MARGIN
    registry.register(ops.REMOVE_WORKER, [
        _per_node("find_node", find_node, 120 + MARGIN),
        _per_node("drain", drain, drain_seconds),
        _per_node("delete_node", delete_node, drain_seconds),
        _per_node("reset_machine", reset_machine, RESET_SECONDS + MARGIN),
        _per_node("release_device", release_step, 60),
    ], backend=ops.AGENT)  # fmt: skip
    registry.register(ops.REMOVE_CLUSTER, [
        StepDef("check_instances", ops.check_instances, 60),
        _per_node("reset_workers", reset_machine, RESET_SECONDS + MARGIN, nodes=_workers),
        _per_node("reset_master", reset_machine, RESET_SECONDS + MARGIN, nodes=_master),
        StepDef("release_devices", release_step, 60),
        StepDef("delete_records", ops.delete_cluster_records, 60),
    ], backend=ops.AGENT)  # fmt: skip
    return registry
