"""`kboss user create|disable|enable|set-role|set-password|signout|remove|unlock`, against the database of the settings.

Each change that alters what a login stands for (password, role, disabled) revokes every token of the user; the
running servers refuse them within a second (docs/security.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.accounts import auth, users
from kboss.audit import trail
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER
from kboss.customers import service as customers
from kboss.db.engine import make_engine, make_sessionmaker, upgrade_sync
from kboss.db.models import Org, User
from kboss.errors import KbossError, NotFound
from kboss.settings import get_settings

user_app = typer.Typer(help="Users and organisations", no_args_is_help=True)
T = TypeVar("T")


def _run(action: Callable[[AsyncSession], Awaitable[T]], command: str = "", username: str = "") -> T:
    """Migrate, run `action` in one session, and turn a domain error into its message and exit status 1. A
    `command` is recorded in the audit trail, done or refused, as `cli:<os user>` from `local`."""
    url = get_settings().resolved_database_url()
    upgrade_sync(url)

    async def run() -> T:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        outcome, code = trail.FAILED, "internal_error"
        try:
            async with sessions() as session:
                result = await action(session)
            outcome, code = trail.OK, ""
            return result
        except KbossError as exc:
            outcome, code = trail.outcome_of(exc.http_status), exc.code
            raise
        finally:
            if command:
                await _audit(sessions, command, username, (outcome, code))
            await engine.dispose()

    try:
        return asyncio.run(run())
    except KbossError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _audit(sessions: trail.Sessions, command: str, username: str, ended: tuple[str, str]) -> None:
    async with sessions() as session:
        found = await session.execute(select(User.id, User.orgid).where(User.username == username))
        user_id, orgid = found.first() or ("", "")
    event = trail.Event(trail.USER_ADMIN, outcome=ended[0], code=ended[1], actor=trail.cli_actor(), orgid=orgid,
                        target_type="user", target_id=user_id or username, address=trail.LOCAL_ADDRESS,
                        detail={"command": f"user {command}", "username": username})  # fmt: skip
    await trail.record(sessions, event)


@user_app.command("create")
def user_create(
    username: str = typer.Option(...),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    org: str = typer.Option(..., help="organisation name; created when missing"),
    admin: bool = typer.Option(False, "--admin", help="organisation administrator"),
    customer_of: str = typer.Option(
        "",
        "--customer-of",
        help="make ORG a new customer organisation of this provider (name or id); the user is its admin",
    ),
) -> None:
    """Create a user (and its organisation when missing), or with --customer-of a customer org and its admin."""
    if customer_of:
        customer = _run(lambda session: _customer(session, customer_of, org, username, password), "create", username)
        typer.echo(f"created customer organisation {org} ({customer.id}) of {customer_of}, admin {username}")
        return
    role = ROLE_ADMIN if admin else ROLE_MEMBER
    user = _run(lambda session: auth.create_user(session, username, password, org, role), "create", username)
    typer.echo(f"created {user.role} {user.username} in organisation {org} ({user.orgid})")


async def _customer(session: AsyncSession, provider: str, name: str, username: str, password: str) -> Org:
    found = await session.scalar(select(Org.id).where(or_(Org.name == provider, Org.id == provider)))
    if found is None:
        raise NotFound(f"服务商组织不存在: {provider}")
    org, _ = await customers.add_customer(session, found, name, username, password)
    return org


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Refuse the user's logins and revoke every token of the user."""
    _run(lambda session: users.set_disabled(session, username, True), "disable", username)
    typer.echo(f"disabled {username}; every session of the user is revoked")


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Let a disabled user log in again."""
    _run(lambda session: users.set_disabled(session, username, False), "enable", username)
    typer.echo(f"enabled {username}")


@user_app.command("set-role")
def user_set_role(username: str, role: str = typer.Argument(..., help=f"{ROLE_ADMIN} or {ROLE_MEMBER}")) -> None:
    """Change the user's role; every token of the user is revoked."""
    _run(lambda session: users.set_role(session, username, role), "set-role", username)
    typer.echo(f"{username} is now {role}; every session of the user is revoked")


@user_app.command("set-password")
def user_set_password(username: str, password: str = typer.Option(..., prompt=True, hide_input=True)) -> None:
    """Set the user's password; every token of the user is revoked."""
    _run(lambda session: users.set_password(session, username, password), "set-password", username)
    typer.echo(f"password of {username} changed; every session of the user is revoked")


@user_app.command("signout")
def user_signout(username: str) -> None:
    """Revoke every token of the user (sign out everywhere)."""
    _run(lambda session: users.sign_out(session, username), "signout", username)
    typer.echo(f"every session of {username} is revoked")


@user_app.command("remove")
def user_remove(username: str) -> None:
    """Delete the user (refused while they own instances); every token of the user is refused at once."""
    _run(lambda session: users.remove(session, username), "remove", username)
    typer.echo(f"removed {username}; every session of the user is gone")


@user_app.command("unlock")
def user_unlock(
    username: str, address: str = typer.Option("", help="also lift the throttling of this client address")
) -> None:
    """Lift a login lockout or backoff of a username (and of a client address)."""
    cleared = _run(lambda session: users.unlock(session, username, address), "unlock", username)
    typer.echo(f"unlocked: {', '.join(cleared)}" if cleared else f"nothing to unlock for {username}")
