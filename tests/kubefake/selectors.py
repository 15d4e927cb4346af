"""Label selectors (query string and LabelSelector objects) and field selectors, as the API evaluates them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.kubefake.errors import bad_request
from tests.kubefake.resources import ResourceType

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_NOT_EXISTS = re.compile(rf"!\s*({_KEY})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s*\(([^()]*)\)")
_EQUALITY = re.compile(rf"({_KEY})\s*(==|=|!=)\s*({_VALUE})")
_COMPARE = re.compile(rf"({_KEY})\s*(>|<)\s*([0-9]+)")
_EXISTS = re.compile(_KEY)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present, value = self.key in labels, labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present or not str(value).isdigit():
            return False
        number = int(str(value))
        return number > int(self.values[0]) if self.op == ">" else number < int(self.values[0])


def _split_top_level(text: str) -> list[str]:
    """Commas separate requirements, except inside `in (a,b)`."""
    parts, depth, current = [], 0, []
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    requirements = []
    for raw in _split_top_level(text or ""):
        part = raw.strip()
        if not part:
            if text.strip():
                raise bad_request(f"unable to parse requirement: found '', expected: identifier in {text!r}")
            continue
        requirements.append(_requirement(part))
    return requirements


def _requirement(part: str) -> Requirement:
    if m := _NOT_EXISTS.fullmatch(part):
        return Requirement(m[1], "!")
    if m := _SET.fullmatch(part):
        values = tuple(v.strip() for v in m[3].split(",") if v.strip())
        return Requirement(m[1], m[2], values)
    if m := _EQUALITY.fullmatch(part):
        return Requirement(m[1], "!=" if m[2] == "!=" else "=", (m[3],))
    if m := _COMPARE.fullmatch(part):
        return Requirement(m[1], m[2], (m[3],))
    if _EXISTS.fullmatch(part):
        return Requirement(part, "exists")
    raise bad_request(f"unable to parse requirement: {part!r} is not a valid label selector requirement")


def labels_match(text: str | None, labels: Mapping[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in parse_label_selector(text or ""))


def selector_object_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions). None matches nothing, {} everything."""
    if selector is None:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        requirement = Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        if not requirement.matches(labels):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Field selectors

_COMMON_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}
_TYPE_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "pods": {
        "spec.nodeName": ("spec", "nodeName"),
        "spec.restartPolicy": ("spec", "restartPolicy"),
        "spec.schedulerName": ("spec", "schedulerName"),
        "spec.serviceAccountName": ("spec", "serviceAccountName"),
        "status.phase": ("status", "phase"),
        "status.podIP": ("status", "podIP"),
        "status.nominatedNodeName": ("status", "nominatedNodeName"),
    },
    "nodes": {"spec.unschedulable": ("spec", "unschedulable")},
    "secrets": {"type": ("type",)},
}
_FIELD_TERM = re.compile(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)")


def parse_field_selector(rt: ResourceType, text: str | None) -> list[tuple[tuple[str, ...], str, str]]:
    terms = []
    known = _COMMON_FIELDS | _TYPE_FIELDS.get(rt.plural, {})
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        m = _FIELD_TERM.fullmatch(part)
        if m is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if m[1] not in known:
            raise bad_request(f"field label not supported: {m[1]}")
        terms.append((known[m[1]], "!=" if m[2] == "!=" else "=", m[3].strip()))
    return terms


def fields_match(terms: list[tuple[tuple[str, ...], str, str]], obj: Mapping[str, Any]) -> bool:
    for path, op, wanted in terms:
        value: Any = obj
        for step in path:
            value = value.get(step) if isinstance(value, Mapping) else None
        # The API compares the field's string form; unset fields read as "" (booleans as true/false).
        text = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        if (text == wanted) != (op == "="):
            return False
    return True
