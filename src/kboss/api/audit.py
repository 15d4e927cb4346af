"""The audit middleware: every write of either API recorded in one place, not per route.

Pure ASGI (like `SecurityMiddleware`), so that server-sent events keep streaming: it only watches the messages go
by. For each request to the platform's API it opens a `RequestNote` (the client's address; the principal, which
`deps.authenticate` adds; named acts that routes add, such as logins and revealed secrets) and, once the answer is
sent, records the write — method, route template, target id, the *names* of the parameters sent, outcome — and
every event the note gathered, in a transaction of its own (`kboss.audit.trail.record`).

Which compat paths write is a table (`COMPAT_WRITES`, `COMPAT_READS`); a test checks that every registered path
is in exactly one of them. Native writes are POST, PUT, PATCH and DELETE, less the reads sent as POST.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kboss.audit import trail
from kboss.audit.trail import Event, RequestNote
from kboss.common.context import Ctx
from kboss.wire.errors import COMPAT_PREFIXES, FAILURE_KEY

NATIVE_PREFIX = "/api/v1/"
NOTE_KEY = "kboss.audit"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Native routes sent as POST that change nothing: a price quote, a capacity check.
NATIVE_READS = frozenset({"/api/v1/quotes", "/api/v1/clusters/{cluster_id}/capacity"})
# Native routes recorded as a named act rather than as a plain write (even when refused before the route runs).
ROUTE_ACTIONS = {
    "/api/v1/auth/login": trail.AUTH_LOGIN,
    "/api/v1/auth/logout": trail.AUTH_LOGOUT,
    "/api/v1/auth/password": trail.AUTH_PASSWORD,
}
_CPCC = "/dev/cpcc"
COMPAT_WRITES: Mapping[str, str] = {  # path → the type of record it changes
    "/computing/cpcluster_delete.dspy": "cluster",
    f"{_CPCC}/cpccluster/new_cluster.dspy": "cluster",
    f"{_CPCC}/cpccluster/update_cpccluster.dspy": "cluster",
    f"{_CPCC}/cpclabel/add_cpclabel.dspy": "label",
    f"{_CPCC}/cpclabel/delete_cpclabel.dspy": "label",
    f"{_CPCC}/cpclabel/setup_cpclabel.dspy": "node",
    f"{_CPCC}/cpclist/add_cpclist.dspy": "center",
    f"{_CPCC}/cpclist/delete_cpclist.dspy": "center",
    f"{_CPCC}/cpclist/update_cpclist.dspy": "center",
    f"{_CPCC}/cpcnode/add_cpcnode.dspy": "device",
    f"{_CPCC}/cpcnode/delete_cpcnode.dspy": "device",
    f"{_CPCC}/cpcnode/update_cpcnode.dspy": "device",
    f"{_CPCC}/cpcpodyaml/delete_cpcpodyaml.dspy": "instance",
    f"{_CPCC}/cpcpodyaml/new_cpcpodyaml.dspy": "instance",
    f"{_CPCC}/cpcpodyaml/update_cpcpodyaml.dspy": "instance",
    f"{_CPCC}/cpcwidget/add_cpcwidget.dspy": "component",
    f"{_CPCC}/cpcwidget/delete_cpcwidget.dspy": "component",
    f"{_CPCC}/cpcwidget/update_cpcwidget.dspy": "component",
    f"{_CPCC}/cpcworker/delete_cpcworker.dspy": "device",
    f"{_CPCC}/cpcworker/new_cpcworker.dspy": "device",
}
COMPAT_READS = frozenset(
    f"{_CPCC}/{path}.dspy"
    for path in (
        "cpcbuy/determine_accommodat", "cpccluster/get_cpccluster", "cpclabel/get_cpclabel", "cpclist/get_cpclist",
        "cpcnode/get_cpcidle_device", "cpcnode/get_cpcnode", "cpcpod/get_cpcpod", "cpcpodyaml/get_cpcpodyaml",
        "cpcwidget/accrual_price", "cpcwidget/get_cpcwidget", "cpcwidget/obtaining_gpuinfo",
        "cpcworker/get_cpcworker",
    )
)  # fmt: skip
# Compat parameters naming the changed record, per record type, most specific first; a create without one is
# named by the id its answer carries. The parents (center, cluster) go to `detail`.
_TARGET_PARAMS = {
    "center": ("id", "cpcid"), "device": ("id", "deviceid", "device_id", "nodeid", "worker_nodeid", "ctl_nodeid"),
    "cluster": ("id", "clusterid"), "label": ("id", "labelid"), "instance": ("id", "instanceid", "instance_id"),
    "component": ("id", "widgetid"), "node": ("worker_node", "node_name", "nodeid"),
}  # fmt: skip
_PARENT_PARAMS = ("cpcid", "clusterid")
_CAPTURE_BYTES = 64 * 1024  # request and answer bodies are read for names and ids up to this size only


def note_center_reveals(ctx: Ctx, reveal: bool, rows: Iterable[Mapping[str, Any]]) -> None:
    """Centers' rows shown with their site password (`catalog.centers` shapes them; the API notes it here)."""
    if reveal and ctx.principal.is_admin:
        for row in rows:
            if row.get("api_pwd"):
                trail.note_reveal("center", str(row.get("id", "")), ["api_pwd"])


def note_of(scope: Scope) -> RequestNote | None:
    note = scope.get(NOTE_KEY)
    return note if isinstance(note, RequestNote) else None


def _address(scope: Scope) -> str:
    # The peer as uvicorn reports it: behind a trusted proxy, its X-Forwarded-For (uvicorn's proxy headers).
    client = scope.get("client")
    return str(client[0])[:64] if client and client[0] else "unknown"


