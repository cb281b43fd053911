"""What the run list is measured against: apps that answer every GET with bytes already in memory, under the very
uvicorn settings of `runwire serve` (src/runwire/cli.py).

- `bare`: a bare ASGI callable — the floor: uvicorn, HTTP parsing and the socket, nothing else.
- `fastapi`: a plain FastAPI `async def` route returning a `Response` of the bytes — the framework's own ceiling.
- `fastapi-sync`: the same route as a plain `def`, so run in the threadpool as Runwire's routes are.
- `fastapi-deps`: the sync route behind three sync dependencies chained as Runwire's list route has them (a
  session generator, the caller, the chat), none touching a database: the framework's cost of that shape.
- `fastapi-dict`: a FastAPI `async def` route returning a small dict (`{"data": {"status": "ok"}}`).

    python -m bench.floor_apps KIND BODY_FILE --port N
"""

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.common import Server

HOST = "127.0.0.1"


def bare_app(body: bytes) -> ASGIApp:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def fastapi_app(body: bytes) -> ASGIApp:
    app = FastAPI()

    @app.get("/{path:path}")
    async def serve_bytes(path: str) -> Response:
        return Response(body, media_type="application/json")

    return app


def fastapi_sync_app(body: bytes) -> ASGIApp:
    app = FastAPI()

    @app.get("/{path:path}")
    def serve_bytes(path: str) -> Response:
        return Response(body, media_type="application/json")

    return app


def fastapi_deps_app(body: bytes) -> ASGIApp:
    app = FastAPI()

    def session() -> Iterator[object]:
        yield object()

    def caller(request: Request, db: Annotated[object, Depends(session, scope="function")]) -> str:
        return request.cookies.get("runwire_session", "")

    def chat(
        path: str, who: Annotated[str, Depends(caller)], db: Annotated[object, Depends(session, scope="function")]
    ) -> str:
        return path

    @app.get("/{path:path}")
    def serve_bytes(
        found: Annotated[str, Depends(chat)], db: Annotated[object, Depends(session, scope="function")]
    ) -> Response:
        return Response(body, media_type="application/json")

    return app


def fastapi_dict_app(body: bytes) -> ASGIApp:
    app = FastAPI()

    @app.get("/{path:path}")
    async def serve_dict(path: str) -> dict[str, Any]:
        return {"data": {"status": "ok"}}

    return app


KINDS: dict[str, Callable[[bytes], ASGIApp]] = {
    "bare": bare_app,
    "fastapi": fastapi_app,
    "fastapi-sync": fastapi_sync_app,
    "fastapi-deps": fastapi_deps_app,
    "fastapi-dict": fastapi_dict_app,
}


class FloorServer(Server):
    """A floor app in its own process, started, pinned and stopped like `runwire serve`."""

    def __init__(self, kind: str, body_file: Path, log_path: Path, cpus: set[int] | None) -> None:
        super().__init__(body_file.parent, log_path, cpus=cpus)
        self.kind = kind
        self.body_file = body_file

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor_apps", self.kind, str(self.body_file), "--port", str(self.port)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_apps", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("body_file", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = KINDS[args.kind](args.body_file.read_bytes())
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
