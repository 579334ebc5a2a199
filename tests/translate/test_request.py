"""Request bodies translated both ways: every content kind lands where the other API keeps
it, nothing unsupported passes silently, and the input is never mutated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.surfaces import anthropic_messages, openai_chat
from gateway.translate import (
    DEFAULT_MAX_TOKENS,
    anthropic_request,
    openai_request,
    translate_request,
)
from tests.translate.payloads import ANTHROPIC_REQUEST, OPENAI_REQUEST, PNG, WEATHER_SCHEMA


def test_openai_request_as_anthropic() -> None:
    body = copy.deepcopy(OPENAI_REQUEST)
    out = anthropic_request(body)
    assert body == OPENAI_REQUEST  # never mutated: a retry translates it again
    assert out == {
        "model": "gpt-4o-mini",
        "system": [{"type": "text", "text": "You are a weather bot."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the weather in Paris? Here is a map."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_abc123",
                        "name": "get_weather",
                        "input": {"city": "Paris", "unit": "c"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_abc123",
                        "content": "18 degrees, sunny",
                    },
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        "max_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": WEATHER_SCHEMA,
            }
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }


def test_anthropic_request_as_openai() -> None:
    body = copy.deepcopy(ANTHROPIC_REQUEST)
    out = openai_request({**body, "stream": True})
    assert body == ANTHROPIC_REQUEST
    assert out == {
        "model": "claude-haiku-4-5",
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the weather in Paris? Here is a map."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city":"Paris","unit":"c"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "18 degrees, sunny"},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},  # so message_delta carries real usage
        "user": "user-42",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER_SCHEMA,
                },
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
    }


def test_round_trip_keeps_the_conversation() -> None:
    there = openai_request(anthropic_request(OPENAI_REQUEST))
    assert [m["role"] for m in there["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert (
        there["messages"][2]["tool_calls"][0]["function"]["arguments"]
        == '{"city":"Paris","unit":"c"}'
    )
    assert there["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    back = anthropic_request(openai_request(ANTHROPIC_REQUEST))
    assert back["messages"] == ANTHROPIC_REQUEST["messages"]
    assert back["system"] == [{"type": "text", "text": "You are a weather bot."}]


def test_max_tokens_default_only_when_the_client_set_none() -> None:
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert anthropic_request(plain)["max_tokens"] == DEFAULT_MAX_TOKENS
    assert anthropic_request({**plain, "max_tokens": 7})["max_tokens"] == 7
    assert (
        anthropic_request({**plain, "max_completion_tokens": 9, "max_tokens": 7})["max_tokens"] == 9
    )


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", False, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "f"}},
            False,
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_both_ways(choice: Any, parallel: Any, expected: Any) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools,
            "tool_choice": choice, "parallel_tool_calls": parallel}  # fmt: skip
    out = anthropic_request(body)
    assert out.get("tool_choice") == expected
    back = openai_request(out)
    # No choice with parallel calls off reads back as "auto": OpenAI's default, said aloud.
    assert back.get("tool_choice") == (choice or "auto" if expected else None)
    assert back.get("parallel_tool_calls") == (
        False if parallel is False and choice != "none" else None
    )


def test_system_messages_anywhere_go_to_system_in_order() -> None:
    body = {"model": "m", "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "one"}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "two"},
        {"role": "user", "content": "again"},
    ]}  # fmt: skip
    out = anthropic_request(body)
    assert out["system"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    # The two user turns are adjacent once the system prompt left: merged, as Anthropic reads them.
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        }
    ]


def test_image_url_by_address() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}  # fmt: skip
    image = anthropic_request(body)["messages"][0]["content"][0]
    assert image == {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert openai_request(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [image]}]}
    )["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ]


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"n": 2}, "'n'"),
        ({"response_format": {"type": "json_object"}}, "'response_format'"),
        ({"frequency_penalty": 0.5}, "'frequency_penalty'"),
        ({"audio": {"voice": "alloy"}}, "'audio'"),
        ({"reasoning_effort": "high"}, "'reasoning_effort'"),
        ({"functions": [{"name": "f"}]}, "'functions'"),
        ({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "'messages[0].name'"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "'function' message"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "'input_audio' content part",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}
                ]
            },
            "'file' content part",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "image",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "arguments",
        ),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "'custom' tool"),
        (
            {
                "messages": [
                    {
                        "role": "system",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    },
                    *HI,
                ]
            },
            "image in a 'system' message",
        ),
    ],
)
def test_openai_constructs_without_an_anthropic_form_are_refused(
    body: dict[str, Any], named: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_request({"model": "m", "messages": HI, **body})
    assert caught.value.reason.code == "translate.unsupported"
    assert caught.value.status == 400
    assert named in caught.value.message and "Anthropic Messages API" in caught.value.message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"top_k": 5}, "'top_k'"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "'thinking'"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "'web_search_20250305' tool",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "'document' block",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x", "citations": [{"type": "char_location"}]}
                        ],
                    }
                ]
            },
            "citations",
        ),
        (
            {
                "messages": [
                    *HI,
                    {
                        "role": "assistant",
                        "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
                    },
                    *HI,
                ]
            },
            "'thinking' block",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {}}],
                            }
                        ],
                    }
                ]
            },
            "'image' block",
        ),
        ({"metadata": {"user_id": "u", "other": 1}}, "'metadata.other'"),
        (
            {"tool_choice": {"type": "bogus"}, "tools": [{"name": "f", "input_schema": {}}]},
            "tool_choice",
        ),
        ({"messages": [*HI, {"role": "assistant", "content": "The answer is"}]}, "prefill"),
    ],
)
def test_anthropic_constructs_without_an_openai_form_are_refused(
    body: dict[str, Any], named: str
) -> None:
    with pytest.raises(GatewayError) as caught:
        openai_request({"model": "m", "max_tokens": 5, "messages": HI, **body})
    assert caught.value.reason.code == "translate.unsupported"
    assert named in caught.value.message and "OpenAI Chat Completions API" in caught.value.message


def test_ignored_fields_carry_no_content() -> None:
    # Kept out of the Anthropic request on purpose (README lists them): no content, no effect.
    body = {"model": "m", "messages": HI, "store": False, "metadata": {"tag": "x"}, "seed": 1,
            "logprobs": True, "top_logprobs": 2, "stream_options": {"include_usage": True},
            "service_tier": "auto", "n": 1, "presence_penalty": 0, "response_format": {"type": "text"}}  # fmt: skip
    assert anthropic_request(body) == {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                       "max_tokens": DEFAULT_MAX_TOKENS}  # fmt: skip


def test_translate_request_from_what_the_surfaces_parsed() -> None:
    parsed = openai_chat.parse(
        b'{"model": "claude-x", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
    )
    out = translate_request(parsed)
    assert (out.api, out.model, out.stream, out.max_tokens) == (
        "anthropic_messages",
        "claude-x",
        True,
        DEFAULT_MAX_TOKENS,
    )
    assert out.body["stream"] is True
    parsed = anthropic_messages.parse(
        b'{"model": "gpt-x", "max_tokens": 12, "messages": [{"role": "user", "content": "hi"}]}'
    )
    out = translate_request(parsed)
    assert (out.api, out.model, out.stream, out.max_tokens) == ("openai_chat", "gpt-x", False, 12)


def test_malformed_parts_the_surface_did_not_read_are_invalid_not_a_crash() -> None:
    parsed = openai_chat.parse(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}'
    )
    with pytest.raises(GatewayError) as caught:
        translate_request(parsed)
    assert caught.value.reason.code == "request.invalid"


def test_a_mid_conversation_system_message_stays_a_system_message() -> None:
    """Claude Code sends ``{"role": "system"}`` inside ``messages``; served by OpenAI it is
    a system message there too, never an assistant turn."""
    for content in ("be brief", [{"type": "text", "text": "be brief"}]):
        body = {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": content},
                {"role": "user", "content": "go"},
            ],
        }
        assert openai_request(body)["messages"] == [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "go"},
        ]
