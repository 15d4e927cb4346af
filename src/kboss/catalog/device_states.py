"""A device's `node_status` (the spec's cpcnode field: 0 空闲, 1 占用) as a state table, and the one function
that changes it with a history row.

A device is occupied either by a cluster (a create/join operation reserved it, `clusterid` is set: see
`kboss.clusters.ops`) or because an admin marked it so (in use outside kboss, no `clusterid`). Only an idle
device can be reserved; a device still in a cluster is never set idle by hand (removing it from its cluster
frees it). `transition` is a compare-and-set on the status the caller saw, so a hand edit racing a reservation
cannot undo it silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from kboss.db.cas import compare_and_set
from kboss.db.models import Device, DeviceHistory
from kboss.errors import Conflict
from kboss.redaction import redact

IDLE: Final = 0
OCCUPIED: Final = 1
STATES: Final = (IDLE, OCCUPIED)
STATUS_TEXT: Final[dict[int, str]] = {IDLE: "空闲", OCCUPIED: "占用"}

# The whole state table; a change to the same status is no change and is not recorded.
TRANSITIONS: Final[dict[int, frozenset[int]]] = {
    IDLE: frozenset({OCCUPIED}),
    OCCUPIED: frozenset({IDLE}),
}


def status_text(status: int) -> str:
    return STATUS_TEXT.get(status, str(status))


def check_transition(device: Device, from_status: int, to_status: int) -> None:
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise Conflict(
            f"设备 {device.name} 当前为{status_text(from_status)} ({from_status}),"
            f"不能变为{status_text(to_status)} ({to_status})",
            data={"device_id": device.id, "node_status": from_status, "requested": to_status},
        )


async def transition(
    session: AsyncSession,
    device: Device,
    to_status: int,
    reason: str,
    actor: str,
    *,
    extra: Sequence[ColumnElement[bool]] = (),
    also: Mapping[str, Any] | None = None,
) -> None:
    """Move `device` to `to_status` and record it, or raise Conflict; `extra` narrows the compare-and-set,
    `also` sets more columns in the same UPDATE. The caller commits (or rolls back after a Conflict)."""
    from_status = device.node_status
    check_transition(device, from_status, to_status)
    values = {"node_status": to_status, **(also or {})}
    stmt = update(Device).where(Device.id == device.id, Device.node_status == from_status, *extra).values(**values)
    if not await compare_and_set(session, stmt.execution_options(synchronize_session=False)):
        raise Conflict(f"设备 {device.name} 的状态已被其他请求改变,请刷新后重试")
    record(session, device.id, from_status, to_status, reason, actor)
    for key, value in values.items():
        set_committed_value(device, key, value)


def record(session: AsyncSession, device_id: str, from_status: int, to_status: int, reason: str, actor: str) -> None:
    """The history row of a change made by a compare-and-set of the caller's (a cluster operation reserving or
    releasing machines), in the caller's transaction."""
    reason = redact(reason)[:4000]
    session.add(
        DeviceHistory(device_id=device_id, from_state=from_status, to_state=to_status, reason=reason, actor=actor[:128])
    )
