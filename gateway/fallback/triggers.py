"""Which reason sets which fallback trigger off: the ``trigger`` of the reason in the catalogue
(gateway/errors.py), looked up by code, so a step need not be imported here to be caught.

A code without a trigger never sets a fallback off: the client must see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gateway.errors import REASONS, Trigger

__all__ = ["ANSWER_TRIGGERS", "TRIGGERS", "trigger_of"]

# A view of the catalogue, for readers that list every code a fallback may catch.
TRIGGERS: Mapping[str, Trigger] = MappingProxyType(
    {code: r.trigger for code, r in REASONS.items() if r.trigger is not None}
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
    reason = REASONS.get(code)
    return reason.trigger if reason is not None else None
