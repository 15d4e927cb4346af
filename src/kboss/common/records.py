"""Helpers shared by the catalog services: tenant-scoped lookups and row formatting."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol, TypeVar

from sqlalchemy import select

from kboss.common.context import Ctx
from kboss.errors import MissingParameter, NotFound


class OrgOwned(Protocol):
    id: Any
    orgid: Any


T = TypeVar("T", bound=OrgOwned)


async def get_owned(ctx: Ctx, model: type[T], record_id: str | None, param: str, what: str) -> T:
    """The caller's org's record, or NotFound: another org's row is indistinguishable from a missing one."""
    if not record_id:
        raise MissingParameter(param)
    record = await ctx.session.scalar(select(model).where(model.id == record_id, model.orgid == ctx.orgid))
    if record is None:
        raise NotFound(f"{what}不存在: {record_id}")
    return record


def date_text(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def time_text(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None
