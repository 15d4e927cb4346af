"""The HTTP face of the fake: kube-apiserver's paths, verbs, content types, status codes and `Status` bodies."""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.kubefake import eviction, metrics, quota, watch
from tests.kubefake.errors import ApiStatusError, bad_request
from tests.kubefake.fake import KubeFake, RecordedRequest
from tests.kubefake.resources import Target, by_kind, parse_path
from tests.kubefake.store import Store

VERSION = {"major": "1", "minor": "28", "gitVersion": "v1.28.2", "platform": "linux/amd64"}
MERGE_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
APPLY_TYPE = "application/apply-patch+yaml"


def build_app(fake: KubeFake) -> Starlette:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        record = RecordedRequest(
            request.method,
            request.url.path,
            dict(request.query_params),
            content_type,
            _decode_for_log(raw, content_type),
        )
        fake.record(record)
        try:
            _authorize(fake, request)
            response = _dispatch(fake, request, raw, content_type)
        except ApiStatusError as error:
            response = JSONResponse(error.body(), error.code)
        record.status = response.status_code
        return response

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", handle, methods=methods)])


def _decode_for_log(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        return yaml.safe_load(raw) if content_type == APPLY_TYPE else json.loads(raw)
    except (ValueError, yaml.YAMLError):
        return raw.decode(errors="replace")


def _authorize(fake: KubeFake, request: Request) -> None:
    if fake.token is None:
        return  # mutual TLS: the handshake already authenticated the client
    header = request.headers.get("authorization", "")
    token = header[7:] if header.startswith("Bearer ") else None
    if token in fake.forbidden_tokens:
        raise ApiStatusError(
            403, "Forbidden", f'forbidden: User "limited" cannot {request.method.lower()} path "{request.url.path}"'
        )
    if token is None:
        # As kube-apiserver with anonymous auth on (its default, and kubeadm's): no credentials is
        # system:anonymous, whom RBAC then refuses; only credentials that fail are 401.
        raise ApiStatusError(
            403,
            "Forbidden",
            f'forbidden: User "system:anonymous" cannot {request.method.lower()} path "{request.url.path}"',
        )
    if token != fake.token:
        raise ApiStatusError(401, "Unauthorized", "Unauthorized")


def _dispatch(fake: KubeFake, request: Request, raw: bytes, content_type: str) -> Response:
    path, params = request.url.path, dict(request.query_params)
    if path in ("/healthz", "/readyz", "/livez"):
        return PlainTextResponse("ok")
    if path == "/version":
        return JSONResponse(VERSION)
    if path == metrics.PREFIX or path.startswith(metrics.PREFIX + "/"):
        return metrics.serve(fake.pod_metrics_snapshot(), fake.metrics_down, request.method, path)
    target = parse_path(path)
    if target is None or (target.rt.namespaced and target.name and target.namespace is None):
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource")
    if params.get("dryRun"):
        raise bad_request("dryRun is not supported by the fake API server")
    handler = _HANDLERS[request.method]
    return handler(fake, target, params, _body(raw, content_type), content_type, request)


def _body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        return yaml.safe_load(raw) if content_type == APPLY_TYPE else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding request body: {exc}") from None


def _manager(params: dict[str, str], request: Request) -> str:
    # Like the API server: an explicit fieldManager, else the User-Agent up to its first "/".
    return params.get("fieldManager") or request.headers.get("user-agent", "unknown").split("/")[0]


def _get(fake: KubeFake, t: Target, params: dict[str, str], *_: Any) -> Response:
    store = fake.store
    if params.get("watch") in ("true", "1"):
        return watch.respond(fake, t, params)
    if t.name is None:
        listing = store.list(t.rt, t.namespace, params)
        listing["items"] = [_with_status(store, obj) for obj in listing["items"]]
        return JSONResponse(listing)
    return JSONResponse(_with_status(store, store.get(t.rt, t.namespace, t.name)))


def _with_status(store: Store, obj: dict[str, Any]) -> dict[str, Any]:
    """The status a controller would keep, computed when read: no disruption or quota controller runs here."""
    if obj["kind"] == "PodDisruptionBudget":
        return eviction.with_status(store, obj)
    if obj["kind"] == "ResourceQuota":
        return quota.with_status(obj, lambda kind: store.items(by_kind(kind), obj["metadata"]["namespace"]))
    return obj


def _post(fake: KubeFake, t: Target, params: dict[str, str], body: Any, _ct: str, request: Request) -> Response:
    if t.subresource == "eviction" and t.rt.kind == "Pod" and t.name and t.namespace:
        return JSONResponse(eviction.evict(fake.store, t.namespace, t.name, body), 201)
    if t.name is not None or (t.rt.namespaced and t.namespace is None):
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    return JSONResponse(fake.store.create(t.rt, t.namespace, body, _manager(params, request)), 201)


def _put(fake: KubeFake, t: Target, params: dict[str, str], body: Any, _ct: str, request: Request) -> Response:
    if t.name is None or t.subresource is not None:
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    return JSONResponse(fake.store.replace(t.rt, t.namespace, t.name, body, _manager(params, request)))


def _patch(fake: KubeFake, t: Target, params: dict[str, str], body: Any, ct: str, request: Request) -> Response:
    if t.name is None or t.subresource is not None:
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    force = params.get("force") in ("true", "1")
    if ct == APPLY_TYPE:
        manager = params.get("fieldManager")
        if not manager:
            raise ApiStatusError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        obj, created = fake.store.server_side_apply(t.rt, t.namespace, t.name, body, manager, force)
        return JSONResponse(obj, 201 if created else 200)
    if force:
        raise ApiStatusError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
        )
    if ct not in MERGE_TYPES:
        raise ApiStatusError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - "
            f"accepted media types include: {', '.join(MERGE_TYPES)}, "
            f"{APPLY_TYPE} (json-patch is not supported by the fake)",
        )
    # Strategic merge patch is treated as a JSON merge patch: the same for maps, which is all kboss patches.
    return JSONResponse(fake.store.merge_patch(t.rt, t.namespace, t.name, body, _manager(params, request)))


def _delete(fake: KubeFake, t: Target, params: dict[str, str], body: Any, *_: Any) -> Response:
    options = body if isinstance(body, dict) else {}
    grace = options.get("gracePeriodSeconds", params.get("gracePeriodSeconds"))
    propagation = str(options.get("propagationPolicy") or params.get("propagationPolicy") or "")
    grace_seconds = int(grace) if grace is not None else None
    if t.name is None:  # deletecollection
        listing = fake.store.list(t.rt, t.namespace, params)
        for obj in listing["items"]:
            meta = obj["metadata"]
            fake.store.delete(t.rt, meta.get("namespace"), meta["name"], grace_seconds, propagation)
        return JSONResponse(listing)
    if t.subresource is not None:
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    return JSONResponse(fake.store.delete(t.rt, t.namespace, t.name, grace_seconds, propagation))


_HANDLERS = {"GET": _get, "POST": _post, "PUT": _put, "PATCH": _patch, "DELETE": _delete}
