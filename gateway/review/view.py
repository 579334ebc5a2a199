"""What a reviewer may see, and the answers a decision delivers.

A reviewer reads the request and the answer with every detected value the policy does not
allow replaced: by its policy token (``<EMAIL_ADDRESS#k3j9x2qa7mb4>``, the one the model would
have seen) when the policy tokenizes it, else by its type (``<EMAIL_ADDRESS>``), whatever the
policy's action: a blocked request still holds its raw values, and a held answer holds the
caller's restored tokens. The request kept for re-sending is that copy, so an approved request
leaves with the values the policy keeps out replaced, never as it first came. The values of
the tokens wait in the vault (the caller's own, as the boundary keeps them), where only a
reveal reads them (gateway/review/service.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.boundary.actions import TokenMinter, rewrite
from gateway.boundary.findings import Finding
from gateway.boundary.ner import NerUnavailableError
from gateway.boundary.scan import find_all
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.surfaces import surface_of

__all__ = ["DETECTION_ERRORS", "WITHHELD", "Masker", "answer_body"]

WITHHELD = "[withheld: the gateway could not inspect this text]"
# What a detector run raises when it fails (the NER model, a recognizer's own error, memory);
# anything else is a fault of the gateway's and propagates: the request then fails and
# nothing is queued, which keeps the text out as surely.
DETECTION_ERRORS: tuple[type[Exception], ...] = (
    NerUnavailableError, ValueError, RuntimeError, OSError, MemoryError, RecursionError,
)  # fmt: skip


@dataclass
class Masker:
    """Masks texts under ``policy`` for reviewers; ``minted`` collects each token it wrote
    with its value (tokens only when ``minter`` is given), for the vault."""

    policy: CompiledPolicy
    minter: TokenMinter | None = None
    minted: dict[str, str] = field(default_factory=dict)

    async def texts(self, texts: list[str]) -> list[str]:
        rules = self.policy.data
        if rules is None or not texts:
            return texts
        try:
            found = await find_all(rules.detector, texts)
        except DETECTION_ERRORS:  # fail closed: nothing uninspected is shown or kept
            return [WITHHELD for _ in texts]
        return [rewrite(t, f, self._hide) if f else t for t, f in zip(texts, found, strict=True)]

    def _hide(self, finding: Finding, value: str) -> str | None:
        assert self.policy.data is not None
        action = self.policy.data.actions.get(finding.entity, "block")
        if action == "allow":
            return None
        if action == "tokenize" and self.minter is not None:
            token = self.minter.token(self.policy.name, finding.entity, value)
            self.minted[token] = value
            return token
        return f"<{finding.entity}>"

    async def request(self, request: NormalizedRequest) -> dict[str, Any]:
        """A copy of the request's body, masked, asking for a whole answer (not a stream)."""
        surface = surface_of(request)
        copy = surface.parse(orjson.dumps(request.body))
        texts = await self.texts([slot.text for slot in copy.texts])
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
