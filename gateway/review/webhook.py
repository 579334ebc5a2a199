"""The decision sent to the policy's webhook: a signed POST, retried with backoff, every
attempt recorded (the review store's deliveries and the audit chain).

The body is JSON; ``x-gateway-signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``
under the key in the policy's ``webhook_secret_env``. A receiver recomputes it, compares in
constant time and refuses an old ``t`` (replays).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway.review.spec import ReviewConfig
from gateway.review.store import Delivery, Item

if TYPE_CHECKING:
    import aiohttp  # imported when a webhook is first sent: a third of a second of start-up

__all__ = ["Webhooks", "sign"]

log = logging.getLogger("gateway.review")

OnAttempt = Callable[[Item, Delivery], Awaitable[None]]


def sign(secret: bytes, body: bytes, at: int) -> str:
    mac = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def payload(item: Item) -> dict[str, Any]:
    """What the app learns of a decision: the same as its poll answers."""
    return {
        "event": "review.decided",
        "id": item.id,
        "workflow": item.workflow,
        "request_id": item.request_id,
        "status": item.state,
        "verdict": item.verdict,
        "note": item.note,
        "decided_at": item.decided_at,
        "answer": orjson.loads(item.result) if item.result else None,
    }


class Webhooks:
    """Deliveries run as background tasks; ``aclose`` cancels those still retrying."""

    def __init__(self, config: ReviewConfig, env: Mapping[str, str], on_attempt: OnAttempt) -> None:
        self._config = config
        self._env = env
        self._on_attempt = on_attempt
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, item: Item) -> None:
        if item.webhook is None:
            return
        task = asyncio.create_task(self._deliver(item), name=f"review-webhook-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, item: Item) -> None:
        assert item.webhook is not None
        secret = self._env.get(item.webhook_secret_env or "", "")
        if not secret:
            log.error("review %s: webhook secret %s is not set", item.id, item.webhook_secret_env)
        import aiohttp

        body = orjson.dumps(payload(item))
        config = self._config
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=config.webhook_timeout_s)
            )
        for attempt in range(1, config.webhook_attempts + 1):
            at = int(time.time())
            headers = {
                "content-type": "application/json",
                "x-gateway-signature": sign(secret.encode(), body, at),
                "x-gateway-review-id": item.id,
            }
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(item.webhook, data=body, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            await self._on_attempt(item, Delivery(attempt, time.time(), status, error))
            if status is not None and 200 <= status < 300:
                return
            await asyncio.sleep(config.webhook_backoff_s * 2 ** (attempt - 1))
        log.warning("review %s: webhook gave up after %d attempts", item.id, attempt)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
