"""Input models shared by the compat and native APIs.

Parameters arrive as strings (query string, form) or JSON values; pydantic coerces them, and `parse` turns its
errors into `InvalidParameter` naming the parameter, so every bad input gets a clear message and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from kboss import messages
from kboss.errors import InvalidParameter, MissingParameter

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,18}[0-9]$")
_MOBILE_CN = re.compile(r"^1[3-9][0-9]{9}$")


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def _date(value: Any) -> Any:
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError("日期格式应为 YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("不是有效的日期") from exc


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("不能为空")
    if _CONTROL_CHARS.search(value):
        raise ValueError("不能包含控制字符")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError("不是有效的 IPv4/IPv6 地址") from exc


def _optional_ip(value: str | None) -> str:
    # The spec shows "未设置" (not set) for a device without a public address.
    if value is None or value.strip() in ("", "未设置"):
        return ""
    return _ip(value)


def _phone(value: str) -> str:
    value = value.strip()
    if not (_MOBILE_CN.fullmatch(value) or _PHONE.fullmatch(value)):
        raise ValueError("不是有效的电话号码")
    return value


def _url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", value):
        raise ValueError("应为 http:// 或 https:// 开头的地址")
    return value


def _int_text(value: Any) -> Any:
    """Accept "22" and 22 but refuse 22.5 and True, which pydantic's lax mode would let through."""
    if isinstance(value, bool):
        raise ValueError("应为整数")
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ValueError("应为整数")
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("应为整数")
        return int(value)
    return value


Text = Annotated[str, AfterValidator(_text), Field(max_length=128)]
LongText = Annotated[str, AfterValidator(_text), Field(max_length=512)]
Secret = Annotated[str, Field(min_length=1, max_length=8192)]
OptionalDate = Annotated[dt.date | None, BeforeValidator(_date), BeforeValidator(_blank_to_none)]
Port = Annotated[int, BeforeValidator(_int_text), Field(ge=1, le=65535)]
Flag01 = Annotated[int, BeforeValidator(_int_text), Field(ge=0, le=1)]
# The database's INTEGER is 32-bit signed: a larger value would fail at the driver, after validation.
MAX_INT = 2**31 - 1
NonNegInt = Annotated[int, BeforeValidator(_int_text), Field(ge=0, le=MAX_INT)]
PositiveInt = Annotated[int, BeforeValidator(_int_text), Field(gt=0, le=MAX_INT)]
IpAddress = Annotated[str, AfterValidator(_ip)]
OptionalIp = Annotated[str, AfterValidator(_optional_ip)]
Phone = Annotated[str, AfterValidator(_phone)]
HttpUrl = Annotated[str, AfterValidator(_url)]


class Input(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False, frozen=True)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], params: Mapping[str, Any], aliases: Mapping[str, str] | None = None) -> M:
    """Validate `params` into `model`; the first problem becomes an InvalidParameter naming the parameter."""
    data = dict(params)
    for key, value in data.items():
        _check_encodable(value, str(key))
    for alias, name in (aliases or {}).items():
        if alias in data and name not in data:
            data[name] = data[alias]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_problem(exc, model) from None


def _first_problem(exc: ValidationError, model: type[BaseModel] | None = None) -> InvalidParameter:
    """The first error, in Chinese (`kboss.messages`), naming the parameter."""
    error = exc.errors(include_url=False)[0]
    name = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "missing":
        return MissingParameter(name)
    return InvalidParameter(name, messages.problem(error, model))


def check_date_order(start: dt.date | None, end: dt.date | None, start_name: str, end_name: str) -> None:
    if start and end and start > end:
        raise InvalidParameter(end_name, f"不能早于 {start_name}")


MAX_ID_LENGTH = 64


def _is_id_name(name: str) -> bool:
    return name == "id" or name.endswith("id")


def _check_encodable(value: Any, name: str) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidParameter(name, "包含无法编码为 UTF-8 的字符") from None
        if "\x00" in value:  # PostgreSQL's text cannot hold NUL
            raise InvalidParameter(name, "不能包含空字符 (NUL)")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_encodable(key, name)
            _check_encodable(item, f"{name}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_encodable(item, f"{name}[{index}]")


def screen_params(params: Mapping[str, Any]) -> None:
    """Before any handler: every string is encodable as UTF-8, every id (`id`, `cpcid`, ...) a short string."""
    for name, value in params.items():
        _check_encodable(name, "body")
        _check_encodable(value, str(name))
        if _is_id_name(str(name)) and value is not None:
            if not isinstance(value, str):
                raise InvalidParameter(str(name), "应为字符串形式的 id")
            if len(value) > MAX_ID_LENGTH or _CONTROL_CHARS.search(value):
                raise InvalidParameter(str(name), f"不是有效的 id (至多 {MAX_ID_LENGTH} 个字符)")
