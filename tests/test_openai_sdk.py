"""The official openai SDK, sync and async, streaming and not, through the gateway."""

from __future__ import annotations

import openai

from tests.conftest import UPSTREAM_KEYS, Gateway
from tests.fakes.upstream import FakeUpstream, Reply
from tests.support.clients import openai_client

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]


def test_completion_reaches_upstream_with_gateway_credentials(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply("the answer"))
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "the answer"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-gateway-decision"] == "allow"
    assert raw.headers["x-gateway-policy-version"].startswith("sha256:")
    assert len(raw.headers["x-request-id"]) == 32
    (sent,) = upstream.received
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-up"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEYS['OPENAI_API_KEY']}"
    assert gateway.analyst_key not in str(sent.headers)


def test_fields_the_gateway_does_not_need_are_forwarded_untouched(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    extra = {
        "temperature": 0.25,
        "top_p": 1.0,
        "seed": 7,
        "user": "u-1",
        "n": 1,
        "response_format": {"type": "json_object"},
        "metadata": {"k": "v"},
        "logit_bias": {"50256": -100},
    }
    gateway.openai().chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        extra_body={"custom_field": [1, {"x": None}]},
        **extra,  # type: ignore[arg-type]
    )
    (sent,) = upstream.received
    expected = {**extra, "custom_field": [1, {"x": None}], "messages": MESSAGES, "model": "gpt-up"}
    expected["max_completion_tokens"] = 256  # the workflow's ceiling, set as none was asked
    expected["store"] = (
        False  # retention.upstream_store defaults to false: the provider keeps nothing
    )
    assert sent.body == expected


def test_stream_is_relayed_event_by_event(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("one two three"))
    stream = gateway.openai().chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[-1].usage is not None
    assert upstream.received[0].body["stream"] is True


async def test_async_client_streaming_and_not(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("async answer"), Reply("async stream"))
    async with openai.AsyncOpenAI(
        base_url=gateway.openai_url(), api_key=gateway.analyst_key, max_retries=0
    ) as aclient:
        completion = await aclient.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
        assert completion.choices[0].message.content == "async answer"
        stream = await aclient.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(pieces) == "async stream"


def test_models_lists_the_workflow_models(gateway: Gateway) -> None:
    ids = [m.id for m in gateway.openai().models.list()]
    # claude-test is served through the Anthropic API, reached by translation (README).
    assert ids == ["gpt-test", "claude-test", "mock-model"]


def test_workflow_header_on_plain_v1_path(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("via header"))
    c = openai_client(
        base_url=f"{gateway.url}/v1",
        api_key=gateway.analyst_key,
        default_headers={"X-Workflow": "chat_app"},
        max_retries=0,
    )
    answer = c.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "via header"


def test_mock_provider_quotes_what_left_the_gateway(gateway: Gateway) -> None:
    c = gateway.openai()
    first = c.chat.completions.create(model="mock-model", messages=MESSAGES)  # type: ignore[arg-type]
    again = c.chat.completions.create(model="mock-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert first.choices[0].message.content == "[mock mock-1] You said: hello there"
    assert first.model_dump() == again.model_dump()
    assert first.usage is not None and first.usage.completion_tokens > 0
    stream = c.chat.completions.create(
        model="mock-model",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == (
        "[mock mock-1] You said: hello there"
    )
    assert chunks[-1].usage is not None


def test_model_of_the_other_api_is_served_through_translation(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", Reply("from claude"))
    answer = gateway.openai().chat.completions.create(model="claude-test", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "from claude"
    assert [r.path for r in upstream.received] == ["/v1/messages"]
