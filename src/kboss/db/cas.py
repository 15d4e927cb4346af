"""Conditional writes: run an UPDATE or DELETE and learn how many rows its WHERE matched.

Every state change in kboss (operations, instances, devices, stock) is a compare-and-set: an UPDATE whose WHERE
names the state the caller saw, so that of two racing requests exactly one matches the row. The count is the
whole answer, but SQLAlchemy types `session.execute` as returning a plain `Result`, which has no `rowcount`;
this module is the one place that knows a DML statement returns a `CursorResult`, instead of a
`# type: ignore` at every call site.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Update
from sqlalchemy.ext.asyncio import AsyncSession


async def matched(session: AsyncSession, stmt: Update | Delete) -> int:
    """Execute `stmt` in the session's transaction; the number of rows its WHERE clause matched."""
    result = cast(CursorResult[Any], await session.execute(stmt))
    return int(result.rowcount)


async def compare_and_set(session: AsyncSession, stmt: Update | Delete) -> bool:
    """Execute `stmt`; whether it matched exactly one row (False: another request changed or removed it first)."""
    return await matched(session, stmt) == 1
