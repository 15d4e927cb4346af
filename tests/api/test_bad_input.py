"""Every bad parameter gets status:false with a message naming it, nothing is written, nothing answers 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api, User

CENTER_CASES = [
    ("name", ""),
    ("pcapi_url", "javascript:alert(1)"),
    ("contactphone", "call me; rm -rf /"),
    ("enable_date", "2025-13-01"),
    ("expire_date", "16/05/2025"),
]
DEVICE_CASES = [
    ("ip", "300.1.1.1"),
    ("ip", "$(reboot)"),
    ("sshport", "0"),
    ("sshport", "70000"),
    ("sshport", "22.5"),
    ("devicetype", "2"),
    ("node_status", "yes"),
    ("cpu_stock", "-1"),
    ("gpu_stock", "many"),
    ("role", "boss"),
    ("external_ip", "not-an-ip"),
]
LABEL_CASES = [
    ("label_key", "bad key"),
    ("label_key", "a;b"),
    ("label_value", "$(id)"),
    ("label_value", "x" * 64),
    ("labeltype", "7"),
]


async def _center(user: User) -> str:
    cpcid: str = (await user.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    return cpcid


@pytest.mark.parametrize(("field", "value"), CENTER_CASES)
async def test_bad_center_parameters(api: Api, field: str, value: str) -> None:
    admin = await api.user("alice", "acme")
    message = await admin.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **{**CENTER, field: value})
    assert field in message
    assert (await admin.ok(f"{CPCC}/cpclist/get_cpclist.dspy", "GET"))["total"] == 0


async def test_enable_date_after_expire_date_is_refused(api: Api) -> None:
    admin = await api.user("alice", "acme")
    params = {**CENTER, "enable_date": "2026-01-02", "expire_date": "2026-01-01"}
    assert "expire_date" in await admin.refused(f"{CPCC}/cpclist/add_cpclist.dspy", **params)


@pytest.mark.parametrize(("field", "value"), DEVICE_CASES)
async def test_bad_device_parameters(api: Api, field: str, value: str) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    message = await admin.refused(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, **{field: value}))
    assert field in message
    assert (await admin.ok(f"{CPCC}/cpcnode/get_cpcnode.dspy", "GET", cpcid=cpcid))["total"] == 0


async def test_ipv6_devices_are_accepted_and_duplicates_refused(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    await admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, ip="fd00::8"))
    assert "已有" in await admin.refused(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, ip="fd00::8"))


@pytest.mark.parametrize(("field", "value"), LABEL_CASES)
async def test_bad_label_parameters(api: Api, field: str, value: str) -> None:
    admin = await api.user("alice", "acme")
    params = {"name": "n", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "true", field: value}
    assert field in await admin.refused(f"{CPCC}/cpclabel/add_cpclabel.dspy", **params)
    assert (await admin.ok(f"{CPCC}/cpclabel/get_cpclabel.dspy", "GET"))["total"] == 0


COMPONENT_CASES: list[tuple[str, Any]] = [
    ("type", "ram"),
    ("unit_price", "-1"),
    ("unit_price", "NaN"),
    ("unit_price", "cheap"),
    ("stock", "-5"),
    ("charge_unit", "年"),
    ("account_unit", "美元"),
    ("resource_unit", "Gi"),
    ("add_opt", "maybe"),
]


@pytest.mark.parametrize(("field", "value"), COMPONENT_CASES)
async def test_bad_component_parameters(api: Api, field: str, value: Any) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    clusterid = await import_cluster(admin, cpcid)
    params = {"cpcid": cpcid, "clusterid": clusterid, "type": "cpu", "model": "X", "unit_price": "1.5", field: value}
    assert field in await admin.refused(f"{CPCC}/cpcwidget/add_cpcwidget.dspy", **params)
    assert (await admin.ok(f"{CPCC}/cpcwidget/get_cpcwidget.dspy", "GET", cpcid=cpcid))["total"] == 0


QUOTE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("resources", {"resources": "not json"}),
    ("resources", {"resources": "{}"}),
    ("resources[0].amount", {"resources": json.dumps([{"type": "cpu", "amount": -4}])}),
    ("resources[0].amount", {"resources": json.dumps([{"type": "cpu", "amount": 1.5}])}),
    ("resources[0].type", {"resources": json.dumps([{"type": "ram", "amount": 4}])}),
    ("duration", {"resources": json.dumps([{"type": "cpu", "amount": 4}]), "duration": "0"}),
    ("duration_unit", {"resources": json.dumps([{"type": "cpu", "amount": 4}]), "duration_unit": "年"}),
]


@pytest.mark.parametrize(("field", "params"), QUOTE_CASES)
async def test_bad_quote_parameters(api: Api, field: str, params: dict[str, Any]) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    params = {"duration": "1", "duration_unit": "小时", **params}  # both required
    assert field in await admin.refused(f"{CPCC}/cpcwidget/accrual_price.dspy", "GET", cpcid=cpcid, **params)


async def test_malformed_bodies_never_answer_500(api: Api) -> None:
    admin = await api.user("alice", "acme")
    path = f"{CPCC}/cpclist/add_cpclist.dspy"
    headers = {**admin.headers, "content-type": "application/json"}
    for body in (b"{", b"[1,2]", b"\xff\xfe", b'{"name": {"nested": 1}}'):
        response = await api.http.post(path, content=body, headers=headers)
        assert response.status_code == 200 and response.json()["status"] is False, body
    native = await api.http.post("/api/v1/centers", content=b"{", headers=headers)
    assert native.status_code == 422
    typed = await api.http.post("/api/v1/centers", json={**CENTER, "contactphone": "x"}, headers=admin.headers)
    assert typed.status_code == 422 and "contactphone" in typed.json()["detail"]


@pytest.mark.parametrize("query", [{"cpcid": "\r\x08\x00"}, {"clusterid": "a\x00b"}])
async def test_native_query_parameters_are_screened_before_any_read(api: Api, query: dict[str, str]) -> None:
    admin = await api.user("alice", "acme")
    response = await api.http.get("/api/v1/gpu-inventory", params=query, headers=admin.headers)
    assert response.status_code == 422 and next(iter(query)) in response.text, response.text
