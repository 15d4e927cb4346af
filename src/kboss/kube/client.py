"""Async Kubernetes API client built from kubeconfig text held in memory.

The site agent receives kubeconfigs over its API (or fetches `admin.conf` over SSH): they are never
read from, nor written to, the agent's disk. The CA goes to OpenSSL from memory; a client certificate
and key go through an anonymous memory file (Linux `memfd`), because Python's `ssl` module only loads
a certificate chain from a path. Only where `memfd` does not exist do they touch a private (0700)
temporary directory, and only for the instant OpenSSL needs to read them.

Reaching the API through an SSH tunnel: pass `server="https://127.0.0.1:<local port>"`. The apiserver
certificate names the master, not 127.0.0.1, so the TLS server name (SNI and the name the certificate
is verified against) stays the host of the kubeconfig's server URL, unless `tls_server_name` (or the
kubeconfig's own `tls-server-name`) says otherwise. This mirrors kubectl's `--tls-server-name`.

Kubeconfig features that would make the agent run commands or read its own files (`exec`,
`auth-provider`, `tokenFile`, file paths for certificates) are refused: a kubeconfig is untrusted input.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import yaml
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.config.models import Cluster, User

from kboss.errors import ClusterUnreachable, InvalidParameter, KbossError, KubeError, NotFound

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
_PARAM = "kubeconfig"


class KubeApiError(KubeError):
    """The API server answered with a failure; keeps its HTTP status and `Status.reason`."""

    def __init__(self, message: str, *, status_code: int, reason: str = "", data: Any = None) -> None:
        self.status_code = status_code
        self.reason = reason
        super().__init__(message, data=data)


@dataclass(frozen=True)
class KubeTarget:
    """What a kubeconfig context says about reaching one cluster. Secrets are kept out of repr()."""

    server: str
    context: str
    namespace: str = "default"
    ca_pem: str | None = field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_cert_pem: str | None = field(default=None, repr=False)
    client_key_pem: str | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------
# kubeconfig parsing


def parse_kubeconfig(text: str, *, context: str | None = None) -> KubeTarget:
    """Select a context of a kubeconfig and extract what is needed to connect; InvalidParameter if bad."""
    doc = _load_yaml(text)
    ctx_name, ctx = _pick_context(doc, context)
    cluster = _named(doc, "clusters", "cluster", _required_str(ctx, "cluster", "context"))
    user_name = ctx.get("user")
    user = _named(doc, "users", "user", user_name) if isinstance(user_name, str) and user_name else {}
    server = _server_url(cluster)
    return KubeTarget(
        server=server,
        context=ctx_name,
        namespace=str(ctx.get("namespace") or "default"),
        ca_pem=_pem_field(cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        tls_server_name=_optional_str(cluster, "tls-server-name"),
        **_user_fields(user),
    )


def _load_yaml(text: str) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(_PARAM, "内容为空")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Never echo the text back: it holds credentials.
        mark = getattr(exc, "problem_mark", None)
        where = f" (第 {mark.line + 1} 行)" if mark is not None else ""
        raise InvalidParameter(_PARAM, f"不是合法的 YAML{where}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter(_PARAM, "不是 kubeconfig 文档 (应为 YAML 映射)")
    return doc


def _pick_context(doc: Mapping[str, Any], wanted: str | None) -> tuple[str, dict[str, Any]]:
    name = wanted or doc.get("current-context")
    if not isinstance(name, str) or not name:
        contexts = doc.get("contexts")
        if not isinstance(contexts, list) or len(contexts) != 1 or not isinstance(contexts[0], dict):
            raise InvalidParameter(_PARAM, "未设置 current-context,且 context 不止一个")
        name = str(contexts[0].get("name", ""))
    return name, _named(doc, "contexts", "context", name)


def _named(doc: Mapping[str, Any], section: str, key: str, name: str) -> dict[str, Any]:
    entries = doc.get(section)
    if not isinstance(entries, list):
        raise InvalidParameter(_PARAM, f"缺少 '{section}' 列表")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(key)
            if not isinstance(body, dict):
                raise InvalidParameter(_PARAM, f"'{section}' 中的 {key} 缺少 '{key}' 内容")
            return body
    # The name is not quoted: whatever a kubeconfig holds may be a credential pasted in the wrong place.
    raise InvalidParameter(_PARAM, f"'{section}' 中找不到所引用的 {key}")


def _required_str(body: Mapping[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParameter(_PARAM, f"{where} 缺少 '{key}'")
    return value


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if value not in (None, "") else None


def _server_url(cluster: Mapping[str, Any]) -> str:
    server = _required_str(cluster, "server", "cluster")
    try:
        parts = urlsplit(server)
        hostname = parts.hostname  # raises too on a bad port or an unclosed `[`
    except ValueError:
        hostname = None
    if not hostname or parts.scheme not in ("http", "https"):
        raise InvalidParameter(_PARAM, "cluster 的 'server' 不是 http(s) 地址")  # not quoted: may embed user:password@
    return server.rstrip("/")


def _pem_field(body: Mapping[str, Any], key: str) -> str | None:
    """`<key>-data` (base64 PEM) is accepted; `<key>` (a path on some other machine) is refused."""
    if body.get(key):
        raise InvalidParameter(_PARAM, f"'{key}' 引用了文件,请改用内嵌的 '{key}-data'")
    data = body.get(f"{key}-data")
    if not data:
        return None
    try:
        pem = base64.b64decode(str(data), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidParameter(_PARAM, f"'{key}-data' 不是 base64 编码的 PEM") from None
    if "-----BEGIN " not in pem:
        raise InvalidParameter(_PARAM, f"'{key}-data' 不含 PEM 内容")
    return pem


def _user_fields(user: Mapping[str, Any]) -> dict[str, Any]:
    for unsafe in ("exec", "auth-provider", "tokenFile"):
        if user.get(unsafe):
            reason = "会在服务器上执行命令或读取文件"
            raise InvalidParameter(_PARAM, f"不支持用户认证方式 '{unsafe}' ({reason})")
    cert, key = _pem_field(user, "client-certificate"), _pem_field(user, "client-key")
    if (cert is None) != (key is None):
        raise InvalidParameter(_PARAM, "client-certificate-data 与 client-key-data 必须同时提供")
    return {
        "token": _optional_str(user, "token"),
        "username": _optional_str(user, "username"),
        "password": _optional_str(user, "password"),
        "client_cert_pem": cert,
        "client_key_pem": key,
    }


# ---------------------------------------------------------------------------------------------
# TLS


def build_ssl_context(target: KubeTarget) -> ssl.SSLContext:
    """Verification against the kubeconfig's CA (or the system's), plus the client certificate."""
    try:
        ctx = ssl.create_default_context(cadata=target.ca_pem or None)
    except ssl.SSLError:
        raise InvalidParameter(_PARAM, "certificate-authority-data 不是合法的证书") from None
    if target.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if target.client_cert_pem and target.client_key_pem:
        try:
            _load_cert_chain(ctx, (target.client_cert_pem + "\n" + target.client_key_pem).encode())
        except ssl.SSLError:
            raise InvalidParameter(_PARAM, "客户端证书或私钥无效,或二者不匹配") from None
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, pem: bytes) -> None:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create("kboss-kube-client", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            # Opening /proc/self/fd/N re-opens the anonymous file from its start: nothing hits a disk.
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            return
        except FileNotFoundError:
            pass  # no /proc (an unusual sandbox): fall back to the private directory below
        finally:
            os.close(fd)
    with tempfile.TemporaryDirectory(prefix="kboss-kube-") as private_dir:  # created 0700
        path = os.path.join(private_dir, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        ctx.load_cert_chain(path)


class _TLSServerNameTransport(httpx2.AsyncBaseTransport):
    """Connects where the URL says, but does SNI and certificate verification for another name."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, server_name: str) -> None:
        self._inner = inner
        self._server_name = server_name

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.extensions["sni_hostname"] = self._server_name
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---------------------------------------------------------------------------------------------
# Client


