"""The audit trail's table: `audit_events`, one row per recorded act (a write of either API, a login, an operation
started, a secret revealed, a site call that changes a machine or a cluster).

Append-only: a trigger (migration 0009) refuses UPDATE on both databases; only retention deletes old rows. A row
never holds a secret: `detail` carries names and ids, never submitted values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import AutoIncrement, Base
from kboss.db.models_ops import UtcDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    # Who: the user's id and name ("" for an anonymous caller, e.g. a failed login names the account tried).
    actor_id: Mapped[str] = mapped_column(String(21), default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    orgid: Mapped[str] = mapped_column(String(21), default="", index=True)
    # What: a dotted name ("auth.login", "operation.start", "secret.reveal", "site.call", "api.write").
    action: Mapped[str] = mapped_column(String(128), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(128), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    # "ok", "refused" (the caller's fault: bad input, no right) or "failed" (ours or the site's).
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
