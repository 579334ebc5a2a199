"""The surfaces own the wire: steps never name an API, one error table per API, and an
answer read once gives every step what it needs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import gateway
from gateway.errors import REQUEST_INVALID, GatewayError, Reason
from gateway.surfaces import ANTHROPIC, OPENAI, SURFACES, surface_for, surface_of
from gateway.translate import anthropic_error, openai_error

# The steps: none may know which API a request came in.
STEPS = [
    "access.py",
    "audit/retention.py",
    "boundary/answer.py",
    "boundary/stream.py",
    "fallback/answer.py",
    "fallback/chain.py",
    "limits/step.py",
    "quality/read.py",
    "upstream/usage.py",
    "pipeline.py",
]


@pytest.mark.parametrize("path", STEPS)
def test_steps_never_name_an_api(path: str) -> None:
    source = (Path(gateway.__file__).parent / path).read_text()
    for api in SURFACES:
        assert f'"{api}"' not in source
    assert "api ==" not in source and "api !=" not in source


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504, 529])
def test_one_error_table_for_own_and_upstream_errors(status: int) -> None:
    err = GatewayError(Reason("test.status", status, "m"))
    own = orjson.loads(OPENAI.error_body(err, "r"))["error"]["type"]
    assert orjson.loads(openai_error(b"{}", status))["error"]["type"] == own
    own = orjson.loads(ANTHROPIC.error_body(err, "r"))["error"]["type"]
    assert orjson.loads(anthropic_error(b"{}", status))["error"]["type"] == own


def test_registry_and_routing() -> None:
    assert surface_of("openai_chat") is OPENAI and surface_of("anthropic_messages") is ANTHROPIC
    assert surface_for("/w/x/v1/messages", {}) is ANTHROPIC
    assert surface_for("/v1/chat/completions", {"anthropic-version": "1"}) is OPENAI
    assert surface_for("/v1/models", {"anthropic-version": "1"}) is ANTHROPIC
    assert surface_for("/v1/models", {}) is OPENAI
    request = OPENAI.parse(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
    assert surface_of(request) is OPENAI


def test_openai_answer_read_once() -> None:
    body = orjson.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "hello",
                        "tool_calls": [{"function": {"name": "f", "arguments": '{"a": "x"}'}}],
                    },
                    "logprobs": {"content": [{"logprob": -0.5}, {"logprob": -1.5}]},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    )
    answer = OPENAI.read_answer(body, strip_logprobs=True)
    assert (answer.tokens_in, answer.tokens_out) == (3, 2)
    assert [(c.text, c.logprobs) for c in answer.choices] == [("hello", [-0.5, -1.5])]
    assert sorted((s.kind, s.text) for s in answer.texts) == [
        ("content", "hello"),
        ("field", "f"),  # the tool's name: text the model wrote
        ("tool_arguments", "a"),  # a key is text too (after its value)
        ("tool_arguments", "x"),
    ]
    next(s for s in answer.texts if s.kind == "tool_arguments").replace("y")
    out = orjson.loads(answer.body())["choices"][0]
    assert out["logprobs"] is None  # stripped: the client had not asked
    assert orjson.loads(out["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": "y"}


def test_anthropic_answer_read_once() -> None:
    body = ANTHROPIC.answer_body("msg_1", "m", "hi there", 4, 5)
    answer = ANTHROPIC.read_answer(body)
    assert (answer.tokens_in, answer.tokens_out, answer.unreadable) == (4, 5, None)
    assert [c.text for c in answer.choices] == ["hi there"]
    assert answer.body() is body  # unchanged: never serialized again
    assert ANTHROPIC.read_answer(b'{"content": [{"type": "audio"}]}').unreadable is not None


def test_stream_usage_read_once_and_the_extra_chunk_known() -> None:
    request = OPENAI.parse(
        b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    )
    assert OPENAI.ask_usage_in_stream(request) is True  # the client had not asked
    assert OPENAI.ask_usage_in_stream(request) is False
    events = OPENAI.answer_events(request, "c", "m", ["a ", "b"], 7, 2)
    reader = OPENAI.stream_reader(texts=False)
    flags = []
    for event in events:
        assert reader.read(event) is event
        flags.append(reader.usage_only)
    assert flags == [False] * (len(events) - 2) + [True, False]
    assert (reader.tokens_in, reader.tokens_out) == (7, 2)
    texts = OPENAI.stream_reader(texts=True)
    for event in events:
        texts.read(event)
    assert texts.done and texts.choices[0].parts == ["", "a ", "b"]


def test_knobs_stay_on_their_api() -> None:
    chat = OPENAI.parse(
        b'{"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}'
    )
    assert OPENAI.set_output_ceiling(chat, 20) and chat.body["max_tokens"] == 20
    OPENAI.ask_no_store(chat)
    assert chat.body["store"] is False
    assert OPENAI.ask_logprobs(chat) and chat.body["logprobs"] is True
    messages = ANTHROPIC.parse(
        b'{"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}'
    )
    before = dict(messages.body)
    ANTHROPIC.ask_no_store(messages)
    assert not ANTHROPIC.ask_logprobs(messages) and not ANTHROPIC.ask_usage_in_stream(messages)
    assert messages.body == before
    assert ANTHROPIC.output_ceilings(messages) == [("max_tokens", 50)]


def test_parse_errors_render_in_each_shape() -> None:
    err = GatewayError(REQUEST_INVALID)
    assert (
        orjson.loads(OPENAI.stream_error(err, "r")[6:])["error"]["type"] == "invalid_request_error"
    )
    assert ANTHROPIC.stream_error(err, "r").startswith(b"event: error\n")
