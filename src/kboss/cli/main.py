"""The `kboss` command: serve, serve-site, db upgrade, user (`cli/users.py`), op (`cli/ops.py`), site
(`cli/site.py`: the agent's TLS certificate), demo."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
import uvicorn

from kboss.cli import demo as cli_demo
from kboss.cli.audit import audit_app
from kboss.cli.keys import keys_app
from kboss.cli.ops import op_app
from kboss.cli.site import CERT_OPTION, KEY_OPTION, TLS_OPTION, site_app, uvicorn_tls
from kboss.cli.users import user_app
from kboss.db.engine import upgrade_sync
from kboss.logs import RedactingFilter
from kboss.settings import get_settings

app = typer.Typer(help="kboss: control plane for compute-power centers", no_args_is_help=True)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(op_app, name="op")
app.add_typer(site_app, name="site")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
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
    tls: bool = TLS_OPTION,
    tls_cert: Path | None = CERT_OPTION,
    tls_key: Path | None = KEY_OPTION,
) -> None:
    """Run the platform and the site agent in one process."""
    _logging()
    certfile, keyfile = uvicorn_tls(tls, tls_cert, tls_key, host)
    if demo:
        typer.echo(cli_demo.prepare_demo(get_settings(), f"{'https' if certfile else 'http'}://{host}:{port}"))
    _run_server("kboss.app:create_app", host, port, (certfile, keyfile))


@app.command("serve-site")
def serve_site(
    host: str = "127.0.0.1",
    port: int = 8001,
    tls: bool = TLS_OPTION,
    tls_cert: Path | None = CERT_OPTION,
    tls_key: Path | None = KEY_OPTION,
) -> None:
    """Run the site agent alone, next to a center's machines (with --tls: over HTTPS, see `kboss site`)."""
    _logging()
    certfile, keyfile = uvicorn_tls(tls, tls_cert, tls_key, host)
    _run_server("kboss.app:create_site_app", host, port, (certfile, keyfile))


def _run_server(factory: str, host: str, port: int, tls_files: tuple[str | None, str | None]) -> None:
    # log_config=None: uvicorn's loggers go through the root handlers, which redact (docs/security.md).
    certfile, keyfile = tls_files
    uvicorn.run(
        factory, factory=True, host=host, port=port, log_config=None, ssl_certfile=certfile, ssl_keyfile=keyfile
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    _logging()
    upgrade_sync(get_settings().resolved_database_url())
    typer.echo("database is up to date")


def main() -> None:
    app()
