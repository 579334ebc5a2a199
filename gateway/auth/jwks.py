"""Keys from the identity provider's JWKS URL: fetched off the request path where possible,
and never more often than a flood of made-up ``kid``s would like.

- One fetch at start-up, then a background refresh when the keys are older than ``max_age_s``
  (requests keep using the current keys meanwhile), and one when a token names an unknown
  ``kid`` (those requests wait for it, bounded by ``timeout_s``).
- After start-up, fetches start at most once per ``min_interval_s`` whatever asks for them,
  and concurrent requests share the fetch in flight (single flight): a flood of made-up kids,
  or a provider that stays down, costs the provider one request per interval.
- A failed fetch keeps the last good keys: the provider being down does not lock out tokens
  signed with keys the gateway already has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from gateway.auth.keyset import UnusableKey, VerifyKey, parse_jwks

__all__ = ["RemoteKeys"]

log = logging.getLogger("gateway.auth")

_MAX_BYTES = 512 * 1024


class RemoteKeys:
    """The signing keys at one JWKS URL, kept fresh within the bounds above."""

    def __init__(
        self,
        url: str,
        allowed: Collection[str],
        on_change: Callable[[], None],
        *,
        min_interval_s: float = 10.0,
        max_age_s: float = 300.0,
        timeout_s: float = 2.0,
    ) -> None:
        self._url = url
        self._allowed = tuple(allowed)
        self._on_change = on_change
        self._min_interval_s = min_interval_s
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self.keys: tuple[VerifyKey, ...] = ()
        self._raw = b""
        self.failing = True  # until the first fetch succeeds
        self.fetches = 0
        self._fetched_at = -max_age_s  # monotonic time of the last good fetch
        self._started_at = -min_interval_s  # of the last fetch started after start-up
        self._inflight: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.shield(self._begin())
        # The start-up fetch does not count against the interval: a key rotated just before
        # start-up must not wait ``min_interval_s`` to be fetched.
        self._started_at = -self._min_interval_s

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)

    def keep_fresh(self) -> None:
        """Start a background refresh if the keys are old (and the interval allows); never waits."""
        now = time.monotonic()
        if now - self._fetched_at >= self._max_age_s and self._may_start(now):
            self._begin()

    async def refresh_for_unknown_kid(self) -> None:
        """Wait for the fetch in flight, or start one if the interval allows; else return."""
        if self._inflight is None and not self._may_start(time.monotonic()):
            return
        # A caller that goes away must not cancel the fetch the others are waiting for.
        await asyncio.shield(self._begin())

    def _may_start(self, now: float) -> bool:
        return now - self._started_at >= self._min_interval_s

    def _begin(self) -> asyncio.Task[None]:
        """The fetch in flight, or a new one (single flight)."""
        if self._inflight is None:
            self._started_at = time.monotonic()
            self._inflight = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight.add_done_callback(self._done)
        return self._inflight

    def _done(self, _: asyncio.Task[None]) -> None:
        self._inflight = None

    async def _fetch(self) -> None:
        import aiohttp  # only where a JWKS is configured: a third of a second of start-up

        self.fetches += 1
        try:
            raw = await self._download()
            keys = parse_jwks(raw, self._allowed, self._url)
        except (aiohttp.ClientError, TimeoutError, UnusableKey) as exc:
            self.failing = True
            log.warning(
                "JWKS %s not refreshed, keeping %d keys: %s", self._url, len(self.keys), exc
            )
            return
        self.failing = False
        self._fetched_at = time.monotonic()
        if raw != self._raw:
            log.info("JWKS %s: %d signing keys", self._url, len(keys))
            self._raw, self.keys = raw, tuple(keys)
            self._on_change()

    async def _download(self) -> bytes:
        import aiohttp

        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout_s)) as session,
            session.get(self._url, headers={"accept": "application/json"}) as response,
        ):
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="JWKS fetch failed"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > _MAX_BYTES:
                    raise UnusableKey(f"JWKS larger than {_MAX_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
