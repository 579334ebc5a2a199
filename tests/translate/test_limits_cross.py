"""Budgets settle on the usage of the model that answered, when it answered through the other
API: the limits step sees the client's API (and its own usage request) on both sides of the
translation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream, Reply, Status
from tests.limits.conftest import VAULT_KEY, LimitedGateway, new_prefix, write_gateway
from tests.limits.test_gateway import record
from tests.support.server import GatewayServer
from tests.translate.policy import falling_back

ASK = [{"role": "user", "content": "what is the weather in Paris"}]  # 6 words: 6 tokens
BUDGET = {"budget": [{"per": "user", "usd_per_day": 0.01}]}


def _policy(name: str, models: list[str], fallback: list[str]) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": models, "max_output_tokens": 100},
        **falling_back(fallback),
        "limits": BUDGET,
    }


@pytest.fixture(scope="module")
def limited(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LimitedGateway]:
    root = tmp_path_factory.mktemp("limits-cross")
    policies = {"to_claude": _policy("to_claude", ["gpt-test"], ["claude-test"]),
                "to_gpt": _policy("to_gpt", ["claude-test"], ["gpt-test"])}  # fmt: skip
    path, keys = write_gateway(root, upstream, new_prefix(), None, policies, callers=4)
    server = GatewayServer(path, {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": VAULT_KEY}).start()
    try:
        yield LimitedGateway(server.url, root, "", "memory", keys)
    finally:
        server.stop()


def test_openai_stream_from_claude_settles_real_usage(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(500))
    upstream.script("claude-up", Reply(pieces=("Sunny ", "and ", "mild")))
    with limited.openai("to_claude", limited.key()).chat.completions.with_streaming_response.create(
        model="gpt-test", messages=ASK, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())
    # The client did not ask for usage: no choice-less chunk reaches it.
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Sunny and mild"
    r = record(limited, request_id)
    assert (r.model_used, r.tokens_in, r.tokens_out) == ("claude-test", 6, 3)
    assert r.actual_usd == pytest.approx((6 + 2 * 3) / 1e6)


def test_anthropic_stream_from_gpt_settles_real_usage(
    limited: LimitedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", Status(500))
    upstream.script("gpt-up", Reply(pieces=("Sunny ", "and ", "mild")))
    with limited.anthropic("to_gpt", limited.key()).messages.stream(
        model="claude-test", max_tokens=50, messages=ASK
    ) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 3)
    r = record(limited, request_id)
    assert (r.model_used, r.tokens_in, r.tokens_out) == ("gpt-test", 6, 3)
    assert r.actual_usd == pytest.approx((6 + 2 * 3) / 1e6)
