"""What every service call carries: the database session, who is asking, and the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kboss.crypto import SecretBox
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

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


@dataclass(frozen=True)
class Ctx:
    session: AsyncSession
    principal: Principal
    box: SecretBox

    @property
    def orgid(self) -> str:
        return self.principal.orgid

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise Forbidden("仅组织管理员可以执行此操作")
