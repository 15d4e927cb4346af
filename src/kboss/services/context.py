"""What every service call carries: the database session, who is asking, and the secret box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kboss.crypto import SecretBox
from kboss.errors import Forbidden
from kboss.services.offer_cache import TtlCache

ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLES = (ROLE_ADMIN, ROLE_MEMBER)


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    orgid: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


@dataclass(frozen=True)
class Ctx:
    session: AsyncSession
    principal: Principal
    box: SecretBox
    # Priced components per (org, center, cluster) for quotes; None disables caching (e.g. in the CLI).
    offers: TtlCache[Any] | None = None

    @property
    def orgid(self) -> str:
        return self.principal.orgid

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise Forbidden("仅组织管理员可以执行此操作")
