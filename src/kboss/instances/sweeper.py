"""Recovery: instances a kboss process left half-changed when it died are marked failed, so that their owner can
delete them (objects and stock together) instead of facing "正在创建中" forever.

Each one moves through `kboss.instances.states.transition`, in its own transaction, and only while it is still
as old as when it was found: a request that took the row up meanwhile is live, not abandoned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.models_instances import Instance
from kboss.errors import Conflict
from kboss.instances.states import FAILED, STATE_TEXT, TRANSIENT, transition

log = logging.getLogger("kboss.instances")
ACTOR: Final = "instance-sweeper"
ABANDONED: Final = (
    "kboss 在实例{}时中断,集群中的对象可能不完整;请删除该实例 (会一并删除集群中的对象并退还库存) 后重新创建"
)


async def fail_abandoned(sessions: async_sessionmaker[AsyncSession], older_than_seconds: float) -> int:
    """Mark instances stuck in a transient state `failed`; returns how many there were."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_seconds)  # utcnow() drops the µs
    async with sessions() as session:
        query = select(Instance.id).where(Instance.state.in_(TRANSIENT), Instance.updated_at < cutoff)
        stuck = list((await session.scalars(query.order_by(Instance.id))).all())
    count = 0
    for instance_id in stuck:
        count += await _fail(sessions, instance_id, cutoff)
    if count:
        log.warning("%d instance(s) left half-changed by an interrupted kboss process marked failed", count)
    return count


async def _fail(sessions: async_sessionmaker[AsyncSession], instance_id: str, cutoff: dt.datetime) -> int:
    async with sessions() as session:
        instance = await session.get(Instance, instance_id)
        if instance is None or instance.state not in TRANSIENT:
            return 0
        reason = ABANDONED.format(STATE_TEXT[instance.state])
        try:
            await transition(
                session,
                instance,
                FAILED,
                reason,
                ACTOR,
                extra=(Instance.updated_at < cutoff,),
                also={"last_error": reason},
            )
            await session.commit()
        except Conflict:  # a request moved it since it was found: it is not abandoned
            await session.rollback()
            return 0
    return 1


async def sweep_abandoned(
    sessions: async_sessionmaker[AsyncSession], stale_seconds: float, every_seconds: float
) -> None:
    """`fail_abandoned` at start-up, then every `every_seconds`, until cancelled."""
    while True:
        try:
            await fail_abandoned(sessions, stale_seconds)
        except DBAPIError:
            log.warning("instance sweep: database error, retrying", exc_info=True)
        await asyncio.sleep(every_seconds)
