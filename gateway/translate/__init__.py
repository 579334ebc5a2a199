"""Cross-provider translation: an OpenAI-format request served by an Anthropic model and the
reverse, with answers, SSE streams, usage and errors translated back (docs/translation.md).
 Pure functions, plus the ``Translating`` provider that applies them at the edge."""

from __future__ import annotations

from gateway.translate.answer import Untranslatable, anthropic_answer, openai_answer
from gateway.translate.chat_messages import DEFAULT_MAX_TOKENS, anthropic_request
from gateway.translate.errors import anthropic_error, openai_error
from gateway.translate.messages_chat import openai_request
from gateway.translate.provider import Translating, translate_request
from gateway.translate.stream import AnthropicEvents, OpenAIChunks
from gateway.translate.structured import ANSWER_TOOL

__all__ = [
    "ANSWER_TOOL",
    "DEFAULT_MAX_TOKENS",
    "AnthropicEvents",
    "OpenAIChunks",
    "Translating",
    "Untranslatable",
    "anthropic_answer",
    "anthropic_error",
    "anthropic_request",
    "openai_answer",
    "openai_error",
    "openai_request",
    "translate_request",
]
