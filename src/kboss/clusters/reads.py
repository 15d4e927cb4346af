"""What the compat cluster endpoints answer with once they have started an operation and waited for it: the
operation as it stands, the device as it is now, and the cluster's join command (sealed at rest, opened here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kboss.clusters.ops import Started, release_abandoned
from kboss.common.context import Ctx
from kboss.db.models import Cluster, Device
from kboss.db.models_ops import Operation
from kboss.operations.service import wait_operation
from kboss.operations.states import SUCCEEDED, TERMINAL

Starter = Callable[[Ctx, Mapping[str, Any]], Awaitable[Started]]


@dataclass(frozen=True)
class DeviceNow:
    """The spec's fields of the operation's device, read after the wait (a vanished device reads as idle)."""

    node_status: int = 0
    clusterid: str | None = None
    role: str = ""


@dataclass(frozen=True)
class Settled:
    started: Started
    operation: Operation
    device: DeviceNow | None  # None: the operation has no single device (a whole cluster's removal)
    join_command: str  # "" unless asked for and the operation succeeded


async def start_and_wait(
    ctx: Ctx, start: Starter, params: Mapping[str, Any], max_wait: float, *, with_join: bool = False
) -> Settled:
    """Start the operation, wait up to `max_wait` seconds for it, and read back what the answer shows."""
    started = await start(ctx, params)
    op = await wait_operation(ctx, started.operation.id, max_wait)
    if op.state in TERMINAL and op.state != SUCCEEDED:
        # Cancelled or timed out: free the machine now rather than at the next request.
        await release_abandoned(ctx.session, ctx.orgid)
    device = await device_now(ctx, started.device_id) if started.device_id else None
    join = await join_command(ctx, started.cluster_id) if with_join and op.state == SUCCEEDED else ""
    return Settled(started, op, device, join)


async def device_now(ctx: Ctx, device_id: str) -> DeviceNow:
    query = select(Device.node_status, Device.clusterid, Device.role).where(Device.id == device_id)
    row = (await ctx.session.execute(query)).first()
    return DeviceNow(*row) if row else DeviceNow()


async def join_command(ctx: Ctx, cluster_id: str) -> str:
    """The `kubeadm join` command of a built cluster, opened with the secret box ("" when none is stored)."""
    sealed = await ctx.session.scalar(select(Cluster.clusterjoin).where(Cluster.id == cluster_id))
    return ctx.box.open(sealed) if sealed else ""
