"""The instance state machine: the states, the allowed transitions as data, and the one function that applies them.

applying: row written and stock consumed, objects being created; ready: objects applied; updating / deleting: a
change is in flight; failed: the cluster may hold some objects, stock still held. Two pseudo-states bound an
instance's history: NEW (no row yet) and GONE (the row deleted, its stock given back).

`transition` is a compare-and-set on the state the caller saw, so of two requests changing one instance (two
deletes, say) exactly one wins and the other is told what the instance is busy with; the loser never touches
the stock. It writes the history row in the caller's transaction; the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from kboss.db.cas import compare_and_set
from kboss.db.models import utcnow
from kboss.db.models_instances import Instance, InstanceHistory
from kboss.errors import Conflict
from kboss.redaction import redact

NEW: Final = ""
APPLYING: Final = "applying"
READY: Final = "ready"
UPDATING: Final = "updating"
DELETING: Final = "deleting"
FAILED: Final = "failed"
GONE: Final = "deleted"
STATES: Final = (APPLYING, READY, UPDATING, DELETING, FAILED)
# A row holds one of these only while one request talks to the site agent (a minute at most); an older one was
# left by a kboss process that died mid-change (`kboss.instances.sweeper`).
TRANSIENT: Final = (APPLYING, UPDATING, DELETING)
STATE_TEXT: Final[dict[str, str]] = {
    APPLYING: "创建中",
    READY: "就绪",
    UPDATING: "变更中",
    DELETING: "删除中",
    FAILED: "失败",
}

# The whole state machine. Anything not listed here is refused by `transition`.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    NEW: frozenset({APPLYING}),
    # GONE: the apply failed and what it may have created was removed, so the row goes with its stock.
    APPLYING: frozenset({READY, FAILED, GONE}),
    READY: frozenset({UPDATING, DELETING}),
    # A failed instance can be updated (re-applied) or deleted: both finish what the cluster may hold.
    FAILED: frozenset({UPDATING, DELETING}),
    # A failed update or delete that the cluster did not take puts the instance back as it was (ready or failed).
    UPDATING: frozenset({READY, FAILED}),
    DELETING: frozenset({READY, FAILED, GONE}),
    GONE: frozenset(),
}


def busy_message(instance_id: str, state: str | None) -> str:
    """What a request is told when another one holds the instance (or deleted it)."""
    text = STATE_TEXT.get(state or "", state or "已删除")
    return f"资源实例 {instance_id} 正{text},请稍后再试"


def check_transition(instance_id: str, from_state: str, to_state: str) -> None:
    if to_state in TRANSITIONS.get(from_state, frozenset()):
        return
    if from_state in TRANSIENT:  # another request is at work on it: it is busy, not broken
        raise Conflict(busy_message(instance_id, from_state))
    allowed = ", ".join(sorted(TRANSITIONS.get(from_state, ()))) or "无"
    raise Conflict(
        f"资源实例 {instance_id} 当前状态为 {from_state or '未创建'},不能变为 {to_state} (允许: {allowed})",
        data={"instance_id": instance_id, "state": from_state, "requested": to_state},
    )


def record(session: AsyncSession, instance_id: str, from_state: str, to_state: str, reason: str, actor: str) -> None:
    """The history row of a change, in the caller's transaction (a new row's NEW → APPLYING is recorded so)."""
    session.add(
        InstanceHistory(
            instance_id=instance_id,
            from_state=from_state,
            to_state=to_state,
            reason=redact(reason)[:4000],
            actor=actor[:128],
        )
    )


async def transition(
    session: AsyncSession,
    instance: Instance,
    to_state: str,
    reason: str,
    actor: str,
    *,
    extra: Sequence[ColumnElement[bool]] = (),
    also: Mapping[str, Any] | None = None,
) -> None:
    """Move `instance` to `to_state` (GONE deletes the row) or raise Conflict; `extra` narrows the compare-and-set,
    `also` sets more columns in the same UPDATE. The caller commits, or rolls back after a Conflict."""
    instance_id, from_state = instance.id, instance.state
    check_transition(instance_id, from_state, to_state)
    where = (Instance.id == instance_id, Instance.state == from_state, *extra)
    values = {"state": to_state, "updated_at": utcnow(), **(also or {})}
    stmt = delete(Instance).where(*where) if to_state == GONE else update(Instance).where(*where).values(**values)
    if not await compare_and_set(session, stmt.execution_options(synchronize_session=False)):
        current = await session.scalar(select(Instance.state).where(Instance.id == instance_id))
        raise Conflict(busy_message(instance_id, current))
    record(session, instance_id, from_state, to_state, reason, actor)
    if to_state == GONE:
        if instance in session:  # its row is gone: the object keeps what it was, for the answer
            session.expunge(instance)
        return
    for key, value in values.items():
        set_committed_value(instance, key, value)
