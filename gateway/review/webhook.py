"""The decision sent to the policy's webhook: a signed POST, retried with backoff, every
attempt recorded (the review store's deliveries and the audit chain), and resumed after a
restart from what the store recorded.

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
from gateway.review.store import Delivery, Item, ReviewStore, StoreUnavailable

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
    """Deliveries run as background tasks, each under a lease in the review store (the item's
    ``webhook_lease``) renewed before every attempt and every wait, so a delivery outlives the
    process: ``run`` sweeps for leases that lapsed or were released (a restart, a crashed
    instance or worker) and resumes them from their recorded attempts. ``aclose`` cancels the
    deliveries in flight and releases their leases, so the next start resumes them at once.

    Delivery is at least once: an attempt cut off after the receiver took it, before it was
    recorded, is sent again (receivers dedupe on ``x-gateway-review-id``)."""

    def __init__(
        self,
        config: ReviewConfig,
        env: Mapping[str, str],
        store: ReviewStore,
        on_attempt: OnAttempt,
    ) -> None:
        self._config = config
        self._env = env
        self._store = store
        self._on_attempt = on_attempt
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, float] = {}  # item id: the lease this process holds on it
        self._session: aiohttp.ClientSession | None = None

    def lease(self, wait: float = 0.0) -> float:
        """Until when a delivery is held: a wait, an attempt's timeout, and as long again
        for the store to record it."""
        return time.time() + wait + 2 * self._config.webhook_timeout_s + 1.0

    def send(self, item: Item, lease: float | None) -> None:
        """Deliver a decision whose lease ``decide`` took with it."""
        if item.webhook is None or lease is None:
            return
        self._held[item.id] = lease
        task = asyncio.create_task(self._deliver(item), name=f"review-webhook-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Resume due deliveries now, then whenever a lease lapses (at least every
        ``_SWEEP_S``, for other instances' crashes)."""
        while True:
            try:
                next_at = await self.sweep()
            except StoreUnavailable as exc:
                log.error("review webhooks: due deliveries not read: %s", exc)
                next_at = time.time() + _SWEEP_S
            except Exception:  # the loop outlives any one item; the next sweep tries again
                log.exception("review webhooks: sweep failed")
                next_at = time.time() + _SWEEP_S
            await asyncio.sleep(min(max(next_at - time.time(), 0.05), _SWEEP_S))

    async def sweep(self) -> float:
        """Take every lapsed lease nobody here holds; when the next one lapses."""
        next_at = time.time() + _SWEEP_S
        for id_, held in await self._store.due_deliveries():
            now = time.time()
            if id_ in self._held:
                continue
            if held > now:
                next_at = min(next_at, held)
                continue
            lease = self.lease()
            if not await self._store.swap_lease(id_, held, lease):
                continue  # another process took it first
            item = await self._store.get(id_)
            if item is None or item.webhook is None:
                await self._store.swap_lease(id_, lease, None)
                continue
            log.info("review %s: resuming its webhook delivery", id_)
            self.send(item, lease)
        return next_at

    async def _renew(self, item: Item, until: float | None) -> bool:
        """Move this process's lease on ``item`` (None: end it); False if it was lost."""
        held = self._held[item.id]
        try:
            ok = await self._store.swap_lease(item.id, held, until)
        except StoreUnavailable as exc:
            log.error("review %s: delivery lease not renewed: %s", item.id, exc)
            return until is not None  # keep going; a lapsed lease is resumed elsewhere at worst
        if ok and until is not None:
            self._held[item.id] = until
        return ok

    async def _deliver(self, item: Item) -> None:
        try:
            await self._attempts(item)
        finally:
            self._held.pop(item.id, None)

    async def _attempts(self, item: Item) -> None:
        """The attempts still due: after those the store recorded (a resumed delivery waits
        what the last one's backoff says), up to ``webhook_attempts`` in all."""
        assert item.webhook is not None
        config = self._config
        if any(_ok(d.status) for d in item.deliveries):
            await self._renew(item, None)  # delivered before a restart cut the lease's end
            return
        secret = self._env.get(item.webhook_secret_env or "", "")
        if not secret:
            log.error("review %s: webhook secret %s is not set", item.id, item.webhook_secret_env)
        import aiohttp

        body = orjson.dumps(payload(item))
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=config.webhook_timeout_s)
            )
        attempt = max((d.attempt for d in item.deliveries), default=0) + 1
        due = item.deliveries[-1].at + _backoff(config, attempt - 1) if item.deliveries else 0.0
        while attempt <= config.webhook_attempts:
            wait = due - time.time()
            if wait > 0:
                if not await self._renew(item, self.lease(wait)):
                    return
                await asyncio.sleep(wait)
            if not await self._renew(item, self.lease()):
                return
            status, error = await self._post(item, body, secret)
            await self._on_attempt(item, Delivery(attempt, time.time(), status, error))
            if _ok(status):
                await self._renew(item, None)
                return
            due = time.time() + _backoff(config, attempt)
            attempt += 1
        await self._renew(item, None)
        log.warning("review %s: webhook gave up after %d attempts", item.id, attempt - 1)

    async def _post(self, item: Item, body: bytes, secret: str) -> tuple[int | None, str | None]:
        assert item.webhook is not None
        assert self._session is not None
        at = int(time.time())
        headers = {
            "content-type": "application/json",
            "x-gateway-signature": sign(secret.encode(), body, at),
            "x-gateway-review-id": item.id,
        }
        try:
            async with self._session.post(item.webhook, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, type(exc).__name__

    async def aclose(self) -> None:
        """Cancel the deliveries in flight and release their leases (due now: the next
        start, or another instance's sweep, resumes them)."""
        held = dict(self._held)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for id_, lease in held.items():
            try:
                await self._store.swap_lease(id_, lease, 0.0)
            except StoreUnavailable as exc:
                log.error("review %s: delivery lease not released: %s", id_, exc)
        if self._session is not None:
            await self._session.close()


# At most this long between sweeps for deliveries another process left due.
_SWEEP_S = 30.0


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _backoff(config: ReviewConfig, attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): the backoff, doubled each time."""
    return float(config.webhook_backoff_s * 2 ** (attempt - 1))
