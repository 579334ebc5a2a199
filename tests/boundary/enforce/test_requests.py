"""Requests through the gateway with both SDKs: what reached the fake upstream, per action,
entity type and field kind; refusals name entity types and counts, never values."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import openai
import pytest

from tests.boundary.enforce.conftest import MAIN
from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream, Reply

SAMPLES = {
    "EMAIL_ADDRESS": "jane.doe@acme-corp.com",
    "PHONE_NUMBER": "+44 20 7946 0958",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "US_SSN": "536-22-8947",
    "IBAN_CODE": "DE89 3704 0044 0532 0130 00",
    "IP_ADDRESS": "203.0.113.42",
    "SECRET": "AKIAZ7Q3XJ2LMNP4RT6W",
}
EMAIL = SAMPLES["EMAIL_ADDRESS"]


def _ask(gw: Gateway, workflow: str, text: str) -> Any:
    return gw.openai(workflow).chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": text}]
    )


def _converse(gw: Gateway, workflow: str, text: str, api: str, stream: bool) -> tuple[str, str]:
    """The answer text and the decision header, through ``api``'s SDK, streamed or not."""
    messages = [{"role": "user", "content": text}]
    if api == "openai":
        completions = gw.openai(workflow).chat.completions
        if not stream:
            raw = completions.with_raw_response.create(model="gpt-test", messages=messages)  # type: ignore[arg-type]
            return raw.parse().choices[0].message.content or "", raw.headers["x-gateway-decision"]
        with completions.with_streaming_response.create(
            model="gpt-test",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            chunks = response.parse()
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return answer, response.headers["x-gateway-decision"]
    messages_api = gw.anthropic(workflow).messages
    if not stream:
        raw = messages_api.with_raw_response.create(
            model="claude-test",
            max_tokens=100,
            messages=messages,  # type: ignore[arg-type]
        )
        return raw.parse().content[0].text, raw.headers["x-gateway-decision"]  # type: ignore[union-attr]
    with messages_api.stream(model="claude-test", max_tokens=100, messages=messages) as s:  # type: ignore[arg-type]
        return "".join(s.text_stream), s.response.headers["x-gateway-decision"]


@pytest.mark.parametrize("entity", MAIN)
@pytest.mark.parametrize("action", ["mask", "redact", "tokenize"])
@pytest.mark.parametrize(
    ("api", "stream"),
    [("openai", False), ("openai", True), ("anthropic", False), ("anthropic", True)],
)
def test_each_action_for_each_entity_type(
    guarded: Gateway, upstream: FakeUpstream, entity: str, action: str, api: str, stream: bool
) -> None:
    value = SAMPLES[entity]
    answer, decision = _converse(
        guarded, f"act_{action}", f"Please check {value} and {value} again.", api, stream
    )
    (sent,) = upstream.received
    assert sent.body.get("stream", False) is stream
    text = sent.body["messages"][0]["content"]
    assert value not in text
    if action == "mask":
        assert text == f"Please check <{entity}_1> and <{entity}_1> again."
    elif action == "redact":
        assert text == "Please check [REDACTED] and [REDACTED] again."
    else:
        (token,) = set(re.findall(rf"<{entity}#[a-z2-7]{{12}}>", text))
        assert text == f"Please check {token} and {token} again."
    assert decision == "masked"
    # The fake echoes what it received; a token comes back to the caller as the value.
    expected = (
        f"echo: Please check {value} and {value} again."
        if action == "tokenize"
        else f"echo: {text}"
    )
    assert answer == expected


@pytest.mark.parametrize("entity", MAIN)
def test_block_refuses_naming_types_and_counts_not_values(
    guarded: Gateway, upstream: FakeUpstream, entity: str
) -> None:
    value = SAMPLES[entity]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _ask(guarded, "act_block", f"{value}, and mail {EMAIL} / {EMAIL}")
    assert caught.value.code == "boundary.blocked_entity"
    message = str(caught.value)
    assert value not in message and EMAIL not in message
    counts = {"EMAIL_ADDRESS": 2, entity: 1} if entity != "EMAIL_ADDRESS" else {entity: 3}
    expected = ", ".join(f"{e} x{n}" for e, n in sorted(counts.items()))
    assert expected in message
    assert (
        caught.value.response.headers["x-gateway-decision"]
        == "deny; reason=boundary.blocked_entity"
    )
    assert upstream.received == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("the PRJ-12345 numbers", "boundary.blocked_entity"),
        ("about project nightingale", "boundary.blocked_entity"),
        ("pay with 4111-1111-1111-1111", "boundary.blocked_entity"),
    ],
)
def test_custom_recognizers_and_deny_terms_block(
    guarded: Gateway, upstream: FakeUpstream, text: str, code: str
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _ask(guarded, "guarded", text)
    assert caught.value.code == code
    assert upstream.received == []


def test_allow_listed_value_passes_untouched(guarded: Gateway, upstream: FakeUpstream) -> None:
    raw = _ask(guarded, "guarded", f"write to help@example.com, not {EMAIL}")
    assert upstream.received[0].body["messages"][0]["content"] == (
        "write to help@example.com, not <EMAIL_ADDRESS_1>"
    )
    assert raw.headers["x-gateway-decision"] == "masked"


def test_clean_request_is_forwarded_as_sent(guarded: Gateway, upstream: FakeUpstream) -> None:
    raw = _ask(guarded, "guarded", "order 1234-5678 shipped on 2024-03-01, v1.2.3")
    assert upstream.received[0].body["messages"][0]["content"] == (
        "order 1234-5678 shipped on 2024-03-01, v1.2.3"
    )
    assert raw.headers["x-gateway-decision"] == "allow"


def _rewritten(action: str, body: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """``body`` with every occurrence of EMAIL handled by ``action``, as it must be forwarded."""
    if action == "tokenize":
        substitute = re.findall(r"<EMAIL_ADDRESS#[a-z2-7]{12}>", json.dumps(sent))[0]
    else:
        substitute = {"mask": "<EMAIL_ADDRESS_1>", "redact": "[REDACTED]"}[action]
    return json.loads(json.dumps(body).replace(EMAIL, substitute))


FIELD_ACTIONS = ["mask", "redact", "tokenize", "block"]


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@pytest.mark.parametrize("action", FIELD_ACTIONS)
def test_openai_every_text_field_kind_is_handled_and_nothing_else_changes(
    guarded: Gateway, upstream: FakeUpstream, action: str
) -> None:
    messages = [
        {"role": "system", "content": f"Escalate to {EMAIL}."},
        {"role": "developer", "content": [{"type": "text", "text": f"cc {EMAIL}"}]},
        {"role": "user", "content": [{"type": "text", "text": f"I am {EMAIL}"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "arguments": _compact({"who": {"mail": EMAIL}, "n": 3}),
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"found {EMAIL} in CRM"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": f"Look a customer up, e.g. {EMAIL}",
                "parameters": {
                    "type": "object",
                    "properties": {"mail": {"type": "string", "description": f"like {EMAIL}"}},
                },
            },
        }
    ]

    def create() -> Any:
        return guarded.openai(f"act_{action}").chat.completions.with_raw_response.create(
            model="gpt-test",
            messages=messages,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[arg-type]
            temperature=0.5,
        )

    if action == "block":
        with pytest.raises(openai.PermissionDeniedError, match="EMAIL_ADDRESS x7"):
            create()
        assert upstream.received == []
        return
    raw = create()
    (sent,) = upstream.received
    assert EMAIL not in json.dumps(sent.body)
    original = {"model": "gpt-up", "messages": messages, "tools": tools, "temperature": 0.5}
    original["store"] = False  # retention.upstream_store defaults to false (not the boundary)
    assert sent.body == _rewritten(action, original, sent.body)
    assert raw.headers["x-gateway-decision"] == "masked"


@pytest.mark.parametrize("action", FIELD_ACTIONS)
def test_anthropic_every_text_field_kind_is_handled_and_nothing_else_changes(
    guarded: Gateway, upstream: FakeUpstream, action: str
) -> None:
    system = [
        {"type": "text", "text": f"Escalate to {EMAIL}.", "cache_control": {"type": "ephemeral"}}
    ]
    messages = [
        {"role": "user", "content": f"I am {EMAIL}"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking up."},
                {
                    "type": "tool_use",
                    "id": "tu_1",
                    "name": "lookup",
                    "input": {"who": [{"mail": EMAIL}], "n": 3},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "tu_1", "content": f"found {EMAIL}"},
                {
                    "type": "tool_result",
                    "tool_use_id": "tu_1",
                    "content": [{"type": "text", "text": f"also {EMAIL}"}],
                },
                {
                    "type": "document",
                    "source": {
                        "type": "text",
                        "media_type": "text/plain",
                        "data": f"note: {EMAIL}",
                    },
                },
                {"type": "text", "text": "what now?"},
            ],
        },
    ]
    tools = [
        {
            "name": "lookup",
            "description": f"Look a customer up, e.g. {EMAIL}",
            "input_schema": {
                "type": "object",
                "properties": {"mail": {"type": "string", "description": f"like {EMAIL}"}},
            },
        }
    ]

    def create() -> Any:
        return guarded.anthropic(f"act_{action}").messages.with_raw_response.create(
            model="claude-test",
            max_tokens=100,
            system=system,  # type: ignore[arg-type]
            messages=messages,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[arg-type]
            metadata={"user_id": "u-1"},
        )

    if action == "block":
        with pytest.raises(anthropic.PermissionDeniedError, match="EMAIL_ADDRESS x8"):
            create()
        assert upstream.received == []
        return
    raw = create()
    (sent,) = upstream.received
    assert EMAIL not in json.dumps(sent.body)
    expected = {
        "max_tokens": 100,
        "messages": messages,
        "model": "claude-up",
        "system": system,
        "tools": tools,
        "metadata": {"user_id": "u-1"},
    }
    assert sent.body == _rewritten(action, expected, sent.body)
    assert raw.headers["x-gateway-decision"] == "masked"


@pytest.mark.parametrize("where", ["system", "tool_result", "tool_use"])
def test_anthropic_block_in_any_field_refuses(
    guarded: Gateway, upstream: FakeUpstream, where: str
) -> None:
    card = SAMPLES["CREDIT_CARD"]
    system = f"card {card}" if where == "system" else "hi"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": "go"}]
    if where == "tool_result":
        blocks = [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": card}]}
        ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": blocks}]
    if where == "tool_use":
        messages = [
            {"role": "user", "content": "pay"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t", "name": "pay", "input": {"card": card}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}],
            },
        ]
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        guarded.anthropic("guarded").messages.create(
            model="claude-test",
            max_tokens=50,
            system=system,
            messages=messages,  # type: ignore[arg-type]
        )
    assert "CREDIT_CARD x1" in str(caught.value) and card not in str(caught.value)
    assert upstream.received == []


def test_images_are_refused_unless_the_policy_allows_them(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        guarded.openai("guarded").chat.completions.create(model="gpt-test", messages=messages)  # type: ignore[arg-type]
    assert caught.value.code == "boundary.image_blocked"
    block = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        guarded.anthropic("guarded").messages.create(
            model="claude-test",
            max_tokens=50,
            messages=[{"role": "user", "content": [block]}],  # type: ignore[list-item]
        )
    assert refused.value.body["error"]["code"] == "boundary.image_blocked"  # type: ignore[index]
    assert upstream.received == []
    guarded.openai("images_ok").chat.completions.create(model="gpt-test", messages=messages)  # type: ignore[arg-type]
    assert upstream.received[0].body["messages"] == messages


def test_content_the_gateway_cannot_read_is_refused(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    with pytest.raises(openai.PermissionDeniedError) as caught:
        guarded.openai("images_ok").chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": [part]}],  # type: ignore[list-item]
        )
    assert caught.value.code == "boundary.unreadable_content"
    assert upstream.received == []


def test_detector_error_blocks_by_default(guarded: Gateway, upstream: FakeUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        _ask(guarded, "ner_block", "John Smith called")
    assert caught.value.status_code == 503
    assert caught.value.code == "boundary.detector_error"
    assert upstream.received == []


def test_detector_error_with_allow_passes_and_is_recorded(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply("fine"))
    raw = _ask(guarded, "ner_allow", "John Smith called")
    assert raw.parse().choices[0].message.content == "fine"
    assert upstream.received[0].body["messages"][0]["content"] == "John Smith called"
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.detector_error"


def test_shadow_mode_forwards_unchanged_and_says_what_it_would_do(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    card = SAMPLES["CREDIT_CARD"]
    raw = _ask(guarded, "guarded_shadow", f"card {card}, mail {EMAIL}")
    assert upstream.received[0].body["messages"][0]["content"] == f"card {card}, mail {EMAIL}"
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.would_block"
    assert raw.parse().choices[0].message.content == f"echo: card {card}, mail {EMAIL}"
    raw = _ask(guarded, "guarded_shadow", f"mail {EMAIL}")
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.would_mask"
    assert upstream.received[1].body["messages"][0]["content"] == f"mail {EMAIL}"


def test_shadow_mode_lets_images_pass_and_records_would_block(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    raw = guarded.openai("guarded_shadow").chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=messages,  # type: ignore[arg-type]
    )
    assert raw.headers["x-gateway-decision"] == "allow; reason=boundary.would_block"
    assert upstream.received[0].body["messages"] == messages


@pytest.mark.parametrize(
    "message",
    [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "f", "arguments": {"to": EMAIL}},
                }
            ],
        },
        {"role": "assistant", "tool_calls": {"to": EMAIL}},
    ],
)
def test_text_in_a_shape_the_gateway_does_not_read_is_refused(
    guarded: Gateway, upstream: FakeUpstream, message: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        guarded.openai("act_mask").chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}, message],  # type: ignore[list-item]
        )
    assert caught.value.code == "request.invalid"
    assert upstream.received == []
