"""Tables of logins: `login_throttle` (failures per account and per client address) and `user_sessions` (every
issued token, by its `jti`, so that one can be revoked on every process at once).

Defined on the catalog's `Base`, so one metadata (and one Alembic history) covers everything.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import Base
from kboss.db.models_ops import UtcDateTime


class LoginThrottle(Base):
    """One row per throttled key (`account:<username>` or `address:<ip>`); every change is a compare-and-set on
    `version`. A row past `expires_at` means nothing any more and is deleted by the next claim."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Whether `blocked_until` ends a lockout (lifted by time or `kboss user unlock`) rather than a backoff.
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class UserSession(Base):
    """An issued token, keyed by its `jti`; the user's rows go with the user."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    address: Mapped[str] = mapped_column(String(64), default="")
