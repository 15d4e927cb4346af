"""The `kboss` command: serve, serve-site, db upgrade, user create."""

from __future__ import annotations

import asyncio
import logging

import typer
import uvicorn

from kboss.accounts import auth
from kboss.cli import demo as cli_demo
from kboss.cli.ops import op_app
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER
from kboss.db.engine import make_engine, make_sessionmaker, upgrade_sync
from kboss.errors import KbossError
from kboss.logs import RedactingFilter
from kboss.settings import get_settings

app = typer.Typer(help="kboss: control plane for compute-power centers", no_args_is_help=True)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
user_app = typer.Typer(help="Users and organisations", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(op_app, name="op")
app.command("demo")(cli_demo.demo)


def _logging() -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: bool = typer.Option(False, "--demo", help="add a demo organisation with a simulated center"),
) -> None:
    """Run the platform and the site agent in one process."""
    _logging()
    if demo:
        typer.echo(cli_demo.prepare_demo(get_settings(), f"http://{host}:{port}"))
    uvicorn.run("kboss.app:create_app", factory=True, host=host, port=port, log_config=None)


@app.command("serve-site")
def serve_site(host: str = "127.0.0.1", port: int = 8001) -> None:
    """Run the site agent alone, next to a center's machines."""
    _logging()
    uvicorn.run("kboss.app:create_site_app", factory=True, host=host, port=port, log_config=None)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    _logging()
    upgrade_sync(get_settings().resolved_database_url())
    typer.echo("database is up to date")


@user_app.command("create")
def user_create(
    username: str = typer.Option(...),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    org: str = typer.Option(..., help="organisation name; created when missing"),
    admin: bool = typer.Option(False, "--admin", help="organisation administrator"),
) -> None:
    """Create a user (and its organisation when missing)."""
    settings = get_settings()
    upgrade_sync(settings.resolved_database_url())
    try:
        asyncio.run(_create_user(settings.resolved_database_url(), username, password, org, admin))
    except KbossError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _create_user(url: str, username: str, password: str, org: str, admin: bool) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await auth.create_user(session, username, password, org, ROLE_ADMIN if admin else ROLE_MEMBER)
            typer.echo(f"created {user.role} {user.username} in organisation {org} ({user.orgid})")
    finally:
        await engine.dispose()


def main() -> None:
    app()
