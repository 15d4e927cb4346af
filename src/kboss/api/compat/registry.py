"""One route for all of the spec's platform paths, dispatching through a table.

The spec has dozens of fixed paths. Starlette tests a request against every route in turn and FastAPI's dependency
machinery costs per parameter; for the busiest calls (a quote) that cost more than the work itself. Here a request
costs one route match, one dictionary lookup and one context. Handlers receive the caller's context and the merged
parameters, in which the document's required ones are present (`required.check`); they only parse, call a service
and shape the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from kboss.api.deps import open_context
from kboss.audit import trail
from kboss.common.context import Ctx
from kboss.common.validation import screen_params
from kboss.errors import NotFound
from kboss.wire import required
from kboss.wire.params import request_params

Handler = Callable[[Ctx, dict[str, Any]], Awaitable[Response]]
HANDLERS: dict[str, Handler] = {}
PATTERNS = ("/dev/cpcc/{noun}/{action}", "/computing/{action}")
METHODS = ["GET", "POST", "DELETE"]


def compat(path: str) -> Callable[[Handler], Handler]:
    """Register a handler for a spec path (e.g. `/dev/cpcc/cpclist/get_cpclist.dspy`)."""
    if not path.startswith(("/dev/cpcc/", "/computing/")):
        raise ValueError(f"not a compat path: {path}")

    def register(handler: Handler) -> Handler:
        if path in HANDLERS:
            raise ValueError(f"two handlers for {path}")
        HANDLERS[path] = handler
        return handler

    return register


async def dispatch(request: Request) -> Response:
    path = request.scope["path"]
    handler = HANDLERS.get(path)
    if handler is None:
        raise NotFound(f"没有这个接口: {path}")
    params = await request_params(request)
    note = trail.current()
    if note is not None:
        note.params = params  # the audit trail keeps the names sent and the target's id, never a value
    screen_params(params)  # no surrogate or non-string id reaches a handler or the database
    async with open_context(request, params) as ctx:
        required.check(path, params)  # after the login check, before the handler reads or writes anything
        return await handler(ctx, params)


def install(app: FastAPI) -> None:
    """Add the compat routes; call before other routes so that the busiest paths match first."""
    for pattern in PATTERNS:
        app.add_route(pattern, dispatch, methods=METHODS, include_in_schema=False)
