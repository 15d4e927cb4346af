"""Units of the price catalog: resources, charge periods and currency, as exact fractions.

Quote requests state amounts in fixed units (cpu cores, memory Mi, disk Gi, gpu cards); each component states the
unit its price is per (`resource_unit`), the period it is charged by (`charge_unit`) and its currency
(`account_unit`). Everything is converted explicitly, never guessed.
"""

from __future__ import annotations

from fractions import Fraction

RESOURCE_TYPES = ("cpu", "memory", "disk", "gpu")

# Size of each accepted resource unit, measured in the unit quote requests use for that type.
RESOURCE_UNITS: dict[str, dict[str, Fraction]] = {
    "cpu": {"核": Fraction(1), "core": Fraction(1), "cores": Fraction(1), "个": Fraction(1), "m": Fraction(1, 1000)},
    "memory": {
        "Ki": Fraction(1, 1024),
        "Mi": Fraction(1),
        "Gi": Fraction(1024),
        "Ti": Fraction(1024**2),
    },
    "disk": {"Mi": Fraction(1, 1024), "Gi": Fraction(1), "Ti": Fraction(1024)},
    "gpu": {"卡": Fraction(1), "张": Fraction(1), "card": Fraction(1), "cards": Fraction(1), "个": Fraction(1)},
}
REQUEST_UNIT = {"cpu": "核", "memory": "Mi", "disk": "Gi", "gpu": "卡"}
DEFAULT_RESOURCE_UNIT = {"cpu": "核", "memory": "Gi", "disk": "Gi", "gpu": "卡"}

_MINUTE, _HOUR, _DAY = 60, 3600, 86400
PERIOD_SECONDS: dict[str, int] = {
    "秒": 1,
    "second": 1,
    "分钟": _MINUTE,
    "minute": _MINUTE,
    "小时": _HOUR,
    "hour": _HOUR,
    "天": _DAY,
    "day": _DAY,
    "周": 7 * _DAY,
    "week": 7 * _DAY,
    "月": 30 * _DAY,
    "month": 30 * _DAY,
}
CHARGE_UNITS = ("秒", "分钟", "小时", "天", "second", "minute", "hour", "day")
DURATION_UNITS = tuple(PERIOD_SECONDS)

# Value of one currency unit in 元 (1 元 = 10 角 = 100 分).
CURRENCY_IN_YUAN: dict[str, Fraction] = {"元": Fraction(1), "角": Fraction(1, 10), "分": Fraction(1, 100)}


def resource_unit_problem(resource_type: str, unit: str) -> str | None:
    units = RESOURCE_UNITS.get(resource_type)
    if units is None:
        return f"类型应为 {'/'.join(RESOURCE_TYPES)}"
    if unit not in units:
        return f"{resource_type} 的资源单位应为 {'/'.join(units)}"
    return None


def request_amount_in(resource_type: str, amount: Fraction, unit: str) -> Fraction:
    """A request's amount (in REQUEST_UNIT) expressed in the component's `unit`."""
    return amount / RESOURCE_UNITS[resource_type][unit]


def periods(duration: int, duration_unit: str, charge_unit: str) -> Fraction:
    """How many charge periods a duration spans (2 天 charged per 小时 → 48)."""
    return Fraction(duration * PERIOD_SECONDS[duration_unit], PERIOD_SECONDS[charge_unit])
