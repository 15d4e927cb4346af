"""The real steps of the `agent` backend that build clusters and join workers through a center's site agent;
`register_agent_steps` registers every kind of the backend (the node kinds come from `op_agent_nodes`).

Provisioning runs the agent's own plan one named step at a time (`POST .../provision/steps/{name}?stream=1`), so
each step is a row of the operation with its own timing, timeout, retry and live output. The agent's scripts
observe, act only if needed and verify, so a step re-run after a crash or a retry changes nothing that is done.
The catalog rows change in the step that makes them true (see `cluster_ops`), never in a result: secrets (join
command, kubeconfig) go to the cluster row, encrypted. How the agent is reached: `op_agent_client`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kboss.clusters import ops
from kboss.clusters.agent_client import (
    MARGIN,
    AgentEnv,
    NodeAnswer,
    Role,
    SiteAgent,
    StepReport,
    machine_form,
    open_agent,
    step_outcome,
)
from kboss.clusters.agent_nodes import register_node_kinds
from kboss.operations.steps import DeviceAccess, OperationInfo, Registry, StepContext, StepDef, StepFailed, StepOutcome
from kboss.redaction import JOIN_TOKEN

__all__ = ["AgentEnv", "NodeAnswer", "SiteAgent", "StepReport", "register_agent_steps"]
# The agent's plans (kboss.agent.provision.steps) with each step's own timeout; wait_ready waits up to 3600 s more.
MASTER_STEPS = (
    ("preflight", 300), ("container_runtime", 1200), ("kubernetes_packages", 1200), ("images", 1800),
    ("gpu_runtime", 1200), ("kubeadm_init", 900), ("network_plugin", 300), ("gpu_device_plugin", 300),
    ("wait_ready", 3660), ("fetch_credentials", 120),
)  # fmt: skip
WORKER_STEPS = (
    ("preflight", 300), ("container_runtime", 1200), ("kubernetes_packages", 1200), ("images", 1800),
    ("gpu_runtime", 1200), ("kubeadm_join", 900),
)  # fmt: skip


def _node(ctx: StepContext) -> str:
    return ops.step_device(ctx)


def _first(op: OperationInfo) -> Sequence[str]:
    return op.device_ids[:1]


def _options(ctx: StepContext) -> dict[str, str]:
    return {str(k): str(v) for k, v in (ctx.operation.params.get("provision") or {}).items()}


def _provision_form(ctx: StepContext, device: DeviceAccess, role: Role) -> dict[str, str]:
    return {**_options(ctx), **machine_form(device), "role": role}


def _role(ctx: StepContext) -> Role:
    return "master" if ctx.operation.kind == ops.CREATE else "worker"


# -- create_cluster and join_worker ---------------------------------------------------------------------------


async def plan_step(ctx: StepContext) -> StepOutcome:
    """The agent's plan for this machine; a step we do not know means the agent is newer than the platform."""
    role = _role(ctx)
    device, agent = await open_agent(ctx, _node(ctx))
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
        device, agent = await open_agent(ctx, _node(ctx))
        async with agent:
            report = await agent.run_step(name, _provision_form(ctx, device, _role(ctx)), ctx.log)
        return step_outcome(report)

    return StepDef(name, run, seconds + MARGIN, per_node=True, nodes=_first)


async def _credentials(ctx: StepContext, master_id: str) -> tuple[str, str]:
    """A fresh join command and the admin kubeconfig from the master (registered as secrets at once)."""
    device, agent = await open_agent(ctx, master_id)
    async with agent:
        report = await agent.run_step("fetch_credentials", _provision_form(ctx, device, "master"), ctx.log)
    join, kubeconfig = report.secrets.get("join_command", ""), report.secrets.get("kubeconfig", "")
    for secret in (join, kubeconfig, *JOIN_TOKEN.findall(join)):
        ctx.secret(secret)
    step_outcome(report)
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
    device, agent = await open_agent(ctx, worker)
    async with agent:
        form = {**_provision_form(ctx, device, "worker"), "join_command": join}
        outcome = step_outcome(await agent.run_step("kubeadm_join", form, ctx.log))
    await ops.record_worker(ctx, worker)
    return outcome


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
    return register_node_kinds(registry)
