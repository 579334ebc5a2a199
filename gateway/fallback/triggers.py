"""The one table from reason codes to the fallback triggers a policy's ``on`` names.

A code not in the table never sets a fallback off: the client must see it (a refused request
such as ``access.*`` or ``upstream.rejected``, or a gateway fault such as
``upstream.auth_failed``, which hiding behind a canned answer would keep from being fixed).
Codes are matched as strings, so steps that raise them need not be imported here
(``limits.*`` come from the limits step).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.fallback.spec import Trigger

__all__ = ["ANSWER_TRIGGERS", "TRIGGERS", "trigger_of"]

TRIGGERS: Mapping[str, Trigger] = MappingProxyType(
    {
        "limits.rate_exceeded": "rate_limited",
        "upstream.rate_limited": "rate_limited",
        "limits.budget_exhausted": "budget_exhausted",
        "upstream.error": "upstream_error",
        "upstream.unavailable": "upstream_error",
        "upstream.broken_stream": "upstream_error",  # before any byte reached the client
        "boundary.unknown_answer_shape": "upstream_error",
        "upstream.timeout": "upstream_timeout",
        "upstream.circuit_open": "circuit_open",
        "quality.low_confidence": "low_confidence",
        "quality.refusal": "low_confidence",
        "quality.schema_invalid": "schema_invalid",
        "quality.pattern_failed": "schema_invalid",
        "boundary.blocked_entity": "blocked",
        "boundary.blocked_output": "blocked",
        "boundary.image_blocked": "blocked",
        "boundary.unreadable_content": "blocked",
    }
)
# Triggers another model may cure. ``blocked`` is not one: a blocked request is the same for
# every model, and a blocked answer goes straight to the message.
ANSWER_TRIGGERS: frozenset[Trigger] = frozenset(
    {
        "upstream_error",
        "upstream_timeout",
        "rate_limited",
        "circuit_open",
        "low_confidence",
        "schema_invalid",
    }
)


def trigger_of(code: str) -> Trigger | None:
    return TRIGGERS.get(code)