def create_client(
    kubeconfig: str | KubeTarget,
    *,
    server: str | None = None,
    tls_server_name: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> AsyncClient:
    """A lightkube AsyncClient for the kubeconfig's cluster; the caller must close it (or use open_client).

    `server` overrides the URL (an SSH tunnel's local end); the TLS name then stays the original host.
    """
    target = _as_target(kubeconfig, context)
    url = (server or target.server).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidParameter("server", f"'{url}' 不是 http(s) 地址")
    transport = _transport(target, url, server is not None, tls_server_name)
    config = KubeConfig.from_one(
        # Verification happens in our own transport; `insecure` only stops lightkube from building (and
        # loading system CAs into) an SSL context that httpx would never use, since a transport is given.
        cluster=Cluster(server=url, insecure=True),
        user=User(token=target.token, username=target.username, password=target.password),
        namespace=namespace or target.namespace,
    )
    return AsyncClient(
        config=config,
        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        # No proxies from the environment, no KUBECONFIG fallback: only what the caller gave.
        trust_env=False,
        transport=transport,
    )


def _as_target(kubeconfig: str | KubeTarget, context: str | None) -> KubeTarget:
    return kubeconfig if isinstance(kubeconfig, KubeTarget) else parse_kubeconfig(kubeconfig, context=context)


def _transport(
    target: KubeTarget, url: str, overridden: bool, tls_server_name: str | None
) -> httpx2.AsyncBaseTransport:
    if urlsplit(url).scheme == "http":
        # Plain HTTP (an apiserver's insecure port, a kubectl proxy): nothing to verify, so no SSL context.
        return httpx2.AsyncHTTPTransport(verify=False, trust_env=False)
    inner = httpx2.AsyncHTTPTransport(verify=build_ssl_context(target), trust_env=False)
    name = tls_server_name or target.tls_server_name
    if name is None and overridden:
        name = urlsplit(target.server).hostname
    return _TLSServerNameTransport(inner, name) if name else inner


@contextlib.asynccontextmanager
async def open_client(kubeconfig: str | KubeTarget, **options: Any) -> AsyncIterator[AsyncClient]:
    """`create_client` as an async context manager that always closes the connection pool."""
    client = create_client(kubeconfig, **options)
    try:
        yield client
    finally:
        await client.close()


# ---------------------------------------------------------------------------------------------
# Errors


def translate_error(exc: BaseException, what: str | None = None, *, not_found: bool = True) -> KbossError:
    """Map lightkube/httpx failures to kboss errors.

    `what` names the object (`节点 "w1"`) and prefixes API messages; a 404 becomes NotFound("<what> 不存在")
    unless `not_found` is False (for writes, where a 404 usually means a missing namespace).
    """
    if isinstance(exc, ApiError):
        status = exc.status
        code = int(status.code or exc.response.status_code)
        return _api_failure(code, str(status.reason or ""), str(status.message or ""), what, not_found)
    if isinstance(exc, httpx2.HTTPStatusError):
        body = exc.response.text[:200].strip()
        return _api_failure(exc.response.status_code, "", body or exc.response.reason_phrase, what, not_found)
    if isinstance(exc, httpx2.TimeoutException):
        return ClusterUnreachable(f"Kubernetes API {_server_of(exc)} 响应超时")
    if isinstance(exc, httpx2.TransportError):
        return ClusterUnreachable(f"无法连接 Kubernetes API {_server_of(exc)}: {_cause(exc)}")
    if isinstance(exc, ConfigError):
        return InvalidParameter(_PARAM, str(exc))
    if isinstance(exc, KbossError):
        return exc
    return KubeError(f"Kubernetes 客户端错误: {exc.__class__.__name__}: {exc}")


# A 403 that admission gave an object (quota, Pod Security) rather than RBAC gave the caller's credentials.
_ADMISSION_REFUSALS = ("exceeded quota", "failed quota", "violates PodSecurity")


def _api_failure(code: int, reason: str, message: str, what: str | None, not_found: bool) -> KbossError:
    if code == 403 and any(words in message for words in _ADMISSION_REFUSALS):
        prefix = f"{what}: " if what else ""
        return KubeApiError(f"{prefix}集群的准入控制拒绝了该对象: {message}", status_code=code, reason=reason)
    if code in (401, 403):
        return KubeApiError(
            f"Kubernetes API 拒绝了凭据 ({code} {reason or 'Forbidden'}): {message}",
            status_code=code,
            reason=reason,
        )
    if code == 404 and what and not_found:
        return NotFound(f"{what} 不存在")
    prefix = f"{what}: " if what else ""
    text = message or reason or f"HTTP {code}"
    return KubeApiError(f"{prefix}{text}", status_code=code, reason=reason)


def _server_of(exc: httpx2.HTTPError) -> str:
    try:
        url = exc.request.url
    except RuntimeError:  # httpx raises when no request is attached
        return "(未知地址)"
    return f"{url.scheme}://{url.netloc.decode()}"


def _cause(exc: BaseException) -> str:
    # httpx hides ssl.SSLCertVerificationError etc. in the context chain; surface the root.
    root: BaseException = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(root) or str(exc) or root.__class__.__name__
    if isinstance(root, ssl.SSLCertVerificationError):
        return f"TLS 证书校验失败 ({text})"
    return text


@contextlib.contextmanager
def api_errors(what: str | None = None, *, not_found: bool = True) -> Iterator[None]:
    """Wrap lightkube calls: anything they raise comes out as a kboss error (see translate_error)."""
    try:
        yield
    except (ApiError, httpx2.HTTPError, ConfigError) as exc:
        raise translate_error(exc, what, not_found=not_found) from exc
