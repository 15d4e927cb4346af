"""Schemathesis against the native API's own OpenAPI document: no 5xx, and every response matches its schema.

Cases are generated from `/api/v1/openapi.json` and sent in process (the `api` fixture's client, on SQLite and
PostgreSQL) as an admin of an org with a center. Bounded: a few examples per operation, collected up front (the app
is async, schemathesis' generation is not).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_compat_catalog import CENTER, CPCC
from tests.support.api import Api

EXAMPLES_PER_OPERATION = 5
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# Excluded: these reach machines over SSH (probe) or a site agent (import, workers, capacity, drain, schedule,
# labels), where a random but valid address would wait for a network timeout instead of testing validation; and
# logout/login, which would end or replace the fuzzing admin's session.
EXCLUDED = (
    "/probe",
    "/clusters/import",
    "/workers",
    "/capacity",
    "/drain",
    "/schedule",
    "/nodes/",
    "/auth/",
)


def _operations(spec: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(spec)
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/v1/") and not any(part in operation.path for part in EXCLUDED):
            operations.append(operation)
    return operations


def _cases(operation: Any) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(operation.as_strategy())
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


async def test_native_api_conforms_to_its_schema(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="kboss.api")
    admin = await api.user("alice", "acme")
    await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER)
    spec = (await api.http.get("/api/v1/openapi.json")).json()
    operations = _operations(spec)
    assert operations
    for operation in operations:
        for case in _cases(operation):
            kwargs = case.as_transport_kwargs(base_url=str(api.http.base_url).rstrip("/"))
            kwargs["headers"] = {**kwargs.get("headers", {}), **admin.headers}
            kwargs.pop("cookies", None)
            response = await api.http.request(**kwargs)
            api.http.cookies.clear()
            case.validate_response(response, checks=CHECKS)
    assert not [r for r in caplog.records if "unexpected error" in r.getMessage()], caplog.text
