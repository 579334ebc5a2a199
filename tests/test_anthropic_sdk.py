"""The official anthropic SDK, sync and async, streaming and not, through the gateway."""

from __future__ import annotations

import anthropic

from tests.conftest import UPSTREAM_KEYS, Gateway
from tests.fakes.upstream import FakeUpstream, Reply


def test_message_reaches_upstream_with_gateway_credentials(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", Reply("bonjour"))
    raw = gateway.anthropic().messages.with_raw_response.create(
        model="claude-test",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"anthropic-version": "2023-06-01", "anthropic-beta": "test-beta"},
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "bonjour"
    assert raw.headers["x-gateway-decision"] == "allow"
    (sent,) = upstream.received
    assert sent.path == "/v1/messages"
    assert sent.body == {
        "model": "claude-up",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello"}],
    }
    assert sent.headers["x-api-key"] == UPSTREAM_KEYS["ANTHROPIC_API_KEY"]
    # The SDK's API version and beta flags decide the wire format, so they are forwarded.
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "test-beta"
    assert gateway.analyst_key not in str(sent.headers)


def test_stream_helper_gets_the_whole_text(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Reply("streamed words here"))
    with gateway.anthropic().messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "streamed words here"
    assert len(texts) == 3
    assert final.usage.output_tokens > 0


async def test_async_client(gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.script("claude-up", Reply("one"), Reply("two three"))
    async with anthropic.AsyncAnthropic(
        base_url=gateway.anthropic_url(), api_key=gateway.analyst_key, max_retries=0
    ) as aclient:
        message = await aclient.messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "a"}]
        )
        assert message.content[0].type == "text" and message.content[0].text == "one"
        stream = await aclient.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": "b"}],
            stream=True,
        )
        kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


def test_models_in_anthropic_shape(gateway: Gateway) -> None:
    page = gateway.anthropic().models.list()
    # gpt-test is served through the OpenAI API, reached by translation (README).
    assert [m.id for m in page.data] == ["gpt-test", "claude-test", "mock-model"]


def test_mock_stream_in_anthropic_shape(gateway: Gateway) -> None:
    with gateway.anthropic().messages.stream(
        model="mock-model",
        max_tokens=50,
        messages=[{"role": "user", "content": [{"type": "text", "text": "quote me"}]}],
    ) as stream:
        assert stream.get_final_text() == "[mock mock-1] You said: quote me"
