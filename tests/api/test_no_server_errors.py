"""Inputs that used to answer 500 (with a logged traceback) now get a clear 4xx / status:false naming the parameter."""

from __future__ import annotations

import datetime as dt
import json
import logging

import jwt
import pytest

from kboss.accounts import sessions
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.ERROR, logger="kboss.api")
    return caplog


def _assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()]


async def test_blank_sort_is_the_default_order(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.get("/api/v1/centers", params={"sort": " "}, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
    _assert_no_tracebacks(no_tracebacks)


@pytest.mark.parametrize("page", [str(2**63), str(10**30), "100001"])
async def test_huge_page_is_refused(api: Api, page: str, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.get("/api/v1/centers", params={"page": page}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert "page" in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


async def test_label_type_beyond_its_two_values_is_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.get("/api/v1/labels", params={"labeltype": "128703751658"}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert "labeltype" in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


async def test_huge_cpu_stock_is_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    message = await admin.refused(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, cpu_stock=str(2**63)))
    assert "cpu_stock" in message
    _assert_no_tracebacks(no_tracebacks)


async def test_huge_quote_duration_is_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    params = {"resources": json.dumps([{"type": "cpu", "amount": 4}]), "duration": str(10**40)}
    response = await api.http.post("/api/v1/quotes", json=params, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert "duration" in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


async def test_prices_beyond_what_the_database_and_decimal_hold_are_clear(
    api: Api, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    clusterid = await import_cluster(admin, cpcid)
    gpu = {"type": "gpu", "model": "H100", "resource_unit": "卡", "charge_unit": "秒", "account_unit": "元"}
    add = f"{CPCC}/cpcwidget/add_cpcwidget.dspy"
    message = await admin.refused(add, cpcid=cpcid, clusterid=clusterid, stock=10**6, unit_price="1e14", **gpu)
    assert "unit_price" in message and "100000000000000" in message
    await admin.ok(add, cpcid=cpcid, clusterid=clusterid, stock=10**6, unit_price="99999999999999.9", **gpu)
    # A million cards for a million months, charged per second: a clear line error, not an overflow.
    lines = json.dumps([{"type": "gpu", "model": "H100", "amount": 10**6}])
    quote = await admin.call(
        f"{CPCC}/cpcwidget/accrual_price.dspy", "GET", cpcid=cpcid, resources=lines, duration=10**6, duration_unit="月"
    )
    assert quote["status"] is False and "金额过大" in quote["msg"], quote
    _assert_no_tracebacks(no_tracebacks)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "ver"])
async def test_token_missing_a_claim_is_unauthenticated(
    api: Api, missing: str, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    await api.user("alice", "acme")
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "u", "jti": "j", "ver": 0, "iat": now, "exp": now + dt.timedelta(hours=1)}
    del claims[missing]
    key = sessions._signing_key(api.app.state.kboss.deployment_key)
    token = jwt.encode(claims, key, algorithm="HS256")
    response = await api.http.get("/api/v1/centers", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated" and missing in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


BAD_IDS: list[object] = [["a", "b"], {"x": 1}, 2**63, 5, "x" * 65]


@pytest.mark.parametrize("value", BAD_IDS)
async def test_compat_ids_of_the_wrong_type_are_refused(
    api: Api, value: object, no_tracebacks: pytest.LogCaptureFixture
) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.post(f"{CPCC}/cpclist/delete_cpclist.dspy", json={"id": value}, headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] is False and "id" in body["msg"], body
    _assert_no_tracebacks(no_tracebacks)


async def test_compat_lone_surrogates_are_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    body = json.dumps({**CENTER, "name": "bad\udcff"})
    response = await api.http.post(
        f"{CPCC}/cpclist/add_cpclist.dspy",
        content=body,
        headers={**admin.headers, "content-type": "application/json"},
    )
    envelope = response.json()
    assert envelope["status"] is False and "name" in envelope["msg"], envelope
    assert (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["total"] == 0
    _assert_no_tracebacks(no_tracebacks)


async def test_native_lone_surrogates_are_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    body = json.dumps({**CENTER, "name": "bad\udcff"})
    response = await api.http.post(
        "/api/v1/centers", content=body, headers={**admin.headers, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "name" in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


async def test_native_path_ids_with_nul_are_refused(api: Api, no_tracebacks: pytest.LogCaptureFixture) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.get("/api/v1/clusters/a%00b", headers=admin.headers)
    assert response.status_code == 422, response.text
    assert "cluster_id" in response.json()["detail"]
    _assert_no_tracebacks(no_tracebacks)


async def test_openapi_documents_the_error_body(api: Api) -> None:
    spec = (await api.http.get("/api/v1/openapi.json")).json()
    responses = spec["paths"]["/api/v1/centers"]["post"]["responses"]
    for status in ("401", "403", "404", "409", "422", "502"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in str(spec)
