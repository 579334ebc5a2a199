"""What every wire API module provides (``Surface``), and an answer as the steps read it.

A surface reads each answer once: ``read_answer`` for a whole body, a ``StreamReader`` for a
stream. Quality reads the choices, the usage step the token counts and the boundary the text
slots of that one reading; nothing else parses an answer in the client's API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.normalized import JsonText, NormalizedRequest, TextSlot

__all__ = [
    "SHAPE_ERRORS",
    "Answer",
    "Channels",
    "Choice",
    "ErrorsOf",
    "NoTextAnswers",
    "RequestModule",
    "StreamReader",
    "Surface",
    "TextSurface",
    "broken_stream",
    "clean_event",
    "event_parts",
    "frame",
    "json_answer",
    "json_event",
    "note_usage",
    "shape_error",
    "text_event",
]


@dataclass(slots=True)
class Choice:
    """One choice of an answer as the checks read it: its text (None for an answer that is
    only tool calls) and its token log-probabilities, when the provider gave them."""

    text: str | None = None
    logprobs: list[float] | None = None
    parts: list[str] = field(default_factory=list)  # streamed text, joined by ``finish``

    def finish(self) -> None:
        if self.parts:
            self.text = (self.text or "") + "".join(self.parts)
            self.parts.clear()


class Answer:
    """A whole answer, read once. ``choices`` (text and logprobs, for quality) and ``texts``
    (every text the model wrote: content, refusal, reasoning, tool-call arguments, as slots
    the boundary may rewrite) are walked on first use by the surface's ``walk``, so a step
    that needs only the token counts pays for one parse. ``unreadable`` says why the texts
    are not all known (the boundary refuses such an answer, nobody else minds)."""

    __slots__ = (
        "_choices",
        "_owners",
        "_texts",
        "_unreadable",
        "_walk",
        "changed",
        "data",
        "raw",
        "restated",
        "tokens_in",
        "tokens_out",
    )

    def __init__(self, raw: bytes, data: Any, walk: Callable[[Answer], None] | None = None) -> None:
        self.raw = raw
        self.data = data
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.changed = False  # ``data`` was changed: ``body`` serializes it again
        self._walk = walk
        self._choices: list[Choice] = []
        self._texts: list[TextSlot] = []
        self._owners: list[JsonText] = []
        self._unreadable: str | None = None
        # Fields that restate the text token by token (OpenAI logprobs): dropped when the
        # boundary changed the text, so they never spell what was masked.
        self.restated: list[tuple[dict[str, Any], str]] = []

    def _walked(self) -> None:
        walk, self._walk = self._walk, None
        if walk is not None:
            walk(self)

    @property
    def choices(self) -> list[Choice]:
        self._walked()
        return self._choices

    @property
    def texts(self) -> list[TextSlot]:
        self._walked()
        return self._texts

    @property
    def owners(self) -> list[JsonText]:
        """The JSON-in-a-string fields (OpenAI tool-call arguments) some ``texts`` are in."""
        self._walked()
        return self._owners

    @property
    def unreadable(self) -> str | None:
        self._walked()
        return self._unreadable

    @unreadable.setter
    def unreadable(self, why: str | None) -> None:
        if self._unreadable is None:  # the first reason found is the one given
            self._unreadable = why

    def body(self) -> bytes:
        """The answer as it goes on: the bytes as they came unless something changed them."""
        if not self.changed:
            return self.raw
        for owner in self.owners:
            owner.commit()
        return orjson.dumps(self.data)


class StreamReader(Protocol):
    """One stream's reading, event by event: the token counts, and with ``texts`` the choices
    (text and logprobs) for the quality checks. Without ``texts`` only events that mention
    usage are parsed, so relaying costs one substring test per event."""

    tokens_in: int | None
    tokens_out: int | None
    choices: dict[int, Choice]
    done: bool  # the stream's final event was read
    usage_only: bool  # the last event carried only usage (asked for by the gateway)

    def read(self, event: bytes) -> bytes:
        """Read ``event``; returns it as it goes on (logprobs stripped when asked).
        With ``texts``, an error event or one that is not JSON raises GatewayError
        ``upstream.broken_stream``."""
        ...


class Channels(Protocol):
    """The boundary's hold-back windows, one per text channel of a stream: a channel is
    (choice or block index, field, tool call index)."""

    def feed(self, channel: tuple[int, str, int], piece: str) -> Awaitable[str]: ...

    def finish(self, index: int) -> Awaitable[list[tuple[tuple[int, str, int], str]]]: ...

    def pending(self) -> list[int]: ...

    def signed(self, text: str | None) -> Awaitable[None]:
        """Thinking, which a signature protects and nobody may change: raises GatewayError
        under ``data.thinking: refuse`` (``text`` None: a thinking block starts) or when
        ``text`` holds a finding the policy would change."""
        ...


class Surface(Protocol):
    """One client wire API. ``api`` names it in the request and the audit trail, ``endpoint``
    in policies (``access.endpoints``); ``path`` is its route under ``/v1``."""

    api: str
    endpoint: str
    path: str
    # A header its official SDK always sends: the models list and routing errors use it.
    sdk_header: str | None
    # How the last event of a complete answer stream starts (held until audited).
    final_event: bytes
    # Answers are text a model wrote (a fallback message may stand in for one, a model
    # serves the API unless its configuration lists other endpoints); False: vectors, counts.
    answers_text: bool

    def parse(self, raw: bytes) -> NormalizedRequest: ...

    # Errors, in this API's own shapes, from its one status -> error type table.
    def error_type(self, status: int) -> str: ...
    def error_body(self, err: GatewayError, request_id: str) -> bytes: ...
    def stream_error(self, err: GatewayError, request_id: str) -> bytes: ...
    def upstream_error(self, message: str, status: int) -> bytes:
        """An upstream's error (another API's) as this API's error body."""
        ...

    def models_body(self, models: list[tuple[str, str]]) -> bytes: ...

    # Answers: read once (``data``: the body already parsed, by the upstream client's check);
    # written whole or as a stream (the fallback message, the mock).
    def read_answer(
        self, body: bytes, strip_logprobs: bool = False, data: Any = None
    ) -> Answer: ...
    def stream_reader(self, texts: bool, strip_logprobs: bool = False) -> StreamReader: ...
    def rewrite_stream(
        self, channels: Channels, events: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """Every text of every event through ``channels``; an event of a shape not known
        here raises GatewayError ``boundary.answer_shape`` (fail closed)."""
        ...

    def answer_body(
        self, answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int
    ) -> bytes: ...
    def answer_events(
        self,
        request: NormalizedRequest,
        answer_id: str,
        model: str,
        pieces: list[str],
        tokens_in: int,
        tokens_out: int,
    ) -> list[bytes]:
        """``pieces`` as a complete stream, as ``request``'s client asked for it (usage)."""
        ...

    def answer_id(self, suffix: str) -> str:
        """An answer id in this API's style (its prefix), ending in ``suffix``."""
        ...

    # Knobs the steps turn; each returns whether it changed the request where that matters.
    def output_ceilings(self, request: NormalizedRequest) -> list[tuple[str, int]]:
        """The output-token ceilings the client set, by field name."""
        ...

    def set_output_ceiling(self, request: NormalizedRequest, limit: int) -> bool:
        """Hold output tokens to ``limit``: the ceilings set above it are lowered, or when
        none is set the API's own field is written. True if it wrote."""
        ...

    def ask_usage_in_stream(self, request: NormalizedRequest) -> bool:
        """Make a stream report its usage; True when the client had not asked, so the
        usage-only event is the gateway's to drop."""
        ...

    def ask_logprobs(self, request: NormalizedRequest) -> bool:
        """Ask for token logprobs; True when the client had not, so they are stripped."""
        ...

    def ask_no_store(self, request: NormalizedRequest) -> None:
        """Ask the provider not to keep the exchange, where the API has such a field."""
        ...


def event_parts(event: bytes) -> tuple[str | None, bytes | None]:
    """An SSE event's ``event:`` name and its data (multi-line data joined), None if absent."""
    name, data = None, []
    for line in event.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip().decode(errors="replace")
        elif line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
    return name, b"\n".join(data) if data else None


def clean_event(event: bytes) -> bytes | None:
    """An SSE event with only its ``event:`` and ``data:`` lines: comments, ``id:`` and
    ``retry:`` lines are not relayed (they carry text nobody inspects). None: no data."""
    lines = [line for line in event.split(b"\n") if line.startswith((b"event:", b"data:"))]
    if not any(line.startswith(b"data:") for line in lines):
        return None
    return b"\n".join(lines) + b"\n\n"


def broken_stream(detail: str) -> GatewayError:
    return GatewayError(errors.UPSTREAM_BROKEN_STREAM, detail=detail)


def json_event(payload: bytes) -> dict[str, Any]:
    """An event's data as an object; anything else is a broken stream."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise broken_stream("an event that is not JSON") from None
    if not isinstance(data, dict):
        raise broken_stream("an event that is not an object")
    return data


def json_answer(
    raw: bytes, walk: Callable[[Answer], None] | None = None, data: Any = None
) -> Answer:
    """``raw`` parsed (``data``: already parsed), its usage noted, its texts left to ``walk``
    (on first use); a body that is not JSON is an unreadable answer (the boundary refuses
    it)."""
    if data is None:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = Answer(raw, None)
            answer.unreadable = "not JSON"
            return answer
    answer = Answer(raw, data, walk)
    if isinstance(data, dict):
        note_usage(answer, data.get("usage"))
    return answer


def note_usage(holder: Answer | StreamReader, usage: Any) -> None:
    """Token counts from a usage object, in either API's names (OpenAI-compatible servers
    mix them): a count present overwrites an earlier one (streams report them cumulatively)."""
    if not isinstance(usage, dict):
        return
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens"))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens"))
    if isinstance(tokens_in, int):
        holder.tokens_in = tokens_in
    if isinstance(tokens_out, int):
        holder.tokens_out = tokens_out


# What reading an upstream answer of a shape nobody expected raises (a list where an index is,
# a string where an object is, a field missing): whoever reads upstream data (the relay, the
# answer path) maps exactly these to ``boundary.answer_shape``, so the client gets an error
# in its API's shape, never a 500 or a bare cut stream.
SHAPE_ERRORS: tuple[type[Exception], ...] = (TypeError, KeyError, AttributeError, IndexError)


def shape_error(what: str) -> GatewayError:
    """An answer whose text the boundary cannot read in full: it is refused (fail closed)."""
    return GatewayError(errors.BOUNDARY_ANSWER_SHAPE, detail=what)


def text_event(event: bytes) -> tuple[str | None, str | None]:
    """``event_parts`` for the boundary, which reads text: an event not in UTF-8 is refused."""
    try:
        lines = event.decode().split("\n")
    except UnicodeDecodeError:
        raise shape_error("an event that is not UTF-8") from None
    name, data = None, []
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return name, "\n".join(data) if data else None


def frame(name: str | None, obj: Any) -> bytes:
    """One SSE event of ``obj``, named when ``name`` is given."""
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


class NoTextAnswers:
    """The methods of a surface whose answers carry no text (vectors, a token count): never
    streamed, no fallback text stands in for one, no output to cap, nothing to ask for."""

    answers_text = False
    _kind = "answer without text"  # how errors name it: "embeddings", "a token count"

    def rewrite_stream(
        self, channels: Channels, events: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        raise shape_error(f"a stream of {self._kind}")

    def answer_body(
        self, answer_id: str, model: str, text: str, tokens_in: int, tokens_out: int
    ) -> bytes:
        raise AssertionError(f"no text answer stands in for {self._kind} (answers_text)")

    def answer_events(
        self,
        request: NormalizedRequest,
        answer_id: str,
        model: str,
        pieces: list[str],
        tokens_in: int,
        tokens_out: int,
    ) -> list[bytes]:
        raise AssertionError(f"{self._kind} are never streamed")

    def output_ceilings(self, request: NormalizedRequest) -> list[tuple[str, int]]:
        return []

    def set_output_ceiling(self, request: NormalizedRequest, limit: int) -> bool:
        return False  # no output tokens to cap

    def ask_usage_in_stream(self, request: NormalizedRequest) -> bool:
        return False

    def ask_logprobs(self, request: NormalizedRequest) -> bool:
        return False

    def ask_no_store(self, request: NormalizedRequest) -> None:
        return None


class RequestModule(Protocol):
    """A surface package's ``request`` module: its parsing and the knobs the steps turn
    (``Surface`` says what each promises)."""

    def parse(self, raw: bytes) -> NormalizedRequest: ...
    def output_ceilings(self, request: NormalizedRequest) -> list[tuple[str, int]]: ...
    def set_output_ceiling(self, request: NormalizedRequest, limit: int) -> bool: ...
    def ask_usage_in_stream(self, request: NormalizedRequest) -> bool: ...
    def ask_logprobs(self, request: NormalizedRequest) -> bool: ...
    def ask_no_store(self, request: NormalizedRequest) -> None: ...


class TextSurface:
    """The methods every surface of text answers (chat, messages, Responses) takes from its
    package's modules, given once here instead of a delegating method in each: parsing and
    knobs from ``request``, whole answers from ``read``, streams from ``reader`` (read) and
    ``rewrite`` (the boundary's rewrite), answer ids from ``prefix``."""

    answers_text = True

    def __init__(
        self,
        request: RequestModule,
        read: Callable[[bytes, bool, Any], Answer],
        reader: Callable[[bool, bool], StreamReader],
        rewrite: Callable[[Channels, AsyncIterator[bytes]], AsyncIterator[bytes]],
        prefix: str,
    ) -> None:
        self._request = request
        self._read = read
        self._reader = reader
        self._rewrite = rewrite
        self._prefix = prefix

    def parse(self, raw: bytes) -> NormalizedRequest:
        return self._request.parse(raw)

    def read_answer(self, body: bytes, strip_logprobs: bool = False, data: Any = None) -> Answer:
        return self._read(body, strip_logprobs, data)

    def stream_reader(self, texts: bool, strip_logprobs: bool = False) -> StreamReader:
        return self._reader(texts, strip_logprobs)

    def rewrite_stream(
        self, channels: Channels, events: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        return self._rewrite(channels, events)

    def answer_id(self, suffix: str) -> str:
        return self._prefix + suffix

    def output_ceilings(self, request: NormalizedRequest) -> list[tuple[str, int]]:
        return self._request.output_ceilings(request)

    def set_output_ceiling(self, request: NormalizedRequest, limit: int) -> bool:
        return self._request.set_output_ceiling(request, limit)

    def ask_usage_in_stream(self, request: NormalizedRequest) -> bool:
        return self._request.ask_usage_in_stream(request)

    def ask_logprobs(self, request: NormalizedRequest) -> bool:
        return self._request.ask_logprobs(request)

    def ask_no_store(self, request: NormalizedRequest) -> None:
        self._request.ask_no_store(request)


class ErrorsOf:
    """Errors and model lists in another surface's shapes: the APIs whose SDK is that
    surface's (the Responses API and embeddings are OpenAI's, token counting Anthropic's)."""

    def __init__(self, shapes: Surface) -> None:
        self._shapes = shapes

    def error_type(self, status: int) -> str:
        return self._shapes.error_type(status)

    def error_body(self, err: GatewayError, request_id: str) -> bytes:
        return self._shapes.error_body(err, request_id)

    def stream_error(self, err: GatewayError, request_id: str) -> bytes:
        return self._shapes.stream_error(err, request_id)

    def upstream_error(self, message: str, status: int) -> bytes:
        return self._shapes.upstream_error(message, status)

    def models_body(self, models: list[tuple[str, str]]) -> bytes:
        return self._shapes.models_body(models)
