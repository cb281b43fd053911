"""What the chat reads' fast path makes by hand is what Starlette would make: the session token and If-None-Match
it takes from the headers, and the answer it sends."""

import asyncio

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from runwire.deps import SESSION_COOKIE, chat_read_headers
from runwire.routing import conditional_json
from runwire.runs.chat_list import ListAnswer

HEADER_SETS: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"cookie", b"runwire_session=abc")],
    [(b"cookie", b'theme=dark; runwire_session="q u"; other=1'), (b"if-none-match", b'"7-abc"')],
    [(b"cookie", b"other=1"), (b"cookie", b"runwire_session=second")],
    [(b"cookie", b"runwire_session=first"), (b"cookie", b"other=2"), (b"cookie", b"a=1; runwire_session=")],
    [(b"cookie", b"runwire_session=first"), (b"cookie", b"other=2")],
    [(b"if-none-match", b'W/"1-a", "2-b"'), (b"if-none-match", b'"3-c"')],
    [(b"cookie", b"runwire_session=caf\xe9"), (b"user-agent", b"x")],
    [(b"cookie", b"runwire_session")],
]


@pytest.mark.parametrize("headers", HEADER_SETS)
def test_the_token_and_if_none_match_are_what_the_request_gives(headers: list[tuple[bytes, bytes]]) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": headers})
    expected = (request.cookies.get(SESSION_COOKIE), request.headers.get("if-none-match"))
    assert chat_read_headers(request) == expected


def sent(response: Response) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        messages.append(message)

    asyncio.run(response({"type": "http"}, receive, send))
    return messages


@pytest.mark.parametrize("body", [b'{"data":{"workflowRuns":[]}}', None])
def test_the_answer_is_what_a_starlette_response_sends(body: bytes | None) -> None:
    etag = '"12-0a1b2c3d4e5f"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    expected = (
        Response(body, media_type="application/json", headers=headers)
        if body is not None
        else Response(status_code=304, headers=headers)
    )
    assert sent(conditional_json(ListAnswer(body, etag))) == sent(expected)
