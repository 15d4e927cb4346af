"""Serve the console: `/` is the single page, `/static/...` its modules, styles and icon.

The files are not fingerprinted (there is no build step), so every answer carries an ETag and `Cache-Control:
no-cache`: browsers keep their copy but revalidate it, and a 304 costs one round trip. The security headers (a
content security policy allowing only this origin, so that a stray CDN reference fails loudly in tests instead of
silently phoning out) are added to every answer by `kboss.api.security`, the one place that sets them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str
    content_type: str


@lru_cache(maxsize=256)
def _load(path: Path, mtime_ns: int) -> Asset:
    # Keyed on the modification time too: an edited file during development is picked up at once.
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, etag, CONTENT_TYPES[path.suffix])


def _resolve(relative: str) -> Path:
    """The file under STATIC_DIR named by `relative`; anything else (traversal, unknown type) is a 404."""
    root = STATIC_DIR.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file() or candidate.suffix not in CONTENT_TYPES:
        raise HTTPException(status_code=404, detail=f"文件不存在: {relative}")
    return candidate


def _answer(request: Request, path: Path) -> Response:
    asset = _load(path, path.stat().st_mtime_ns)
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(asset.body))
        return Response(b"", media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    return _answer(request, _resolve("index.html"))


@router.api_route("/static/{relative:path}", methods=["GET", "HEAD"])
async def static(request: Request, relative: str) -> Response:
    return _answer(request, _resolve(relative))


@router.api_route("/favicon.ico", methods=["GET", "HEAD"])
async def favicon(request: Request) -> Response:
    # Browsers ask for it whatever the page says; answer with the SVG icon rather than a 404 in the console.
    return _answer(request, _resolve("favicon.svg"))
