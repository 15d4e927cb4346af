"""Reading the audit trail: one org's events, newest first, filtered and paged like every list of the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.audit.trail import OUTCOMES
from kboss.common.listing import Page, paged_rows
from kboss.db.models_audit import AuditEvent
from kboss.errors import InvalidParameter


@dataclass(frozen=True)
class Filters:
    actor: str = ""
    action: str = ""  # a prefix: `auth.` matches every login, logout and password change
    target_id: str = ""
    outcome: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def parse_time(name: str, text: str | None) -> dt.datetime | None:
    """An ISO date or date-time (UTC when it names no zone), or None for blank."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidParameter(name, "应为 ISO 日期或时间,如 2026-12-01 或 2026-12-01T08:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _escaped(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def query(orgid: str | None, filters: Filters) -> Select[Any]:
    """Events of `orgid` (None: every org, for the command line) matching the filters, newest first."""
    q = select(AuditEvent)
    if orgid is not None:
        q = q.where(AuditEvent.orgid == orgid)
    if filters.outcome and filters.outcome not in OUTCOMES:
        raise InvalidParameter("outcome", f"应为 {', '.join(OUTCOMES)} 之一")
    exact = {AuditEvent.actor: filters.actor, AuditEvent.target_id: filters.target_id}
    exact[AuditEvent.outcome] = filters.outcome
    for column, value in exact.items():
        if value:
            q = q.where(column == value)
    if filters.action:
        q = q.where(AuditEvent.action.like(_escaped(filters.action), escape="\\"))
    if filters.since is not None:
        q = q.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        q = q.where(AuditEvent.at < filters.until)
    return q.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id, "at": event.at.isoformat(), "actor_id": event.actor_id, "actor": event.actor,
        "orgid": event.orgid, "action": event.action, "target_type": event.target_type,
        "target_id": event.target_id, "address": event.address, "outcome": event.outcome, "code": event.code,
        "detail": dict(event.detail or {}),
    }  # fmt: skip


async def list_events(session: AsyncSession, orgid: str | None, filters: Filters, page: Page) -> dict[str, Any]:
    """`{"total", "rows"}` of the org's events (each row numbered `row_num_` like the other lists)."""
    return await paged_rows(session, query(orgid, filters), page, event_row)
