"""A provider's admin makes customer orgs and publishes centers to all of them or to chosen ones; nobody else can."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from kboss.cli.users import user_app
from kboss.db.models import Org
from kboss.settings import get_settings
from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import Api, User, running_api

CUSTOMERS = "/api/v1/customers"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir) as running:
        yield running


async def _customer(api: Api, provider: User, name: str, username: str) -> dict[str, Any]:
    body = {"name": name, "username": username, "password": "pass-word-1"}
    answer = await api.http.post(CUSTOMERS, json=body, headers=provider.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def _login(api: Api, username: str) -> User:
    answer = await api.http.post("/api/v1/auth/login", json={"username": username, "password": "pass-word-1"})
    api.http.cookies.clear()
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    return User(api.http, {"Authorization": f"Bearer {token}"}, token)


async def _orgs(api: Api) -> int:
    async with api.app.state.kboss.sessions() as session:
        return int(await session.scalar(select(func.count(Org.id))) or 0)


async def test_a_provider_admin_creates_a_customer_whose_admin_logs_in(api: Api) -> None:
    provider = await api.user("alice", "acme")
    created = await _customer(api, provider, "甲客户", "buyer")
    assert created["kind"] == "customer" and created["admin"] == "buyer"
    me = (await api.http.get("/api/v1/auth/me", headers=(await _login(api, "buyer")).headers)).json()
    assert me["orgid"] == created["id"] and me["role"] == "admin"
    provider_org = (await api.http.get("/api/v1/auth/me", headers=provider.headers)).json()["orgid"]
    assert me["org_kind"] == "customer" and me["provider_id"] == provider_org
    listed = (await api.http.get(CUSTOMERS, headers=provider.headers)).json()
    assert [row["name"] for row in listed["rows"]] == ["甲客户"] and listed["total"] == 1


async def test_only_a_provider_admin_makes_or_sees_customers(api: Api) -> None:
    provider = await api.user("alice", "acme")
    member = await api.user("mallory", "acme", admin=False)
    other = await api.user("olga", "rival")
    created = await _customer(api, provider, "甲客户", "buyer")
    buyer = await _login(api, "buyer")
    body = {"name": "乙客户", "username": "buyer2", "password": "pass-word-1"}
    assert (await api.http.post(CUSTOMERS, json=body, headers=member.headers)).status_code == 403
    assert (await api.http.post(CUSTOMERS, json=body, headers=buyer.headers)).status_code == 404
    assert (await api.http.get(f"{CUSTOMERS}/{created['id']}", headers=other.headers)).status_code == 404
    assert (await api.http.get(CUSTOMERS, headers=other.headers)).json()["total"] == 0
    assert (await api.http.get(f"{CUSTOMERS}/{created['id']}", headers=provider.headers)).status_code == 200


async def test_bad_customers_are_refused_naming_the_field_and_nothing_is_written(api: Api) -> None:
    provider = await api.user("alice", "acme")
    await _customer(api, provider, "甲客户", "buyer")
    before = await _orgs(api)
    cases = [
        ({"name": "甲客户", "username": "b2", "password": "pass-word-1"}, 409, "已存在"),
        ({"name": "乙客户", "username": "buyer", "password": "pass-word-1"}, 409, "已存在"),
        ({"name": "乙客户", "username": "b 2", "password": "pass-word-1"}, 422, "username"),
        ({"name": "乙客户", "username": "b2", "password": "short"}, 422, "password"),
        ({"name": "", "username": "b2", "password": "pass-word-1"}, 422, "name"),
        ({"username": "b2", "password": "pass-word-1"}, 422, "name"),
    ]
    for body, status, words in cases:
        answer = await api.http.post(CUSTOMERS, json=body, headers=provider.headers)
        assert answer.status_code == status and words in answer.text, (body, answer.text)
    assert await _orgs(api) == before


async def test_a_center_is_published_to_all_or_to_chosen_customers(api: Api) -> None:
    provider = await api.user("alice", "acme")
    other = await api.user("olga", "rival")
    first = await _customer(api, provider, "甲客户", "buyer1")
    second = await _customer(api, provider, "乙客户", "buyer2")
    foreign = await _customer(api, other, "丙客户", "buyer3")
    center = (await provider.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    url = f"/api/v1/centers/{center}"

    async def post(action: str, customers: Any, who: User = provider) -> Any:
        return await api.http.post(f"{url}/{action}", json={"customers": customers}, headers=who.headers)

    assert (await api.http.get(f"{url}/publication", headers=provider.headers)).json()["all"] is False
    chosen = (await post("publish", [first["id"]])).json()
    assert chosen["all"] is False and [c["name"] for c in chosen["customers"]] == ["甲客户"]
    assert (await post("publish", "all")).json()["all"] is True
    rest = (await post("unpublish", [first["id"]])).json()
    assert rest["all"] is False and [c["id"] for c in rest["customers"]] == [second["id"]]
    assert (await post("unpublish", "all")).json() == {"id": center, "all": False, "customers": []}

    assert (await post("publish", [foreign["id"]])).status_code == 404  # another provider's customer
    bad = await post("publish", "everyone")
    assert bad.status_code == 422 and "customers" in bad.text
    assert (await post("publish", "all", other)).status_code == 404  # another provider's center
    assert (await api.http.get(f"{url}/publication", headers=provider.headers)).json()["all"] is False


async def test_the_command_line_makes_a_customer_of_a_provider(api: Api, db_url: str) -> None:
    provider = await api.user("alice", "acme")
    args = ["create", "--username", "buyer", "--password", "pass-word-1", "--org", "甲客户", "--customer-of", "acme"]
    env = {"KBOSS_DATABASE_URL": db_url}
    get_settings.cache_clear()
    made = await asyncio.to_thread(CliRunner().invoke, user_app, args, env=env, catch_exceptions=False)
    assert made.exit_code == 0 and "created customer organisation 甲客户" in made.output, made.output
    me = (await api.http.get("/api/v1/auth/me", headers=(await _login(api, "buyer")).headers)).json()
    assert me["org_kind"] == "customer" and me["role"] == "admin"
    listed = (await api.http.get(CUSTOMERS, headers=provider.headers)).json()["rows"]
    assert [row["name"] for row in listed] == ["甲客户"]

    args[2], args[-1] = "buyer2", "no-such-provider"
    get_settings.cache_clear()
    refused = await asyncio.to_thread(CliRunner().invoke, user_app, args, env=env, catch_exceptions=False)
    assert refused.exit_code == 1 and "服务商组织不存在: no-such-provider" in refused.output
    get_settings.cache_clear()
