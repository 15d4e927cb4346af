"""One language: every message the compat API returns for bad input is Chinese, names the parameter and, where
there is one, the allowed range or values; none is pydantic's (or a decoder's) English."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.api.test_bad_input import (
    CENTER_CASES,
    COMPONENT_CASES,
    DEVICE_CASES,
    LABEL_CASES,
    QUOTE_CASES,
    _center,
)
from tests.api.test_compat_catalog import CENTER, CPCC, device_params, import_cluster
from tests.support.api import Api, User

ENGLISH = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}|Input should|Value error|Field required|Expecting")
HOUR = {"duration": "1", "duration_unit": "小时"}


async def _component(admin: User) -> dict[str, str]:
    cpcid = await _center(admin)
    clusterid = await import_cluster(admin, cpcid)
    return {"cpcid": cpcid, "clusterid": clusterid, "type": "cpu", "model": "X", "unit_price": "1.5"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sshport", "99999", "参数 sshport 无效: 应为 1 到 65535 之间的整数"),
        ("sshport", "0", "参数 sshport 无效: 应为 1 到 65535 之间的整数"),
        ("role", "boss", "参数 role 无效: 可选值为 master、worker"),
        ("devicetype", "2", "参数 devicetype 无效: 可选值为 0、1"),
        ("cpu_stock", "-1", "参数 cpu_stock 无效: 应为 0 到 2147483647 之间的整数"),
        ("name", "x" * 129, "参数 name 无效: 长度不能超过 128 个字符"),
    ],
)
async def test_device_messages_are_chinese(api: Api, field: str, value: str, message: str) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    refused = await admin.refused(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(cpcid, **{field: value}))
    assert refused == message


async def test_component_and_label_messages_are_chinese(api: Api) -> None:
    admin = await api.user("alice", "acme")
    params = await _component(admin)
    tpu = await admin.refused(f"{CPCC}/cpcwidget/add_cpcwidget.dspy", **{**params, "type": "tpu"})
    assert tpu == "参数 type 无效: 可选值为 cpu、memory、disk、gpu"
    label = {"name": "n", "labeltype": "5", "label_key": "kyy-gpu", "label_value": "true"}
    assert await admin.refused(f"{CPCC}/cpclabel/add_cpclabel.dspy", **label) == "参数 labeltype 无效: 可选值为 0、1"


async def test_bad_json_is_explained_in_chinese(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = await _center(admin)
    quote = await admin.refused(f"{CPCC}/cpcwidget/accrual_price.dspy", "GET", cpcid=cpcid, resources="[{", **HOUR)
    assert quote.startswith("参数 resources 无效: 不是合法的 JSON (第 1 行") and not ENGLISH.search(quote)
    headers = {**admin.headers, "content-type": "application/json"}
    body = (await api.http.post(f"{CPCC}/cpclist/add_cpclist.dspy", content=b"{", headers=headers)).json()
    assert body["status"] is False and not ENGLISH.search(body["msg"]), body


async def test_native_validation_is_chinese_too(api: Api) -> None:
    admin = await api.user("alice", "acme")
    typed = await api.http.post("/api/v1/centers", json={**CENTER, "name": {"x": 1}}, headers=admin.headers)
    assert typed.status_code == 422
    assert typed.json()["detail"] == "参数 name 无效: 应为文本"
    broken = await api.http.post(
        "/api/v1/centers", content=b"{", headers={**admin.headers, "content-type": "application/json"}
    )
    assert broken.status_code == 422 and not ENGLISH.search(broken.json()["detail"]), broken.json()


def _without(message: str, value: Any) -> str:
    """The message without the value it quotes back (a caller's English is not ours)."""
    return message.replace(str(value), "").replace(repr(str(value)), "")


async def test_no_compat_message_for_bad_input_is_english(api: Api) -> None:
    admin = await api.user("alice", "acme")
    component = await _component(admin)
    cpcid = component["cpcid"]
    calls: list[tuple[str, str, dict[str, Any], Any]] = []
    calls += [("POST", f"{CPCC}/cpclist/add_cpclist.dspy", {**CENTER, f: v}, v) for f, v in CENTER_CASES]
    calls += [("POST", f"{CPCC}/cpcnode/add_cpcnode.dspy", device_params(cpcid, **{f: v}), v) for f, v in DEVICE_CASES]
    label = {"name": "n", "labeltype": "1", "label_key": "kyy-gpu", "label_value": "true"}
    calls += [("POST", f"{CPCC}/cpclabel/add_cpclabel.dspy", {**label, f: v}, v) for f, v in LABEL_CASES]
    calls += [("POST", f"{CPCC}/cpcwidget/add_cpcwidget.dspy", {**component, f: v}, v) for f, v in COMPONENT_CASES]
    calls += [
        ("GET", f"{CPCC}/cpcwidget/accrual_price.dspy", {"cpcid": cpcid, **HOUR, **p}, json.dumps(p))
        for _, p in QUOTE_CASES
    ]
    calls += [
        ("POST", f"{CPCC}/cpcnode/add_cpcnode.dspy", device_params(cpcid, sshport="abc"), "abc"),
        ("POST", f"{CPCC}/cpcwidget/add_cpcwidget.dspy", {**component, "unit_price": "1.23456789012"}, ""),
        ("POST", f"{CPCC}/cpcwidget/add_cpcwidget.dspy", {**component, "charge_unit": "fortnight"}, "fortnight"),
        ("POST", f"{CPCC}/cpclist/add_cpclist.dspy", {**CENTER, "enable_date": "May 1st"}, "May 1st"),
    ]
    english = []
    for method, path, params, value in calls:
        message = await admin.refused(path, method, **params)
        if not message.startswith("参数 ") or ENGLISH.search(_without(message, value)):
            english.append((path, message))
    assert english == []
