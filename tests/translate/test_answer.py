"""Whole answers and error bodies translated both ways, parsed by the official SDKs' own
models so a shape the SDK would reject fails here first."""

from __future__ import annotations

import copy
from typing import Any

import anthropic.types
import openai.types.chat
import orjson
import pytest

from gateway.translate import (
    Untranslatable,
    anthropic_answer,
    anthropic_error,
    openai_answer,
    openai_error,
)
from tests.translate.payloads import ANTHROPIC_ANSWER, OPENAI_ANSWER


def test_anthropic_answer_as_openai() -> None:
    data = copy.deepcopy(ANTHROPIC_ANSWER)
    out = openai_answer(data, 1741569952)
    assert data == ANTHROPIC_ANSWER
    parsed = openai.types.chat.ChatCompletion.model_validate(out)
    choice = parsed.choices[0]
    assert (
        parsed.id == "msg_01XFDUDYJgAACzvnptvVoYEL" and parsed.model == "claude-haiku-4-5-20251001"
    )
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check tomorrow's forecast."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id == "toolu_01B"
    assert (call.function.name, orjson.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert parsed.usage is not None
    # Anthropic's input excludes cache reads; OpenAI's prompt count includes them.
    assert (
        parsed.usage.prompt_tokens,
        parsed.usage.completion_tokens,
        parsed.usage.total_tokens,
    ) == (512, 57, 569)
    assert (
        parsed.usage.prompt_tokens_details is not None
        and parsed.usage.prompt_tokens_details.cached_tokens == 100
    )


def test_openai_answer_as_anthropic() -> None:
    data = copy.deepcopy(OPENAI_ANSWER)
    out = anthropic_answer(data)
    assert data == OPENAI_ANSWER
    parsed = anthropic.types.Message.model_validate(out)
    assert parsed.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert parsed.stop_reason == "tool_use"
    text, tool = parsed.content
    assert text.type == "text" and text.text == "I'll check tomorrow's forecast."
    assert tool.type == "tool_use" and (tool.id, tool.name, tool.input) == (
        "call_def456",
        "get_weather",
        {"city": "Paris"},
    )
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (512, 57)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    answer = {**ANTHROPIC_ANSWER, "content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    assert openai_answer(answer, 0)["choices"][0]["finish_reason"] == finish
    choice = {
        **OPENAI_ANSWER["choices"][0],
        "finish_reason": finish,
        "message": {"role": "assistant", "content": "x"},
    }
    back = anthropic_answer({**OPENAI_ANSWER, "choices": [choice]})["stop_reason"]
    assert back == ("end_turn" if stop == "stop_sequence" else stop)


def test_refusal_and_empty_content() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    out = anthropic_answer({**OPENAI_ANSWER, "choices": [choice]})
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    empty = openai_answer({**ANTHROPIC_ANSWER, "content": [], "stop_reason": "end_turn"}, 0)
    assert empty["choices"][0]["message"]["content"] is None
    openai.types.chat.ChatCompletion.model_validate(empty)


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "thinking", "thinking": "hm", "signature": "s"}],
        [{"type": "server_tool_use", "id": "x", "name": "web_search", "input": {}}],
        [{"type": "text", "text": "x", "citations": [{"type": "web_search_result_location"}]}],
    ],
)
def test_anthropic_blocks_openai_cannot_carry(content: list[Any]) -> None:
    with pytest.raises(Untranslatable):
        openai_answer({**ANTHROPIC_ANSWER, "content": content}, 0)


@pytest.mark.parametrize(
    "change",
    [
        {"choices": []},
        {"choices": [OPENAI_ANSWER["choices"][0]] * 2},
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "audio": {"id": "a"}},
                    "finish_reason": "stop",
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{not json"},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "x"},
                    "finish_reason": "something_new",
                }
            ]
        },
    ],
)
def test_openai_answers_anthropic_cannot_carry(change: dict[str, Any]) -> None:
    with pytest.raises(Untranslatable):
        anthropic_answer({**OPENAI_ANSWER, **change})


def test_unknown_stop_reason_fails_closed() -> None:
    with pytest.raises(Untranslatable):
        openai_answer({**ANTHROPIC_ANSWER, "stop_reason": "brand_new"}, 0)


def test_error_bodies_both_ways() -> None:
    anthropic_body = (
        b'{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}'
    )
    assert orjson.loads(openai_error(anthropic_body, 400)) == {
        "error": {
            "message": "max_tokens: too big",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    openai_body = b'{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
    assert orjson.loads(anthropic_error(openai_body, 429)) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached"},
    }
    assert orjson.loads(anthropic_error(b"<html>bad gateway</html>", 413))["error"] == {
        "type": "request_too_large",
        "message": "The model provider answered HTTP 413.",
    }
