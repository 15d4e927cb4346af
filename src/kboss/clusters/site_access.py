"""How a cluster operation's steps reach the site of their center: `open_site` gives the `Site` of the center
(`kboss.sites.protocol`), the site agent over HTTP or, for a center marked simulated, the simulated site that
plays the same plan on simulated machines. The steps are the same either way; only this object differs.

Also the small readings every step shares: a device's SSH form, a step report as an outcome, `forced`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from kboss.clusters import records
from kboss.db.models import Center
from kboss.operations.steps import CenterAccess, DeviceAccess, OpEnv, StepContext, StepFailed, StepOutcome
from kboss.sites.audited import AuditedSite
from kboss.sites.client import SiteClient
from kboss.sites.pinning import ensure_pinned
from kboss.sites.protocol import CHANGED, FAILED, Site, StepReport
from kboss.sites.simulated.machines import DEMO_MACHINES, SimulatedMachines
from kboss.sites.simulated.site import SimulatedSiteClient
from kboss.sites.trust import AgentTrust

Transport = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class SiteEnv(OpEnv):
    """The worker's environment for cluster steps: the HTTP transport to site agents (tests pass one that records
    or reroutes; None: the network), and the machines of simulated centers (tests pass fast ones with faults)."""

    transport: Transport | None = None
    machines: SimulatedMachines = field(default=DEMO_MACHINES)


@asynccontextmanager
async def open_site(ctx: StepContext, center_id: str) -> AsyncIterator[Site]:
    """The site of a center of the operation's org, for the length of one call or a few. Its changing calls are
    recorded in the audit trail once the site is closed (and the simulated site's session with it)."""
    center = await ctx.center(center_id)
    op = ctx.operation
    audited: AuditedSite | None = None
    try:
        async with _site(ctx, center) as site:
            audited = AuditedSite(site, op.orgid, center.id, op.cluster_id or "", actor=f"operation:{op.id}")
            yield audited
    finally:
        if audited is not None:
            await audited.settle(ctx.sessions)


@asynccontextmanager
async def _site(ctx: StepContext, center: CenterAccess) -> AsyncIterator[Site]:
    env = ctx.env_as(SiteEnv)
    if not center.simulated:
        trust = await _trust(ctx, center.id)
        transport = env.transport() if env.transport else None
        agent = SiteClient(center.pcapi_url, center.api_user, center.api_password, trust=trust, transport=transport)
        async with agent:
            yield agent
        return
    async with ctx.sessions() as session:
        row = await session.get_one(Center, center.id)
        async with SimulatedSiteClient(row, session, ctx.operation.cluster_id, env.machines) as simulated:
            yield simulated


async def _trust(ctx: StepContext, center_id: str) -> AgentTrust:
    """The center's pinned certificate (pinned now, on first use of an https agent) and plain-HTTP permission."""
    async with ctx.sessions() as session:
        row = await session.get_one(Center, center_id)
        await session.commit()  # no transaction held open across a first handshake
    return await ensure_pinned(ctx.sessions, row)


@asynccontextmanager
async def device_site(ctx: StepContext, device_id: str) -> AsyncIterator[tuple[DeviceAccess, Site]]:
    """A device of the operation (its SSH account decrypted) and its center's site."""
    device = await ctx.device(device_id)
    async with open_site(ctx, device.cpcid) as site:
        yield device, site


@asynccontextmanager
async def cluster_site(ctx: StepContext) -> AsyncIterator[tuple[str, Site]]:
    """The operation's cluster's kubeconfig (decrypted, masked in the output) and its center's site."""
    cluster = await ctx.cluster()
    if cluster is None:
        raise StepFailed(f"集群 {ctx.operation.cluster_id} 的记录不存在")
    _, kubeconfig = await records.cluster_secrets(ctx)
    if not kubeconfig:
        raise StepFailed(f"集群 {cluster.name} 没有 kubeconfig (尚未建成或未导入)")
    async with open_site(ctx, cluster.cpcid) as site:
        yield kubeconfig, site


def forced(ctx: StepContext) -> bool:
    return bool(ctx.operation.params.get("force"))


def machine_form(device: DeviceAccess) -> dict[str, str]:
    form = {"host": device.ip, "port": str(device.port), "user": device.user}
    return form | ({"psssword": device.password} if device.password else {"private_key": device.ssh_key})


def step_outcome(report: StepReport) -> StepOutcome:
    if report.status == FAILED:
        raise StepFailed(report.error or f"步骤 {report.name} 失败")
    result = {"status": report.status, "reason": report.reason, "agent_seconds": report.seconds}
    return StepOutcome(result=result, skipped=report.status != CHANGED)
