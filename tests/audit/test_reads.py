"""`GET /api/v1/audit` (an org's admin only, filters, paging, never another org's rows) and `kboss audit list`
(with the `kboss user …` commands recorded as `cli:<os user>` from `local`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kboss.cli.main import app as cli
from kboss.settings import get_settings
from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import Api, User

AUDIT = "/api/v1/audit"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _list(user: User, **params: Any) -> Any:
    answer = await user.http.get(AUDIT, params=params, headers=user.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_admins_list_filter_and_page_their_org(api: Api) -> None:
    alice = await api.user("alice", "acme")
    bob = await api.user("bob", "acme", admin=False)
    carol = await api.user("carol", "other")
    for _ in range(3):
        await alice.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    await carol.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    await bob.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    everything = await _list(alice)
    assert {row["orgid"] for row in everything["rows"]} == {everything["rows"][0]["orgid"]}
    assert "carol" not in {row["actor"] for row in everything["rows"]}
    writes = await _list(alice, action="api.", rows=2)
    assert writes["total"] == 4 and len(writes["rows"]) == 2  # alice's three and bob's refused one
    ids = [row["id"] for row in writes["rows"]] + [row["id"] for row in (await _list(alice, action="api.", rows=2,
                                                                                     page=2))["rows"]]  # fmt: skip
    assert ids == sorted(ids, reverse=True)  # newest first, pages in order
    refused = await _list(alice, outcome="refused")
    assert [row["actor"] for row in refused["rows"]] == ["bob"]
    assert (await _list(alice, actor="alice", action="auth.login"))["total"] == 1
    assert (await _list(alice, since="2999-01-01"))["total"] == 0
    assert (await _list(carol))["total"] == 2  # her login and her write
    bad = await alice.http.get(AUDIT, params={"since": "yesterday"}, headers=alice.headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_parameter"


async def test_members_are_refused(api: Api) -> None:
    await api.user("alice", "acme")
    bob = await api.user("bob", "acme", admin=False)
    answer = await bob.http.get(AUDIT, headers=bob.headers)
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert (await api.http.get(AUDIT)).status_code == 401


async def _cli(db_url: str, *args: str) -> Result:
    env = {"KBOSS_DATABASE_URL": db_url}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, catch_exceptions=False)


async def test_the_command_line_records_and_lists(api: Api, db_url: str) -> None:
    alice = await api.user("alice", "acme")
    created = await _cli(db_url, "user", "create", "--username", "dave", "--password", "Cli-Pass-9", "--org", "acme")
    assert created.exit_code == 0, created.output
    assert (await _cli(db_url, "user", "set-role", "nobody", "admin")).exit_code == 1
    listed = await _cli(db_url, "audit", "list", "--json", "--action", "user.")
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["action"], r["outcome"], r["address"]) for r in rows] == [
        ("user.admin", "refused", "local"), ("user.admin", "ok", "local"),
    ]  # fmt: skip
    assert rows[0]["actor"].startswith("cli:") and rows[1]["detail"]["command"] == "user create"
    assert "Cli-Pass-9" not in listed.output
    seen = await _list(alice, action="user.")  # the org's admin sees the command run on its user
    assert seen["total"] == 1 and seen["rows"][0]["detail"]["username"] == "dave"
    table = await _cli(db_url, "audit", "list", "--org", "acme", "--actor", "alice", "--limit", "5")
    assert table.exit_code == 0 and "auth.login" in table.output and "alice" in table.output
    assert (await _cli(db_url, "audit", "list", "--org", "no-such-org")).exit_code == 1
