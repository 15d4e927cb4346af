"""Reading the audit table directly, as a test must (the API under test is what reads it otherwise)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kboss.db.models_audit import AuditEvent
from tests.support.api import Api


async def events(api: Api, action: str = "") -> list[AuditEvent]:
    """Every row, oldest first (optionally of one action)."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    async with api.app.state.kboss.sessions() as session:
        return list((await session.scalars(query)).all())


def as_text(event: AuditEvent) -> str:
    values: list[Any] = [getattr(event, column.name) for column in AuditEvent.__table__.columns]
    return " ".join(str(v) for v in values)
