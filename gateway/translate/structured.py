"""Structured outputs for a model served through the Anthropic Messages API.

An OpenAI client asks for an answer matching a JSON schema with ``response_format`` (chat)
or ``text.format`` (Responses, which reaches Anthropic through chat). The counterpart every
Claude model has is a tool: the schema becomes the input schema of one tool, ``ANSWER_TOOL``,
that the model is made to call, and that call's input comes back as the answer's text
(``answer.py`` whole, ``stream.py`` streamed: its input deltas become text deltas). LiteLLM
does the same (its ``json_tool_call``). Anthropic's own structured outputs
(``output_config.format``) exist only on recent models, which the gateway cannot tell from a
configured model name (Envoy AI Gateway guesses from the name, and silently drops the schema
for the others), so the tool is used for every model: the client gets the same JSON.

JSON mode without a schema (``json_object``) has no such counterpart and is refused.
"""

from __future__ import annotations

from typing import Any

from gateway.translate.refuse import unsupported

__all__ = ["ANSWER_TOOL", "answer_tool", "answer_tool_of", "with_answer_tool"]

# Reserved: a client tool of this name next to a JSON schema is refused, so a call to it in
# an answer is always the gateway's and is returned as text.
ANSWER_TOOL = "json_answer"
_DESCRIPTION = (
    "Give your final answer by calling this tool: its input is the whole answer, as the JSON"
    " object the conversation asks for."
)
_A = "Anthropic Messages"


def answer_tool(fmt: Any) -> dict[str, Any] | None:
    """The Anthropic tool standing for ``response_format``; None for plain text."""
    if fmt is None or fmt == {"type": "text"}:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if kind != "json_schema" or not isinstance(spec, dict):
        raise unsupported(f"'response_format' of type '{str(kind)[:32]}' (no JSON schema)", _A)
    schema = spec.get("schema", {"type": "object", "properties": {}})
    # A tool's input is an object: OpenAI's structured outputs require an object root too.
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise unsupported("A 'response_format' schema whose root is not an object", _A)
    description = spec.get("description")
    return {
        "name": ANSWER_TOOL,
        "description": description if isinstance(description, str) else _DESCRIPTION,
        "input_schema": schema,
    }


def with_answer_tool(out: dict[str, Any], tool: dict[str, Any]) -> None:
    """Offer ``tool`` in the Anthropic request ``out`` and make the model answer through it:
    forced when the client offered no tools (or forbade calling them); with the client's
    own tools, the model must call one of them or the answer tool (``any``); a client that
    forced one of its tools keeps that choice."""
    tools: list[dict[str, Any]] = out.get("tools", [])
    if any(t.get("name") == ANSWER_TOOL for t in tools):
        raise unsupported(f"A tool named '{ANSWER_TOOL}' with a JSON-schema answer", _A)
    choice = out.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not tools or kind == "none":
        out["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
    elif kind in (None, "auto", "any"):
        forced: dict[str, Any] = {"type": "any"}
        if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
            forced["disable_parallel_tool_use"] = True
        out["tool_choice"] = forced
    out["tools"] = [*tools, tool]


def answer_tool_of(body: dict[str, Any]) -> str | None:
    """``ANSWER_TOOL`` when the translated Anthropic ``body`` offers it: its calls in the
    answer are the answer's text."""
    tools = body.get("tools")
    if isinstance(tools, list) and any(
        isinstance(t, dict) and t.get("name") == ANSWER_TOOL for t in tools
    ):
        return ANSWER_TOOL
    return None
