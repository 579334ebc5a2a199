"""One question through either official SDK, streamed or not: the text and the headers."""

from __future__ import annotations

from typing import Any, Literal

import httpx

from tests.conftest import Gateway

Sdk = Literal["openai", "anthropic"]
PRIMARY = {"openai": "gpt-up", "anthropic": "claude-up"}


def ask(
    gw: Gateway, sdk: Sdk, workflow: str, stream: bool, text: str = "hi", **extra: Any
) -> tuple[str, httpx.Headers, Any]:
    """The answer's text, the response headers and the parsed answer (None for streams)."""
    messages = [{"role": "user", "content": text}]
    if sdk == "openai":
        raw = gw.openai(workflow).chat.completions.with_raw_response.create(
            model="gpt-test", messages=messages, stream=stream, **extra
        )
        parsed = raw.parse()
        if stream:
            chunks = list(parsed)
            return (
                "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                raw.headers,
                chunks,
            )
        return parsed.choices[0].message.content or "", raw.headers, parsed
    raw = gw.anthropic(workflow).messages.with_raw_response.create(
        model="claude-test", max_tokens=50, messages=messages, stream=stream, **extra
    )
    parsed = raw.parse()
    if stream:
        events = list(parsed)
        text = "".join(
            e.delta.text
            for e in events
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
        return text, raw.headers, events
    return "".join(b.text for b in parsed.content if b.type == "text"), raw.headers, parsed
