"""A scriptable fake OpenAI/Anthropic upstream for gateway tests.

Gateway tests need the providers' real wire formats (JSON, SSE framing, error bodies,
Retry-After) and upstream misbehaviour (errors, stalls, cut or slow streams) offline. It
serves from its own thread and event loop, so sync and async tests can both use it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson
from aiohttp import web


@dataclass
class Received:
    """One request as the fake saw it, so tests can assert what the gateway sent."""

    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]  # {} when the body was not a JSON object


@dataclass(frozen=True)
class Reply:
    """A normal answer (the default); text None echoes the last user message. ``pieces``
    streams exactly those deltas (their concatenation is the non-streamed text). When an
    OpenAI request asks for ``logprobs``, every token of the answer gets ``logprob``."""

    text: str | None = None
    pieces: tuple[str, ...] | None = None
    logprob: float = -0.05


REFUSAL = "I'm sorry, but I can't help with that."


@dataclass(frozen=True)
class Status:
    """An error in the provider's own error shape, optionally with Retry-After."""

    status: int
    retry_after: float | None = None


@dataclass(frozen=True)
class Stall:
    """Sleep, then answer normally: trips the gateway's timeouts."""

    seconds: float


@dataclass(frozen=True)
class CutStream:
    """Send `after` deltas ("partN ") then hang up, no terminator (non-stream: half the JSON)."""

    after: int = 1


@dataclass(frozen=True)
class SlowStream:
    """Send deltas ("tickN ") slowly so a client can leave mid-stream (non-stream: a stall)."""

    events: int = 50
    interval: float = 0.1


@dataclass(frozen=True)
class InvalidJson:
    """Answer 200 with a body (or, when streaming, an SSE data line) that is not JSON."""


@dataclass(frozen=True)
class ToolCall:
    """Answer with one tool call whose JSON arguments are ``pieces`` joined (streamed as
    those argument deltas)."""

    name: str
    pieces: tuple[str, ...]


@dataclass(frozen=True)
class RawStream:
    """Stream exactly these SSE events (whole ``event:``/``data:`` frames), one write each."""

    events: tuple[bytes, ...]


@dataclass(frozen=True)
class RawAnswer:
    """Answer 200 with exactly this JSON body (non-stream)."""

    body: bytes


@dataclass(frozen=True)
class Flood:
    """Send ``size`` bytes in 1 MiB writes and nothing else: a JSON answer that never ends
    its string (non-stream), or one SSE ``data:`` line that never ends its event (stream)."""

    size: int


Action: TypeAlias = (
    RawStream
    | ToolCall
    | Reply
    | Status
    | Stall
    | CutStream
    | SlowStream
    | InvalidJson
    | Flood
    | RawAnswer
)

_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error",
                     403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                     429: "rate_limit_error", 529: "overloaded_error"}  # fmt: skip
_ids = itertools.count(1)


def _pieces(text: str) -> list[str]:
    """Split into "word " chunks whose concatenation is exactly `text`."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


def _words(text: str) -> int:
    return len(text.split())


def _text_of(content: Any) -> str:
    """Text of a message content: a string or a list of {"type": "text"} parts."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(
        str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text"
    )


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"


