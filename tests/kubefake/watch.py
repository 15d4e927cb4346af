"""Watches as kube-apiserver serves them (checked against 1.24 with `compare_real`).

The store records every change (`Changes`): ADDED, MODIFIED, DELETED with the object as it then was, the
DELETED one carrying the resourceVersion of its deletion. A watch (`GET ...?watch=1`) answers a stream of JSON
lines, one event each:

- from `resourceVersion=N`: the changes after N, in order (a pod's deletion is a MODIFIED, its deletionTimestamp
  set, then the DELETED, even with a grace period of 0); N older than the changes kept (etcd compaction, here
  `Changes.window`) is answered, inside the stream, by one `ERROR` event with a 410 `Expired` Status;
- without one (or `0`): first a synthetic ADDED of every object there is, then the changes;
- label and field selectors: an object that stops matching is DELETED for the watcher, one that starts is ADDED;
- `allowWatchBookmarks=1`: BOOKMARK events (an object with only its kind and the current resourceVersion)
  every `KubeFake.bookmark_seconds`;
- the server ends a watch after `timeoutSeconds`, or when a test calls `KubeFake.close_watches()`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from tests.kubefake.errors import ApiStatusError, status_body
from tests.kubefake.resources import ResourceType, Target
from tests.kubefake.selectors import fields_match, labels_match, parse_field_selector

if TYPE_CHECKING:
    from tests.kubefake.fake import KubeFake

Key = tuple[str, str, str, str]
POLL_SECONDS = 0.01  # how often a watch looks for changes: the store is shared with the test thread
DEFAULT_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class Change:
    rv: int
    type: str
    key: Key
    obj: dict[str, Any]
    old: dict[str, Any] | None  # the object before a MODIFIED


class Changes:
    """The store's changes, the last `window` of them (older ones are compacted away)."""

    def __init__(self, window: int = 1000) -> None:
        self.window = window
        self._log: deque[Change] = deque()
        self.compacted = 0  # the newest resourceVersion no longer kept: watches from before it get 410

    def record(self, change: Change) -> None:
        self._log.append(change)
        while len(self._log) > self.window:
            self.compacted = self._log.popleft().rv

    def since(self, rv: int) -> list[Change] | None:
        """The changes after `rv`, or None when some of them were compacted away."""
        if rv < self.compacted:
            return None
        return [change for change in self._log if change.rv > rv]


class _Filter:
    def __init__(self, t: Target, params: Mapping[str, str]) -> None:
        self.rt, self.namespace = t.rt, t.namespace
        self.labels = params.get("labelSelector")
        self.fields = parse_field_selector(t.rt, params.get("fieldSelector"))

    def matches(self, key: Key, obj: Mapping[str, Any] | None) -> bool:
        if obj is None or key[:2] != (self.rt.group, self.rt.plural):
            return False
        if self.namespace is not None and key[2] != self.namespace:
            return False
        return labels_match(self.labels, obj["metadata"].get("labels")) and fields_match(self.fields, obj)

    def event(self, change: Change) -> dict[str, Any] | None:
        """The event this watcher sees for a change, if any (an object leaving the selection is DELETED)."""
        now, before = self.matches(change.key, change.obj), self.matches(change.key, change.old)
        if change.type == "MODIFIED" and now != before:
            kind = "ADDED" if now else "DELETED"
            return {"type": kind, "object": change.obj}
        return {"type": change.type, "object": change.obj} if now else None


def respond(fake: KubeFake, t: Target, params: Mapping[str, str]) -> StreamingResponse:
    asked = params.get("resourceVersion") or "0"
    if not asked.isdigit():  # kube-apiserver 1.24 answers this one with a 500 (and no reason), before any event
        message = f'resourceVersion: Invalid value: "{asked}": strconv.ParseUint: parsing "{asked}": invalid syntax'
        raise ApiStatusError(500, "", message)
    # The watch belongs to the server's state as the request found it: a close_watches() from then on ends it.
    return StreamingResponse(_events(fake, t, params, fake.watch_generation), media_type="application/json")


async def _events(fake: KubeFake, t: Target, params: Mapping[str, str], generation: int) -> AsyncIterator[bytes]:
    seen, first = _start(fake, t, params)
    for event in first:
        yield _line(event)
    if seen is None:
        return
    deadline = time.monotonic() + float(params.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
    bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
    next_bookmark = time.monotonic() + fake.bookmark_seconds
    selection = _Filter(t, params)
    while time.monotonic() < deadline and fake.watch_generation == generation:
        with fake.store.lock:
            changes = fake.store.changes.since(seen)
            current = fake.store.revision
        if changes is None:
            yield _line(_expired(seen, fake.store.changes.compacted))
            return
        for change in changes:
            seen = change.rv
            if (event := selection.event(change)) is not None:
                yield _line(event)
        if bookmarks and time.monotonic() >= next_bookmark:
            next_bookmark = time.monotonic() + fake.bookmark_seconds
            yield _line(_bookmark(t.rt, current))
        await asyncio.sleep(POLL_SECONDS)


def _start(fake: KubeFake, t: Target, params: Mapping[str, str]) -> tuple[int | None, list[dict[str, Any]]]:
    """Where the watch starts (None: it ends at once) and the events it sends first."""
    asked = params.get("resourceVersion") or "0"
    with fake.store.lock:
        if asked != "0":
            if fake.store.changes.since(int(asked)) is None:
                return None, [_expired(int(asked), fake.store.changes.compacted)]
            return int(asked), []
        listing = fake.store.list(t.rt, t.namespace, params)
        return fake.store.revision, [{"type": "ADDED", "object": obj} for obj in listing["items"]]


def _expired(asked: int, compacted: int) -> dict[str, Any]:
    message = f"too old resource version: {asked} ({compacted + 1})"
    return {"type": "ERROR", "object": status_body(410, "Expired", message)}


def _bookmark(rt: ResourceType, rv: int) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                           "metadata": {"resourceVersion": str(rv)}}}  # fmt: skip


def _line(event: Mapping[str, Any]) -> bytes:
    return (json.dumps(copy.deepcopy(dict(event))) + "\n").encode()
