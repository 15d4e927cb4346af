"""Paging and sorting of list endpoints: `page`, `rows`, `sort` in, `total`, `rows`, `row_num_` out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from kboss.common.validation import _int_text
from kboss.errors import InvalidParameter

MAX_ROWS = 1000
# Pages beyond this would ask the database for an offset it cannot represent (and nobody pages that far).
MAX_PAGE = 100_000


@dataclass(frozen=True)
class Page:
    number: int = 1
    size: int = MAX_ROWS
    sort: str = ""


def page_from_params(params: Mapping[str, Any]) -> Page:
    return Page(
        number=_bounded_int(params, "page", 1, 1, MAX_PAGE),
        size=_bounded_int(params, "rows", MAX_ROWS, 1, MAX_ROWS),
        sort=str(params.get("sort") or "").strip(),
    )


def _bounded_int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(_int_text(raw))
    except (ValueError, TypeError):
        raise InvalidParameter(name, "应为整数") from None
    if not low <= value <= high:
        raise InvalidParameter(name, f"应在 {low} 到 {high} 之间")
    return value


def order_by(sortable: Mapping[str, InstrumentedAttribute[Any]], sort: str, default: Sequence[Any]) -> list[Any]:
    """`sort` is a column name, optionally followed by ` desc`/` asc` or prefixed with `-`; blank = default."""
    sort = sort.strip()
    if not sort:
        return list(default)
    parts = sort.replace("-", " -", 1).split() if sort.startswith("-") else sort.split()
    field, descending = parts[0].lstrip("-"), sort.startswith("-")
    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
        descending = parts[1].lower() == "desc"
    elif len(parts) != 1:
        raise InvalidParameter("sort", f"无法识别的排序方式 {sort!r}")
    column = sortable.get(field)
    if column is None:
        raise InvalidParameter("sort", f"不支持按 {field} 排序,可选: {', '.join(sorted(sortable))}")
    return [column.desc() if descending else column.asc(), *default]


async def paged_rows(
    session: AsyncSession,
    query: Select[Any],
    page: Page,
    to_row: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    offset = (page.number - 1) * page.size
    result = await session.scalars(query.offset(offset).limit(page.size))
    rows = []
    for index, record in enumerate(result.all(), start=offset + 1):
        row = to_row(record)
        row["row_num_"] = index
        rows.append(row)
    return {"total": total or 0, "rows": rows}
