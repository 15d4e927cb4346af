"""Keeping the audit trail bounded: events older than `Settings.audit_retention_days` are deleted (0 keeps all).

Deleting is the only change the table allows (its trigger refuses UPDATE). Every serving process prunes on its
own; two deleting the same old rows at once is harmless.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import delete

from kboss.audit.trail import Sessions
from kboss.db.cas import matched
from kboss.db.models_audit import AuditEvent

log = logging.getLogger("kboss.audit")
PRUNE_EVERY_SECONDS = 3600.0


async def prune(sessions: Sessions, retention_days: int, now: dt.datetime | None = None) -> int:
    """Delete the events older than `retention_days` (none when 0); how many went."""
    if retention_days <= 0:
        return 0
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    async with sessions() as session:
        deleted = await matched(session, delete(AuditEvent).where(AuditEvent.at < cutoff))
        await session.commit()
    return deleted


async def keep_pruning(sessions: Sessions, retention_days: int, every: float = PRUNE_EVERY_SECONDS) -> None:
    """Prune now and then every `every` seconds, until cancelled; a failed round is logged and retried later."""
    while True:
        try:
            pruned = await prune(sessions, retention_days)
            if pruned:
                log.info("audit retention: deleted %d event(s) older than %d days", pruned, retention_days)
        except Exception:
            log.exception("audit retention failed; trying again in %.0f s", every)
        await asyncio.sleep(every)
