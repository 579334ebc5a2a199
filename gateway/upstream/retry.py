"""Retries of one model with tenacity: exponential backoff with jitter, ``Retry-After`` honoured,
and never past the request's deadline.

The first try is a plain call: tenacity's per-call objects (retry state, thread-local, bound
methods) form reference cycles that, built on every request, made the cyclic GC stall the event
loop for tens of milliseconds under load (bench/overhead.py). Only a failure pays for them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter

from gateway.upstream.provider import UpstreamFailure

__all__ = ["retried"]

T = TypeVar("T")

_FIRST_WAIT = 0.2  # seconds before the first retry; each later one doubles, up to _MAX_WAIT
_JITTER = 0.2
_MAX_WAIT = 4.0
_backoff = wait_exponential_jitter(multiplier=2 * _FIRST_WAIT, max=_MAX_WAIT, jitter=_JITTER)


def _wait(state: RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, UpstreamFailure) and failure.retry_after is not None:
        return failure.retry_after
    return _backoff(state)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamFailure) and exc.retryable


class _StopAtDeadline(stop_base):
    """Stop when sleeping before the next try would take us past the deadline."""

    def __init__(self, clock: Callable[[], float], deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + (state.upcoming_sleep or 0.0) >= self._deadline


async def retried(
    attempt: Callable[[], Awaitable[T]], first: UpstreamFailure, retries: int, deadline: float
) -> T:
    """The tries after a first that failed with ``first``: ``attempt`` up to ``retries``
    more times; raise the last failure when out of tries or when the next wait would end
    after ``deadline`` (a ``loop.time()``). The first try is the caller's own plain call."""
    if retries == 0 or not first.retryable:
        raise first
    loop = asyncio.get_running_loop()
    delay = first.retry_after
    if delay is None:
        delay = _FIRST_WAIT + random.uniform(0, _JITTER)
    if loop.time() + delay >= deadline:
        raise first
    await asyncio.sleep(delay)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(retries) | _StopAtDeadline(loop.time, deadline),
        wait=_wait,
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    result: T = await retrying(attempt)
    return result
