"""The API contract kboss serves: the spec's endpoints (paths, methods, parameters, example answers) as data.

`contract.json` is the project's own copy of the document's endpoint list; the tests check the routes against it
and the fuzz stage generates requests from it. It is data only: nothing here imports the rest of kboss.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

Endpoint = dict[str, Any]


@cache
def endpoints() -> tuple[Endpoint, ...]:
    text = resources.files(__package__).joinpath("contract.json").read_text(encoding="utf-8")
    data: list[Endpoint] = json.loads(text)
    return tuple(data)


def endpoint(path: str) -> Endpoint:
    for entry in endpoints():
        if entry["path"] == path:
            return entry
    raise KeyError(path)


def required_params(path: str) -> list[str]:
    """The parameters the document marks required for `path` (headers left out)."""
    return [p["name"] for p in endpoint(path)["params"] if p.get("required") and p.get("in") != "header"]
