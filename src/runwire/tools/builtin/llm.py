"""The `llm` tool: a conversation with any OpenAI-compatible Chat Completions endpoint, streamed.

The model's tokens are published as they come (the step context coalesces them into `step_output_delta` events).
When the step lists `tools`, the model may call them: each call runs through the step context, which runs it as a
step would run it, and its result goes back to the model, until the model answers without calling a tool or
`maxTurns` model calls are spent. Cancelling the step closes the model's HTTP stream at once (the `async with`
blocks close it as the cancellation passes through). The API key is never written anywhere: errors that could
carry it have it masked.
"""

import asyncio
import importlib
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import Field

from runwire import metrics
from runwire.config import Settings
from runwire.tools.base import Tool, ToolContext, ToolError, ToolInputs, ToolOffer
from runwire.tools.tls import client_tls_context

if TYPE_CHECKING:
    import openai

CONNECT_TIMEOUT_SECONDS = 10.0


async def _openai_sdk() -> ModuleType:
    """The openai package, imported on a thread at its first use (later uses find it in `sys.modules`): a process
    that never calls a model is spared about a third of its start-up, and the event loop never waits for the import."""
    return await asyncio.to_thread(importlib.import_module, "openai")


class LlmInputs(ToolInputs):
    prompt: str = Field(description="The user turn sent to the model.")
    system: str | None = Field(default=None, description="The system turn.")
    model: str | None = Field(default=None, min_length=1, description="Overrides RUNWIRE_LLM_MODEL.")
    include_chat: bool = Field(
        default=False, description="Send the chat's messages before this run's message as history."
    )
    tools: list[str] = Field(default_factory=list, description="Tool ids the model may call (any tool but llm).")
    max_turns: int = Field(default=8, ge=1, le=20, description="Model calls allowed in one step when it uses tools.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)
    response_format: Literal["text", "json"] = Field(
        default="text", description="`json` asks for a JSON object and puts the parsed value in output.json."
    )


@dataclass
class _Call:
    """A tool call as the model streams it: its pieces arrive over several chunks."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Turn:
    text: str = ""
    model: str | None = None
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    calls: dict[int, _Call] = field(default_factory=dict)


class LlmTool(Tool[LlmInputs]):
    id = "llm"
    name = "LLM"
    description = (
        "Asks a language model (any OpenAI-compatible Chat Completions endpoint) and streams its answer; "
        "it can show the model the chat so far and let it call tools."
    )
    Inputs = LlmInputs
    offered_to_models = False

    def unavailable_reason(self, settings: Settings) -> str | None:
        missing = [
            name
            for name, value in (
                ("RUNWIRE_LLM_BASE_URL", settings.llm_base_url),
                ("RUNWIRE_LLM_MODEL", settings.llm_model),
            )
            if not value
        ]
        return f"No model is configured: set {' and '.join(missing)}." if missing else None

    async def run(self, inputs: LlmInputs, ctx: ToolContext) -> dict[str, object]:
        settings = ctx.settings
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else ""
        offers = ctx.offer_tools(inputs.tools) if inputs.tools else []
        messages: list[dict[str, Any]] = []
        if inputs.system is not None:
            messages.append({"role": "system", "content": inputs.system})
        if inputs.include_chat:
            messages += await ctx.chat_history()
        messages.append({"role": "user", "content": inputs.prompt})
        openai = await _openai_sdk()
        timeout = openai.Timeout(settings.llm_read_timeout_seconds, connect=CONNECT_TIMEOUT_SECONDS)
        try:
            async with openai.AsyncOpenAI(
                base_url=settings.llm_base_url,
                # An endpoint without keys (a local Ollama) takes any.
                api_key=key or "none",
                max_retries=0,
                timeout=timeout,
                http_client=openai.DefaultAsyncHttpxClient(verify=client_tls_context()),
            ) as client:
                return await _Conversation(client, inputs, ctx, offers, messages, settings).run()
        except ToolError as error:
            raise ToolError(error.code, _masked(error.message, key)) from None
        except openai.APITimeoutError:
            message = f"The model sent nothing for {settings.llm_read_timeout_seconds:g} seconds."
            raise ToolError("timeout", message) from None
        except openai.APIConnectionError as error:
            raise ToolError(
                "model_unreachable", _masked(f"The model endpoint cannot be reached: {error}", key)
            ) from None
        except openai.APIStatusError as error:
            message = f"The model endpoint answered {error.status_code}: {_error_text(error)}"
            raise ToolError("model_error", _masked(message, key)) from None
        except (openai.OpenAIError, ValueError) as error:
            message = f"The model's answer broke the Chat Completions protocol ({type(error).__name__}: {error})."
            raise ToolError("model_error", _masked(message, key)) from None


class _Conversation:
    def __init__(
        self,
        client: "openai.AsyncOpenAI",
        inputs: LlmInputs,
        ctx: ToolContext,
        offers: list[ToolOffer],
        messages: list[dict[str, Any]],
        settings: Settings,
    ) -> None:
        self.client = client
        self.inputs = inputs
        self.ctx = ctx
        self.offers = {offer.name: offer for offer in offers}
        self.messages = messages
        self.model = inputs.model or settings.llm_model or ""
        self.tool_calls: list[dict[str, Any]] = []

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.offers:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {"name": o.name, "description": o.description, "parameters": o.input_schema},
                }
                for o in self.offers.values()
            ]
        if self.inputs.temperature is not None:
            request["temperature"] = self.inputs.temperature
        if self.inputs.max_tokens is not None:
            request["max_tokens"] = self.inputs.max_tokens
        if self.inputs.response_format == "json":
            request["response_format"] = {"type": "json_object"}
        return request

    async def run(self) -> dict[str, object]:
        texts: list[str] = []
        input_tokens = output_tokens = 0
        for number in range(1, self.inputs.max_turns + 1):
            try:
                turn = await self._turn()
            except Exception:
                metrics.MODEL_CALLS.labels("error").inc()
                raise
            metrics.MODEL_CALLS.labels("ok").inc()
            metrics.MODEL_TOKENS.labels("input").inc(turn.input_tokens)
            metrics.MODEL_TOKENS.labels("output").inc(turn.output_tokens)
            texts.append(turn.text)
            input_tokens += turn.input_tokens
            output_tokens += turn.output_tokens
            await self.ctx.log(
                f"model call {number}: finish reason {turn.finish_reason}, {len(turn.text)} characters, "
                f"{len(turn.calls)} tool call(s)"
            )
            if not turn.calls:
                return self._output(turn, "".join(texts), input_tokens, output_tokens)
            if number == self.inputs.max_turns:
                break
            await self._call_tools(turn)
        raise ToolError(
            "max_turns",
            f"The model still called tools after {self.inputs.max_turns} model calls (maxTurns); "
            "its last tool calls were refused.",
        )

    async def _turn(self) -> _Turn:
        """One model call, its answer streamed. The SDK's raw streaming response is read line by line: its typed
        chunks cost several times the CPU of parsing the `data:` lines here."""
        turn = _Turn()
        request = self.client.chat.completions.with_streaming_response.create(**self._request())
        async with request as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank lines, comments (keep-alives) and event names
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    content = self._absorb(turn, orjson.loads(data))
                except (ValueError, TypeError, KeyError, AttributeError):
                    message = f"The model sent a chunk that breaks the protocol: {data[:200]}"
                    raise ToolError("model_error", message) from None
                if content:
                    await self.ctx.stream_output(content)
        if turn.finish_reason is None:
            raise ToolError("model_error", "The model's stream ended before the model finished its answer.")
        return turn

    @staticmethod
    def _absorb(turn: _Turn, chunk: dict[str, Any]) -> str:
        """Add a `chat.completion.chunk` to the turn; return its new text."""
        if chunk.get("error") is not None:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ToolError("model_error", f"The model failed while answering: {message}")
        turn.model = chunk.get("model") or turn.model
        usage = chunk.get("usage")
        if usage:
            turn.input_tokens = int(usage.get("prompt_tokens") or 0)
            turn.output_tokens = int(usage.get("completion_tokens") or 0)
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        choice = choices[0]
        delta = choice.get("delta") or {}
        for piece in delta.get("tool_calls") or []:
            call = turn.calls.setdefault(int(piece["index"]), _Call())
            call.id = piece.get("id") or call.id
            function = piece.get("function") or {}
            call.name += function.get("name") or ""
            call.arguments += function.get("arguments") or ""
        turn.finish_reason = choice.get("finish_reason") or turn.finish_reason
        content = delta.get("content") or ""
        if not isinstance(content, str):
            raise TypeError("content is not text")
        turn.text += content
        return content

    async def _call_tools(self, turn: _Turn) -> None:
        calls = [turn.calls[index] for index in sorted(turn.calls)]
        self.messages.append(
            {
                "role": "assistant",
                "content": turn.text or None,
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in calls
                ],
            }
        )
        for call in calls:
            result = await self._call_tool(call)
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})

    async def _call_tool(self, call: _Call) -> object:
        """Run one tool call; return what the model is told of its result, and record it."""
        offer = self.offers.get(call.name)
        tool_id = offer.tool_id if offer is not None else call.name
        record: dict[str, Any] = {"toolId": tool_id, "inputs": call.arguments}
        try:
            inputs = json.loads(call.arguments or "{}")
            if not isinstance(inputs, dict):
                raise ToolError("invalid_inputs", "The tool's arguments must be a JSON object.")
            record["inputs"] = inputs
            if offer is None:
                raise ToolError("unknown_tool", f"No tool named '{call.name}' was offered.")
            record["output"] = await self.ctx.call_tool(offer.tool_id, inputs)
        except ValueError:
            record["error"] = {"code": "invalid_inputs", "message": "The tool's arguments are not valid JSON."}
        except ToolError as error:
            record["error"] = {"code": error.code, "message": error.message}
        self.tool_calls.append(record)
        if "error" in record:
            await self.ctx.log(f"tool call {tool_id} failed: {record['error']['message']}")
            return {"error": record["error"]["message"]}
        await self.ctx.log(f"tool call {tool_id} completed")
        return record["output"]

    def _output(self, turn: _Turn, text: str, input_tokens: int, output_tokens: int) -> dict[str, object]:
        output: dict[str, object] = {
            "text": text,
            "model": turn.model or self.model,
            "finishReason": turn.finish_reason,
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens},
            "toolCalls": self.tool_calls,
        }
        if self.inputs.response_format == "json":
            try:
                output["json"] = json.loads(turn.text)
            except ValueError:
                raise ToolError("invalid_json", "The model's answer is not valid JSON.") from None
        return output


def _error_text(error: "openai.APIStatusError") -> str:
    body = error.body
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str):
            return message
    return error.message


def _masked(text: str, key: str) -> str:
    return text.replace(key, "[masked]") if key else text
