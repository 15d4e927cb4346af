"""Generated fuzz of the spec's compat paths: random values for every documented parameter never answer 5xx.

Values come from hypothesis (strings with lone surrogates and shell metacharacters, huge integers, lists, objects,
blanks) and go out as form, query string and JSON. Random ids never name an existing record, so no endpoint gets
as far as SSH or a cluster. Bounded: a fixed number of examples per endpoint, collected up front (the app is async,
hypothesis is not), then sent.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kboss.wire import contract
from tests.support.api import Api

EXAMPLES_PER_ENDPOINT = 6
TIME_BUDGET_SECONDS = 60

ENDPOINTS = [e for e in contract.endpoints() if e["path"].startswith(("/dev/cpcc/", "/computing/"))]

_scalars = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\udcff", "a\udcffb", "$(reboot)", "; rm -rf /", "`id`", "|| true", "\x00", "null"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**31, -1, 0, 10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.text(max_size=5), _scalars, max_size=3)
)


def _cases(names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = []

    @settings(max_examples=EXAMPLES_PER_ENDPOINT, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.sampled_from(["form", "query", "json"]),
        st.fixed_dictionaries({}, optional={name: _values for name in names}),
    )
    def collect(how: str, params: dict[str, Any]) -> None:
        cases.append((how, params))

    collect()
    return cases


def _flat(params: dict[str, Any]) -> dict[str, str]:
    """Form and query strings carry text only: lists and objects go as their JSON, surrogates as they are."""
    flat: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def _surrogate_safe(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


async def _send(api: Api, headers: dict[str, str], method: str, path: str, how: str, params: dict[str, Any]) -> Any:
    if how == "json":
        body = json.dumps(params, allow_nan=True)
        return await api.http.request(
            method,
            path,
            content=body.encode("utf-8", "surrogatepass"),
            headers={**headers, "content-type": "application/json"},
        )
    flat = {name: _surrogate_safe(value) for name, value in _flat(params).items()}
    if how == "query" or method == "GET":
        return await api.http.request(method, path, params=flat, headers=headers)
    return await api.http.request(method, path, data=flat, headers=headers)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e["path"] for e in ENDPOINTS])
async def test_compat_fuzz_never_fails_on_the_server(
    api: Api, endpoint: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="kboss.api")
    admin = await api.user("alice", "acme")
    names = [p["name"] for p in endpoint["params"] if p["in"] != "header"]
    started = time.monotonic()
    for how, params in _cases(names):
        response = await _send(api, admin.headers, endpoint["method"], endpoint["path"], how, params)
        assert response.status_code < 500, (how, params, response.text)
        body = response.json()
        if body.get("status") is False:
            assert isinstance(body.get("msg"), str) and body["msg"], (how, params, body)
        assert time.monotonic() - started < TIME_BUDGET_SECONDS
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()], caplog.text
