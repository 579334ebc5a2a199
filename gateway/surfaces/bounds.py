"""The bounds every request body is held to, whatever its API: one walk before any step reads it.

``read_request`` is how the pipeline parses a body: the surface parses it (the JSON parser
reads at most 1024 levels; too many messages or tools are refused as soon as the JSON is
parsed, before the surface walks them), then one walk refuses a body nested deeper than
``server.max_json_depth`` (one limit for the parser and the encoder, which stops at 254
levels, so nothing accepted can fail to be written again), with more messages, content parts
or tools than allowed, or with one string longer than ``server.max_string_bytes``. The walk
yields to the event loop every few milliseconds, so a large body does not stall the others.
A new surface inherits all of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from gateway import errors
from gateway.config import ServerConfig
from gateway.errors import GatewayError, Reason
from gateway.normalized import NormalizedRequest
from gateway.surfaces.base import Surface
from gateway.surfaces.fields import PARSED

__all__ = ["check_body", "read_request"]

# Field names the counts apply to, in every API that has them.
_MESSAGES = ("messages", "input")
_TOOLS = ("tools", "functions")
_PARTS = "content"
_COUNTED = _MESSAGES + _TOOLS
# How often the walk looks at the clock, and how long it runs before it yields.
_CHECK_EVERY = 4096
_SLICE_S = 0.002


async def read_request(surface: Surface, raw: bytes, bounds: ServerConfig) -> NormalizedRequest:
    """``raw`` parsed by ``surface`` (the body is parsed once), then checked against
    ``bounds`` before any step reads it."""
    # The counts are checked as soon as the JSON is parsed, before the surface walks it;
    # the walk counts again only a body that check did not see.
    counted: list[Any] = []

    def count(body: Any) -> None:
        _check_counts(body, bounds)
        counted.append(body)

    token = PARSED.set(count)
    try:
        request = surface.parse(raw)
    except RecursionError:  # a reader that recurses met a body deeper than it can go
        raise _refuse(errors.REQUEST_TOO_DEEP, "deeper than the gateway reads") from None
    finally:
        PARSED.reset(token)
    body = request.body
    if not (counted and counted[-1] is body):
        _check_counts(body, bounds)
    await _walk(body, bounds)
    return request


def _refuse(reason: Reason, what: str) -> GatewayError:
    return GatewayError(reason, f"{reason.message[:-1]}: {what}.")


async def check_body(body: Any, bounds: ServerConfig) -> None:
    """Raise GatewayError if ``body`` exceeds any of ``bounds``; an iterative walk (no
    recursion to exhaust), linear in the body's size."""
    _check_counts(body, bounds)
    await _walk(body, bounds)


async def _walk(body: Any, bounds: ServerConfig) -> None:
    """``check_body`` but the counts."""
    max_depth, max_bytes = bounds.max_json_depth, bounds.max_string_bytes
    parts, max_parts = 0, bounds.max_parts
    stack: list[tuple[Any, int]] = [(body, 1)]
    seen, started = 0, time.perf_counter()  # nodes since the clock was read
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _refuse(errors.REQUEST_TOO_DEEP, f"at most {max_depth} levels are accepted")
        if isinstance(node, dict):
            content = node.get(_PARTS)
            if isinstance(content, list):
                parts += len(content)
                if parts > max_parts:
                    raise _refuse(
                        errors.REQUEST_TOO_MANY_PARTS, f"at most {max_parts} are accepted"
                    )
            for key in node:
                if len(key) * 4 > max_bytes:  # only a string this long may be over
                    _check_string(key, max_bytes)
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            if len(node) > _CHECK_EVERY:  # walked in slices, so the walk can yield within
                step = _CHECK_EVERY
                stack.extend((node[i : i + step], depth) for i in range(0, len(node), step))
                continue
            children = node
        else:
            continue
        for child in children:
            if isinstance(child, str):
                if len(child) * 4 > max_bytes:
                    _check_string(child, max_bytes)
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
        seen += len(node) + 1
        if seen >= _CHECK_EVERY:
            seen = 0
            if time.perf_counter() - started > _SLICE_S:
                await asyncio.sleep(0)  # let the other requests run
                started = time.perf_counter()


def _check_counts(body: Any, bounds: ServerConfig) -> None:
    """The number of messages and tools: read at the top level, without a walk."""
    if not isinstance(body, dict):
        return
    for key in _COUNTED:
        value = body.get(key)
        if isinstance(value, list):
            if key in _TOOLS:
                limit, reason = bounds.max_tools, errors.REQUEST_TOO_MANY_TOOLS
            else:
                limit, reason = bounds.max_messages, errors.REQUEST_TOO_MANY_MESSAGES
            if len(value) > limit:
                raise _refuse(reason, f"'{key}' has {len(value)}, at most {limit} are accepted")


def _check_string(text: str, limit: int) -> None:
    # A character is 1-4 UTF-8 bytes: encode only a string that may be over.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise _refuse(errors.REQUEST_STRING_TOO_LONG, f"at most {limit} bytes are accepted")
