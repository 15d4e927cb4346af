"""Translation of asyncssh/socket failures into kboss.errors, with messages an operator can act on.

Each message says what happened in Chinese, then the technical cause in parentheses, so the console
shows something readable and the logs still carry the errno/protocol reason.
"""

from __future__ import annotations

import asyncio
import errno
import socket

import asyncssh

from kboss.errors import (
    AuthenticationFailed,
    ConnectionRefused,
    HostKeyChanged,
    HostUnreachable,
    SSHError,
)
from kboss.ssh.types import SshTarget


class ConnectionDropped(SSHError):
    """The SSH connection broke after it was established (host rebooted, sshd killed, network cut)."""

    code = "connection_dropped"
    default_message = "SSH 连接中断"


# Failures worth another connection attempt: the host may be booting, restarting sshd, or
# briefly overloaded (sshd MaxStartups drops handshakes). Credentials and host keys never heal.
TRANSIENT_ERRORS: tuple[type[SSHError], ...] = (HostUnreachable, ConnectionRefused, ConnectionDropped)

_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EHOSTDOWN}


def host_key_changed(target: SshTarget, known: str, presented: str) -> HostKeyChanged:
    return HostKeyChanged(
        f"主机密钥已变化, 拒绝连接 {target.host}:{target.port}: 已记录 {known}, 本次 {presented}。"
        f"若主机确已重装, 请先在平台上移除旧密钥 (host key changed: possible man-in-the-middle)"
    )


def map_connect_error(exc: BaseException, target: SshTarget, timeout: float) -> SSHError:
    """Map an exception raised while connecting/authenticating; `exc` must not be a CancelledError."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, SSHError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationFailed(
            f"SSH 认证失败: {target.username}@{where} 用户名、密码或密钥错误 (permission denied: {exc.reason})"
        )
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return AuthenticationFailed(f"SSH 私钥无法读取或私钥口令错误 (private key import failed: {exc})")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused(f"SSH 连接被拒绝: {where} 端口未开放或 sshd 未运行 (connection refused)")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return HostUnreachable(f"主机不可达: 连接 {where} 超时 {timeout:g} 秒 (connect timeout)")
    if isinstance(exc, socket.gaierror):
        return HostUnreachable(f"主机不可达: 无法解析主机名 {target.host} (name resolution failed: {exc})")
    if isinstance(exc, asyncssh.DisconnectError):
        # Includes ConnectionLost: the peer hung up during the handshake.
        return ConnectionDropped(f"SSH 连接在握手期间断开: {where} (disconnected: {exc.reason})")
    if isinstance(exc, OSError):
        return _map_os_error(exc, where)
    if isinstance(exc, asyncssh.Error):
        return SSHError(f"SSH 连接失败: {where} ({type(exc).__name__}: {exc.reason})")
    return SSHError(f"SSH 连接失败: {where} ({type(exc).__name__}: {exc})")


def _map_os_error(exc: OSError, where: str) -> SSHError:
    reason = exc.strerror or str(exc)
    if exc.errno in _UNREACHABLE_ERRNOS:
        return HostUnreachable(f"主机不可达: {where} ({reason})")
    if exc.errno in {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}:
        return ConnectionDropped(f"SSH 连接在握手期间断开: {where} ({reason})")
    return HostUnreachable(f"主机不可达: {where} ({type(exc).__name__}: {reason})")


def is_connection_loss(exc: BaseException) -> bool:
    return isinstance(
        exc,
        asyncssh.ConnectionLost
        | asyncssh.DisconnectError
        | asyncssh.ChannelOpenError
        | BrokenPipeError
        | ConnectionResetError,
    )


def connection_dropped(target: SshTarget, what: str, exc: BaseException) -> ConnectionDropped:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return ConnectionDropped(
        f"SSH 连接在执行命令时中断: {target.host}:{target.port} 正在执行 {what} (connection lost: {reason})"
    )
