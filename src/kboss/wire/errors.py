"""The one place where domain errors become responses.

Compat paths (/dev/cpcc, /computing) answer HTTP 200 with `{"status": false, "msg", "data"}` as the spec shows;
site-agent paths (/pcapi) with `{"status": false, "info", "data"}`; native paths use HTTP status codes with
`{"detail", "code"}`. Unexpected failures are logged with their traceback and answered without it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kboss import messages
from kboss.errors import KbossError, TooManyAttempts
from kboss.wire.jsonresp import EnvelopeResponse

log = logging.getLogger("kboss.api")


class ErrorBody(BaseModel):
    """What every native failure answers (`_failure`): a Chinese message, a stable code, and sometimes data."""

    detail: str
    code: str
    data: Any | None = None


# Declared on the native routers so that the OpenAPI document shows the real failure bodies; declaring 422 also
# replaces FastAPI's default HTTPValidationError schema, which native routes never answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "未登录或登录已过期"),
        (403, "没有权限执行此操作"),
        (404, "记录不存在"),
        (409, "与现有数据冲突"),
        (422, "参数无效"),
        (502, "远端服务调用失败"),
    )
}

# Declared only on the routes that throttle (logins), whose 429 carries a `Retry-After` header.
TOO_MANY_ATTEMPTS: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "尝试次数过多,请稍后再试 (Retry-After: 秒数)"}
}

COMPAT_PREFIXES = ("/dev/cpcc/", "/computing/")
# Where `_failure` leaves the error's code and HTTP status in the request's scope.
FAILURE_KEY = "kboss.failure"
SITE_PREFIX = "/pcapi/"


def envelope(status: bool, message: str, data: Any, key: str = "msg") -> JSONResponse:
    return EnvelopeResponse({"status": status, key: message, "data": data})


def ok(message: str, data: Any) -> JSONResponse:
    return envelope(True, message, data)


def _failure(
    request: Request, http_status: int, code: str, message: str, data: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    # For the audit trail (`kboss.api.audit`): compat failures answer HTTP 200, so the status alone does not tell.
    request.scope[FAILURE_KEY] = (code, http_status)
    path = request.url.path
    if path.startswith(COMPAT_PREFIXES):
        return envelope(False, message, data)
    if path.startswith(SITE_PREFIX):
        # The spec's `info` envelope, plus the error's code: the platform's site client tells an unreachable
        # cluster from other failures by it (`kboss.sites.client`).
        return EnvelopeResponse({"status": False, "info": message, "data": data, "code": code})
    body: dict[str, Any] = {"detail": message, "code": code}
    if data is not None:
        body["data"] = data
    return JSONResponse(jsonable_encoder(body), status_code=http_status, headers=headers)


async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KbossError)
    if exc.http_status >= 500:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc.message)
    # A throttled login says when to come back, in the header clients and proxies know (and in `data`).
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
    return _failure(request, exc.http_status, exc.code, exc.message, exc.data, headers)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    name = "body" if first.get("type") == "json_invalid" else ".".join(location) or "body"
    return _failure(request, 422, "invalid_parameter", f"参数 {name} 无效: {messages.problem(first)}")


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _failure(request, 500, "internal_error", "服务器内部错误,请联系管理员查看日志")


def install(app: FastAPI) -> None:
    app.add_exception_handler(KbossError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
