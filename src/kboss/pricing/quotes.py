"""Quotes (the spec's accrual_price): exact prices of a combination of components over a duration.

Each line is priced on its own: an unknown type, an unknown model or short stock gives that line an error (in the
spec's words) while the other lines are still priced. Totals are in 元, rounded half-up to 0.01; line subtotals stay
exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from kboss import messages
from kboss.common.validation import _int_text
from kboss.errors import InvalidParameter
from kboss.pricing import stock, units

OK_MESSAGE = "汇算正常"
NO_TYPE = "没有该类型组件"


@dataclass(frozen=True)
class Offer:
    """A priced component of a center, with what is left of its stock where the quote looks."""

    type: str
    model: str
    unit_price: Decimal
    resource_unit: str
    charge_unit: str
    account_unit: str
    available: int

    @property
    def key(self) -> str:
        return self.model


@dataclass(frozen=True)
class Line:
    """One line of a request: `amount` (in the component's resource unit) of the component `type`/`model`."""

    type: str
    model: str
    amount: int


@dataclass(frozen=True)
class QuoteRequest:
    """A parsed request; hashable (frozen, lines in a tuple), so that a `PriceBook` can memoise its quote."""

    lines: tuple[Line, ...]
    duration: int
    duration_unit: str


class PriceBook:
    """A center's (or cluster's) offers as read at one moment, with the quotes already computed from them.

    Buy pages ask for the same combinations over and over; while the offers stay the same, so does the answer.
    """

    MEMO_MAX = 1024

    def __init__(self, offers: Sequence[Offer]) -> None:
        self.offers = tuple(offers)
        self._memo: dict[QuoteRequest, dict[str, Any]] = {}

    def price(self, request: QuoteRequest) -> dict[str, Any]:
        """The quote (a shared dict: callers must not change it)."""
        quote = self._memo.get(request)
        if quote is None:
            if len(self._memo) >= self.MEMO_MAX:
                self._memo.clear()
            quote = self._memo[request] = price(request, self.offers)
        return quote


def parse_request(params: Mapping[str, Any]) -> QuoteRequest:
    raw = params.get("resources")
    if isinstance(raw, str):  # query string or form: the same text asks for the same quote
        return _parse_text(raw, str(params.get("duration", 1)), str(params.get("duration_unit") or "小时"))
    return _parse(params)


@lru_cache(maxsize=1024)
def _parse_text(resources: str, duration: str, duration_unit: str) -> QuoteRequest:
    return _parse({"resources": resources, "duration": duration, "duration_unit": duration_unit})


def _parse(params: Mapping[str, Any]) -> QuoteRequest:
    duration = _positive_int(params.get("duration", 1), "duration")
    duration_unit = str(params.get("duration_unit") or "小时").strip()
    if duration_unit not in units.PERIOD_SECONDS:
        raise InvalidParameter("duration_unit", f"应为 {'/'.join(units.DURATION_UNITS)}")
    raw = params.get("resources")
    if raw is None or raw == "":
        raise InvalidParameter("resources", "缺少该参数")
    items = _json_list(raw)
    return QuoteRequest(tuple(_line(item, i) for i, item in enumerate(items)), duration, duration_unit)


def _json_list(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidParameter("resources", messages.json_problem(exc)) from None
    if isinstance(raw, dict) and "resources" in raw:
        raw = raw["resources"]
    if not isinstance(raw, list) or not raw:
        raise InvalidParameter("resources", "应为非空数组")
    return raw


def _line(item: Any, index: int) -> Line:
    where = f"resources[{index}]"
    if not isinstance(item, dict):
        raise InvalidParameter(where, "应为对象")
    resource_type = str(item.get("type") or "").strip()
    if resource_type not in units.RESOURCE_TYPES:
        raise InvalidParameter(f"{where}.type", f"应为 {'/'.join(units.RESOURCE_TYPES)}")
    model = str(item.get("model") or "").strip()  # none: the component an order would draw on (`_offer_for`)
    return Line(resource_type, model, _positive_int(item.get("amount"), f"{where}.amount"))


# Amounts and durations beyond this would overflow the exact Decimal prices (28 digits); nobody buys that much.
_MAX_AMOUNT = 10**6


# A line's exact subtotal (to 12 places) must stay within Decimal's 28 digits.
MAX_SUBTOTAL = Fraction(10**15)


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(_int_text(value))
    except (ValueError, TypeError):
        raise InvalidParameter(name, "应为正整数") from None
    if not 0 < number <= _MAX_AMOUNT:
        raise InvalidParameter(name, f"应为 1 到 {_MAX_AMOUNT} 之间的整数")
    return number


def price(request: QuoteRequest, offers: Sequence[Offer]) -> dict[str, Any]:
    by_type: dict[str, dict[str, Offer]] = {}
    for offer in offers:
        by_type.setdefault(offer.type, {})[offer.model] = offer
    details: list[dict[str, Any]] = []
    total = Fraction(0)
    errors: list[str] = []
    for line in request.lines:
        detail, subtotal = _price_line(line, by_type.get(line.type, {}), request)
        details.append(detail)
        if "error" in detail:
            errors.append(detail["error"])
        else:
            total += subtotal
    ok = not errors
    return {
        "total_price": yuan(total),
        "currency": "元",
        "price_details": details,
        "status": ok,
        "message": OK_MESSAGE if ok else errors[0],
        "duration": str(request.duration),
        "duration_unit": request.duration_unit,
    }


def _price_line(line: Line, models: Mapping[str, Offer], request: QuoteRequest) -> tuple[dict[str, Any], Fraction]:
    if not models:
        return {"resource_type": line.type, "error": NO_TYPE}, Fraction(0)
    offer = _offer_for(line, models)
    if offer is None:
        return {"resource_type": line.type, "error": f"无效的 {line.type} 部件型号: {line.model}"}, Fraction(0)
    wanted = units.request_amount_in(line.type, Fraction(line.amount), offer.resource_unit)
    if wanted > offer.available:
        error = f"{line.type} {offer.model} 库存不足 (库存: {offer.available}, 请求: {exact(wanted)})"
        return {"resource_type": line.type, "error": error}, Fraction(0)
    subtotal = (
        wanted
        * Fraction(offer.unit_price)
        * units.CURRENCY_IN_YUAN[offer.account_unit]
        * units.periods(request.duration, request.duration_unit, offer.charge_unit)
    )
    if subtotal >= MAX_SUBTOTAL:
        return {"resource_type": line.type, "error": f"{line.type} {offer.model} 金额过大 (上限 10^15 元)"}, Fraction(0)
    detail = {
        "resource_name": f"{line.type} {offer.model}",
        "resource_type": line.type,
        "model": offer.model,
        "model_chosen": not line.model,
        "amount": line.amount,
        "resource_unit": offer.resource_unit,
        "billed_amount": exact(wanted),
        "unit_price": offer.unit_price,
        "account_unit": offer.account_unit,
        "charge_unit": offer.charge_unit,
        "duration": str(request.duration),
        "duration_unit": request.duration_unit,
        "subtotal": exact(subtotal),
    }
    return detail, subtotal


def _offer_for(line: Line, models: Mapping[str, Offer]) -> Offer | None:
    """The named model; without one, what an order would draw on (`stock.lookup`'s rule: a disk line is a data
    disk, as on the buy page)."""
    if line.model:
        return models.get(line.model)
    role = "datadisk" if line.type == "disk" else line.type
    return stock.cheapest_fitting(list(models.values()), role, Fraction(line.amount), {})


def yuan(amount: Fraction) -> Decimal:
    return (Decimal(amount.numerator) / Decimal(amount.denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def exact(amount: Fraction) -> Decimal:
    """The fraction as a decimal: exact when it terminates, else to 12 places (e.g. a day's price per hour)."""
    denominator = amount.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    value = Decimal(amount.numerator) / Decimal(amount.denominator)
    if denominator == 1:
        return value.normalize() if value != value.to_integral() else value.quantize(Decimal(1))
    return value.quantize(Decimal("1e-12"), rounding=ROUND_HALF_UP).normalize()
