"""How many input tokens a request may be, before the provider says: offline and cheap.

No tokenizer is loaded (tiktoken fetches its encodings from the internet on first use; the
gateway must work air-gapped). Tokenizers of current models give about four characters of
English per token and one token per CJK character; one token per three UTF-8 bytes is above
both, so the estimate errs high: a budget reserves a little too much, never too little.
"""

from __future__ import annotations

import orjson

from gateway.normalized import NormalizedRequest

__all__ = ["estimate_input_tokens"]

_PER_TEXT = 4  # role and framing tokens each message or part costs
_PER_MEDIA = 1600  # an image at Anthropic's largest size; OpenAI's high detail is less
_BASE = 16


def estimate_input_tokens(request: NormalizedRequest) -> int:
    """An upper estimate of the prompt's tokens: text, tool schemas and media parts."""
    # The texts the surface models: total inspection's other slots (keys, enum values, the
    # tool schemas counted whole below) would count what is already counted.
    texts = [slot for slot in request.texts if slot.kind != "field" and slot.form == "string"]
    size = sum(len(slot.text.encode()) for slot in texts)
    tools = request.body.get("tools") or request.body.get("functions")
    if tools:
        size += len(orjson.dumps(tools))
    return _BASE + -(-size // 3) + _PER_TEXT * len(texts) + _PER_MEDIA * len(request.media)
