"""Monthly statements and a provider's revenue: every total is the ledger's own sum to the 分 (per instance, per
kind, per month, the balance carried from month to month), the CSV download says the same, a customer reads only
its own, and the revenue split by center, cluster and component type sums to the customers' net charges."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from kboss.api.v1.statements import statement_csv
from kboss.billing.metering import meter_once
from kboss.db.models_billing import LedgerEntry
from tests.api.test_instances import DELETE, NEW, instance_params
from tests.billing.test_metering import _at, _order
from tests.billing.test_orders import _shop
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User

STATEMENTS = "/api/v1/statements"
REVENUE = "/api/v1/revenue"


async def _entries(api: Api, orgid: str | None = None) -> list[LedgerEntry]:
    async with api.app.state.kboss.sessions() as session:
        query = select(LedgerEntry).order_by(LedgerEntry.id)
        if orgid:
            query = query.where(LedgerEntry.orgid == orgid)
        return list((await session.scalars(query)).all())


def _fen(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _month(when: dt.datetime) -> str:
    return when.strftime("%Y-%m")


def _last_month(when: dt.datetime) -> dt.datetime:
    return when.replace(day=1, hour=12) - dt.timedelta(days=1)


async def _story(api: Api) -> dict[str, Any]:
    """A provider; a customer with a top-up, a prepaid order kept, one deleted at once (refund), a metered one
    metered twice, a second top-up; a second customer with one prepaid order."""
    provider, buyer, ids = await _shop(api, "500.00")
    kept = await buyer.ok(
        NEW, **instance_params(ids["cid"], source_name="kept", source_outsideport="30071"), duration="3"
    )
    early = await buyer.ok(
        NEW, **instance_params(ids["cid"], source_name="early", source_outsideport="30072"), duration="3"
    )
    await buyer.ok(DELETE, id=early["id"])
    metered = await buyer.ok(NEW, **instance_params(ids["cid"], source_name="metered", source_outsideport="30073"))
    order = await _order(api, metered["id"])
    for minutes in (10, 25):
        assert await meter_once(api.app.state.kboss.sessions, _at(order, minutes)) == 1
    await _credit(api, provider, ids["orgid"], "50.00")
    other = await _customer(api, provider, "乙客户", "buyer2")
    await _credit(api, provider, other["id"], "20.00")
    buyer2 = await _login(api, "buyer2")
    await buyer2.ok(NEW, **instance_params(ids["cid"], source_name="other", source_outsideport="30074"), duration="1")
    instances = {"kept": kept["id"], "early": early["id"], "metered": metered["id"]}
    return {"provider": provider, "buyer": buyer, "buyer2": buyer2, "other": other["id"], **ids, **instances}


async def _credit(api: Api, provider: User, orgid: str, amount: str) -> None:
    answer = await api.http.post(f"/api/v1/accounts/{orgid}/credit", json={"amount": amount}, headers=provider.headers)
    assert answer.status_code == 200, answer.text


async def _get(api: Api, who: User, path: str, **params: str) -> Any:
    answer = await api.http.get(path, params=params, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _first_credit_last_month(api: Api, orgid: str) -> tuple[list[LedgerEntry], LedgerEntry, dt.datetime]:
    """The first top-up moved to the month before: this month opens with it, the month before closes with it."""
    entries = await _entries(api, orgid)
    first = entries[0]
    assert first.kind == "credit" and first.amount_fen == 50000
    before = _last_month(first.at)
    async with api.app.state.kboss.sessions() as session:
        await session.execute(update(LedgerEntry).where(LedgerEntry.id == first.id).values(at=before))
        await session.commit()
    return [entry for entry in entries if entry.id != first.id], first, before


async def test_a_statement_is_the_ledger_to_the_fen(api: Api) -> None:
    story = await _story(api)
    in_month, _, _ = await _first_credit_last_month(api, story["orgid"])
    got = await _get(api, story["buyer"], STATEMENTS, month=_month(in_month[-1].at))
    per_instance: dict[str, int] = defaultdict(int)
    for entry in in_month:
        if entry.kind != "credit":
            per_instance[str(entry.instance_id)] += entry.amount_fen
    assert {row["instance_id"]: _fen(row["net"]) for row in got["instances"]} == per_instance
    assert set(per_instance) == {story["kept"], story["early"], story["metered"]}
    by_kind = {kind: sum(e.amount_fen for e in in_month if e.kind == kind) for kind in ("charge", "refund", "credit")}
    totals = got["totals"]
    assert {kind: _fen(totals[f"{kind}s"]) for kind in by_kind} == by_kind
    assert by_kind["refund"] > 0 and by_kind["credit"] == 5000
    assert _fen(totals["net"]) == sum(entry.amount_fen for entry in in_month)
    assert (totals["opening"], [c["amount"] for c in got["credits"]]) == ("500.00", ["50.00"])
    balance = (await _get(api, story["buyer"], f"/api/v1/accounts/{story['orgid']}"))["balance"]
    assert _fen(totals["opening"]) + _fen(totals["net"]) == _fen(totals["closing"]) == _fen(balance)


async def test_each_instance_says_where_it_ran_and_what_its_lines_cost(api: Api) -> None:
    story = await _story(api)
    got = await _get(api, story["buyer"], STATEMENTS, month=_month((await _entries(api))[-1].at))
    for row in got["instances"]:
        assert sum(_fen(line["amount"]) for line in row["lines"]) == _fen(row["net"]), row
        assert (row["cpcid"], row["clusterid"], row["center"] != "") == (story["cpcid"], story["cid"], True)
        assert {"type", "model", "quantity", "unit", "unit_price", "charge_unit"} <= set(row["lines"][0])
        assert row["period"]["from"] <= row["period"]["to"]
    names = {row["instance_id"]: (row["name"], row["mode"]) for row in got["instances"]}
    assert names[story["kept"]] == ("kept", "prepaid") and names[story["metered"]] == ("metered", "metered")
    assert names[story["early"]] == ("", "prepaid")  # its row is gone; its place is its order's components'


async def test_months_carry_the_balance_and_an_empty_month_is_zeros(api: Api) -> None:
    story = await _story(api)
    in_month, first, before = await _first_credit_last_month(api, story["orgid"])
    earlier = await _get(api, story["buyer"], STATEMENTS, month=_month(before))
    assert (earlier["instances"], [c["id"] for c in earlier["credits"]]) == ([], [first.id])
    assert (earlier["totals"]["opening"], earlier["totals"]["closing"]) == ("0.00", "500.00")
    this = await _get(api, story["buyer"], STATEMENTS, month=_month(in_month[-1].at))
    assert this["totals"]["opening"] == earlier["totals"]["closing"]
    nothing = await _get(api, story["buyer"], STATEMENTS, month="2020-02")
    assert (nothing["instances"], nothing["credits"]) == ([], [])
    assert set(nothing["totals"].values()) == {"0.00"}
    assert (nothing["from"], nothing["to"]) == ("2020-02-01 00:00:00", "2020-02-29 23:59:59")


async def test_bad_months_are_refused_naming_month(api: Api) -> None:
    provider, buyer, _ = await _shop(api, "1.00")
    for who, paths in ((buyer, (STATEMENTS,)), (provider, (STATEMENTS, REVENUE))):  # revenue: not a customer's
        for path in paths:
            for month in ("2026-13", "26-01", "abc", "2026-00", "2026-1", "２０２６-01", ""):
                answer = await api.http.get(path, params={"month": month}, headers=who.headers)
                assert answer.status_code == 422 and "month" in answer.text, (path, month, answer.text)
    answer = await api.http.get(STATEMENTS, params={"month": "2026-01", "format": "pdf"}, headers=buyer.headers)
    assert answer.status_code == 422 and "format" in answer.text


async def test_the_csv_says_what_the_json_says(api: Api) -> None:
    story = await _story(api)
    month = _month((await _entries(api))[-1].at)
    for who, params in ((story["buyer"], {}), (story["provider"], {})):
        got = await _get(api, who, STATEMENTS, month=month, **params)
        answer = await api.http.get(STATEMENTS, params={"month": month, "format": "csv"}, headers=who.headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == f'attachment; filename="statement-{month}.csv"'
        assert answer.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
        grand = "grand_total" if "customers" in got else "total"
        assert {r["type"]: r["amount"] for r in rows if r["row"] == grand} == got["totals"]
        lines = sum(_fen(r["amount"]) for r in rows if r["row"] == "line")
        credits = sum(_fen(r["amount"]) for r in rows if r["row"] == "credit")
        totals = got["totals"]
        assert (lines, credits) == (_fen(totals["charges"]) + _fen(totals["refunds"]), _fen(totals["credits"]))
        assert "甲客户" in {r["customer"] for r in rows}


async def test_who_reads_which_statement(api: Api) -> None:
    story = await _story(api)
    month = _month((await _entries(api))[-1].at)
    buyer, provider, other = story["buyer"], story["provider"], story["other"]
    own = await _get(api, buyer, STATEMENTS, month=month)
    assert own == await _get(api, buyer, STATEMENTS, month=month, customer=story["orgid"])
    for who, customer in ((buyer, other), (story["buyer2"], story["orgid"]), (provider, "nosuchorg00000000000")):
        answer = await api.http.get(STATEMENTS, params={"month": month, "customer": customer}, headers=who.headers)
        assert answer.status_code == 404, (customer, answer.text)
    assert await _get(api, provider, STATEMENTS, month=month, customer=story["orgid"]) == own
    every = await _get(api, provider, STATEMENTS, month=month)
    assert [one["customer"]["name"] for one in every["customers"]] == ["乙客户", "甲客户"]
    for key in ("charges", "refunds", "credits", "net", "opening", "closing"):
        assert _fen(every["totals"][key]) == sum(_fen(one["totals"][key]) for one in every["customers"]), key
    assert _fen(every["totals"]["net"]) == sum(entry.amount_fen for entry in await _entries(api))
    member = await api.user("bob", "acme", admin=False)
    assert (await api.http.get(STATEMENTS, params={"month": month}, headers=member.headers)).status_code == 403
    assert (await api.http.get(REVENUE, params={"month": month}, headers=buyer.headers)).status_code == 404


async def test_revenue_by_center_cluster_and_type_sums_to_the_net_charges(api: Api) -> None:
    story = await _story(api)
    entries = await _entries(api)
    month = _month(entries[-1].at)
    got = await _get(api, story["provider"], REVENUE, month=month)
    net = -sum(entry.amount_fen for entry in entries if entry.kind in ("charge", "refund"))
    assert _fen(got["totals"]["net"]) == net > 0
    assert _fen(got["totals"]["charges"]) == -sum(e.amount_fen for e in entries if e.kind == "charge")
    assert _fen(got["totals"]["refunds"]) == -sum(e.amount_fen for e in entries if e.kind == "refund") < 0
    for key in ("by_center", "by_cluster", "by_type"):
        assert sum(_fen(row["amount"]) for row in got[key]) == net, key
    assert [(row["cpcid"], _fen(row["amount"])) for row in got["by_center"]] == [(story["cpcid"], net)]
    assert [(row["clusterid"], _fen(row["amount"])) for row in got["by_cluster"]] == [(story["cid"], net)]
    assert {row["type"] for row in got["by_type"]} >= {"cpu", "memory"}
    empty = await _get(api, story["provider"], REVENUE, month="2020-01")
    assert (empty["by_center"], empty["by_type"], empty["totals"]["net"]) == ([], [], "0.00")


def test_typed_names_cannot_become_spreadsheet_formulas() -> None:
    totals = dict.fromkeys(("charges", "refunds", "credits", "net", "opening", "closing"), "-1.00")
    answer = {
        "customer": {"orgid": "o1", "name": '=HYPERLINK("http://evil")'},
        "instances": [],
        "credits": [{"at": "2026-12-01 00:00:00", "amount": "5.00", "note": "@SUM(A1)"}],
        "totals": totals,
    }
    rows = list(csv.DictReader(io.StringIO(statement_csv(answer))))
    assert rows[0]["customer"] == '\'=HYPERLINK("http://evil")' and rows[0]["note"] == "'@SUM(A1)"
    assert rows[-1]["amount"] == "-1.00"  # amounts stay numbers
