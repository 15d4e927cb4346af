"""The build state of a cluster row (migration 0004): what `ready` alone cannot say.

`ready` keeps the document's meaning (0 正在安装, 1 安装完成) and adds -1 安装失败 for a build that failed, was
cancelled or timed out: a front end that knows only 0/1 no longer shows such a cluster as installing forever.
`state` is `installing`, `ready` or `failed`; `state_reason` the failed operation's message. A retry of the
build (the same row, the same operation) puts the row back to installing when its first step runs.
"""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.db.models import Cluster, Device
from kboss.operations.steps import StepContext

INSTALLING, READY, FAILED = "installing", "ready", "failed"
READY_FAILED = -1  # `ready` of a failed build (the document defines 0 and 1 only)
STATE_TEXT = {INSTALLING: "正在安装", READY: "安装完成", FAILED: "安装失败"}


def cluster_state(cluster: Cluster) -> str:
    if cluster.state:
        return cluster.state
    return READY if cluster.ready == 1 else INSTALLING


async def failed_build_named(session: AsyncSession, orgid: str, cpcid: str, name: str) -> Cluster | None:
    """The center's failed build of that name that holds no machine: a repeated build request re-uses it (as
    installing again) rather than leaving a second row beside it."""
    holds_machine = exists().where(Device.clusterid == Cluster.id)
    query = select(Cluster).where(
        Cluster.orgid == orgid, Cluster.cpcid == cpcid, Cluster.name == name, Cluster.state == FAILED, ~holds_machine
    )
    found = await session.scalar(query.order_by(Cluster.id).limit(1))
    if found is not None:
        found.ready, found.state, found.state_reason = 0, INSTALLING, None
    return found


async def mark_failed(session: AsyncSession, cluster_id: str | None, reason: str) -> None:
    """A build that did not finish: the row says so (only while it is not ready); the caller commits."""
    await session.execute(
        update(Cluster)
        .where(Cluster.id == cluster_id, Cluster.ready != 1)
        .values(ready=READY_FAILED, state=FAILED, state_reason=reason[:2000])
        .execution_options(synchronize_session=False)
    )


async def mark_installing(session: AsyncSession, cluster_id: str | None) -> None:
    """A build (re)starting on the row: installing again; the caller commits."""
    await session.execute(
        update(Cluster)
        .where(Cluster.id == cluster_id, Cluster.ready != 1)
        .values(ready=0, state=INSTALLING, state_reason=None)
        .execution_options(synchronize_session=False)
    )


async def build_state(ctx: StepContext, failed: str | None) -> None:
    """A build's row: installing while its steps run, failed (with why) when one fails."""
    if ctx.operation.kind != "create_cluster":
        return
    async with ctx.sessions() as session:
        cluster_id = ctx.operation.cluster_id
        await (mark_failed(session, cluster_id, failed) if failed else mark_installing(session, cluster_id))
        await session.commit()
