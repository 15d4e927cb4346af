"""Watches on the fake as kube-apiserver 1.24 serves them: ordered events from a resourceVersion, a synthetic
ADDED list without one, 410 Expired for a compacted one, selectors, bookmarks, and the ends of a watch."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.kubefake import FakeKubeServer, KubeFake

PODS = "/api/v1/namespaces/shop/pods"
MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer(KubeFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeKubeServer) -> KubeFake:
    server.fake.reset()
    server.fake.add_namespace("shop")
    return server.fake


@pytest.fixture
def http(server: FakeKubeServer, fake: KubeFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {fake.token}"}, timeout=10) as client:
        yield client


def _pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}  # fmt: skip


class Watcher:
    """A watch read in a thread, so that the test can change things meanwhile."""

    def __init__(self, http: httpx.Client, path: str, **params: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.status = 0
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(http, path, params), daemon=True)
        self._thread.start()

    def wait_open(self) -> Watcher:
        """Once the server has answered the watch (its state from then on is what the watch follows)."""
        assert self._open.wait(5), "the watch was not answered"
        return self

    def _read(self, http: httpx.Client, path: str, params: dict[str, str]) -> None:
        with http.stream("GET", path, params={"watch": "1", **params}) as stream:
            self.status = stream.status_code
            self._open.set()
            for line in stream.iter_lines():
                if line.strip():
                    self.events.append(json.loads(line))

    def ended(self, seconds: float = 5.0) -> list[dict[str, Any]]:
        self._thread.join(seconds)
        assert not self._thread.is_alive(), "the watch did not end"
        return self.events

    def summary(self) -> list[tuple[str, str]]:
        return [(e["type"], e["object"].get("metadata", {}).get("name", "")) for e in self.events]


def _rv(http: httpx.Client) -> str:
    return str(http.get(PODS).json()["metadata"]["resourceVersion"])


def test_changes_after_a_resource_version_come_in_order_with_growing_versions(http: httpx.Client) -> None:
    http.post(PODS, json=_pod("before"))
    watcher = Watcher(http, PODS, resourceVersion=_rv(http), timeoutSeconds="1")
    http.post(PODS, json=_pod("a"))
    http.patch(f"{PODS}/a", json={"metadata": {"labels": {"x": "1"}}}, headers=MERGE)
    deleted = http.delete(f"{PODS}/a", params={"gracePeriodSeconds": "0"})
    events = watcher.ended()
    # A deletion, even with no grace period, first marks the pod (deletionTimestamp), then removes it.
    expected = [("ADDED", "a"), ("MODIFIED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert watcher.status == 200 and watcher.summary() == expected
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert events[1]["object"]["metadata"]["labels"] == {"x": "1"}
    assert [("deletionTimestamp" in e["object"]["metadata"]) for e in events] == [False, False, True, True]
    assert deleted.status_code == 200 and events[3]["object"]["kind"] == "Pod"


def test_a_resource_version_that_is_not_a_number_is_refused_before_any_event(http: httpx.Client) -> None:
    answer = http.get(PODS, params={"watch": "1", "resourceVersion": "abc"})
    assert answer.status_code == 500 and answer.json()["message"].startswith('resourceVersion: Invalid value: "abc"')


def test_without_a_resource_version_the_watch_starts_with_what_there_is(http: httpx.Client) -> None:
    http.post(PODS, json=_pod("one"))
    http.post(PODS, json=_pod("two"))
    watcher = Watcher(http, PODS, timeoutSeconds="1")
    assert watcher.ended() and watcher.summary() == [("ADDED", "one"), ("ADDED", "two")]


def test_a_compacted_resource_version_is_answered_410_expired_in_the_stream(http: httpx.Client, fake: KubeFake) -> None:
    old = _rv(http)
    fake.store.changes.window = 3
    for index in range(5):
        http.post(PODS, json=_pod(f"p{index}"))
    events = Watcher(http, PODS, resourceVersion=old, timeoutSeconds="5").ended()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old} (")


def test_an_object_leaving_the_selection_is_deleted_for_the_watcher(http: httpx.Client) -> None:
    http.post(PODS, json=_pod("web", app="web"))
    watcher = Watcher(http, PODS, resourceVersion=_rv(http), labelSelector="app=web", timeoutSeconds="1")
    http.patch(f"{PODS}/web", json={"metadata": {"labels": {"app": "db"}}}, headers=MERGE)
    http.post(PODS, json=_pod("other", app="db"))  # never in the selection: not seen
    http.patch(f"{PODS}/other", json={"metadata": {"labels": {"app": "web"}}}, headers=MERGE)
    watcher.ended()
    assert watcher.summary() == [("DELETED", "web"), ("ADDED", "other")]


def test_bookmarks_carry_the_current_version_when_asked_for(http: httpx.Client, fake: KubeFake) -> None:
    fake.bookmark_seconds = 0.1
    plain = Watcher(http, PODS, resourceVersion=_rv(http), timeoutSeconds="1")
    marked = Watcher(http, PODS, resourceVersion=_rv(http), timeoutSeconds="1", allowWatchBookmarks="true")
    bookmarks = [e for e in marked.ended() if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[-1]["object"] == {
        "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": _rv(http)},
    }  # fmt: skip
    assert plain.ended() == []


def test_the_server_ends_a_watch_at_its_timeout_or_when_it_closes_them(http: httpx.Client, fake: KubeFake) -> None:
    long = Watcher(http, PODS, resourceVersion=_rv(http)).wait_open()
    fake.close_watches()
    assert long.ended(3) == []
    timed = Watcher(http, PODS, resourceVersion=_rv(http), timeoutSeconds="1")
    assert timed.ended(3) == []


def test_a_graceful_deletion_is_a_modification_then_the_deletion(http: httpx.Client, fake: KubeFake) -> None:
    fake.store.pod_deletion_delay = 0.2
    http.post(PODS, json=_pod("slow"))
    watcher = Watcher(http, PODS, resourceVersion=_rv(http), timeoutSeconds="1")
    http.delete(f"{PODS}/slow")
    threading.Event().wait(0.4)
    http.get(PODS)  # the store removes pods whose grace period passed when it is next read
    events = watcher.ended()
    assert watcher.summary() == [("MODIFIED", "slow"), ("DELETED", "slow")]
    assert "deletionTimestamp" in events[0]["object"]["metadata"]
