"""Customer accounts: a provider tops up, the balance is the ledger's sum, and racing charges never take it below
zero (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from kboss.billing import ledger
from kboss.db.models_billing import LedgerEntry
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User, running_api

ACCOUNTS = "/api/v1/accounts"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir) as running:
        yield running


async def _credit(api: Api, who: User, orgid: str, amount: Any, note: str = "") -> Any:
    return await api.http.post(f"{ACCOUNTS}/{orgid}/credit", json={"amount": amount, "note": note}, headers=who.headers)


async def _entries(api: Api) -> int:
    async with api.app.state.kboss.sessions() as session:
        return int(await session.scalar(select(func.count(LedgerEntry.id))) or 0)


async def test_a_top_up_is_the_balance_and_each_side_reads_only_what_is_its_own(api: Api) -> None:
    provider = await api.user("alice", "acme")
    member = await api.user("mallory", "acme", admin=False)
    rival = await api.user("olga", "rival")
    first = await _customer(api, provider, "甲客户", "buyer1")
    second = await _customer(api, provider, "乙客户", "buyer2")
    assert (await _credit(api, provider, first["id"], "100.50", "首充")).json()["balance"] == "100.50"
    assert (await _credit(api, provider, first["id"], 20)).json()["balance"] == "120.50"

    buyer = await _login(api, "buyer1")
    own = (await api.http.get(f"{ACCOUNTS}/{first['id']}", headers=buyer.headers)).json()
    assert own == {"orgid": first["id"], "name": "甲客户", "balance": "120.50", "unit": "元"}
    rows = (await api.http.get(f"{ACCOUNTS}/{first['id']}/ledger", headers=buyer.headers)).json()["rows"]
    assert [(r["kind"], r["amount"], r["note"]) for r in rows] == [
        ("credit", "20.00", ""),
        ("credit", "100.50", "首充"),
    ]
    listed = (await api.http.get(ACCOUNTS, headers=provider.headers)).json()["rows"]
    assert {r["name"]: r["balance"] for r in listed} == {"甲客户": "120.50", "乙客户": "0.00"}

    assert (await api.http.get(f"{ACCOUNTS}/{second['id']}", headers=buyer.headers)).status_code == 404
    assert (await _credit(api, buyer, first["id"], 5)).status_code == 404  # a customer never credits itself
    assert (await _credit(api, member, first["id"], 5)).status_code == 403
    assert (await _credit(api, rival, first["id"], 5)).status_code == 404
    assert (await api.http.get(f"{ACCOUNTS}/{first['id']}", headers=rival.headers)).status_code == 404


async def test_bad_amounts_are_refused_naming_the_field_and_nothing_is_written(api: Api) -> None:
    provider = await api.user("alice", "acme")
    customer = await _customer(api, provider, "甲客户", "buyer1")
    for amount in ["-1", "0", "1.234", "abc", True, None, "1e9", "NaN", [1], 0.1 + 0.2]:
        answer = await _credit(api, provider, customer["id"], amount)
        assert answer.status_code == 422 and "amount" in answer.text, (amount, answer.text)
    assert (await _credit(api, provider, customer["id"], "1", "x" * 201)).status_code == 422
    assert await _entries(api) == 0


async def test_racing_charges_never_take_a_balance_below_zero(api: Api) -> None:
    provider = await api.user("alice", "acme")
    customer = (await _customer(api, provider, "甲客户", "buyer1"))["id"]
    await _credit(api, provider, customer, "60.00")
    sessions = api.app.state.kboss.sessions

    async def order(index: int) -> bool:
        async with sessions() as session:
            try:
                await ledger.charge(session, customer, Decimal("10.00"), ledger.Ref(note=f"order {index}"))
            except ledger.InsufficientBalance:
                return False
            await session.commit()
            return True

    accepted = await asyncio.gather(*(order(index) for index in range(30)))
    assert sum(accepted) == 6
    async with sessions() as session:
        assert await ledger.balance(session, customer) == Decimal("0.00")
    assert await _entries(api) == 7


async def test_an_idempotency_key_is_charged_once(api: Api) -> None:
    provider = await api.user("alice", "acme")
    customer = (await _customer(api, provider, "甲客户", "buyer1"))["id"]
    await _credit(api, provider, customer, "10.00")
    sessions = api.app.state.kboss.sessions
    async with sessions() as session:
        await ledger.charge(session, customer, Decimal("1.00"), ledger.Ref("minute 1", key="meter:o1:1"))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await ledger.charge(session, customer, Decimal("1.00"), ledger.Ref("again", key="meter:o1:1"))
            await session.commit()
    async with sessions() as session:
        assert await ledger.balance(session, customer) == Decimal("9.00")
