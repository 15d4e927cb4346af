"""The spec's endpoints (../shared/spec/endpoints.json): paths, parameters and example answers."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

SPEC_FILE = Path(os.environ.get("KBOSS_SPEC_DIR", Path(__file__).resolve().parents[3] / "shared" / "spec"))


@cache
def endpoints() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((SPEC_FILE / "endpoints.json").read_text())
    return data


def endpoint(path: str) -> dict[str, Any]:
    for entry in endpoints():
        if entry["path"] == path:
            return entry
    raise KeyError(path)


def success_example(path: str) -> dict[str, Any]:
    for example in endpoint(path)["examples"]:
        if example.get("status") is True:
            return example
    raise KeyError(f"no success example for {path}")


def field_names(value: Any) -> set[str]:
    """Every key of a JSON value's objects, recursively (list items merged)."""
    names: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            names.add(key)
            names |= {f"{key}.{sub}" for sub in field_names(item)}
    elif isinstance(value, list):
        for item in value:
            names |= field_names(item)
    return names
