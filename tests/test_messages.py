"""Validation problems are translated by pydantic's error type into Chinese, naming bounds and allowed values."""

from __future__ import annotations

import datetime as dt
import enum
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from kboss import messages
from kboss.common.validation import parse
from kboss.errors import InvalidParameter

ENGLISH = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}|Input should|Value error|Field required")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _english(value: str) -> str:
    if not value.isascii():
        raise ValueError("不能含有中文")
    raise ValueError("this is an English message from a library")


class Sample(BaseModel):
    port: Annotated[int, Field(ge=1, le=65535)] = 1
    flag: Annotated[int, Field(ge=0, le=1)] = 0
    positive: Annotated[int, Field(gt=0)] = 1
    small: Annotated[Decimal, Field(lt=10)] = Decimal(1)
    price: Annotated[Decimal, Field(max_digits=5, decimal_places=2)] = Decimal(1)
    kind: Literal["cpu", "memory", "disk", "gpu"] = "cpu"
    color: Color = Color.RED
    name: Annotated[str, Field(min_length=1, max_length=8)] = "x"
    words: Annotated[list[str], Field(max_length=2)] = []
    on: bool = False
    day: dt.date = dt.date(2025, 1, 1)
    obj: dict[str, Any] = {}
    text: Annotated[str, AfterValidator(_english)] = "x"
    needed: str


CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"port": "99999"}, "port", "应为 1 到 65535 之间的整数"),
    ({"port": "0"}, "port", "应为 1 到 65535 之间的整数"),
    ({"port": "x"}, "port", "应为整数"),
    ({"port": "2.5"}, "port", "应为整数"),
    ({"flag": "5"}, "flag", "可选值为 0、1"),
    ({"positive": "0"}, "positive", "应为大于 0 的整数"),
    ({"small": "11"}, "small", "应为小于 10 的数"),
    ({"price": "1.234"}, "price", "最多 2 位小数"),
    ({"price": "123456"}, "price", "最多 5 位数字"),
    ({"price": "cheap"}, "price", "应为数字"),
    ({"kind": "tpu"}, "kind", "可选值为 cpu、memory、disk、gpu"),
    ({"color": "green"}, "color", "可选值为 red、blue"),
    ({"name": ""}, "name", "不能为空"),
    ({"name": "x" * 9}, "name", "长度不能超过 8 个字符"),
    ({"name": {"nested": 1}}, "name", "应为文本"),
    ({"words": ["a", "b", "c"]}, "words", "长度不能超过 2 项"),
    ({"words": "abc"}, "words", "应为数组"),
    ({"on": "perhaps"}, "on", "应为 true 或 false"),
    ({"day": "16/05/2025"}, "day", "日期格式应为 YYYY-MM-DD"),
    ({"obj": "x"}, "obj", "应为对象"),
    ({"text": "English"}, "text", messages.GENERIC),
    ({"text": "中文"}, "text", "不能含有中文"),
]


@pytest.mark.parametrize(("params", "name", "problem"), CASES)
def test_each_error_type_is_translated(params: dict[str, Any], name: str, problem: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(Sample, {"needed": "y", **params})
    assert caught.value.message == f"参数 {name} 无效: {problem}"
    assert not ENGLISH.search(caught.value.message)


def test_missing_is_named() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse(Sample, {})
    assert caught.value.message == "参数 needed 无效: 缺少该参数"


def test_without_the_model_the_failed_bound_is_named() -> None:
    try:
        Sample.model_validate({"needed": "y", "port": 70000})
    except ValidationError as exc:
        assert messages.problem(exc.errors()[0]) == "应为不大于 65535 的数值"


def test_unknown_types_never_fall_back_to_english() -> None:
    error = {"type": "some_future_type", "msg": "Input should be something", "loc": ("x",)}
    assert messages.problem(error) == messages.GENERIC
