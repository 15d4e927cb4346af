"""Amounts of money: `Decimal` 元 in services and answers, whole 分 in the database.

Totals are rounded half-up to 0.01 元 (the design's rule); an amount a caller sends must already be whole 分.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kboss.errors import InvalidParameter

CENT = Decimal("0.01")
# A top-up above this is a typing mistake, not a payment (100 million 元).
MAX_AMOUNT = Decimal("100000000")


def to_fen(amount: Decimal) -> int:
    """Whole 分 of an amount in 元, rounded half-up."""
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) * CENT).quantize(CENT)


def text(amount: Decimal) -> str:
    """As answers show money: two decimals, e.g. `"12.50"`."""
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def parse_amount(value: Any, name: str = "amount") -> Decimal:
    """A positive amount in 元 with at most two decimals, from a string or a number (never a float's noise)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidParameter(name, "应为金额,例如 100.00")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidParameter(name, "应为金额,例如 100.00") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidParameter(name, "应为大于 0 的金额")
    if amount != amount.quantize(CENT):
        raise InvalidParameter(name, "最多两位小数(单位: 元)")
    if amount > MAX_AMOUNT:
        raise InvalidParameter(name, f"不能超过 {MAX_AMOUNT} 元")
    return amount
