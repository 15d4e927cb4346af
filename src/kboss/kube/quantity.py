"""Kubernetes resource quantities (`100m`, `1.5`, `512Mi`, `8Gi`, `1e3`, `1k`), parsed exactly.

Values are `Decimal` in base units (cores for cpu, bytes for memory and storage, counts for the rest); floats
never appear, so `0.1 + 0.2` style errors cannot creep into capacity checks or prices. The grammar is the one
of `k8s.io/apimachinery/pkg/api/resource`:

    quantity ::= signedNumber suffix
    suffix   ::= binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E) | ("e"|"E") signedNumber

Conversions to integers round up, as `Quantity.MilliValue()` / `Value()` do and therefore as kube-scheduler
counts: a request of `0.5m` cpu occupies a whole millicore.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Context, Decimal, Inexact, InvalidOperation, Overflow
from functools import lru_cache

from kboss.errors import InvalidParameter

_PATTERN = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<exponent>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE])?)"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Bounds that keep every computation exact and cheap: Kubernetes itself clamps values to int64.
_MAX_TEXT = 64
_MAX_EXPONENT = 30
_MAX_VALUE = Decimal(2**63 - 1)
# Enough digits for a 64-character mantissa times 2**60; Inexact is trapped so nothing is silently rounded.
_EXACT = Context(prec=120, traps=[Inexact, InvalidOperation, Overflow])
# Wide enough that scaling a bounded quantity by 1000 never rounds.
_WIDE = Context(prec=200)
_HINT = "应为 Kubernetes 数量,如 500m、2、1.5、512Mi、8Gi、1e3"

Quantity = str | int | Decimal


def parse_quantity(value: Quantity, param: str) -> Decimal:
    """The quantity in base units; negative, malformed or absurdly large values raise InvalidParameter."""
    if type(value) is not str:  # the API's case is str: keep it to one check, this runs for every pod
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidParameter(param, f"{_HINT},收到 {type(value).__name__}")
        value = str(value)
    result = _parse_text(value)
    if isinstance(result, str):
        raise InvalidParameter(param, f"{value.strip()[:_MAX_TEXT]!r} {result}")
    return result


@lru_cache(maxsize=16384)
def _parse_text(text: str) -> Decimal | str:
    """The value, or the problem as text. Cached: API objects repeat the same few quantities thousands of times."""
    text = text.strip()
    if not text:
        return "不能为空"
    if len(text) > _MAX_TEXT:
        return "过长"
    match = _PATTERN.fullmatch(text)
    if match is None:
        return f"格式不对,{_HINT}"
    number = Decimal(match["number"])
    if number < 0:
        return "不能为负数"
    if match["binary"]:
        result = _EXACT.multiply(number, Decimal(1024 ** _BINARY[match["binary"]]))
    else:
        exponent = int(match["exponent"][1:]) if match["exponent"] else _DECIMAL[match["decimal"] or ""]
        if abs(exponent) > _MAX_EXPONENT:
            return "指数超出范围"
        result = _EXACT.scaleb(number, exponent)
    if result > _MAX_VALUE:
        return "数值过大"
    return result


def milli_ceil(quantity: Decimal) -> int:
    """Thousandths of the quantity, rounded up (`Quantity.MilliValue()`): cpu cores → millicores."""
    return int(quantity.scaleb(3, context=_WIDE).to_integral_value(rounding=ROUND_CEILING))


def value_ceil(quantity: Decimal) -> int:
    """The quantity as an integer, rounded up (`Quantity.Value()`): bytes, GPU cards, pod counts."""
    return int(quantity.to_integral_value(rounding=ROUND_CEILING))


def cpu_millicores(value: Quantity, param: str) -> int:
    """A cpu quantity (`1000m`, `2`, `0.5`) in millicores, rounded up as the scheduler counts it."""
    return milli_ceil(parse_quantity(value, param))


def memory_bytes(value: Quantity, param: str) -> int:
    """A memory or storage quantity (`512Mi`, `8Gi`, `1e9`) in bytes, rounded up."""
    return value_ceil(parse_quantity(value, param))


def format_millicores(millicores: int) -> str:
    """Canonical cpu text: whole cores as `2`, the rest as `1500m` (what `kubectl get -o yaml` shows)."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_bytes(size: int) -> str:
    """Canonical byte text with the largest binary suffix that is exact: 536870912 → `512Mi`."""
    for suffix, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
        unit = 1024**power
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
