"""Required means required: every compat endpoint of the contract, without each of its required parameters,
answers `{"status": false, "msg": ...}` naming that parameter, and writes nothing.

Driven by the contract, so a parameter the document marks required is covered here; the parameters kboss
knowingly fills in or lets another stand in for are the tables of `kboss.wire.required`
(docs/compat-api.md, "Required parameters").
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

import kboss.db.models_instances
import kboss.db.models_ops  # noqa: F401  (their tables are on the same metadata)
from kboss.db.models import Base
from kboss.wire import contract, required
from tests.api.test_compat_catalog import CENTER, CPCC, import_cluster
from tests.support.api import Api, User

COMPAT = [entry for entry in contract.endpoints() if entry["path"].startswith(("/dev/cpcc/", "/computing/"))]


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for entry in COMPAT:
        defaulted = required.DEFAULTED.get(entry["path"], {})
        for name in contract.required_params(entry["path"]):
            if name not in defaulted:
                cases.append((entry["method"], entry["path"], name))
    return cases


def test_the_cases_cover_the_issues_examples() -> None:
    cases = {(path, name) for _, path, name in _cases()}
    assert (f"{CPCC}/cpcwidget/accrual_price.dspy", "duration") in cases
    assert (f"{CPCC}/cpcwidget/accrual_price.dspy", "duration_unit") in cases
    assert (f"{CPCC}/cpcnode/get_cpcnode.dspy", "cpcid") in cases


async def _snapshot(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    async with api.app.state.kboss.sessions() as session:
        return {
            table.name: sorted(map(tuple, (await session.execute(select(table))).all()), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name != "audit_events"  # refusals are recorded there by design (tests/audit)
        }


async def _world(admin: User) -> dict[str, str]:
    """A center, a recorded cluster and an idle device: ids the parameters can name."""
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    clusterid = await import_cluster(admin, cpcid)
    return {"cpcid": cpcid, "clusterid": clusterid}


def _full(path: str, ids: dict[str, str]) -> dict[str, Any]:
    """Every parameter of the document for `path`, with a plausible value (only presence matters here)."""
    values = {
        **ids,
        "id": ids["cpcid"],
        "resources": json.dumps([{"type": "cpu", "amount": 1}]),
        "duration": "2",
        "duration_unit": "小时",
        "unit_price": "1.5",
        "type": "cpu",
        "labeltype": "1",
    }
    return {p["name"]: values.get(p["name"], "1") for p in contract.endpoint(path)["params"] if p.get("in") != "header"}


@pytest.mark.parametrize(("method", "path", "name"), _cases())
async def test_each_required_parameter_is_required(api: Api, method: str, path: str, name: str) -> None:
    admin = await api.user("alice", "acme")
    params = _full(path, await _world(admin))
    left_out = (name, *required.STAND_INS.get(path, {}).get(name, ()))
    for key in left_out:
        params.pop(key, None)
    # A stand-in may be required itself (delete_cpcwidget: `id`, then `cpcid`): the document's first is named.
    named = next(key for key in contract.required_params(path) if key in left_out)
    before = await _snapshot(api)
    body = await admin.call(path, method, **params)
    assert body["status"] is False, body
    assert body["msg"] == required.DOCUMENT_MESSAGES.get((path, named), f"参数 {named} 无效: 缺少该参数"), body
    assert await _snapshot(api) == before


async def test_blank_counts_as_missing(api: Api) -> None:
    admin = await api.user("alice", "acme")
    ids = await _world(admin)
    path = f"{CPCC}/cpcwidget/accrual_price.dspy"
    params = {**_full(path, ids), "duration": "  "}
    assert await admin.refused(path, "GET", **params) == "参数 duration 无效: 缺少该参数"


async def test_a_quote_without_duration_is_refused_not_priced_for_one_hour(api: Api) -> None:
    admin = await api.user("alice", "acme")
    ids = await _world(admin)
    path = f"{CPCC}/cpcwidget/accrual_price.dspy"
    resources = json.dumps([{"type": "cpu", "amount": 1}])
    message = await admin.refused(path, "GET", cpcid=ids["cpcid"], resources=resources, duration_unit="小时")
    assert message == "参数 duration 无效: 缺少该参数"


async def test_a_get_with_a_json_body_is_read(api: Api) -> None:
    """The document's examples send JSON bodies with GET; the body is read, and wins over the query string."""
    admin = await api.user("alice", "acme")
    ids = await _world(admin)
    await admin.ok(
        f"{CPCC}/cpcwidget/add_cpcwidget.dspy", cpcid=ids["cpcid"], clusterid=ids["clusterid"], type="cpu",
        model="STANDARD", resource_unit="核", unit_price="2", stock="8", charge_unit="小时", account_unit="元",
    )  # fmt: skip
    body = {"cpcid": ids["cpcid"], "resources": [{"type": "cpu", "amount": 2}], "duration": 3, "duration_unit": "小时"}
    response = await admin.http.request(
        "GET", f"{CPCC}/cpcwidget/accrual_price.dspy", params={"duration": "1"}, json=body, headers=admin.headers
    )
    answer = response.json()
    assert answer["status"] is True, answer
    assert answer["data"]["total_price"] in ("12.00", 12, "12")
    form = await admin.http.request(
        "GET", f"{CPCC}/cpcnode/get_cpcnode.dspy", content=f"cpcid={ids['cpcid']}".encode(),
        headers={**admin.headers, "content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert form.json()["status"] is True, form.json()


async def test_unauthenticated_callers_are_told_to_log_in_first(api: Api) -> None:
    response = await api.http.get(f"{CPCC}/cpcwidget/accrual_price.dspy")
    body = response.json()
    assert body["status"] is False and "缺少" not in body["msg"]
