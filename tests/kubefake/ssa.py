"""Merge patches and a small server-side apply: field ownership per manager, conflicts, removal of fields a
manager stops applying. Simplification: lists are atomic (the real thing merges `containers`, `ports`...
by key); that is enough for one manager re-applying its own objects, which is what kboss does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str, ...]
_SKIP_TOP = {"apiVersion", "kind", "status"}
SERVER_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
}


@dataclass
class Manager:
    operation: str  # "Apply" or "Update"
    paths: set[Path] = field(default_factory=set)
    time: str = ""


Owners = dict[tuple[str, str], Manager]  # (manager name, operation) → fields


def leaves(obj: Mapping[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Leaf paths of user-owned fields: dicts recurse, everything else (lists included) is a leaf."""
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        if (not prefix and key in _SKIP_TOP) or (prefix == ("metadata",) and key in SERVER_META):
            continue
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            out.update(leaves(value, path))
        else:
            out[path] = value
    return out


def get_path(obj: Any, path: Path) -> tuple[bool, Any]:
    for step in path:
        if not isinstance(obj, Mapping) or step not in obj:
            return False, None
        obj = obj[step]
    return True, obj


def delete_path(obj: dict[str, Any], path: Path) -> None:
    """Remove a field, then the parents it leaves empty."""
    parents = [obj]
    for step in path[:-1]:
        child = parents[-1].get(step)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if not parents[depth]:
            parents[depth - 1].pop(path[depth - 1], None)


def merge_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: null deletes, objects merge, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value) if not isinstance(value, Mapping) else merge_patch({}, value)
    return out


def changed_leaves(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[Path]:
    before = leaves(old)
    return {p for p, v in leaves(new).items() if p not in before or before[p] != v}


def take(owners: Owners, manager: str, operation: str, paths: set[Path], now: str) -> None:
    """Give `paths` to (manager, operation), taking them from everyone else (what an update does)."""
    if not paths:
        return
    for entry in owners.values():
        entry.paths -= paths
    entry = owners.setdefault((manager, operation), Manager(operation))
    entry.paths |= paths
    entry.time = now
    _drop_empty(owners)


def _drop_empty(owners: Owners) -> None:
    for key in [k for k, v in owners.items() if not v.paths]:
        del owners[key]


def conflicts(owners: Owners, manager: str, current: Mapping[str, Any], applied: dict[Path, Any]) -> list[str]:
    """`conflict with "m": .spec.replicas` for fields others own and this apply would change."""
    found = []
    for (name, _operation), entry in owners.items():
        if name == manager:
            continue
        for path in sorted(entry.paths & applied.keys()):
            exists, value = get_path(current, path)
            if exists and value != applied[path]:
                found.append(f'conflict with "{name}": .{".".join(path)}')
    return found


def apply(
    current: Mapping[str, Any], config: Mapping[str, Any], owners: Owners, manager: str, now: str
) -> dict[str, Any]:
    """The object after `manager` applies `config` (conflicts already settled by the caller)."""
    applied = leaves(config)
    previous = owners.get((manager, "Apply"), Manager("Apply")).paths
    others = set().union(*(e.paths for k, e in owners.items() if k != (manager, "Apply")))
    result = copy.deepcopy(dict(current))
    for path in previous - applied.keys() - others:
        delete_path(result, path)
    for path, value in applied.items():
        _set_path(result, path, copy.deepcopy(value))
    for entry in owners.values():
        entry.paths -= applied.keys()
    owners[(manager, "Apply")] = Manager("Apply", set(applied), now)
    _drop_empty(owners)
    return result


def _set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    for step in path[:-1]:
        child = obj.get(step)
        if not isinstance(child, dict):
            child = obj[step] = {}
        obj = child
    if value == {} and isinstance(obj.get(path[-1]), dict):
        return  # applying an empty map says "this map exists", not "empty it"
    obj[path[-1]] = value


def managed_fields(owners: Owners, api_version: str) -> list[dict[str, Any]]:
    """`metadata.managedFields` in FieldsV1 form, so clients see who owns what."""
    out = []
    for (name, operation), entry in sorted(owners.items()):
        tree: dict[str, Any] = {}
        for path in entry.paths:
            node = tree
            for step in path:
                node = node.setdefault(f"f:{step}", {})
        out.append(
            {
                "manager": name,
                "operation": operation,
                "apiVersion": api_version,
                "time": entry.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            }
        )
    return out
