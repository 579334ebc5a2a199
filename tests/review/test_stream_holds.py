"""Tool holds on streamed answers: a workflow that holds a tool reads its streams whole first,
so a streamed answer calling that tool is held (the client gets the fallback message as a
stream, status 202) and, once approved, the app's poll returns the whole answer it adds up
to; a stream calling no held tool is relayed as it was."""

from __future__ import annotations

import httpx

from tests.fakes.upstream import FakeUpstream, ToolCall
from tests.review.conftest import FALLBACK, ReviewGateway
from tests.review.test_queue import poll
from tests.support.clients import anthropic_client, openai_client

TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("refund_payment", "lookup_order")
]


def _approve(gw: ReviewGateway, review_id: str) -> None:
    with gw.client(gw.reviewer) as rita:
        assert rita.post(f"/admin/reviews/{review_id}/claim").status_code == 200
        decided = rita.post(f"/admin/reviews/{review_id}/decide", json={"verdict": "approve"})
        assert decided.status_code == 200, decided.text


def test_a_streamed_tool_call_is_held_and_released_whole(
    review_gw: ReviewGateway, upstream: FakeUpstream
) -> None:
    gw = review_gw
    client = openai_client(base_url=f"{gw.url}/w/tooling/v1", api_key=gw.analyst, max_retries=0)
    upstream.script("gpt-up", ToolCall("refund_payment", ('{"order"', ": 42}")))
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "refund 42"}], tools=TOOLS,
        stream=True,
    ) as raw:  # fmt: skip
        assert raw.http_response.status_code == 202
        review_id = raw.headers["x-gateway-review-id"]
        assert "review.held" in raw.headers["x-gateway-decision"]
        chunks = list(raw.parse())
    said = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert said == FALLBACK
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)  # nothing to run
    with gw.client(gw.reviewer) as rita:
        item = rita.get(f"/admin/reviews/{review_id}").json()
    assert item["kind"] == "answer"
    assert item["trigger"] == "tool:refund_payment"
    assert "refund_payment" in item["answer_shown"]
    _approve(gw, review_id)
    answer = poll(gw, "tooling", review_id).json()["answer"]
    assert answer["object"] == "chat.completion"
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "refund_payment", "arguments": '{"order": 42}'}
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


def test_a_stream_calling_no_held_tool_is_relayed(
    review_gw: ReviewGateway, upstream: FakeUpstream
) -> None:
    gw = review_gw
    client = openai_client(base_url=f"{gw.url}/w/tooling/v1", api_key=gw.analyst, max_retries=0)
    upstream.script("gpt-up", ToolCall("lookup_order", ('{"order": 7}',)))
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "look up 7"}], tools=TOOLS,
        stream=True,
    ) as raw:  # fmt: skip
        assert raw.http_response.status_code == 200
        assert "x-gateway-review-id" not in raw.headers
        chunks = list(raw.parse())
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function.name == "lookup_order"


def test_an_anthropic_streamed_tool_use_is_held_and_released_whole(
    review_gw: ReviewGateway, upstream: FakeUpstream
) -> None:
    gw = review_gw
    client = anthropic_client(base_url=f"{gw.url}/w/tokens", api_key=gw.analyst, max_retries=0)
    upstream.script("claude-up", ToolCall("refund_payment", ('{"order":', " 9}")))
    tools = [{"name": "refund_payment", "input_schema": {"type": "object"}}]
    with client.messages.with_streaming_response.create(
        model="claude-test", max_tokens=100, tools=tools,  # type: ignore[list-item]
        messages=[{"role": "user", "content": "refund 9"}], stream=True,
    ) as raw:  # fmt: skip
        assert raw.http_response.status_code == 202
        review_id = raw.headers["x-gateway-review-id"]
        text = "".join(
            e.delta.text for e in raw.parse() if e.type == "content_block_delta"
            and e.delta.type == "text_delta"
        )  # fmt: skip
    assert text == FALLBACK
    _approve(gw, review_id)
    with httpx.Client(base_url=gw.url, headers={"x-api-key": gw.analyst}) as c:
        answer = c.get(f"/w/tokens/v1/reviews/{review_id}").json()["answer"]
    assert answer["type"] == "message"
    assert answer["stop_reason"] == "tool_use"
    block = answer["content"][0]
    assert (block["type"], block["name"], block["input"]) == (
        "tool_use",
        "refund_payment",
        {"order": 9},
    )
