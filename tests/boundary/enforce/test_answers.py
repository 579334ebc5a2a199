"""Answers through the gateway with both SDKs: tokens restored for their caller only, output
findings handled, streams held back so split entities and tokens are caught."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream, InvalidJson, RawStream, Reply, ToolCall
from tests.support.placeholders import keyed

EMAIL = "jane.doe@acme-corp.com"
CARD = "4111 1111 1111 1111"


def _token(gw: Gateway, upstream: FakeUpstream, workflow: str, key: str | None = None) -> str:
    """The token ``workflow`` mints for EMAIL, read from what reached the upstream."""
    gw.openai(workflow, key).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
    )
    (token,) = re.findall(
        r"<EMAIL_ADDRESS#[a-z2-7]{12}>", upstream.received[-1].body["messages"][0]["content"]
    )
    return token


def test_token_is_stable_and_restored_only_for_its_caller_and_workflow(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    token = _token(guarded, upstream, "tokens_a")
    assert _token(guarded, upstream, "tokens_a") == token  # same value, same workflow
    assert _token(guarded, upstream, "tokens_b") != token  # keyed by workflow
    answer = f"I wrote to {token}."
    upstream.script("gpt-up", Reply(answer), Reply(answer), Reply(answer))
    ask = [{"role": "user", "content": "who did you write to?"}]
    mine = guarded.openai("tokens_a").chat.completions.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert mine.choices[0].message.content == f"I wrote to {EMAIL}."
    other_workflow = guarded.openai("tokens_b").chat.completions.create(
        model="gpt-test", messages=ask
    )  # type: ignore[arg-type]
    assert other_workflow.choices[0].message.content == answer
    other_caller = guarded.openai("tokens_a", guarded.ops_key).chat.completions.create(
        model="gpt-test",
        messages=ask,  # type: ignore[arg-type]
    )
    assert other_caller.choices[0].message.content == answer


def test_anthropic_answer_tokens_restored_and_output_masked(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    raw = guarded.anthropic("tokens_a").messages.with_raw_response.create(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": f"mail {EMAIL}"}]
    )
    assert EMAIL not in str(upstream.received[0].body)
    assert raw.parse().content[0].text == f"echo: mail {EMAIL}"  # type: ignore[union-attr]
    upstream.script("claude-up", Reply("call me on +44 20 7946 0958"))
    raw = guarded.anthropic("guarded").messages.with_raw_response.create(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    phone = keyed("guarded", "PHONE_NUMBER", "+44 20 7946 0958")
    assert raw.parse().content[0].text == f"call me on {phone}"  # type: ignore[union-attr]
    assert raw.headers["x-gateway-decision"] == "masked"


def test_blocked_entity_in_a_complete_answer_is_refused(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply(f"your card is {CARD}"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        guarded.openai("guarded").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "boundary.blocked_output"
    assert CARD not in str(caught.value.response.text)


def _split_everywhere(text: str, size: int) -> tuple[str, ...]:
    return tuple(text[i : i + size] for i in range(0, len(text), size))


@pytest.mark.parametrize("size", [1, 3, 7])
def test_openai_stream_restores_a_token_split_across_chunks(
    guarded: Gateway, upstream: FakeUpstream, size: int
) -> None:
    token = _token(guarded, upstream, "tokens_a")
    text = f"Sure, I will write to {token} today."
    upstream.script("gpt-up", Reply(pieces=_split_everywhere(text, size)))
    stream = guarded.openai("tokens_a").chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": f"mail {EMAIL}"}],
        stream=True,
    )
    got = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert got == f"Sure, I will write to {EMAIL} today."


def test_anthropic_stream_restores_and_masks_split_values(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script(
        "claude-up",
        Reply(pieces=("ring +44 20 79", "46 0958 or ", "mail jane.doe@", "acme-corp.com", " bye")),
    )
    with guarded.anthropic("guarded").messages.stream(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        got = "".join(stream.text_stream)
    phone = keyed("guarded", "PHONE_NUMBER", "+44 20 7946 0958")
    assert got == f"ring {phone} or mail {keyed('guarded', 'EMAIL_ADDRESS', EMAIL)} bye"
    token = _token(guarded, upstream, "tokens_a")
    upstream.script("claude-up", Reply(pieces=("to ", token[:9], token[9:], "!")))
    with guarded.anthropic("tokens_a").messages.stream(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == f"to {EMAIL}!"


def test_blocked_entity_split_across_chunks_ends_the_stream_with_an_error(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    pieces = (
        "Your card: 4111 11",
        "11 1111 ",
        "1111, thanks",
        " and more text to flush the window " * 3,
    )
    upstream.script("gpt-up", Reply(pieces=pieces))
    stream = guarded.openai("guarded").chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    seen: list[str] = []

    def drain() -> None:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "" if chunk.choices else "")

    with pytest.raises(openai.APIError) as caught:
        drain()
    assert "boundary.blocked_output" in str(caught.value.body)
    assert "1111" not in "".join(seen)
    upstream.script("claude-up", Reply(pieces=pieces))
    texts: list[str] = []

    def drain_anthropic() -> None:
        with guarded.anthropic("guarded").messages.stream(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as astream:
            texts.extend(astream.text_stream)

    with pytest.raises(anthropic.APIStatusError) as refused:
        drain_anthropic()
    assert "1111" not in "".join(texts)
    assert "boundary.blocked_output" in str(refused.value.body)


def test_unknown_stream_shape_fails_closed(guarded: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", InvalidJson())
    stream = guarded.openai("guarded").chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "boundary.unknown_answer_shape" in str(caught.value.body)


def test_stream_without_findings_is_relayed_whole(guarded: Gateway, upstream: FakeUpstream) -> None:
    text = "version 1.2.3 shipped on 2024-03-01 for order 1234-5678 " * 4
    upstream.script("gpt-up", Reply(pieces=_split_everywhere(text, 5)))
    stream = guarded.openai("guarded").chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call_arguments_get_tokens_restored(
    guarded: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    token = _token(guarded, upstream, "tokens_a")
    arguments = json.dumps({"to": token, "subject": "hi"}, separators=(",", ":"))
    upstream.script("gpt-up", ToolCall("send_mail", _split_everywhere(arguments, 4)))
    ask = [{"role": "user", "content": "mail them"}]
    client = guarded.openai("tokens_a")
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-test", messages=ask, stream=True))  # type: ignore[arg-type]
        got = "".join(
            (c.choices[0].delta.tool_calls or [])[0].function.arguments or ""  # type: ignore[union-attr]
            for c in chunks
            if c.choices and c.choices[0].delta.tool_calls
        )
    else:
        answer = client.chat.completions.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
        got = answer.choices[0].message.tool_calls[0].function.arguments  # type: ignore[index, union-attr]
    assert json.loads(got) == {"to": EMAIL, "subject": "hi"}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_input_gets_tokens_restored(
    guarded: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    token = _token(guarded, upstream, "tokens_a")
    arguments = json.dumps({"to": token, "cc": [token]})
    upstream.script("claude-up", ToolCall("send_mail", _split_everywhere(arguments, 5)))
    client = guarded.anthropic("tokens_a")
    ask = [{"role": "user", "content": "mail them"}]
    if stream:
        with client.messages.stream(model="claude-test", max_tokens=50, messages=ask) as s:  # type: ignore[arg-type]
            message = s.get_final_message()
    else:
        message = client.messages.create(model="claude-test", max_tokens=50, messages=ask)  # type: ignore[arg-type]
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.input == {"to": EMAIL, "cc": [EMAIL]}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_streamed_requests_are_masked_and_answers_restored(
    guarded: Gateway, upstream: FakeUpstream, api: str
) -> None:
    text = f"mail {EMAIL} or ring +44 20 7946 0958"
    if api == "openai":
        stream = guarded.openai("act_tokenize").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": text}], stream=True
        )
        got = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    else:
        with guarded.anthropic("act_tokenize").messages.stream(
            model="claude-test", max_tokens=50, messages=[{"role": "user", "content": text}]
        ) as s:
            got = "".join(s.text_stream)
    sent = json.dumps(upstream.received[0].body)
    assert EMAIL not in sent and "7946" not in sent and upstream.received[0].body["stream"] is True
    assert got == f"echo: {text}"  # the fake echoed tokens; the caller gets the values back


def test_shadow_mode_answers_pass_unchanged_and_are_recorded(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply(f"card {CARD}"), Reply("ring +44 20 7946 0958"))
    ask = [{"role": "user", "content": "hi"}]
    client = guarded.openai("guarded_shadow")
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == f"card {CARD}"
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.would_block"
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content == "ring +44 20 7946 0958"
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.would_mask"
    pieces = ("card 4111 11", "11 1111 1111", " and a phone +44 20 7946 0958 " * 3)
    upstream.script("claude-up", Reply(pieces=pieces))
    with guarded.anthropic("guarded_shadow").messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "".join(pieces)


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    return (
        (f"event: {event}\n" if event else "").encode()
        + b"data: "
        + json.dumps(data).encode()
        + b"\n\n"
    )


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _sse(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-up",
            "choices": [choice],
        }
    )


def test_openai_stream_with_an_unknown_delta_field_fails_closed(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    events = (
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"audio": {"transcript": f"mail {EMAIL}"}}),
        b"data: [DONE]\n\n",
    )
    upstream.script("gpt-up", RawStream(events))
    stream = guarded.openai("guarded").chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert "boundary.unknown_answer_shape" in str(caught.value.body)


def test_anthropic_block_starting_with_content_fails_closed(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    message = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    block = {
        "type": "web_search_tool_result",
        "tool_use_id": "s",
        "content": [{"type": "web_search_result", "title": EMAIL, "url": "https://x.example"}],
    }
    events = (
        _sse({"type": "message_start", "message": message}, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": block},
            "content_block_start",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    )
    upstream.script("claude-up", RawStream(events))

    def drain() -> None:
        with guarded.anthropic("guarded").messages.stream(
            model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            list(stream.text_stream)

    with pytest.raises(anthropic.APIStatusError) as caught:
        drain()
    assert "boundary.unknown_answer_shape" in str(caught.value.body)


def test_deprecated_function_call_stream_gets_tokens_restored(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    token = _token(guarded, upstream, "tokens_a")
    arguments = json.dumps({"to": token})
    half = len(arguments) // 2
    events = (
        _chunk(
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "send", "arguments": ""},
            }
        ),
        _chunk({"function_call": {"arguments": arguments[:half]}}),
        _chunk({"function_call": {"arguments": arguments[half:]}}),
        _chunk({}, "function_call"),
        b"data: [DONE]\n\n",
    )
    upstream.script("gpt-up", RawStream(events))
    stream = guarded.openai("tokens_a").chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    got = "".join(
        c.choices[0].delta.function_call.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.function_call
    )
    assert json.loads(got) == {"to": EMAIL}
