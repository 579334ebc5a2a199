"""Tool names in a request (the tools it offers the model) and in an answer (the tools the model
calls), read from the JSON shapes the supported APIs share: a tool is named either ``name`` or
``function.name``; a call is an OpenAI ``tool_calls`` entry, an Anthropic ``tool_use`` block
or a Responses ``function_call`` item."""

from __future__ import annotations

from typing import Any

__all__ = ["called_tools", "offered_tools"]


def _name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else tool.get("name")
    return name if isinstance(name, str) else None


def offered_tools(body: dict[str, Any]) -> frozenset[str]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    # A tool without a name (a provider's built-in, say) is named by its type.
    return frozenset(_name(t) or str(t.get("type", "")) for t in tools if isinstance(t, dict))


def called_tools(answer: Any) -> frozenset[str]:
    """Every tool the answer calls, in any choice or content block."""
    found: set[str] = set()
    stack = [answer]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for call in node.get("tool_calls") or ():
            if (name := _name(call)) is not None:
                found.add(name)
        if node.get("type") in ("tool_use", "function_call") and (name := _name(node)):
            found.add(name)
        stack.extend(v for k, v in node.items() if k != "tool_calls" and isinstance(v, dict | list))
    return frozenset(found)
