"""Retries of one model with tenacity: exponential backoff with jitter, ``Retry-After`` honoured,
and never past the request's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential_jitter

from gateway.upstream.provider import UpstreamFailure

__all__ = ["with_retries"]

T = TypeVar("T")

_backoff = wait_exponential_jitter(multiplier=0.2, max=4.0, jitter=0.2)


def _wait(state: RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, UpstreamFailure) and failure.retry_after is not None:
        return failure.retry_after
    return _backoff(state)


class _StopAtDeadline(stop_base):
    """Stop when sleeping before the next try would take us past the deadline."""

    def __init__(self, clock: Callable[[], float], deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + (state.upcoming_sleep or 0.0) >= self._deadline


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamFailure) and exc.retryable


async def with_retries(attempt: Callable[[], Awaitable[T]], retries: int, deadline: float) -> T:
    """Run ``attempt`` up to ``retries + 1`` times; raise the last failure when out of tries
    or when the next wait would end after ``deadline`` (a ``loop.time()``)."""
    loop = asyncio.get_running_loop()

    retrying = AsyncRetrying(
        stop=stop_after_attempt(retries + 1) | _StopAtDeadline(loop.time, deadline),
        wait=_wait,
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    result: T = await retrying(attempt)
    return result
