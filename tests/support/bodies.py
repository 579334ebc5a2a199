"""A minimal valid request body per surface, and the places in it where a client may add
fields of its own: the total-inspection property test fills those with sensitive values.

A new surface adds its builder to ``BODIES`` (``None`` for a route with no request body);
``tests/surfaces/test_total.py`` fails for a registered surface that has none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BODIES", "Body"]

# The body, and the objects in it a client may add members to.
Body = tuple[dict[str, Any], list[dict[str, Any]]]


def _schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"q": {"type": "string", "description": "a query"}}}


def _chat(model: str) -> Body:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": _schema()}}
    message = {"role": "user", "content": "hello"}
    body = {"model": model, "messages": [message], "tools": [tool], "metadata": {}}
    return body, [body, message, body["metadata"], tool["function"]["parameters"]["properties"]]


def _messages(model: str) -> Body:
    tool = {"name": "lookup", "description": "find", "input_schema": _schema()}
    block = {"type": "text", "text": "hello"}
    message = {"role": "user", "content": [block]}
    body = {"model": model, "max_tokens": 50, "messages": [message], "tools": [tool]}
    return body, [body, message, block, tool["input_schema"]["properties"]]


def _responses(model: str) -> Body:
    tool = {"type": "function", "name": "lookup", "parameters": _schema()}
    item = {"role": "user", "content": [{"type": "input_text", "text": "hello"}]}
    body = {"model": model, "input": [item], "tools": [tool], "metadata": {}}
    return body, [body, item, body["metadata"], tool["parameters"]["properties"]]


def _embeddings(model: str) -> Body:
    body = {"model": model, "input": ["hello"]}
    return body, [body]


# By surface ``api``: a builder taking the model name, or None for a route with no body.
BODIES: dict[str, Callable[[str], Body] | None] = {
    "openai_chat": _chat,
    "anthropic_messages": _messages,
    "openai_responses": _responses,
    "openai_embeddings": _embeddings,
    "anthropic_count_tokens": _messages,
}
