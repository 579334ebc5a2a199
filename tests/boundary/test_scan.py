"""find_all: the same findings as find, inline for small inputs and off the loop for large ones."""

from __future__ import annotations

import asyncio
import threading

from gateway.boundary import DetectionSpec, build_detector, find_all
from gateway.boundary.findings import Finding
from gateway.boundary.scan import INLINE_CHARS

SPEC = DetectionSpec(frozenset({"EMAIL_ADDRESS", "CREDIT_CARD", "SECRET"}))


class _Recording:
    """A detector that notes the thread it ran on, wrapping the real one."""

    def __init__(self) -> None:
        self.inner = build_detector(SPEC, None)
        self.threads: list[int] = []

    @property
    def entities(self) -> frozenset[str]:
        return self.inner.entities

    def find(self, text: str) -> list[Finding]:
        self.threads.append(threading.get_ident())
        return self.inner.find(text)


async def test_small_inputs_inline_large_ones_in_a_thread() -> None:
    detector = _Recording()
    small = ["mail ann@example.com", "card 4111 1111 1111 1111"]
    assert await find_all(detector, small) == [detector.inner.find(t) for t in small]
    assert set(detector.threads) == {threading.get_ident()}

    detector.threads.clear()
    large = [
        "filler " * (INLINE_CHARS // 7) + "ann@example.com",
        "sk_live_c01T5GOBUSZGi6HWGK10Zb0R",
    ]
    found = await find_all(detector, large)
    assert found == [detector.inner.find(t) for t in large]
    assert [f.rule for f in found[0]] == ["email"] and [f.rule for f in found[1]] == [
        "secret.stripe_key"
    ]
    assert threading.get_ident() not in set(detector.threads[:2])


async def test_the_loop_keeps_running_while_a_large_body_is_scanned() -> None:
    detector = build_detector(SPEC, None)
    big = ["order 4111 1111 1111 1111 for ann@example.com. " * 40_000]  # ~2 MB
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await find_all(detector, big)
    task.cancel()
    assert ticks > 5  # inline, the scan would have held the loop for its whole duration
