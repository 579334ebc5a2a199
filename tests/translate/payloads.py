"""Real-shaped wire payloads, as the OpenAI and Anthropic APIs document and send them.

The streams are the providers' event sequences for one answer with text and a tool call,
frame for frame (``event:`` lines, ``ping``, usage where each API puts it).
"""

from __future__ import annotations

from typing import Any

import orjson

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}

OPENAI_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather in Paris? Here is a map."},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris", "unit": "c"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": "18 degrees, sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_SCHEMA,
                "strict": False,
            },
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END"],
    "max_completion_tokens": 300,
    "user": "user-42",
    "store": False,
}

ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-haiku-4-5",
    "max_tokens": 300,
    "system": [
        {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}
    ],
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
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "c"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18 degrees, sunny"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_SCHEMA,
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 0.2,
    "top_p": 0.9,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user-42"},
}

ANTHROPIC_ANSWER: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [
        {"type": "text", "text": "I'll check tomorrow's forecast."},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 412,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
        "output_tokens": 57,
        "service_tier": "standard",
    },
}

OPENAI_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll check tomorrow's forecast.",
                "refusal": None,
                "annotations": [],
                "tool_calls": [
                    {
                        "id": "call_def456",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 512,
        "completion_tokens": 57,
        "total_tokens": 569,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}


def _named(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def anthropic_stream(texts: list[str], tool_pieces: list[str]) -> list[bytes]:
    """A streamed Anthropic message: one text block of ``texts``, then one tool_use block
    whose input arrives as ``tool_pieces``."""
    message = {**ANTHROPIC_ANSWER, "content": [], "stop_reason": None,
               "usage": {"input_tokens": 412, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 100, "output_tokens": 1}}  # fmt: skip
    events = [
        _named("message_start", {"type": "message_start", "message": message}),
        _named(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _named("ping", {"type": "ping"}),
    ]
    events += [
        _named(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    ]
    events.append(_named("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool_pieces:
        block = {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}}
        events.append(
            _named(
                "content_block_start",
                {"type": "content_block_start", "index": 1, "content_block": block},
            )
        )
        events += [
            _named(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in tool_pieces
        ]
        events.append(_named("content_block_stop", {"type": "content_block_stop", "index": 1}))
    stop = "tool_use" if tool_pieces else "end_turn"
    events += [
        _named(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 57},
            },
        ),
        _named("message_stop", {"type": "message_stop"}),
    ]
    return events


def openai_stream(
    texts: list[str], tool_pieces: list[str], include_usage: bool = True
) -> list[bytes]:
    """A streamed OpenAI completion: content deltas, then one tool call's argument deltas,
    the finish chunk and (with include_usage) the usage chunk before ``[DONE]``."""
    base = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
            "created": 1741569952, "model": "gpt-4o-mini-2024-07-18", "service_tier": "default",
            "system_fingerprint": "fp_06737a9306"}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**base, "choices": [choice], "usage": None}) + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": t}) for t in texts]
    if tool_pieces:
        first = {
            "index": 0,
            "id": "call_def456",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        events.append(chunk({"tool_calls": [first]}))
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in tool_pieces
        ]
    events.append(chunk({}, "tool_calls" if tool_pieces else "stop"))
    if include_usage:
        usage = {"prompt_tokens": 512, "completion_tokens": 57, "total_tokens": 569}
        events.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    return [*events, b"data: [DONE]\n\n"]
