"""What the running application holds: settings, database, secret box, and the values read per request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kboss.accounts.sessions import Tokens
from kboss.accounts.throttle import Policy
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
    # How long compat endpoints that start long operations wait for them; the settings' value, which tests shorten.
    compat_wait_seconds: float = field(init=False)
    # This process's tokens (its short cache of checks) and the login throttling thresholds.
    tokens: Tokens = field(init=False)
    logins: Policy = field(init=False)

    def __post_init__(self) -> None:
        self.compat_wait_seconds = self.settings.compat_wait_seconds
        settings = self.settings
        self.tokens = Tokens(self.sessions, self.box.ring, settings.token_ttl_seconds, settings.session_check_seconds)
        self.logins = Policy.from_settings(settings)
