"""The steps that build a cluster (`create_cluster`) and join a worker (`join_worker`) through the center's site:
the plan (`kboss.wire.plan`) run one named step at a time, so each step is a row of the operation with its own
timing, timeout, retry and live output.

The site's steps observe, act only if needed and verify, so a step re-run after a crash or a retry changes
nothing that is done. The catalog rows change in the step that makes them true (see `kboss.clusters.ops`), never
in a result: secrets (join command, kubeconfig) go to the cluster row, encrypted. Which steps, in which order,
with which timeouts: `kboss.clusters.plan`.
"""

from __future__ import annotations

from kboss.clusters import ops, records
from kboss.clusters.site_access import device_site, machine_form, step_outcome
from kboss.operations.steps import DeviceAccess, StepContext, StepFailed, StepFn, StepOutcome
from kboss.redaction import JOIN_TOKEN
from kboss.wire.plan import Role, steps_of


def _node(ctx: StepContext) -> str:
    return records.step_device(ctx)


def _options(ctx: StepContext) -> dict[str, str]:
    return {str(k): str(v) for k, v in (ctx.operation.params.get("provision") or {}).items()}


def _provision_form(ctx: StepContext, device: DeviceAccess, role: Role) -> dict[str, str]:
    return {**_options(ctx), **machine_form(device), "role": role}


def _role(ctx: StepContext) -> Role:
    return "master" if ctx.operation.kind == ops.CREATE else "worker"


async def plan_step(ctx: StepContext) -> StepOutcome:
    """The site's plan for this machine; a step we do not know means the site agent is newer than the platform."""
    role = _role(ctx)
    async with device_site(ctx, _node(ctx)) as (device, site):
        # Options and host only: a query string ends up in access logs, credentials must not.
        steps = await site.plan(role, {**_options(ctx), "host": device.ip})
    known = [step.name for step in steps_of(role)]
    if [s for s in known if s in steps] != steps:
        raise StepFailed(f"站点服务的 {role} 部署计划与本平台不一致 ({', '.join(steps)}); 请升级 kboss 平台")
    ctx.log(f"计划 ({role}): {', '.join(steps)}")
    return StepOutcome(result={"steps": steps})


def provision_step(name: str) -> StepFn:
    async def run(ctx: StepContext) -> StepOutcome:
        planned = (await ctx.result_of("plan", _node(ctx)) or {}).get("steps", [])
        if name not in planned:
            ctx.log(f"{name}: 不在站点服务的计划中 (例如 gpu=off),跳过")
            return StepOutcome(skipped=True, result={"status": "not_planned"})
        async with device_site(ctx, _node(ctx)) as (device, site):
            report = await site.run_step(name, _provision_form(ctx, device, _role(ctx)), ctx.log)
        return step_outcome(report)

    return run


async def _credentials(ctx: StepContext, master_id: str) -> tuple[str, str]:
    """A fresh join command and the admin kubeconfig from the master (registered as secrets at once)."""
    async with device_site(ctx, master_id) as (device, site):
        report = await site.run_step("fetch_credentials", _provision_form(ctx, device, "master"), ctx.log)
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
    if await records.control_plane_recorded(ctx, master):
        ctx.log("集群凭证已保存,集群已就绪")
        return StepOutcome(skipped=True, result={"controller": master, "ready": 1})
    await records.record_control_plane(ctx, master, *await _credentials(ctx, master))
    if not await records.control_plane_recorded(ctx, master):
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
    await records.store_join_command(ctx, join)
    worker = _node(ctx)
    async with device_site(ctx, worker) as (device, site):
        form = {**_provision_form(ctx, device, "worker"), "join_command": join}
        outcome = step_outcome(await site.run_step("kubeadm_join", form, ctx.log))
    await records.record_worker(ctx, worker)
    return outcome
