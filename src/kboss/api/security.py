"""Browser hardening for the console's cookie session: security headers on every answer, and CSRF refusal.

A browser sends the `kboss_session` cookie with any request to this host, a forged form from another site
included; only the `Origin` (or `Referer`) header tells a page of ours from someone else's. So a state-changing
request that a cookie authenticates must name this very origin. A caller that sends `Authorization` (the spec's
clients, scripts, the site agent's Basic credentials) chose its credentials itself and cannot be forged this way:
it passes untouched. Pure ASGI, so that streamed answers (server-sent events) are not buffered.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kboss.api.deps import SESSION_COOKIE
from kboss.errors import Forbidden
from kboss.wire import errors

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# Answers carrying data a person's session may see: never kept by a browser or a shared cache.
API_PREFIXES = ("/api/", "/dev/", "/pcapi/", "/computing/")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CROSS_SITE = "跨站请求被拒绝:请求来源 (Origin/Referer) 与本站不一致,请从控制台页面重新操作"


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-cased; None for `null` or anything unparseable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_cross_site(scope: Scope) -> bool:
    """A cookie-authenticated state change whose stated origin is not this server's own (or is missing)."""
    if scope["method"] not in UNSAFE_METHODS:
        return False
    headers = Headers(scope=scope)
    if "authorization" in headers or SESSION_COOKIE not in Request(scope).cookies:
        return False
    stated = headers.get("origin") or headers.get("referer") or ""
    own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
    return _origin(stated) != own


def _with_headers(message: Message, path: str) -> Message:
    present = {name.lower() for name, _ in message.get("headers", [])}
    extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
    if path.startswith(API_PREFIXES) and b"cache-control" not in present:
        extra.append((b"cache-control", b"no-store"))
    return {**message, "headers": [*message.get("headers", []), *extra]}


class SecurityMiddleware:
    """Adds the security headers to every HTTP answer and refuses cross-site cookie requests with 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            await send(_with_headers(message, path) if message["type"] == "http.response.start" else message)

        if is_cross_site(scope):
            # The API's own error shape for the path (envelope or `{"detail", "code"}`), from the one map; 403
            # on every path, the spec's included: no spec client sends a cookie, a forged browser request does.
            answer = await errors.on_domain_error(Request(scope, receive), Forbidden(CROSS_SITE))
            answer.status_code = 403
            await answer(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
