"""What the running application holds: settings, database, secret box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kboss.common.offer_cache import TtlCache
from kboss.crypto import SecretBox
from kboss.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    deployment_key: str
    offers: TtlCache[Any]
