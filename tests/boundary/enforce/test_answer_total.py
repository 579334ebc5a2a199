"""The answer side is total under ``scan_output``: every channel that carries text back is
inspected or dropped (logprobs, tool names, error chunks, SSE comments and ids, citations,
``message_start``, thinking), checked on the bytes the client receives."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import orjson

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream, RawStream, Reply
from tests.support.placeholders import keyed

EMAIL = "jane.doe@acme-corp.com"
MASKED = keyed("act_mask", "EMAIL_ADDRESS", EMAIL)


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(data) + "\n\n").encode()


def _chunk(choice: dict[str, Any], **extra: Any) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-up"}
    return _sse({**body, "choices": [{"index": 0, "finish_reason": None, **choice}], **extra})


def _ask(gw: Gateway, workflow: str, api: str, stream: bool, **extra: Any) -> httpx2.Response:
    path = "/chat/completions" if api == "openai" else "/messages"
    body: dict[str, Any] = {
        "model": "gpt-test" if api == "openai" else "claude-test",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **extra,
    }
    headers = {"authorization": f"Bearer {gw.analyst_key}"}
    if api == "anthropic":
        body["max_tokens"] = 100
        headers["anthropic-version"] = "2023-06-01"
    return httpx2.post(f"{gw.url}/w/{workflow}/v1{path}", json=body, headers=headers)


def test_whole_answer_logprobs_are_dropped_when_the_text_was_masked(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply(f"mail {EMAIL} now"), Reply("nothing to hide"))
    masked = _ask(guarded, "act_mask", "openai", False, logprobs=True).json()
    assert masked["choices"][0]["message"]["content"] == f"mail {MASKED} now"
    assert masked["choices"][0]["logprobs"] is None
    kept = _ask(guarded, "act_mask", "openai", False, logprobs=True).json()
    assert kept["choices"][0]["logprobs"]["content"][0]["token"] == "nothing "


def test_openai_stream_channels_nobody_modelled_are_inspected(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    logprobs = {"content": [{"token": EMAIL, "logprob": -0.1, "bytes": list(EMAIL.encode())}]}
    call = {"index": 0, "id": "call_1", "type": "function"}
    events = (
        b": keep-alive " + EMAIL.encode() + b"\n\n",
        b"id: " + EMAIL.encode() + b"\n" + _chunk({"delta": {"role": "assistant"}}),
        _chunk({"delta": {"content": f"hi {EMAIL}"}, "logprobs": logprobs}, note=EMAIL),
        _chunk({"delta": {"tool_calls": [{**call, "function": {"name": EMAIL, "arguments": ""}}]}}),
        _sse({"error": {"message": f"failed for {EMAIL}", "type": "server_error"}}),
        b"data: [DONE]\n\n",
    )
    upstream.script("gpt-up", RawStream(events))
    response = _ask(guarded, "act_mask", "openai", True)
    assert response.status_code == 200
    text = response.text
    assert EMAIL not in text and "jane.doe" not in text
    assert ": keep-alive" not in text and "\nid:" not in text and not text.startswith("id:")
    assert f'"note":"{MASKED}"' in text
    assert f"failed for {MASKED}" in text
    assert '"logprobs":null' in text


def _message(**extra: Any) -> dict[str, Any]:
    return {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
        **extra,
    }


def _anthropic_events(*middle: bytes, **start: Any) -> RawStream:
    return RawStream(
        (
            b": comment " + EMAIL.encode() + b"\n\n",
            _sse({"type": "message_start", "message": _message(**start)}, "message_start"),
            *middle,
            _sse(
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        )
    )


def _block(index: int, block: dict[str, Any], *deltas: dict[str, Any]) -> list[bytes]:
    out = [_sse({"type": "content_block_start", "index": index, "content_block": block})]
    out += [_sse({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    return [*out, _sse({"type": "content_block_stop", "index": index})]


def test_anthropic_stream_channels_nobody_modelled_are_inspected(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    citation = {
        "type": "citations_delta",
        "citation": {"type": "char_location", "cited_text": f"by {EMAIL}", "document_index": 0},
    }
    text = _block(0, {"type": "text", "text": ""}, {"type": "text_delta", "text": "ok"}, citation)
    tool = _block(1, {"type": "tool_use", "id": "t", "name": EMAIL, "input": {}})
    upstream.script("claude-up", _anthropic_events(*text, *tool, container={"note": EMAIL}))
    response = _ask(guarded, "act_mask", "anthropic", True)
    assert response.status_code == 200
    assert EMAIL not in response.text and ": comment" not in response.text
    assert f"by {MASKED}" in response.text
    assert f'"name":"{MASKED}"' in response.text


def test_anthropic_thinking_is_relayed_as_signed_or_ends_the_stream(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    def thinking(words: str) -> list[bytes]:
        return _block(
            0,
            {"type": "thinking", "thinking": ""},
            {"type": "thinking_delta", "thinking": words[:7]},
            {"type": "thinking_delta", "thinking": words[7:]},
            {"type": "signature_delta", "signature": "EqQBsig=="},
        )

    clean = thinking("Let me consider the greeting.")
    upstream.script("claude-up", _anthropic_events(*clean), _anthropic_events(*thinking(EMAIL)))
    relayed = _ask(guarded, "act_mask", "anthropic", True)
    for event in clean:
        assert event.decode().split("data: ")[1] in relayed.text  # byte-identical
    ended = _ask(guarded, "act_mask", "anthropic", True)
    assert "jane.doe" not in ended.text
    assert "boundary.blocked_output" in ended.text
    upstream.script("claude-up", _anthropic_events(*clean))
    refused = _ask(guarded, "no_thinking", "anthropic", True)
    assert "boundary.thinking_refused" in refused.text
    assert "Let me" not in refused.text


def test_whole_anthropic_thinking_with_a_finding_is_refused(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    block = {"type": "thinking", "thinking": f"mail {EMAIL}", "signature": "sig"}
    body = orjson.dumps(
        {**_message(content=[block, {"type": "text", "text": "ok"}]), "stop_reason": "end_turn"}
    )
    upstream.script("claude-up", RawStream((body,)))
    response = _ask(guarded, "act_mask", "anthropic", False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "boundary.blocked_output"
    assert "jane.doe" not in response.text
