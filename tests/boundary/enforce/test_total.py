"""Inspection is total and fails closed, through the running gateway: whatever field holds a
value, it does not reach the upstream verbatim under a masking or blocking policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.surfaces import SURFACES
from tests.conftest import Gateway
from tests.fakes.upstream import FakeUpstream
from tests.support.bodies import BODIES
from tests.support.clients import TLS
from tests.support.placeholders import keyed

CARD = "4111 1111 1111 1111"
MODEL = {
    "openai_chat": "gpt-test",
    "anthropic_messages": "claude-test",
    "anthropic_count_tokens": "claude-test",
    "openai_embeddings": "embed-test",
}


def _post(
    gw: Gateway, workflow: str, api: str, body: Any, query: str = "", **headers: str
) -> httpx2.Response:
    surface = SURFACES[api]
    hdrs = {"authorization": f"Bearer {gw.analyst_key}", "content-type": "application/json"}
    if surface.sdk_header is not None:
        hdrs[surface.sdk_header] = "2023-06-01"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx2.post(
        f"{gw.url}/w/{workflow}/v1{surface.path}{query}",
        content=content,
        headers={**hdrs, **headers},
        verify=TLS,
    )


def _sent(upstream: FakeUpstream) -> str:
    return "".join(orjson.dumps(r.body).decode() for r in upstream.received)


def test_the_reported_leak_an_anthropic_system_field_on_the_openai_path(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    body = {
        "model": "gpt-test",
        "system": f"card {CARD} on file",
        "messages": [{"role": "user", "content": "hello"}],
    }
    response = _post(guarded, "guarded", "openai_chat", body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "boundary.blocked_entity"
    assert "CREDIT_CARD x1" in response.json()["error"]["message"]
    assert upstream.received == []


@pytest.mark.parametrize("api", ["openai_chat", "anthropic_messages"])
def test_unknown_fields_are_masked_where_they_are(
    guarded: Gateway, upstream: FakeUpstream, api: str
) -> None:
    body, places = BODIES[api](MODEL[api])  # type: ignore[misc]
    places[0]["x_note"] = {"who": "ann@example.com", "ann@example.com": [1]}
    response = _post(guarded, "act_mask", api, body)
    assert response.status_code == 200, response.text
    (sent,) = upstream.received
    masked = keyed("act_mask", "EMAIL_ADDRESS", "ann@example.com")
    assert sent.body["x_note"] == {"who": masked, masked: [1]}


def test_uninspectable_blocks_by_default_and_allow_is_recorded(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    body, places = BODIES["openai_chat"]("gpt-test")  # type: ignore[misc]
    places[0]["x_ids"] = list(range(100, 164))
    response = _post(guarded, "guarded", "openai_chat", body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "boundary.uninspectable"
    assert upstream.received == []
    response = _post(guarded, "opaque_ok", "openai_chat", body)
    assert response.status_code == 200
    assert response.headers["x-gateway-decision"] == "allow; reason=boundary.uninspectable"
    assert upstream.received[0].body["x_ids"] == list(range(100, 164))


def test_an_unknown_block_with_no_text_is_uninspectable(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    body, places = BODIES["anthropic_messages"]("claude-test")  # type: ignore[misc]
    places[1]["content"].append({"type": "container_upload", "n": 1})
    response = _post(guarded, "guarded", "anthropic_messages", body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "boundary.uninspectable"
    assert response.json()["type"] == "error"  # Anthropic's own error shape
    assert upstream.received == []


def _conversation(thinking: str) -> dict[str, Any]:
    block = {"type": "thinking", "thinking": thinking, "signature": "EqQBCkYIBxgCKkA=="}
    return {
        "model": "claude-test",
        "max_tokens": 64000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [block, {"type": "text", "text": "hello"}]},
            {"role": "system", "content": "The user's mail is ann@example.com."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "go", "cache_control": {"type": "ephemeral"}}],
            },
        ],
    }


def test_claude_code_shapes_pass_inspected(guarded: Gateway, upstream: FakeUpstream) -> None:
    body = _conversation("Let me think about the greeting.")
    betas = {"anthropic-beta": "interleaved-thinking-2025-05-14,context-1m-2025-08-07"}
    response = _post(guarded, "act_mask", "anthropic_messages", body, "?beta=true", **betas)
    assert response.status_code == 200, response.text
    (sent,) = upstream.received
    assert sent.headers["anthropic-beta"] == betas["anthropic-beta"]
    messages = sent.body["messages"]
    assert messages[1]["content"][0] == body["messages"][1]["content"][0]  # signed: as sent
    masked = keyed("act_mask", "EMAIL_ADDRESS", "ann@example.com")
    assert messages[2] == {"role": "system", "content": f"The user's mail is {masked}."}
    assert messages[3]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.body["thinking"] == body["thinking"]


def test_a_signed_block_that_would_need_masking_is_refused(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    response = _post(
        guarded, "act_mask", "anthropic_messages", _conversation("mail ann@example.com")
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "boundary.thinking_refused"
    response = _post(guarded, "no_thinking", "anthropic_messages", _conversation("fine"))
    assert response.json()["error"]["code"] == "boundary.thinking_refused"
    assert upstream.received == []


@pytest.mark.parametrize("api", ["openai_chat", "anthropic_messages"])
def test_tool_arguments_with_a_duplicate_key_are_refused(
    guarded: Gateway, upstream: FakeUpstream, api: str
) -> None:
    if api == "openai_chat":
        call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
        call["function"]["arguments"] = '{"to": "ann@example.com", "to": "x"}'  # type: ignore[index]
        message = {"role": "assistant", "tool_calls": [call]}
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}, message]}
        response = _post(guarded, "act_mask", api, body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "boundary.ambiguous_json"
    else:  # a body's duplicate key: the copy inspected is the copy forwarded
        raw = b'{"model": "claude-test", "max_tokens": 5, "x": "ann@example.com", "x": "bob@example.com",'
        raw += b' "messages": [{"role": "user", "content": "hi"}]}'
        response = _post(guarded, "act_mask", api, raw)
        assert response.status_code == 200
        assert upstream.received[0].body["x"] == keyed(
            "act_mask", "EMAIL_ADDRESS", "bob@example.com"
        )
        assert "example.com" not in _sent(upstream)


def test_a_bom_is_refused_in_the_api_shape(guarded: Gateway, upstream: FakeUpstream) -> None:
    body = b"\xef\xbb\xbf" + orjson.dumps({"model": "claude-test", "max_tokens": 5, "messages": []})
    response = _post(guarded, "act_mask", "anthropic_messages", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request.invalid_encoding"
    assert upstream.received == []


# -- the property: random bodies, sensitive values at random places ---------------------

SENSITIVE = ["jane.doe@acme-corp.com", CARD, "AKIAZ7Q3XJ2LMNP4RT6W", "536-22-8947"]
_words = st.text("abcdefghij ", min_size=1, max_size=12)
_names = st.text("abcdefghij", min_size=1, max_size=8).map(lambda s: "x" + s)
_leaf = st.one_of(_words, st.integers(-1000, 1000), st.booleans(), st.none())
_carrier = st.one_of(
    st.builds(lambda p, s, q: f"{p} {s} {q}", _words, st.sampled_from(SENSITIVE), _words),
    st.builds(lambda s, v: {s: v}, st.sampled_from(SENSITIVE), _leaf),
    st.just(4111111111111111),
)


def _wrap(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``inner`` placed in a list or an object among plain leaves."""
    in_list = st.builds(
        lambda c, xs, i: [*xs[:i], c, *xs[i:]],
        inner,
        st.lists(_leaf, max_size=3),
        st.integers(0, 3),
    )
    in_object = st.builds(
        lambda c, k, d: {**d, k: c}, inner, _names, st.dictionaries(_names, _leaf, max_size=3)
    )
    return st.one_of(in_list, in_object)


