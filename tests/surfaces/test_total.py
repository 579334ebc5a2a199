"""Total inspection: every string, key and number of a request is a slot, except the paths a
surface lists as non-text; what cannot be read is noted; JSON held in strings is read whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.surfaces import ANTHROPIC, OPENAI, SURFACES
from gateway.surfaces.total import NonText, every_leaf, nontext
from tests.support.bodies import BODIES

CARD = "4111 1111 1111 1111"


def _texts(request: NormalizedRequest) -> set[str]:
    return {slot.text for slot in request.texts}


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], **extra}


def _messages(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-x",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_an_anthropic_system_field_on_the_openai_path_is_inspected() -> None:
    """The reported leak: an unknown top-level field went upstream uninspected."""
    request = OPENAI.parse(orjson.dumps(_chat(system=f"card {CARD}")))
    assert f"card {CARD}" in _texts(request)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"metadata": {"note": CARD}}, CARD),
        ({"metadata": {CARD: "x"}}, CARD),  # a key
        ({"metadata": {"n": 4111111111111111}}, "4111111111111111"),  # a number
        ({"user": "ann@example.com"}, "ann@example.com"),
        ({"stop": ["ann@example.com"]}, "ann@example.com"),
        ({"prediction": {"type": "content", "content": CARD}}, CARD),
        ({"logit_bias": {"4111111111111111": 5}}, "4111111111111111"),
        ({"response_format": {"type": "json_schema", "json_schema": {"title": CARD}}}, CARD),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {
                                "type": "object",
                                "properties": {
                                    "ann@example.com": {"enum": [CARD], "default": "d@e.com"}
                                },
                            },
                        },
                    }
                ]
            },
            "ann@example.com",
        ),
    ],
)
def test_fields_nobody_models_are_inspected(extra: dict[str, Any], expected: str) -> None:
    request = OPENAI.parse(orjson.dumps(_chat(**extra)))
    assert expected in _texts(request)


def test_message_names_and_unknown_parts_are_inspected() -> None:
    body = _chat(
        messages=[
            {
                "role": "user",
                "name": "ann@example.com",
                "content": [{"type": "new_kind", "payload": {"deep": CARD}}],
            }
        ]
    )
    request = OPENAI.parse(orjson.dumps(body))
    assert {"ann@example.com", CARD} <= _texts(request)
    assert request.uninspectable == [] and request.media == []


def test_non_text_paths_are_not_slots() -> None:
    body = _chat(
        temperature=0.5,
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
    )
    texts = _texts(OPENAI.parse(orjson.dumps(body)))
    assert "gpt-x" not in texts and "call_1" not in texts and "0.5" not in texts
    assert "user" not in texts and "f" in texts  # a tool's name is text the model reads


def test_anthropic_fields_nobody_models_are_inspected() -> None:
    document = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": "doc " + CARD}]},
        "title": "ann@example.com",
        "context": "ctx bob@example.com",
    }
    body = _messages(
        metadata={"user_id": "uid ann@example.com"},
        stop_sequences=["STOP " + CARD],
        mcp_servers=[{"type": "url", "url": "https://x", "authorization_token": "tok-123"}],
        messages=[{"role": "user", "content": [document]}],
    )
    request = ANTHROPIC.parse(orjson.dumps(body))
    texts = _texts(request)
    assert {"doc " + CARD, "ann@example.com", "ctx bob@example.com"} <= texts
    assert {"uid ann@example.com", "STOP " + CARD, "tok-123"} <= texts
    assert request.media == []


def test_anthropic_system_messages_thinking_and_cache_control() -> None:
    thinking = {"type": "thinking", "thinking": "hmm " + CARD, "signature": "sig=="}
    body = _messages(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {}}]},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "b"}]},
            {"role": "system", "content": "mid-conversation " + CARD},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "QUJD"}]},
        ]
    )
    request = ANTHROPIC.parse(orjson.dumps(body))
    texts = _texts(request)
    assert "mid-conversation " + CARD in texts
    (signed,) = [slot for slot in request.texts if slot.signed]
    assert signed.text == "hmm " + CARD
    assert "sig==" not in texts and "QUJD" not in texts


def test_what_cannot_be_read_is_noted() -> None:
    pdf = "data:application/pdf;base64," + "A" * 400
    request = OPENAI.parse(orjson.dumps(_chat(metadata={"blob": pdf, "ids": list(range(40))})))
    assert len(request.uninspectable) == 2
    image = "data:image/png;base64," + "A" * 400
    request = OPENAI.parse(orjson.dumps(_chat(metadata={"pic": image})))
    assert request.uninspectable == [] and request.media == ["image"]
    bare = {"role": "user", "content": [{"type": "mystery", "n": 1}]}
    request = OPENAI.parse(orjson.dumps(_chat(messages=[bare])))
    assert len(request.uninspectable) == 1


def test_tool_arguments_are_read_as_documents() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    message = {"role": "assistant", "tool_calls": [call]}
    call["function"]["arguments"] = orjson.dumps({CARD: 4111111111111111, "k": [CARD]}).decode()  # type: ignore[index]
    request = OPENAI.parse(orjson.dumps(_chat(messages=[message])))
    args = [s for s in request.texts if s.kind == "tool_arguments"]
    assert sorted(s.text for s in args) == sorted([CARD, "4111111111111111", CARD, "k"])
    for slot in args:
        slot.replace("<X>")
    request.commit()
    sent = orjson.loads(request.body["messages"][0]["tool_calls"][0]["function"]["arguments"])
    assert CARD not in orjson.dumps(sent).decode() and "4111111111111111" not in str(sent)
    call["function"]["arguments"] = '{"a": "' + CARD + '", "a": "fine"}'  # type: ignore[index]
    with pytest.raises(GatewayError) as caught:
        OPENAI.parse(orjson.dumps(_chat(messages=[message])))
    assert caught.value.reason.code == "boundary.ambiguous_json"


def test_tool_use_input_keys_and_numbers_are_slots() -> None:
    use = {"type": "tool_use", "id": "t1", "name": "f", "input": {CARD: 4111111111111111}}
    body = _messages(messages=[{"role": "assistant", "content": [use]}])
    request = ANTHROPIC.parse(orjson.dumps(body))
    args = {s.text for s in request.texts if s.kind == "tool_arguments"}
    assert args == {CARD, "4111111111111111"}
    assert "t1" not in _texts(request)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xef\xbb\xbf" + orjson.dumps(_chat()), "request.invalid_encoding"),
        ('{"model": "\xe9"}'.encode("latin-1"), "request.invalid_encoding"),
        (orjson.dumps(_chat()).decode().encode("utf-16"), "request.invalid_encoding"),
        (b"{", "request.invalid_json"),
    ],
)
def test_encodings_other_parsers_might_read_are_refused(raw: bytes, code: str) -> None:
    for surface in (OPENAI, ANTHROPIC):
        with pytest.raises(GatewayError) as caught:
            surface.parse(raw)
        assert caught.value.reason.code == code


def test_duplicate_body_keys_are_inspected_as_forwarded() -> None:
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}],'
    raw += b' "user": "ann@example.com", "user": "bob@example.com"}'
    request = OPENAI.parse(raw)
    assert request.body["user"] == "bob@example.com"  # forwarded from this parsed body
    assert "bob@example.com" in _texts(request)


def test_a_surface_that_lists_nothing_is_inspected_whole() -> None:
    request = NormalizedRequest("x", {"model": "m", "k": {"v": [CARD, 5]}}, "m", False, None)
    every_leaf(request, nontext())
    assert {"m", CARD, "5"} <= _texts(request) and request.complete


def test_non_text_paths_are_checked_when_listed() -> None:
    with pytest.raises(ValueError, match="bad segment"):
        nontext(NonText("a.*[typ=x]", "typo"))


@pytest.mark.parametrize("api", list(SURFACES))
def test_every_surface_has_a_body_for_the_property_test_and_lists_its_non_text(api: str) -> None:
    """A new surface adds a minimal body to tests/support/bodies.py (the property test in
    tests/boundary/enforce/test_total.py then covers it) and calls ``every_leaf``."""
    assert api in BODIES, f"add a minimal body for {api!r} to tests/support/bodies.py"
    builder = BODIES[api]
    if builder is None:
        return
    body, _ = builder("some-model")
    assert SURFACES[api].parse(orjson.dumps(body)).complete


def test_deep_nesting_is_walked_without_recursion() -> None:
    deep = "[" * 1000 + '"ann@example.com"' + "]" * 1000
    raw = orjson.dumps(_chat()).decode()[:-1] + f', "x": {deep}}}'
    assert "ann@example.com" in _texts(OPENAI.parse(raw.encode()))
    nested = '{"a": ' * 1000 + "1" + "}" * 1000  # too deep for a second parser to check
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": nested}}
    message = {"role": "assistant", "tool_calls": [call]}
    with pytest.raises(GatewayError) as caught:
        OPENAI.parse(orjson.dumps(_chat(messages=[message])))
    assert caught.value.reason.code == "boundary.ambiguous_json"
