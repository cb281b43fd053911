"""A real HTTP server on 127.0.0.1 that speaks the OpenAI Chat Completions protocol as providers do, for tests and
benchmarks (and the web app's browser tests): streamed `chat.completion.chunk` events ending with `data: [DONE]`,
tool calls split across chunks, a `usage` chunk when asked for, error answers in the providers' shape, and slow
streams. It records every request it was sent, and notices a client that closes a stream early.

    model = FakeModel(api_key="sk-test")        # the Authorization it demands (None: any)
    model.script(Text(["Hel", "lo"]), ToolCalls([("json_extract", {...})]), Failure(500, "overloaded"))
    ... point RUNWIRE_LLM_BASE_URL at model.base_url ...
    model.requests[0]["messages"]               # what the model was sent
    model.close()

Without a script, it answers each request with `echo: <the last user message>` in a few chunks.
"""

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Text:
    """An answer streamed in these chunks, `delay` seconds apart (before each chunk)."""

    chunks: list[str]
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ToolCalls:
    """The model calls these tools (function name, arguments), each call's arguments split over several chunks."""

    calls: list[tuple[str, Any]]
    text: str = ""


@dataclass(frozen=True)
class Failure:
    """An error answer: this status and a body in the providers' shape."""

    status: int
    message: str


@dataclass(frozen=True)
class Broken:
    """A stream that breaks the protocol: a chunk that is not JSON, and no end."""

    chunks: list[str] = field(default_factory=lambda: ["partial"])


Answer = Text | ToolCalls | Failure | Broken


@dataclass
class Received:
    """What one request brought: its JSON body, headers and when it came."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    # time.time() just before each content chunk was sent, and whether the client went away mid-stream.
    chunk_times: list[float] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up on a kept-alive connection between two requests, as the openai SDK's pool may.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


class FakeModel:
    def __init__(self, api_key: str | None = None, model: str = "fake-model") -> None:
        self.api_key = api_key
        self.model = model
        self.received: list[Received] = []
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-model", daemon=True)
        self._thread.start()

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (then echo again)."""
        with self._lock:
            self._answers.extend(answers)

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [received.body for received in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # The server's side.

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("content-length", "0"))) or b"{}")
        received = Received(body, {k.lower(): v for k, v in handler.headers.items()}, time.time())
        with self._lock:
            self.received.append(received)
            answer = self._answers.pop(0) if self._answers else None
        if handler.path.rstrip("/") != "/v1/chat/completions":
            return self._error(handler, 404, f"no route {handler.path}", "invalid_request_error")
        if self.api_key is not None and handler.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(handler, 401, "Incorrect API key provided.", "invalid_request_error")
        if answer is None:
            answer = Text(_echo_chunks(body))
        if isinstance(answer, Failure):
            return self._error(handler, answer.status, answer.message, "server_error")
        try:
            self._stream(handler, body, received, answer)
        except (BrokenPipeError, ConnectionResetError):
            received.disconnected.set()

    def _error(self, handler: BaseHTTPRequestHandler, status: int, message: str, kind: str) -> None:
        payload = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _stream(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], received: Received, answer: Answer
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        model = body.get("model") or self.model
        created = int(time.time())

        def send(data: str) -> None:
            frame = f"data: {data}\n\n".encode()
            handler.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            handler.wfile.flush()

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            send(json.dumps(_chunk(model, created, [choice])))

        chunk({"role": "assistant", "content": ""})
        if isinstance(answer, Broken):
            for text in answer.chunks:
                chunk({"content": text})
            send('{"id": "chatcmpl-broken", "choices": [')
            handler.wfile.write(b"0\r\n\r\n")
            return
        sent = 0
        if isinstance(answer, Text):
            for text in answer.chunks:
                if answer.delay:
                    time.sleep(answer.delay)
                received.chunk_times.append(time.time())
                chunk({"content": text})
                sent += 1
            chunk({}, answer.finish_reason)
        else:
            assert isinstance(answer, ToolCalls), "a failure was answered above"
            if answer.text:
                chunk({"content": answer.text})
            for index, (name, arguments) in enumerate(answer.calls):
                text = json.dumps(arguments) if not isinstance(arguments, str) else arguments
                head = {"index": index, "id": f"call_{index}_{sent}", "type": "function"}
                chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
                middle = max(1, len(text) // 2)
                for piece in (text[:middle], text[middle:]):
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                    sent += 1
            chunk({}, "tool_calls")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10 * len(body.get("messages", [])), "completion_tokens": sent}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            send(json.dumps({**_chunk(model, created, []), "usage": usage}))
        send("[DONE]")
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _chunk(model: str, created: int, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
    }


def _echo_chunks(body: dict[str, Any]) -> list[str]:
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    words = f"echo: {users[-1] if users else ''}".split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)]