_nested = st.recursive(_carrier, _wrap, max_leaves=6)


@pytest.mark.parametrize(
    "api", sorted(a for a, b in BODIES.items() if b is not None and a in SURFACES)
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_sensitive_value_reaches_the_upstream_verbatim(
    guarded: Gateway, upstream: FakeUpstream, api: str, data: st.DataObject
) -> None:
    builder = BODIES[api]
    assert builder is not None
    body, places = builder(MODEL.get(api, "gpt-test"))
    for _ in range(data.draw(st.integers(1, 3))):
        place = data.draw(st.sampled_from(places))
        place[data.draw(_names)] = data.draw(_nested)
    upstream.reset()
    for workflow in ("act_mask", "act_block"):
        response = _post(guarded, workflow, api, body)
        assert response.status_code in (200, 403), response.text
        sent = _sent(upstream)
        for value in [*SENSITIVE, "4111111111111111"]:
            assert value not in sent


def test_a_providers_beta_list_drops_the_others() -> None:
    from gateway.upstream.anthropic import _version_headers

    client = {"anthropic-version": "2023-06-01", "anthropic-beta": "a-1, b-2,c-3"}
    assert _version_headers(client, None)["anthropic-beta"] == "a-1,b-2,c-3"
    assert _version_headers(client, frozenset({"b-2"}))["anthropic-beta"] == "b-2"
    assert "anthropic-beta" not in _version_headers(client, frozenset())


def test_placeholders_are_numbered_in_prompt_order_so_turns_keep_them(
    guarded: Gateway, upstream: FakeUpstream
) -> None:
    """``placeholders: numbered``: tools, system, then messages, so a value keeps its
    placeholder in every later request of a conversation that grows by turns."""
    tool = {"name": "send", "description": "mail a.one@acme-corp.com", "input_schema": {}}
    turns = [{"role": "user", "content": "cc b.two@acme-corp.com"}]
    body: dict[str, Any] = {"model": "claude-test", "max_tokens": 9, "tools": [tool]}
    body["system"] = "x"
    for _ in range(2):
        assert (
            _post(
                guarded, "numbered", "anthropic_messages", {**body, "messages": turns}
            ).status_code
            == 200
        )
        turns += [
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "c.3@acme-corp.com"},
        ]
    first, second = upstream.received
    for sent in (first, second):
        assert sent.body["tools"][0]["description"] == "mail <EMAIL_ADDRESS_1>"
        assert sent.body["messages"][0]["content"] == "cc <EMAIL_ADDRESS_2>"
    assert second.body["messages"][2]["content"] == "<EMAIL_ADDRESS_3>"


def test_a_claude_code_turn_replayed(guarded: Gateway, upstream: FakeUpstream) -> None:
    """Claude Code's request shape (hand-written from Anthropic's documented wire format):
    betas, ``?beta=true``, thinking with signatures, tools with cache_control, a
    mid-conversation system message, large ``max_tokens``: all pass, and only the e-mail
    address changes on the way out."""
    path = Path(__file__).parents[2] / "data" / "claude_code" / "turn.json"
    body = orjson.loads(path.read_bytes())
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    response = _post(
        guarded, "act_mask", "anthropic_messages", body, "?beta=true", **{"anthropic-beta": betas}
    )
    assert response.status_code == 200, response.text
    assert "event: message_stop" in response.text
    (sent,) = upstream.received
    assert sent.headers["anthropic-beta"] == betas
    expected = orjson.loads(
        path.read_bytes().replace(
            b"jane.doe@acme-corp.com",
            keyed("act_mask", "EMAIL_ADDRESS", "jane.doe@acme-corp.com").encode(),
        )
    )
    assert sent.body == {**expected, "model": sent.body["model"]}
