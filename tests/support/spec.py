"""The spec's endpoints (the project's contract file, kboss.wire.contract): paths, parameters, examples."""

from __future__ import annotations

from typing import Any

from kboss.wire import contract

endpoints = contract.endpoints
endpoint = contract.endpoint


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
