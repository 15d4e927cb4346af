"""How far the platform trusts a center's agent: the pinned certificate and the plain-HTTP permission, as the
center record holds them (`AgentTrust`), and the two refusals they lead to (docs/security.md "TLS to site
agents"): another certificate than the pinned one (`SiteCertificateChanged`, from the TLS handshake, before any
request is written) and plain HTTP to an agent off this machine (`InsecureSite`, before connecting)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kboss.db.models import Center
from kboss.errors import UpstreamError
from kboss.sites import tls


class SiteCertificateChanged(UpstreamError):
    """The agent presented another certificate than the one its center pins: refused in the handshake."""

    code = "site_certificate_changed"
    default_message = "站点服务的 TLS 证书与记录不一致,已拒绝连接"

    def __init__(self, url: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"站点服务 {url} 出示的 TLS 证书与算力中心记录中固定的证书不一致,已拒绝连接,未发送任何请求。"
            f"记录的指纹: {pinned};出示的指纹: {presented}。若站点服务确实更换了证书,请在站点上运行"
            " `kboss site fingerprint` 核对指纹,再把新指纹填入算力中心记录的 agent_cert_sha256",
            data={"pinned": pinned, "presented": presented},
        )


class InsecureSite(UpstreamError):
    """Plain HTTP to an agent off this machine would carry the site password in clear: refused before connecting."""

    code = "site_plain_http"
    default_message = "站点服务地址为明文 HTTP,已拒绝连接"


@dataclass(frozen=True)
class AgentTrust:
    """What a center record says about its agent's transport: the pinned certificate (PEM and fingerprint, "" for
    none) and whether plain HTTP off loopback is allowed."""

    cert_pem: str = ""
    cert_sha256: str = ""
    allow_plain_http: bool = False

    @classmethod
    def of(cls, center: Center) -> AgentTrust:
        return cls(center.agent_cert_pem or "", center.agent_cert_sha256 or "", bool(center.allow_plain_http))


# Trust on first use, run when a client is entered: the center's trust once its certificate is pinned.
Settle = Callable[[], Awaitable[AgentTrust]]


def refuse_plain_http(url: str, trust: AgentTrust) -> None:
    if url.lower().startswith("http://") and not trust.allow_plain_http and not tls.is_loopback(url):
        raise InsecureSite(
            f"站点服务地址 {url} 是明文 HTTP 且不在本机,账号密码会以明文经过网络,已拒绝连接。请以 HTTPS 运行站点服务"
            " (kboss serve-site --tls) 并把地址改为 https://;确需明文时,在算力中心记录中开启 allow_plain_http"
        )


def certificate_refused(exc: BaseException) -> bool:
    """Whether a connection failed because the handshake refused the peer's certificate (httpx keeps the cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def certificate_refusal(url: str, trust: AgentTrust, cause: str) -> UpstreamError | None:
    """After the handshake refused the agent's certificate (nothing was sent): what it presents now, learnt from a
    handshake alone. The pinned certificate itself refused (e.g. expired) is not a change: say why instead. None
    when the agent cannot be reached any more."""
    try:
        der, _ = await tls.peer_certificate(url)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    pinned = trust.cert_sha256 or (tls.pem_fingerprint(trust.cert_pem) if trust.cert_pem else "")
    presented = tls.fingerprint(der)
    if presented != pinned:
        return SiteCertificateChanged(url, pinned, presented)
    return UpstreamError(f"站点服务 {url} 的 TLS 证书与记录一致,但校验失败: {cause}")
