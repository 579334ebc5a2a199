"""The request as every step sees it, whatever wire format the client spoke.

The client's JSON is parsed once and kept as it came: steps read the few fields they need and
rewrite text through ``TextSlot``s, so every other field is forwarded untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Api", "NormalizedRequest", "TextSlot"]

Api = Literal["openai_chat", "anthropic_messages"]


@dataclass(slots=True)
class TextSlot:
    """One text-bearing place in the body (a message content, a text part, a system prompt)."""

    role: str
    holder: dict[str, Any] | list[Any]
    key: str | int

    @property
    def text(self) -> str:
        value = self.holder[self.key]  # type: ignore[index]
        assert isinstance(value, str)
        return value

    def replace(self, text: str) -> None:
        self.holder[self.key] = text  # type: ignore[index]


@dataclass(slots=True)
class NormalizedRequest:
    api: Api
    body: dict[str, Any]
    model: str
    stream: bool
    max_tokens: int | None
    texts: list[TextSlot] = field(default_factory=list)
    # The client's headers, for the few that change the wire format (anthropic-version).
    headers: Mapping[str, str] = field(default_factory=dict)

    def last_user_text(self) -> str:
        """The text of the last user turn, parts joined; empty when there is none."""
        parts: list[str] = []
        for slot in reversed(self.texts):
            if slot.role != "user":
                if parts:
                    break
                continue
            parts.append(slot.text)
        return "\n".join(reversed(parts))
