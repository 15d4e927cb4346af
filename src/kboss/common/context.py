"""What every service call carries: the database session, who is asking, and the secret box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kboss.common.offer_cache import TtlCache
from kboss.crypto import SecretBox
from kboss.db.models import ORG_CUSTOMER, ORG_PROVIDER
from kboss.errors import Forbidden

ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLES = (ROLE_ADMIN, ROLE_MEMBER)


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    orgid: str
    role: str
    # The caller's org is a provider (owns machines) or a customer of `provider_id` (buys on its clusters).
    org_kind: str = ORG_PROVIDER
    provider_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def is_customer(self) -> bool:
        return self.org_kind == ORG_CUSTOMER

    @property
    def catalog_orgid(self) -> str:
        """Whose centers, clusters and prices the caller buys from: its provider's, or its own org's."""
        return self.provider_id if self.is_customer and self.provider_id else self.orgid


class Ctx:
    """The caller's context. Give it a `session`, or a `sessions` factory to open one on first use only
    (a quote served from the cache never touches the database)."""

    __slots__ = ("_session", "_sessions", "box", "offers", "principal")

    def __init__(
        self,
        session: AsyncSession | None = None,
        *,
        principal: Principal,
        box: SecretBox,
        offers: TtlCache[Any] | None = None,
        sessions: Callable[[], AsyncSession] | None = None,
    ) -> None:
        if session is None and sessions is None:
            raise ValueError("Ctx needs a session or a session factory")
        self._session = session
        self._sessions = sessions
        self.principal = principal
        self.box = box
        # Priced components per (org, center, cluster) for quotes; None disables caching (e.g. in the CLI).
        self.offers = offers

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            assert self._sessions is not None
            self._session = self._sessions()
        return self._session

    @property
    def opened_session(self) -> AsyncSession | None:
        """The session if one was opened, for whoever must close it."""
        return self._session

    @property
    def orgid(self) -> str:
        return self.principal.orgid

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise Forbidden("仅组织管理员可以执行此操作")
