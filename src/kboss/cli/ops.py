"""`kboss op`: list, show and follow operations, for the operator of the deployment.

It reads the database directly through the settings (like `kboss user create`), so it sees every
organisation (`--org` narrows) and works while the HTTP server is down; it never changes an operation
(retry and cancel go through the API, where they are authorised and audited by user).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import Org
from kboss.db.models_ops import Operation
from kboss.operations import service as operations
from kboss.operations.states import STATES
from kboss.settings import get_settings

op_app = typer.Typer(help="Long operations: list, show, follow their logs", no_args_is_help=True)
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


def _run(work: Callable[[Sessions], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DBAPIError as exc:
        typer.echo(f"error: database: {exc.orig or exc} (is it initialised? run `kboss db upgrade`)", err=True)
        raise typer.Exit(1) from None


@asynccontextmanager
async def _session(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session


async def _operation(session: AsyncSession, op_id: str) -> Operation:
    op = await session.get(Operation, op_id)
    if op is None:
        typer.echo(f"error: no operation {op_id}", err=True)
        raise typer.Exit(1)
    return op


@op_app.command("list")
def list_operations(
    org: str = typer.Option("", help="organisation name (default: all)"),
    cluster: str = typer.Option("", help="cluster id"),
    state: str = typer.Option("", help=f"one of {', '.join(STATES)}"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Operations, newest first."""
    if state and state not in STATES:
        raise typer.BadParameter(f"state must be one of {', '.join(STATES)}")

    async def work(sessions: Sessions) -> list[tuple[Operation, str]]:
        async with _session(sessions) as session:
            query = select(Operation, Org.name).join(Org, Org.id == Operation.orgid)
            for column, value in ((Org.name, org), (Operation.cluster_id, cluster), (Operation.state, state)):
                if value:
                    query = query.where(column == value)
            query = query.order_by(Operation.created_at.desc()).limit(limit)
            return [(op, name) for op, name in (await session.execute(query)).all()]

    rows = [
        [op.id, name, op.kind, op.state, op.current_step or "-", op.cluster_id or "-",
         op.created_at.strftime("%Y-%m-%d %H:%M:%S"), op.requested_by]
        for op, name in _run(work)
    ]  # fmt: skip
    _print_table(["id", "org", "kind", "state", "step", "cluster", "created", "by"], rows)


def _print_table(header: list[str], rows: list[list[str]], console: Console | None = None) -> None:
    """A table on a terminal; tab-separated lines when piped, so that ids stay whole for scripts."""
    console = console or Console()
    if not console.is_terminal:
        for row in [header, *rows]:
            typer.echo("\t".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@op_app.command("show")
def show_operation(op_id: str, as_json: bool = typer.Option(False, "--json", help="machine-readable")) -> None:
    """One operation: steps with timings and errors, last error, history."""

    async def work(sessions: Sessions) -> dict[str, Any]:
        async with _session(sessions) as session:
            return await operations.operation_detail(session, await _operation(session, op_id))

    detail = _run(work)
    if as_json:
        typer.echo(json.dumps(detail, ensure_ascii=False, indent=2))
        return
    console = Console()
    console.print(f"[bold]{detail['id']}[/bold] {detail['kind']} [bold]{detail['state']}[/bold]"
                  f" (attempt {detail['attempt']}, cluster {detail['cluster_id'] or '-'})")  # fmt: skip
    if detail["last_error"]:
        console.print(f"last error: {detail['last_error']}", markup=False)
    _print_table(STEP_HEADER, _step_rows(detail["steps"]), console)
    for event in detail["history"]:
        console.print(f"{event['at']}  {event['from_state'] or '-'} → {event['to_state']}  {event['actor']}: "
                      f"{event['reason']}", markup=False)  # fmt: skip


STEP_HEADER = ["#", "step", "node", "state", "tries", "seconds", "error"]


def _step_rows(steps: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [str(s["ordinal"]), s["name"], s["node"] or "-", s["state"], str(s["attempts"]),
         f"{s['duration_seconds']:.1f}" if s["duration_seconds"] is not None else "-", s["error"][:80] or "-"]
        for s in steps
    ]  # fmt: skip


def _steps_table(steps: list[dict[str, Any]]) -> Table:
    table = Table(*STEP_HEADER)
    for row in _step_rows(steps):
        table.add_row(*row)
    return table


@op_app.command("logs")
def operation_logs(
    op_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until the operation ends"),
    poll: float = typer.Option(0.5, min=0.05, help="seconds between looks when following"),
) -> None:
    """The operation's log; with --follow, live, with the progress of every step."""

    async def work(sessions: Sessions) -> str:
        async with _session(sessions) as session:
            op = await _operation(session, op_id)
            if not follow:
                typer.echo(await operations.render_log(session, op.id), nl=False)
                return op.state
            orgid = op.orgid
        return await _follow(sessions, orgid, op_id, poll)

    state = _run(work)
    if follow and state != "succeeded":
        raise typer.Exit(1)


async def _follow(sessions: Sessions, orgid: str, op_id: str, poll: float) -> str:
    """Log lines scroll above a live table of the steps; without a terminal, plain lines and state changes."""
    console = Console()
    state = last_error = ""
    with Live(console=console, auto_refresh=False, transient=False) as live:
        async for progress in operations.follow(sessions, orgid, op_id, poll):
            for line in progress.lines:
                live.console.print(line, markup=False, highlight=False)
            if progress.state != state and not console.is_terminal:
                console.print(f"== {progress.state} {progress.current_step}", markup=False)
            state, last_error = progress.state, progress.last_error
            live.update(_steps_table(progress.steps), refresh=True)
    if last_error:
        console.print(f"last error: {last_error}", markup=False)
    console.print(f"operation {op_id}: {state}", markup=False)
    return state
