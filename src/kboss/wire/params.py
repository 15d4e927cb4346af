"""The spec's parameters arrive in the query string, a form body or a JSON body alike; merge them."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request

from kboss import messages
from kboss.errors import InvalidParameter

MAX_BODY_BYTES = 4 * 1024 * 1024


async def request_params(request: Request) -> dict[str, Any]:
    """Query string, then the body on top (whatever the method: the document sends JSON bodies with GET too)."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if "application/json" in content_type:
        params.update(await _json_body(request))
    elif "application/x-www-form-urlencoded" in content_type:
        params.update(await _urlencoded_body(request))
    elif "multipart/form-data" in content_type:
        form = await request.form()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidParameter("body", "请求体过大")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameter("body", messages.json_problem(exc)) from None
    if not isinstance(body, dict):
        raise InvalidParameter("body", "JSON 请求体应为对象")
    return body


async def _urlencoded_body(request: Request) -> dict[str, str]:
    # Starlette reads unescaped bytes as latin-1; curl -d sends raw UTF-8, so decode it ourselves.
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidParameter("body", "请求体过大")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter("body", "表单应为 UTF-8 编码") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "")).strip().lower() in ("1", "true", "yes", "on")


Params = Annotated[dict[str, Any], Depends(request_params)]
