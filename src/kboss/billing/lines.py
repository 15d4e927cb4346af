"""An order's price lines: what an instance takes from the stock, at which price, and what that costs for a time.

A line is `{component_id, type, model, amount, unit, unit_price, charge_unit}`: the amount in the component's unit
(whole units, as the stock counts them), the price as the price book said when the line was made (an order keeps
its lines; a renewal re-prices them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.db.models import Component
from kboss.errors import NotFound
from kboss.pricing import units
from kboss.pricing.quotes import yuan


async def price_lines(session: AsyncSession, needs: Sequence[Any]) -> list[dict[str, Any]]:
    """What the instance takes (its stock needs: component, amount in the component's unit) at today's prices."""
    ids = {need.component_id for need in needs}
    components = {c.id: c for c in (await session.scalars(select(Component).where(Component.id.in_(ids)))).all()}
    return [_line(need, components[need.component_id]) for need in needs if need.amount]


def _line(need: Any, component: Component) -> dict[str, Any]:
    return {
        "component_id": component.id, "type": need.type, "model": need.model, "amount": need.amount,
        "unit": need.unit, "unit_price": str(component.unit_price.normalize()), "charge_unit": component.charge_unit,
    }  # fmt: skip


def cost(lines: Sequence[Mapping[str, Any]], seconds: int) -> Decimal:
    """Σ amount × unit price × charge periods in `seconds`, rounded half-up to the 分 once, on the total."""
    key = tuple((int(line["amount"]), str(line["unit_price"]), str(line["charge_unit"])) for line in lines)
    return yuan(_per_second(key) * seconds)


@lru_cache(maxsize=4096)
def _per_second(key: tuple[tuple[int, str, str], ...]) -> Fraction:
    """What lines cost a second, exactly (metering prices the same few shapes of lines over and over)."""
    return sum(
        (Fraction(amount) * Fraction(Decimal(price)) / units.PERIOD_SECONDS[unit] for amount, price, unit in key),
        Fraction(0),
    )


async def repriced(session: AsyncSession, lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    ids = {str(line["component_id"]) for line in lines}
    components = {c.id: c for c in (await session.scalars(select(Component).where(Component.id.in_(ids)))).all()}
    missing = ids - set(components)
    if missing:
        raise NotFound(f"实例所用的算力部件已下架: {', '.join(sorted(missing))}")
    return [{**line, "unit_price": str(components[str(line["component_id"])].unit_price.normalize())} for line in lines]