def _is_write(scope: Scope, route: str) -> bool:
    path: str = scope["path"]
    if path.startswith(COMPAT_PREFIXES):
        return path in COMPAT_WRITES
    # No route: refused before routing (the CSRF check), which `_failure` noted; a plain 404 is not a write.
    routed = bool(route) or FAILURE_KEY in scope
    return routed and scope["method"] in WRITE_METHODS and route not in NATIVE_READS


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _body_names(raw: bytes) -> list[str]:
    """Names of a JSON object's fields or of a form's fields (never their values)."""
    body = _json_object(raw)
    if body:
        return list(body)
    try:
        return [name for name, _ in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)]
    except ValueError:
        return []


class _Watch:
    """What goes by: the answer's status, a bounded copy of the request body and of a JSON answer."""

    def __init__(self, keep_request: bool) -> None:
        self.status = 500
        self.keep_request = keep_request
        self.request = bytearray()
        self.answer = bytearray()
        self.json_answer = False

    def saw_request(self, message: Message) -> None:
        if self.keep_request and message["type"] == "http.request" and len(self.request) < _CAPTURE_BYTES:
            self.request += message.get("body", b"")[: _CAPTURE_BYTES - len(self.request)]

    def saw_answer(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            types = [v for k, v in message.get("headers", []) if k.lower() == b"content-type"]
            self.json_answer = bool(types) and b"json" in types[0]
        elif message["type"] == "http.response.body" and self.json_answer and len(self.answer) < _CAPTURE_BYTES:
            self.answer += message.get("body", b"")[: _CAPTURE_BYTES - len(self.answer)]


def _outcome(scope: Scope, watch: _Watch) -> tuple[str, str]:
    failure = scope.get(FAILURE_KEY)
    if isinstance(failure, tuple):
        code, status = failure
        return trail.outcome_of(int(status)), str(code)
    if watch.status >= 400:
        return trail.outcome_of(watch.status), ""
    # A compat answer that failed without raising (an operation that ended badly) still says `status: false`.
    if bytes(watch.answer[:16]).replace(b" ", b"").startswith(b'{"status":false'):
        return trail.FAILED, ""
    return trail.OK, ""


def _created_id(watch: _Watch) -> str:
    """The id of what a create made, from its answer (`id`, or the envelope's `data.id`)."""
    answer = _json_object(bytes(watch.answer)) if len(watch.answer) < _CAPTURE_BYTES else {}
    data = answer.get("data") if isinstance(answer.get("data"), dict) else answer
    value = data.get("id") if isinstance(data, dict) else None
    return str(value)[:128] if isinstance(value, str | int) else ""


def _compat_target(path: str, params: Mapping[str, Any]) -> tuple[str, str]:
    kind = COMPAT_WRITES.get(path, "")
    for name in _TARGET_PARAMS.get(kind, ()):
        value = params.get(name)
        if isinstance(value, str | int) and str(value):
            return kind, str(value)
    return kind, ""


def _native_target(route: str, path_params: Mapping[str, Any]) -> tuple[str, str]:
    """The first path parameter (`cluster_id` → a cluster), else the collection the route writes to."""
    for name, value in path_params.items():
        return name.removesuffix("_id"), str(value)
    collection = route.removeprefix(NATIVE_PREFIX).split("/")[0]
    return collection.removesuffix("s"), ""


def _write_event(scope: Scope, note: RequestNote, route: str, watch: _Watch) -> Event:
    path: str = scope["path"]
    query = [name for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
    if path.startswith(COMPAT_PREFIXES):
        names, (kind, target) = list(note.params), _compat_target(path, note.params)
    else:
        names = query + _body_names(bytes(watch.request))
        kind, target = _native_target(route, scope.get("path_params") or {})
    outcome, code = _outcome(scope, watch)
    if not target and outcome == trail.OK:
        target = _created_id(watch)
    detail = {"method": scope["method"], "route": (route or path)[:200], "status": watch.status,
              "params": trail.parameter_names(names)}  # fmt: skip
    parents = {name: note.params[name] for name in _PARENT_PARAMS if note.params.get(name)}
    detail.update(trail.safe_detail(parents))
    action = note.action or ROUTE_ACTIONS.get(route, trail.API_WRITE)
    event = Event(action, outcome=outcome, actor=note.actor, target_type=kind, target_id=target,
                  address=note.address, code=code, detail=detail)  # fmt: skip
    return event.by(note.principal)


def _events(scope: Scope, note: RequestNote, watch: _Watch) -> list[Event]:
    route_obj = scope.get("route")
    route = str(getattr(route_obj, "path", "")) if not scope["path"].startswith(COMPAT_PREFIXES) else scope["path"]
    events = [event.by(note.principal) for event in note.events]
    events = [event if event.address else replace(event, address=note.address) for event in events]
    if note.action or _is_write(scope, route):
        events.insert(0, _write_event(scope, note, route, watch))
    return events


class AuditMiddleware:
    """Records the platform API's writes and the acts its routes note, once each answer is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith((NATIVE_PREFIX, *COMPAT_PREFIXES)):
            await self.app(scope, receive, send)
            return
        note = RequestNote(address=_address(scope))
        scope[NOTE_KEY] = note
        watch = _Watch(keep_request=scope["method"] in WRITE_METHODS and not path.startswith(COMPAT_PREFIXES))

        async def watched_receive() -> Message:
            message = await receive()
            watch.saw_request(message)
            return message

        async def watched_send(message: Message) -> None:
            watch.saw_answer(message)
            await send(message)

        serving = trail.CURRENT.set(note)
        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            trail.CURRENT.reset(serving)
            events = _events(scope, note, watch)
            state = getattr(getattr(scope.get("app"), "state", None), "kboss", None)
            if events and state is not None:
                await trail.record(state.sessions, *events)
