"""Validation problems in the console's language (Chinese), whatever pydantic says in English.

One translator for the compat and native APIs: `validation.parse` (the services' input models) and
`api.errors.on_validation_error` (FastAPI's own request validation) both call `problem`. It goes by pydantic's
error *type* and its context (bounds, allowed values), never by its English text; a type it does not know gets a
generic Chinese phrase rather than pydantic's message. Custom validators raise `ValueError` with Chinese text,
which is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic_core import ErrorDetails

GENERIC = "取值不合法"
_CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
_EXPECTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|(-?\d+(?:\.\d+)?)")

_FIXED = {
    "missing": "缺少该参数",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "int_parsing_size": "整数超出范围",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "应为有限的数字",
    "decimal_parsing": "应为数字",
    "decimal_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本",
    "string_unicode": "应为 UTF-8 文本",
    "string_pattern_mismatch": "格式不正确",
    "bytes_type": "应为文本",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_inexact": "应为日期 (YYYY-MM-DD),不带时间",
    "date_type": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "应为日期时间,如 2025-05-16T08:00:00",
    "datetime_from_date_parsing": "应为日期时间,如 2025-05-16T08:00:00",
    "datetime_type": "应为日期时间,如 2025-05-16T08:00:00",
    "time_parsing": "应为时间,如 08:00:00",
    "list_type": "应为数组",
    "tuple_type": "应为数组",
    "set_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dataclass_type": "应为对象",
    "json_invalid": "不是合法的 JSON",
    "json_type": "应为 JSON 文本",
    "extra_forbidden": "不支持该参数",
    "url_parsing": "不是合法的 URL",
    "url_scheme": "URL 协议不受支持",
    "url_type": "不是合法的 URL",
    "uuid_parsing": "不是合法的 UUID",
    "uuid_type": "不是合法的 UUID",
    "none_required": "不应填写该参数",
    "frozen_field": "不能修改",
    "frozen_instance": "不能修改",
    "union_tag_invalid": GENERIC,
    "union_tag_not_found": GENERIC,
    "is_instance_of": GENERIC,
    "callable_type": GENERIC,
}


def problem(error: ErrorDetails | Mapping[str, Any], model: type[BaseModel] | None = None) -> str:
    """The problem of one pydantic error, in Chinese, without the parameter's name.

    With the model, a bound names the field's whole range (`应为 1 到 65535 之间的整数`), not only the bound
    that failed."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in _FIXED:
        return _FIXED[kind]
    if kind in ("value_error", "assertion_error"):
        return _custom(str(ctx.get("error", "") or error.get("msg", "")))
    if kind in ("literal_error", "enum"):
        choices = _choices(str(ctx.get("expected", "")))
        return f"可选值为 {'、'.join(choices)}" if choices else GENERIC
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _bounds(kind, ctx, error, model)
    if kind == "multiple_of":
        return f"应为 {ctx.get('multiple_of')} 的倍数"
    if kind in ("string_too_short", "too_short"):
        least = int(ctx.get("min_length", 1))
        unit = "个字符" if kind == "string_too_short" or isinstance(error.get("input"), str) else "项"
        return "不能为空" if least <= 1 else f"至少 {least} {unit}"
    if kind in ("string_too_long", "too_long"):
        unit = "个字符" if kind == "string_too_long" or isinstance(error.get("input"), str) else "项"
        return f"长度不能超过 {ctx.get('max_length')} {unit}"
    if kind == "decimal_max_digits":
        return f"最多 {ctx.get('max_digits')} 位数字"
    if kind == "decimal_max_places":
        return f"最多 {ctx.get('decimal_places')} 位小数"
    if kind == "decimal_whole_digits":
        return f"整数部分最多 {ctx.get('whole_digits')} 位"
    return GENERIC


def _custom(message: str) -> str:
    """A validator's own message: kboss's are Chinese; anything else (a library's English) is not shown."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message if _CJK.search(message) else GENERIC


def _choices(expected: str) -> list[str]:
    """pydantic's `'cpu', 'memory' or 'gpu'` (also for enums, by value) as the values themselves."""
    found = [next(group for group in match.groups() if group is not None) for match in _EXPECTED.finditer(expected)]
    return found


def _bounds(
    kind: str, ctx: Mapping[str, Any], error: ErrorDetails | Mapping[str, Any], model: type[BaseModel] | None
) -> str:
    low, low_open, high, high_open, integer = _field_range(model, error.get("loc", ()))
    if low is None and high is None:  # no model to look at: the bound that failed
        low = ctx.get("ge", ctx.get("gt"))
        high = ctx.get("le", ctx.get("lt"))
        low_open, high_open = "gt" in ctx, "lt" in ctx
    what = {True: "整数", False: "数", None: "数值"}[integer]
    if low is not None and high is not None and not low_open and not high_open:
        if integer and 0 < high - low <= 2:  # a flag: 0 or 1
            return "可选值为 " + "、".join(str(value) for value in range(int(low), int(high) + 1))
        return f"应为 {low} 到 {high} 之间的{what}"
    parts = []
    if low is not None:
        parts.append(f"{'大于' if low_open else '不小于'} {low}")
    if high is not None:
        parts.append(f"{'小于' if high_open else '不大于'} {high}")
    if not parts:
        return GENERIC
    return f"应为{' 且'.join(parts)} 的{what}"


def _field_range(model: type[BaseModel] | None, loc: Any) -> tuple[Any, bool, Any, bool, bool | None]:
    """(low, low is exclusive, high, high is exclusive, is an integer) of the field at `loc`, when known."""
    low: Any = None
    high: Any = None
    low_open = high_open = False
    field = model.model_fields.get(str(loc[0])) if model is not None and loc and len(loc) == 1 else None
    if field is None:
        return low, low_open, high, high_open, None
    for item in field.metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low, low_open = item.gt, True
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, Lt):
            high, high_open = item.lt, True
    return low, low_open, high, high_open, field.annotation is int


def json_problem(exc: ValueError) -> str:
    """A JSON decoding error in Chinese, with its position (the decoder's own message is English)."""
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    return f"不是合法的 JSON (第 {line} 行第 {column} 列)" if line and column else "不是合法的 JSON"


def yaml_problem(exc: Exception) -> str:
    """A YAML parsing error in Chinese, with its position when the parser gives one."""
    mark = getattr(exc, "problem_mark", None)
    return f"不是合法的 YAML (第 {mark.line + 1} 行第 {mark.column + 1} 列)" if mark is not None else "不是合法的 YAML"
