"""What a reviewer may see, and the answers a decision delivers.

A reviewer reads the request and the answer with every detected value the policy does not
allow replaced by its type (``<EMAIL_ADDRESS>``), whatever the policy's action for it: a
blocked request still holds its raw values, and a held answer holds the caller's restored
tokens. The request kept for re-sending is that masked copy, so an approved request leaves
with the values the policy keeps out replaced, never as it first came.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from gateway.boundary.actions import rewrite
from gateway.boundary.scan import find_all
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.surfaces import surface_of

__all__ = ["WITHHELD", "answer_body", "masked_request", "masked_texts"]

WITHHELD = "[withheld: the gateway could not inspect this text]"


async def masked_texts(policy: CompiledPolicy, texts: list[str]) -> list[str]:
    rules = policy.data
    if rules is None or not texts:
        return texts
    try:
        found = await find_all(rules.detector, texts)
    # Whatever fails in detection, nothing uninspected is shown or kept.
    except Exception:  # noqa: BLE001 - fail closed: withhold the text
        return [WITHHELD for _ in texts]
    actions = rules.actions

    def hide(finding: Any, value: str) -> str | None:
        return None if actions.get(finding.entity, "block") == "allow" else f"<{finding.entity}>"

    return [rewrite(t, f, hide) if f else t for t, f in zip(texts, found, strict=True)]


async def masked_request(policy: CompiledPolicy, request: NormalizedRequest) -> dict[str, Any]:
    """A copy of the request's body, masked, asking for a whole answer (not a stream)."""
    surface = surface_of(request)
    copy = surface.parse(orjson.dumps(request.body))
    texts = await masked_texts(policy, [slot.text for slot in copy.texts])
    for slot, text in zip(copy.texts, texts, strict=True):
        if slot.text != text:
            slot.replace(text)
    copy.commit()
    body = copy.body
    body.pop("stream", None)
    body.pop("stream_options", None)
    return body


def answer_body(api: str, model: str, text: str) -> str:
    """``text`` as a whole answer in the API's own shape (no model was called: no usage)."""
    surface = surface_of(api)
    answer_id = surface.answer_id(f"review-{random.getrandbits(64):016x}")
    return surface.answer_body(answer_id, model, text, 0, 0).decode()
