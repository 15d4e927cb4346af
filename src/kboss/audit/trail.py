"""Recording audit events: one `record` entry, the action names, and the note a request carries.

`record` opens its own session on the caller's engine and commits only its own row: a request that fails or rolls
back is still recorded, and the caller's transaction is never committed by it. A failure to record is logged and
swallowed, so auditing never turns a success into an error.

Within an HTTP request the audit middleware (`kboss.api.audit`) puts a `RequestNote` in a context variable: the
caller's address and principal, and events found on the way (`note_reveal`) that it writes when the answer is sent.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.common.context import Principal
from kboss.db.models_audit import AuditEvent
from kboss.redaction import is_harmless_name

log = logging.getLogger("kboss.audit")

AUTH_LOGIN = "auth.login"
AUTH_LOGOUT = "auth.logout"
AUTH_PASSWORD = "auth.password"
API_WRITE = "api.write"
OPERATION_START = "operation.start"
OPERATION_RETRY = "operation.retry"
OPERATION_CANCEL = "operation.cancel"
SECRET_REVEAL = "secret.reveal"
SITE_CALL = "site.call"
SITE_TRUST = "site.trust"  # a site agent's certificate pinned on first contact
USER_ADMIN = "user.admin"  # `kboss user …` on the command line
KEYS_ROTATE = "keys.rotate"  # `kboss keys rotate|reseal|prune`: every secret re-encrypted
ACTIONS = (
    AUTH_LOGIN, AUTH_LOGOUT, AUTH_PASSWORD, API_WRITE, OPERATION_START, OPERATION_RETRY, OPERATION_CANCEL,
    SECRET_REVEAL, SITE_CALL, SITE_TRUST, USER_ADMIN, KEYS_ROTATE,
)  # fmt: skip

OK = "ok"
REFUSED = "refused"  # the caller's fault: bad input, no right, wrong password
FAILED = "failed"  # ours or the site's
OUTCOMES = (OK, REFUSED, FAILED)
LOCAL_ADDRESS = "local"

# Column widths of `audit_events`: longer values are cut, never refused.
_WIDTHS = {"actor_id": 21, "actor": 128, "orgid": 21, "action": 128, "target_type": 32, "target_id": 128}
_ADDRESS_WIDTH = 64
_CODE_WIDTH = 64

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Event:
    """One act. `detail` is built by kboss from names and ids; a value taken from a request goes through
    `safe_detail` first."""

    action: str
    outcome: str = OK
    actor_id: str = ""
    actor: str = ""
    orgid: str = ""
    target_type: str = ""
    target_id: str = ""
    address: str = ""
    code: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def by(self, principal: Principal | None) -> Event:
        """The same event attributed to a principal (left as it is for an anonymous caller)."""
        if principal is None:
            return self
        return replace(self, actor_id=principal.user_id, actor=principal.username, orgid=principal.orgid)


def outcome_of(http_status: int) -> str:
    return OK if http_status < 400 else REFUSED if http_status < 500 else FAILED


def safe_detail(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only values whose name is on the redaction allow-list, as short text (lists of them too); the rest dropped."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        if not is_harmless_name(str(name)):
            continue
        if isinstance(value, list | tuple):
            kept[str(name)] = [str(v)[:128] for v in value][:100]
        elif isinstance(value, str | int | float | bool) or value is None:
            kept[str(name)] = value if not isinstance(value, str) else value[:128]
    return kept


def parameter_names(names: Iterable[str]) -> list[str]:
    """The names sent (never their values), sorted, bounded: a name that does not look like one is left out."""
    plain = {str(n)[:64] for n in names if str(n).replace("_", "").replace("-", "").replace(".", "").isalnum()}
    return sorted(plain)[:100]


def _row(event: Event, at: dt.datetime) -> AuditEvent:
    values = {name: str(getattr(event, name))[:width] for name, width in _WIDTHS.items()}
    return AuditEvent(
        at=at, address=event.address[:_ADDRESS_WIDTH], outcome=event.outcome, code=event.code[:_CODE_WIDTH],
        detail=dict(event.detail), **values,
    )  # fmt: skip


def _factory(source: Sessions | AsyncSession) -> Sessions:
    if isinstance(source, AsyncSession):
        # A fresh session on the caller's engine: its own connection and transaction, not the caller's.
        return async_sessionmaker(source.bind, expire_on_commit=False)
    return source


async def record(source: Sessions | AsyncSession, *events: Event) -> None:
    """Append `events` in one short transaction of their own. Never raises: a failure is logged. Given the
    caller's session, a new one on its engine is used; call it after the caller's commit, since SQLite has one
    writer at a time and would wait for the caller's open write."""
    if not events:
        return
    at = dt.datetime.now(dt.UTC)
    try:
        async with _factory(source)() as session:
            session.add_all([_row(event, at) for event in events])
            await session.commit()
    except Exception:
        log.exception("could not record %d audit event(s): %s", len(events), ", ".join(e.action for e in events))


def cli_actor() -> str:
    """Who runs a command line: `cli:<os user>`."""
    try:
        return f"cli:{getpass.getuser()}"[:128]
    except (KeyError, OSError):
        return "cli:unknown"


@dataclass
class RequestNote:
    """What the audit middleware knows of the request being served, filled in on the way."""

    address: str
    principal: Principal | None = None
    # Set by routes that record a named act instead of the generic write (logins: the account tried).
    action: str = ""
    actor: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    code: str = ""
    events: list[Event] = field(default_factory=list)


CURRENT: ContextVar[RequestNote | None] = ContextVar("kboss_audit_note", default=None)


def current() -> RequestNote | None:
    return CURRENT.get()


def current_address() -> str:
    note = CURRENT.get()
    return note.address if note is not None else LOCAL_ADDRESS


def note_principal(principal: Principal) -> None:
    note = CURRENT.get()
    if note is not None:
        note.principal = principal


def note_reveal(target_type: str, target_id: str, fields: Iterable[str] = ()) -> None:
    """A secret was shown to the caller: recorded when the answer is sent (outside a request: not recorded)."""
    note = CURRENT.get()
    if note is not None:
        detail = {"fields": sorted(set(fields))}
        note.events.append(Event(SECRET_REVEAL, target_type=target_type, target_id=target_id, detail=detail))


async def record_site_call(
    sessions: Sessions,
    *,
    actor: Principal | None,
    orgid: str,
    center_id: str,
    action: str,
    target_type: str,
    target_id: str,
    outcome: str,
    code: str = "",
) -> None:
    """A call to a center's site that changes a machine or a cluster (`action` names it, e.g. `provision.step`
    or `node.drain`); for the site factories to call once the call has ended. Never raises."""
    detail = {"center_id": str(center_id)[:64], "call": str(action)[:64]}
    event = Event(SITE_CALL, outcome=outcome, orgid=orgid, target_type=target_type, target_id=target_id,
                  address=current_address(), code=code, detail=detail).by(actor)  # fmt: skip
    if actor is None and not event.actor:
        event = replace(event, actor="system")
    await record(sessions, event)