class _Exchange:
    """Renders one request's answer in the wire format of its API."""

    def __init__(self, anthropic: bool, body: dict[str, Any]) -> None:
        self.anthropic, self.body = anthropic, body
        self.model = str(body.get("model", ""))
        self.stream = body.get("stream") is True
        self.created = int(time.time())
        self.id = f"msg_fake{next(_ids)}" if anthropic else f"chatcmpl-fake{next(_ids)}"
        self.logprob: float | None = None  # set when the request asks for logprobs
        msgs = body.get("messages")
        self.messages = [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []
        # A deterministic rough token count: words in the system prompt and every message.
        self.prompt_tokens = _words(_text_of(body.get("system"))) + sum(
            _words(_text_of(m.get("content"))) for m in self.messages
        )

    def echo(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return "echo: " + (_text_of(users[-1].get("content")) if users else "")

    def error(self, status: int) -> dict[str, Any]:
        message = f"fake upstream error {status}"
        if self.anthropic:
            default = "api_error" if status >= 500 else "invalid_request_error"
            kind = _ANTHROPIC_ERRORS.get(status, default)
            return {"type": "error", "error": {"type": kind, "message": message}}
        kind = "server_error" if status >= 500 else "invalid_request_error"
        kind = "requests" if status == 429 else kind
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def usage(self, out: int) -> dict[str, int]:
        if self.anthropic:
            return {"input_tokens": self.prompt_tokens, "output_tokens": out}
        p = self.prompt_tokens
        return {"prompt_tokens": p, "completion_tokens": out, "total_tokens": p + out}

    def complete(self, text: str) -> dict[str, Any]:
        usage = self.usage(_words(text))
        if self.anthropic:
            content = [{"type": "text", "text": text}]
            return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": content, "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": usage}  # fmt: skip
        choice = {"index": 0, "message": {"role": "assistant", "content": text},
                  "finish_reason": "stop", "logprobs": self.logprobs(text)}  # fmt: skip
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": [choice], "usage": usage}  # fmt: skip

    def logprobs(self, text: str) -> dict[str, Any] | None:
        """OpenAI's logprobs of ``text``, one entry per word, when the request asked."""
        if self.logprob is None:
            return None
        return {"content": [{"token": w, "logprob": self.logprob, "bytes": list(w.encode()),
                             "top_logprobs": []} for w in _pieces(text)], "refusal": None}  # fmt: skip

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None, **kw: Any) -> bytes:
        """An OpenAI chunk with one choice, or none (the usage chunk) when delta is None."""
        content = delta.get("content") if delta else None
        logprobs = self.logprobs(content) if content else None
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish,
                                             "logprobs": logprobs}]  # fmt: skip
        return _sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                     "model": self.model, "choices": choices, **kw})  # fmt: skip

    def head(self) -> list[bytes]:
        """Events before the first content delta."""
        if not self.anthropic:
            return [self._chunk({"role": "assistant", "content": ""})]
        message = {**self.complete(""), "content": [], "stop_reason": None}
        text = {"type": "text", "text": ""}
        block = {"type": "content_block_start", "index": 0, "content_block": text}
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse(block, "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]

    def delta(self, piece: str) -> bytes:
        if not self.anthropic:
            return self._chunk({"content": piece})
        delta = {"type": "text_delta", "text": piece}
        event = {"type": "content_block_delta", "index": 0, "delta": delta}
        return _sse(event, "content_block_delta")

    def tail(self, out: int) -> list[bytes]:
        """Events after the last content delta, terminator included."""
        if self.anthropic:
            stop = {"stop_reason": "end_turn", "stop_sequence": None}
            usage = {"output_tokens": out}
            return [
                _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                _sse({"type": "message_delta", "delta": stop, "usage": usage}, "message_delta"),
                _sse({"type": "message_stop"}, "message_stop"),
            ]
        events = [self._chunk({}, "stop")]
        options = self.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            events.append(self._chunk(None, usage=self.usage(out)))
        return [*events, _sse(b"[DONE]")]


class FakeUpstream:
    """The fake server: script per-model actions, then inspect `received`."""

    def __init__(self, models: Sequence[str] = ("fake-model",)) -> None:
        self.base_url = ""
        self.received: list[Received] = []
        self._models = list(models)  # listed by GET /v1/models, with every scripted model
        self._queues: defaultdict[str, deque[Action]] = defaultdict(deque)
        self._cond = threading.Condition()
        self._disconnects = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve from a daemon thread; return once the port is listening."""
        loop = self._loop = asyncio.new_event_loop()
        self._stopping = False
        started = asyncio.run_coroutine_threadsafe(self._serve(), loop)
        self._thread = threading.Thread(target=loop.run_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        try:
            started.result(timeout=10)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut down fast: stalled or streaming handlers are cancelled, not awaited."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        self._stopping = True
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._runner = None

    def script(self, model: str, *actions: Action) -> None:
        """Queue actions for requests naming `model`; each request consumes one, FIFO."""
        with self._cond:
            self._queues[model].extend(actions)

    def reset(self) -> None:
        with self._cond:
            self._queues.clear()
            self.received.clear()
            self._disconnects = 0

    def requests_for(self, model: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.body.get("model") == model]

    @property
    def disconnects(self) -> int:
        """Requests whose client left before the answer ended (streams, or mid-Stall)."""
        with self._cond:
            return self._disconnects

    def wait_for_disconnects(self, n: int, timeout: float = 5.0) -> bool:
        """Wait for the count: a gateway's cancel reaches the fake asynchronously."""
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= n, timeout)

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client hanging up cancels its handler, which is how a
        # disconnect during a stall or between stream events becomes visible.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.2, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            parsed = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            parsed = {}
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._cond:
            self.received.append(Received(request.path, headers, body))
            models = sorted({*self._models, *self._queues})
        path, post = request.path.rstrip("/"), request.method == "POST"
        if request.method == "GET" and path.endswith("/v1/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
            return _json({"object": "list", "data": data})
        if "/v1/responses/" in path and request.method in ("GET", "DELETE"):
            return _kept(path, request.method)
        if post and path.endswith("/v1/responses"):
            with self._cond:
                queue = self._queues.get(str(body.get("model")))
                scripted = queue.popleft() if queue else Reply()
            if isinstance(scripted, Status):
                return _json(_Exchange(False, body).error(scripted.status), scripted.status)
            return await _responses(request, body, scripted)
        if post and path.endswith("/v1/embeddings"):
            texts = body.get("input")
            count = len(texts) if isinstance(texts, list) else 1
            data = [
                {"object": "embedding", "index": i, "embedding": [0.5, -0.5]} for i in range(count)
            ]
            usage = {"prompt_tokens": 3 * count, "total_tokens": 3 * count}
            return _json(
                {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
            )
        if post and path.endswith("/v1/messages/count_tokens"):  # Anthropic's count
            return _json({"input_tokens": 3 * len(body.get("messages") or ())})
        if not post or not path.endswith(("/v1/chat/completions", "/v1/messages")):
            return _json(_Exchange(False, body).error(404), 404)
        ex = _Exchange(path.endswith("/v1/messages"), body)
        with self._cond:
            queue = self._queues.get(ex.model)
            action: Action = queue.popleft() if queue else Reply()
        if not ex.anthropic and body.get("logprobs") is True:
            ex.logprob = action.logprob if isinstance(action, Reply) else Reply().logprob
        try:
            return await self._act(request, ex, action)
        except (asyncio.CancelledError, ConnectionResetError) as exc:
            # The client hung up: aiohttp cancelled us (handler_cancellation) or a write hit
            # the closed socket first. Cancellation by stop() is not the client's doing.
            if not self._stopping:
                with self._cond:
                    self._disconnects += 1
                    self._cond.notify_all()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return web.Response(status=499)  # aiohttp drops it quietly

    async def _act(self, request: web.Request, ex: _Exchange, action: Action) -> web.StreamResponse:
        if isinstance(action, ToolCall):
            return await _tool_call(request, ex, action)
        if isinstance(action, RawAnswer):
            return web.Response(body=action.body, content_type="application/json")
        if isinstance(action, Flood):
            ctype = "text/event-stream" if ex.stream else "application/json"
            resp = web.StreamResponse(headers={"content-type": ctype})
            await resp.prepare(request)
            await resp.write(b'data: {"x": "' if ex.stream else b'{"x": "')
            block = b"a" * (1 << 20)
            for _ in range(action.size >> 20):
                await resp.write(block)
            await resp.write_eof()
            return resp
        if isinstance(action, RawStream):
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            for event in action.events:
                await resp.write(event)
            await resp.write_eof()
            return resp
        if isinstance(action, Status):
            ra = action.retry_after
            headers = {} if ra is None else {"retry-after": str(ra).removesuffix(".0")}
            return _json(ex.error(action.status), action.status, headers)
        if isinstance(action, Stall):
            await asyncio.sleep(action.seconds)
        if isinstance(action, SlowStream) and not ex.stream:
            await asyncio.sleep(action.events * action.interval)
        text = action.text if isinstance(action, Reply) and action.text is not None else ex.echo()
        if isinstance(action, Reply) and action.pieces is not None:
            text = "".join(action.pieces)
        if not ex.stream:
            if isinstance(action, InvalidJson):
                return web.Response(body=b"{not json", content_type="application/json")
            if not isinstance(action, CutStream):
                return _json(ex.complete(text))
            payload = orjson.dumps(ex.complete(text))  # promise it all, send half, hang up
            resp = web.StreamResponse(headers={"content-type": "application/json"})
            resp.content_length = len(payload)
            await resp.prepare(request)
            await resp.write(payload[: len(payload) // 2])
            return _hang_up(request, resp)
        if isinstance(action, CutStream):
            pieces = [f"part{i} " for i in range(action.after)]
        elif isinstance(action, SlowStream):
            pieces = [f"tick{i} " for i in range(action.events)]
        elif isinstance(action, Reply) and action.pieces is not None:
            pieces = list(action.pieces)
        else:
            pieces = _pieces(text)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in ex.head():
            await resp.write(event)  # one write per event: they arrive as separate chunks
        if isinstance(action, InvalidJson):
            await resp.write(b"data: {not json\n\n")
        for i, piece in enumerate(pieces):
            if isinstance(action, SlowStream) and i:
                await asyncio.sleep(action.interval)
            await resp.write(ex.delta(piece))
        if isinstance(action, CutStream):
            return _hang_up(request, resp)
        for event in ex.tail(sum(_words(p) for p in pieces)):
            await resp.write(event)
        await resp.write_eof()
        return resp


async def _tool_call(request: web.Request, ex: _Exchange, call: ToolCall) -> web.StreamResponse:
    arguments = "".join(call.pieces)
    if not ex.stream:
        body = ex.complete("")
        if ex.anthropic:
            body["content"] = [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": call.name,
                    "input": orjson.loads(arguments),
                }
            ]
            body["stop_reason"] = "tool_use"
        else:
            function = {"name": call.name, "arguments": arguments}
            body["choices"][0]["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": function}],
            }
            body["choices"][0]["finish_reason"] = "tool_calls"
        return _json(body)
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    if ex.anthropic:
        head = ex.head()[0]
        block = {"type": "tool_use", "id": "toolu_1", "name": call.name, "input": {}}
        events = [
            head,
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": block},
                "content_block_start",
            ),
        ]
        for piece in call.pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(
                _sse(
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                    "content_block_delta",
                )
            )
        stop = {"stop_reason": "tool_use", "stop_sequence": None}
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 1}},
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
    else:
        first = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events = [ex._chunk({"role": "assistant", "content": None, "tool_calls": [first]})]
        events += [
            ex._chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in call.pieces
        ]
        events += [ex._chunk({}, "tool_calls"), _sse(b"[DONE]")]
    for event in events:
        await resp.write(event)
    await resp.write_eof()
    return resp


