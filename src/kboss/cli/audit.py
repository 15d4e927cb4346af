"""`kboss audit list`: the audit trail, read straight from the database of the settings (every org; `--org`
narrows to one, by name or id), newest first: a table, or JSON lines with `--json`."""

from __future__ import annotations

import json
from typing import Any

import typer
from sqlalchemy import or_, select

from kboss.audit import reads
from kboss.cli.ops import Sessions, _print_table, _run
from kboss.common.listing import MAX_ROWS, Page
from kboss.db.models import Org
from kboss.errors import KbossError

audit_app = typer.Typer(help="The audit trail: who did what, when, from where", no_args_is_help=True)


async def _orgid(sessions: Sessions, org: str) -> str | None:
    if not org:
        return None
    async with sessions() as session:
        found = await session.scalar(select(Org.id).where(or_(Org.name == org, Org.id == org)))
    if found is None:
        typer.echo(f"error: no organisation {org}", err=True)
        raise typer.Exit(1)
    return str(found)


@audit_app.command("list")
def list_events(
    actor: str = typer.Option("", help="who (a username, or cli:<os user>)"),
    action: str = typer.Option("", help="an action or its prefix, e.g. auth. or api.write"),
    since: str = typer.Option("", help="ISO date or time (UTC unless it says)"),
    limit: int = typer.Option(50, min=1, max=MAX_ROWS),
    org: str = typer.Option("", help="organisation name or id (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Audit events, newest first."""
    try:
        filters = reads.Filters(actor=actor, action=action, since=reads.parse_time("since", since))
    except KbossError as exc:
        raise typer.BadParameter(exc.message) from None

    async def work(sessions: Sessions) -> list[dict[str, Any]]:
        orgid = await _orgid(sessions, org)
        async with sessions() as session:
            listed = await reads.list_events(session, orgid, filters, Page(number=1, size=limit))
        return list(listed["rows"])

    rows = _run(work)
    if as_json:
        for row in rows:
            row.pop("row_num_", None)
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
        return
    header = ["at", "actor", "org", "action", "target", "address", "outcome", "code"]
    _print_table(header, [_cells(row) for row in rows])


def _cells(row: dict[str, Any]) -> list[str]:
    target = f"{row['target_type']}:{row['target_id']}" if row["target_id"] else row["target_type"] or "-"
    at = str(row["at"])[:19].replace("T", " ")
    return [at, row["actor"] or "-", row["orgid"] or "-", row["action"], target, row["address"] or "-",
            row["outcome"], row["code"] or "-"]  # fmt: skip
