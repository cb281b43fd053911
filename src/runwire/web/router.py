"""The web app's routes: versioned static assets, and the app's page for every other path outside `/api/`.

The app is plain ES modules and CSS (no build step). Handlers are plain functions: they read files, which FastAPI
then does in its thread pool, never on the event loop. Asset URLs carry a hash of the whole asset folder, so that a
browser may keep them for a year and still never mixes files of two releases; the page itself is never cached.
"""

import hashlib
import mimetypes
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from runwire.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
PAGE_PATH = Path(__file__).parent / "index.html"

IMMUTABLE = "public, max-age=31536000, immutable"
# Everything the page loads comes from this origin; scripts and styles only from files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class AppPathConvertor(Convertor[str]):
    """Any path that is not the API's: `/api` and everything under it keep their JSON answers (404 included)."""

    regex = r"(?!api(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("app_path", AppPathConvertor())


@cache
def asset_version() -> str:
    """A hash of every asset's name and bytes: it changes whenever any asset does."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@cache
def _page() -> bytes:
    return PAGE_PATH.read_text().replace("{{ASSETS}}", f"/assets/{asset_version()}").encode()


def _asset_file(relative: str) -> Path:
    path = (STATIC_DIR / relative).resolve()
    if not path.is_file() or not path.is_relative_to(STATIC_DIR.resolve()):
        raise NotFound("No such asset.")
    return path


router = APIRouter(include_in_schema=False)


@router.api_route("/assets/{version}/{relative:path}", methods=["GET", "HEAD"])
def asset(version: str, relative: str) -> Response:
    path = _asset_file(relative)
    media_type = MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # A stale page may ask for an older version: it gets today's file, which nobody may keep.
    cache_control = IMMUTABLE if version == asset_version() else "no-cache"
    return Response(
        path.read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"},
    )


@router.api_route("/{path:app_path}", methods=["GET", "HEAD"])
def page(path: str) -> Response:
    """The app's one page; the app routes on the client, so every path here is a deep link."""
    return Response(_page(), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