def _hang_up(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    """Close the socket mid-body (after flushing) so the client sees a cut. Callers return
    right away, so the cancellation this causes is not counted as a client disconnect."""
    if request.transport is not None:
        request.transport.close()
    return resp


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type="application/json"
    )


def _last_input(body: dict[str, Any]) -> str:
    items = body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


async def _responses(
    request: web.Request, body: dict[str, Any], action: Action
) -> web.StreamResponse:
    """A Responses API answer (a scripted ``Reply``'s text, else an echo of the last user
    input), written out by hand: whole, or as OpenAI's event sequence."""
    text = f"echo: {_last_input(body)}"
    if isinstance(action, Reply) and action.text is not None:
        text = action.text
    item = {
        "id": "msg_fake",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    usage = {"input_tokens": 5, "output_tokens": _words(text), "total_tokens": 5 + _words(text)}
    whole = {
        "id": "resp_fake",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": body.get("model"),
        "output": [item],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }
    if body.get("stream") is not True:
        return _json(whole)
    start = {**whole, "status": "in_progress", "output": [], "usage": None}
    at = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    events = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {"type": "response.content_part.added", **at, "part": part},
        *({"type": "response.output_text.delta", **at, "delta": p} for p in _pieces(text)),
        {"type": "response.output_text.done", **at, "text": text},
        {"type": "response.content_part.done", **at, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": whole},
    ]
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    for n, event in enumerate(events):
        await resp.write(_sse({**event, "sequence_number": n}, event["type"]))
    await resp.write_eof()
    return resp


def _kept(path: str, method: str) -> web.Response:
    """A response "kept" by the provider, whose answer holds an e-mail address."""
    response_id = path.split("/v1/responses/")[1].split("/")[0]
    if method == "DELETE":
        return _json({"id": response_id, "object": "response", "deleted": True})
    item = {
        "id": "msg_kept",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "mail kim@example.com", "annotations": []}],
    }
    if path.endswith("/input_items"):
        user = {"id": "msg_in", "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "who is kim@example.com"}]}  # fmt: skip
        return _json({"object": "list", "data": [user, item], "has_more": False})
    return _json(
        {
            "id": response_id,
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": "gpt-up",
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
    )
