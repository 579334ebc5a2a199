"""What cross-provider translation costs per request, next to parsing and re-serializing the
same payloads, measured in one run.

    python bench/translate.py            # about 10 s
    python bench/translate.py --quick    # smoke run

Cases, each both ways (OpenAI client -> Anthropic upstream, and the reverse):
- a typical request and its answer: a system prompt, four turns with a tool call and its
  result, one tool; an answer of a few sentences. Translation = the request's body translated
  + the answer parsed, translated and serialized.
- a 200-event stream: 200 text deltas between the usual start and stop events, every event
  translated as it arrives.
- a structured output (OpenAI client, JSON schema): the schema as the forced answer tool, the
  answer's tool call back as the message text.
The baselines are ``orjson.loads`` + ``orjson.dumps`` (what the gateway's JSON handling costs)
and stdlib ``json.loads`` + ``json.dumps`` of the very same payloads. Best of ``--repeat``
timing runs; the median would fold in the other processes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from gateway.translate import (
    ANSWER_TOOL,
    AnthropicEvents,
    OpenAIChunks,
    anthropic_answer,
    anthropic_request,
    openai_answer,
    openai_request,
)

_SENTENCE = "The customer asked about the delivery window for order 1182 and the return policy. "
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

OPENAI_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a support assistant. " + _SENTENCE * 4},
        {"role": "user", "content": _SENTENCE * 6},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees, sunny"},
        {"role": "user", "content": _SENTENCE * 3},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather",
               "description": "Current weather for a city.", "parameters": SCHEMA}}],
    "max_completion_tokens": 512,
    "temperature": 0.2,
}  # fmt: skip
ANTHROPIC_REQUEST = anthropic_request(OPENAI_REQUEST)

ANSWER_TEXT = _SENTENCE * 5
ANTHROPIC_ANSWER = orjson.dumps({
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": ANSWER_TEXT}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 412, "output_tokens": 87},
})  # fmt: skip
OPENAI_ANSWER = orjson.dumps({
    "id": "chatcmpl-01", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER_TEXT,
                 "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 412, "completion_tokens": 87, "total_tokens": 499},
})  # fmt: skip


STRUCTURED_REQUEST = {
    **OPENAI_REQUEST,
    "tools": None,
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
}
STRUCTURED_ANSWER = orjson.dumps({
    "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "tool_use", "id": "toolu_1", "name": ANSWER_TOOL,
                 "input": {"city": "Paris", "summary": ANSWER_TEXT}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 412, "output_tokens": 87},
})  # fmt: skip


def _named(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def anthropic_stream(n: int) -> list[bytes]:
    message = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 412, "output_tokens": 1}}  # fmt: skip
    head = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    deltas = [
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": f"word{i} "}}
        for i in range(n - 6)
    ]  # fmt: skip
    tail = [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": n}},
        {"type": "message_stop"},
    ]  # fmt: skip
    return [_named(e) for e in head + deltas + tail]


def openai_stream(n: int) -> list[bytes]:
    base = {"id": "chatcmpl-01", "object": "chat.completion.chunk", "created": 0, "model": "gpt"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

    usage = {"prompt_tokens": 412, "completion_tokens": n, "total_tokens": 412 + n}
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f"word{i} "}) for i in range(n - 4)]
    events += [chunk({}, "stop"), b"data: " + orjson.dumps({**base, "choices": [], "usage": usage})
               + b"\n\n", b"data: [DONE]\n\n"]  # fmt: skip
    return events


def _data(event: bytes) -> bytes:
    return event[event.index(b"data: ") + 6 :].rstrip(b"\n")


def _baseline(payloads: list[bytes], loads: Callable[[bytes], Any], dumps: Callable[[Any], Any]):  # type: ignore[no-untyped-def]
    def run() -> None:
        for raw in payloads:
            if raw != b"[DONE]":
                dumps(loads(raw))

    return run


def cases(n_events: int) -> list[tuple[str, Callable[[], object], list[bytes]]]:
    openai_events, anthropic_events = openai_stream(n_events), anthropic_stream(n_events)
    assert len(openai_events) == len(anthropic_events) == n_events

    def openai_client_to_claude() -> None:
        anthropic_request(OPENAI_REQUEST)
        orjson.dumps(openai_answer(orjson.loads(ANTHROPIC_ANSWER), 0))

    def anthropic_client_to_gpt() -> None:
        openai_request(ANTHROPIC_REQUEST)
        orjson.dumps(anthropic_answer(orjson.loads(OPENAI_ANSWER)))

    def structured_via_claude() -> None:
        anthropic_request(STRUCTURED_REQUEST)
        orjson.dumps(openai_answer(orjson.loads(STRUCTURED_ANSWER), 0, ANSWER_TOOL))

    def claude_stream_to_openai() -> None:
        t = OpenAIChunks(0, True)
        for e in anthropic_events:
            t.feed(e)

    def gpt_stream_to_anthropic() -> None:
        t = AnthropicEvents()
        for e in openai_events:
            t.feed(e)

    return [
        ("OpenAI request+answer via Claude", openai_client_to_claude,
         [orjson.dumps(OPENAI_REQUEST), ANTHROPIC_ANSWER]),
        ("Anthropic request+answer via GPT", anthropic_client_to_gpt,
         [orjson.dumps(ANTHROPIC_REQUEST), OPENAI_ANSWER]),
        ("OpenAI structured output via Claude (answer tool)", structured_via_claude,
         [orjson.dumps(STRUCTURED_REQUEST), STRUCTURED_ANSWER]),
        (f"Claude stream -> OpenAI chunks ({n_events} events)", claude_stream_to_openai,
         [_data(e) for e in anthropic_events]),
        (f"GPT stream -> Anthropic events ({n_events} events)", gpt_stream_to_anthropic,
         [_data(e) for e in openai_events]),
    ]  # fmt: skip


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    number, repeat = (50, 2) if args.quick else (400, args.repeat)
    print("| case | translated | orjson loads+dumps | json loads+dumps | ratio to orjson |")
    print("|---|---|---|---|---|")
    for name, fn, payloads in cases(200):
        translated = best(fn, number, repeat)
        fast = best(_baseline(payloads, orjson.loads, orjson.dumps), number, repeat)
        slow = best(_baseline(payloads, json.loads, json.dumps), number, repeat)
        print(f"| {name} | {translated * 1e6:,.1f} µs | {fast * 1e6:,.1f} µs "
              f"| {slow * 1e6:,.1f} µs | {translated / fast:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
