"""The ASGI layer every request passes: request id, cross-site write guard, the fast lane, access log and request
metrics, last-resort 500."""

import logging
import random
import re
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runwire import metrics
from runwire.errors import error_response, unexpected_error_response
from runwire.fastlane import FastLane
from runwire.logs import AccessLog, set_log_context

access_log = AccessLog()
error_log = logging.getLogger("runwire.errors")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Request ids: 128 bits from a generator of the middleware's own, seeded from the system's at start (an id to find
# lines by, not a secret: no system call per request), whose sequence nothing that reseeds `random` repeats.
_REQUEST_IDS = random.Random()


def _request_id(offered: bytes | None) -> str:
    if offered is not None:
        text = offered.decode("latin-1")
        if _CLIENT_REQUEST_ID.match(text):
            return text
    return f"{_REQUEST_IDS.getrandbits(128):032x}"


def _read_headers(scope: Scope) -> tuple[bytes | None, bool]:
    """The client's X-Request-ID (its first) and whether the request has a Transfer-Encoding, in one pass over the
    headers (ASGI servers give their names in lower case)."""
    offered, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if offered is None:
                offered = value
        elif name == b"transfer-encoding":
            chunked = True
    return offered, chunked


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers


def is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, *, allowed_origins: frozenset[str], max_body_bytes: int, lane: FastLane | None = None
    ) -> None:
        """`lane` answers the requests it takes (see `fastlane.py`); the app, every other."""
        self.app = app
        self.allowed_origins = allowed_origins
        self.max_body_bytes = max_body_bytes
        self.lane = lane

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why a write is refused before any work, if it is."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            return 403, f"Requests from origin {origin} may not change anything here."
        if _has_body(headers) and not is_json(headers.get("content-type", "")):
            return 415, "Request bodies must be JSON (Content-Type: application/json)."
        if int(headers.get("content-length") or 0) > self.max_body_bytes:
            return 413, self._too_large
        return None

    @property
    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."

    async def _buffered(self, receive: Receive) -> Receive | None:
        """Read a body of unannounced length whole, so that an oversized one is refused before any work."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive() -> Message:
            return replay.pop() if replay else await receive()

        return replay_receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        offered_id, chunked = _read_headers(scope)
        request_id = _request_id(offered_id)
        scope.setdefault("state", {})["request_id"] = request_id
        set_log_context(request_id=request_id)  # this request's task (and its threads) only
        response = {"status": 500, "started": False}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            refusal = self._refusal(scope) if scope["method"] in WRITE_METHODS else None
            if refusal is None and chunked:
                buffered = await self._buffered(receive)
                if buffered is None:
                    refusal = 413, self._too_large
                else:
                    receive = buffered
            fast = None if refusal is not None or self.lane is None else self.lane.find(scope)
            if refusal is not None:
                await error_response(refusal[0], refusal[1])(scope, receive, send_with_request_id)
            elif fast is not None:
                await fast(scope, receive, send_with_request_id)
            else:
                await self.app(scope, receive, send_with_request_id)
        except Exception:
            error_log.exception("unhandled error", extra={"request_id": request_id})
            if not response["started"]:
                await unexpected_error_response()(scope, receive, send_with_request_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "<unmatched>"
            seconds = time.perf_counter() - started
            metrics.observe_request(path, scope["method"], response["status"], seconds)
            access_log.write(
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": path,
                    "status": response["status"],
                    "duration_ms": round(seconds * 1000, 2),
                }
            )
