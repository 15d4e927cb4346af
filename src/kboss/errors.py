"""Domain errors.

Each error knows its message, a stable machine code and the HTTP status the native API answers with.
`kboss.wire.errors` is the one place that maps them to the spec's envelopes and to HTTP responses.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar


class KbossError(Exception):
    """The root of the domain errors. A subclass names its code, HTTP status and default message in its class line,
    one row of the table below (`class NotFound(KbossError, code="not_found", status=404, message=...)`), or as
    class attributes; what it does not name it inherits."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "请求失败"

    def __init_subclass__(cls, *, code: str = "", status: int = 0, message: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code:
            cls.code = code
        if status:
            cls.http_status = status
        if message:
            cls.default_message = message

    def __init__(self, message: str | None = None, *, data: Any = None) -> None:
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)


class InvalidParameter(KbossError, code="invalid_parameter", status=422):
    """A request parameter is missing or malformed; the message names the parameter."""

    def __init__(self, name: str, problem: str) -> None:
        self.parameter = name
        super().__init__(f"参数 {name} 无效: {problem}")


class MissingParameter(InvalidParameter, code="missing_parameter"):
    def __init__(self, name: str) -> None:
        super().__init__(name, "缺少该参数")


class NotFound(KbossError, code="not_found", status=404, message="记录不存在"): ...


class Conflict(KbossError, code="conflict", status=409, message="与现有数据冲突"): ...


class Unauthenticated(KbossError, code="unauthenticated", status=401, message="未登录或登录已过期"): ...


class Forbidden(KbossError, code="forbidden", status=403, message="没有权限执行此操作"): ...


class TooManyAttempts(KbossError, code="too_many_attempts", status=429, message="尝试次数过多,请稍后再试"):
    """Login throttling: `retry_after` whole seconds (the `Retry-After` header), `locked_until` for a lockout."""

    def __init__(self, message: str, retry_after: float, locked_until: dt.datetime | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.locked_until = locked_until
        until = locked_until.isoformat() if locked_until else None
        super().__init__(message, data={"retry_after": self.retry_after, "locked_until": until})


class UpstreamError(KbossError, code="upstream_error", status=502, message="远端服务调用失败"):
    """A site agent, a machine or a cluster answered with a failure or not at all."""


class SSHError(UpstreamError, code="ssh_error", message="SSH 操作失败"): ...


class HostUnreachable(SSHError, code="host_unreachable", message="主机不可达"): ...


class ConnectionRefused(SSHError, code="connection_refused", message="SSH 连接被拒绝"): ...


class AuthenticationFailed(SSHError, code="authentication_failed", message="SSH 账号或密码错误"): ...


class HostKeyChanged(SSHError, code="host_key_changed", message="主机密钥已变化,拒绝连接"): ...


class CommandTimeout(SSHError, code="command_timeout", message="远程命令超时"): ...


class CommandFailed(SSHError, code="command_failed", message="远程命令执行失败"):
    def __init__(self, command_name: str, exit_status: int, output_tail: str) -> None:
        self.exit_status = exit_status
        self.output_tail = output_tail
        super().__init__(f"{command_name} 执行失败 (退出码 {exit_status}): {output_tail}")


class KubeError(UpstreamError, code="kube_error", message="Kubernetes API 调用失败"): ...


class ClusterUnreachable(KubeError, code="cluster_unreachable", message="无法连接集群"): ...
