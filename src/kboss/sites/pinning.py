"""Trust on first use of a center's https agent, as SSH does with host keys (docs/security.md "TLS to site agents").

`ensure_pinned` runs before a client talks to an https agent whose center pins nothing yet: it learns the
certificate the agent presents from a TLS handshake alone (nothing is sent), checks it against the fingerprint the
operator gave, if any, and stores it with a compare-and-set in its own short transaction (never committing what
the caller has pending). Two processes racing to pin the same center both end up with the stored pin: the loser
of the compare-and-set reads the winner's. Simulated and plain-http centers are left as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from kboss.audit import trail
from kboss.db.cas import compare_and_set
from kboss.db.models import Center
from kboss.errors import NotFound, UpstreamError
from kboss.sites import tls
from kboss.sites.client import SiteUnreachable
from kboss.sites.trust import AgentTrust, SiteCertificateChanged

Sessions = AsyncSession | async_sessionmaker[AsyncSession]


async def ensure_pinned(sessions: Sessions, center: Center) -> AgentTrust:
    """The center's trust, its certificate pinned first if it is an https agent with none stored. `center` (the
    caller's row) sees the pin too, without being marked changed in the caller's session."""
    trust = AgentTrust.of(center)
    if center.simulated or not center.pcapi_url.lower().startswith("https://") or trust.cert_pem:
        return trust
    async with _own_session(sessions) as session:
        stored = await _stored(session, center.id)
        await session.commit()  # no transaction held open across the handshake
        if not stored.cert_pem:
            await _pin(session, center, stored)
            stored = await _stored(session, center.id)
            await session.commit()
    if not stored.cert_pem:
        raise UpstreamError(f"算力中心 {center.name} 的记录在固定站点服务证书时被修改,请重试")
    set_committed_value(center, "agent_cert_pem", stored.cert_pem)
    set_committed_value(center, "agent_cert_sha256", stored.cert_sha256)
    return stored


async def _pin(session: AsyncSession, center: Center, stored: AgentTrust) -> None:
    """Fetch what the agent presents; refuse it unless it is the operator's fingerprint (when one is given)."""
    der, pem = await _presented(center.pcapi_url)
    presented = tls.fingerprint(der)
    if stored.cert_sha256 and presented != stored.cert_sha256:
        raise SiteCertificateChanged(center.pcapi_url, stored.cert_sha256, presented)
    # Only if nobody pinned it, changed the operator's fingerprint or moved the agent since we read the row.
    pinned = await compare_and_set(
        session,
        update(Center)
        .where(
            Center.id == center.id,
            Center.agent_cert_pem == "",
            Center.agent_cert_sha256 == stored.cert_sha256,
            Center.pcapi_url == center.pcapi_url,
        )
        .values(agent_cert_pem=pem, agent_cert_sha256=presented),
    )
    await session.commit()
    if pinned:  # a trust decision, like accepting an SSH host key: in the audit trail with what was trusted
        detail = {"url": center.pcapi_url[:200], "fingerprint": presented}
        event = trail.Event(trail.SITE_TRUST, actor="system", orgid=center.orgid, target_type="center",
                            target_id=center.id, address=trail.current_address(), detail=detail)  # fmt: skip
        await trail.record(session, event)


async def _presented(url: str) -> tuple[bytes, str]:
    try:
        return await tls.peer_certificate(url)
    except TimeoutError:
        seconds = tls.HANDSHAKE_SECONDS
        raise SiteUnreachable(f"无法连接站点服务 {url}: {seconds:g} 秒内没有完成 TLS 握手", sent=False) from None
    except OSError as exc:
        reason = str(exc).strip() or exc.__class__.__name__
        raise SiteUnreachable(f"无法连接站点服务 {url}: {reason}", sent=False) from None


async def _stored(session: AsyncSession, center_id: str) -> AgentTrust:
    row = (
        await session.execute(
            select(Center.agent_cert_pem, Center.agent_cert_sha256, Center.allow_plain_http).where(
                Center.id == center_id
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"算力中心不存在: {center_id}")
    return AgentTrust(row[0] or "", row[1] or "", bool(row[2]))


@asynccontextmanager
async def _own_session(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A session of its own: the pin's transaction never carries (nor commits) the caller's changes."""
    if isinstance(sessions, AsyncSession):
        async with AsyncSession(sessions.bind, expire_on_commit=False) as session:
            yield session
    else:
        async with sessions() as session:
            yield session
