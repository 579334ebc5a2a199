"""What the limits step reserved for one admitted request, kept on its context until settled.

A leaf: the request context holds a Grant, and the limits step reads the context.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.limits.store import Excess, RateCheck

__all__ = ["Grant"]


@dataclass(slots=True)
class Grant:
    """One admitted request's reservation, kept on its context until settled."""

    tag: str  # the hash tag of its settlement marker (a store spanning slots moves it)
    budget_keys: tuple[str, ...]
    token_rates: tuple[RateCheck, ...]
    reserved: int  # micro-USD
    in_estimate: int
    out: int  # output tokens granted
    counted_tokens: int  # what the token rules were charged
    drop_usage_chunk: bool  # we asked a stream for usage the client did not want
    excess: tuple[Excess, ...] = ()  # what slots hold beyond the grant (store.Excess)
    events: int = 0  # stream events relayed so far
    settled: bool = False
