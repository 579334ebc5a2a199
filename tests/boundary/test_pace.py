"""A request's scan shares the loop every few milliseconds whatever the body's shape, and is
refused past its CPU budget, never let through uninspected.

Gaps are measured in the loop thread's CPU time (``time.thread_time``): what the scan held
the loop for, not how long a loaded machine took to run it.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time

import pytest

from gateway import errors
from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.batch import find_many
from gateway.boundary.pace import SLICE_S, Pacer
from gateway.errors import GatewayError

DETECTOR = build_detector(
    DetectionSpec(
        frozenset(
            {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"}
            | {"SECRET", "URL"}
        )
    ),
    None,
)
RNG = random.Random(5)


def _varied(unit: str, size: int, seed: int) -> str:
    mark = f" {seed:07d} "
    piece = (unit * (2048 // len(unit) + 1))[: 2048 - len(mark)] + mark
    return (piece * (size // len(piece) + 1))[:size]


SHAPES = {
    "10,000 short texts": [f"mail {i}@example.com and call +1 212 555 {i % 10000:04d}" for i in
                           range(10_000)],
    "500 texts of 4 KB": [_varied("@", 4096, i) for i in range(500)],
    "250 texts of 16 KB": ["".join(RNG.choices("0123456789", k=16384)) for _ in range(250)],
    "one text of 1 MB": [_varied("a@a.", 1024 * 1024, 1)],
    "one text of 1 MB of ':'": [_varied(":", 1024 * 1024, 2)],
    "one text of 512 KB of IP addresses": [_varied("10.1.2.3 ", 512 * 1024, 3)],
}  # fmt: skip


async def _longest_hold(texts: list[str], pacer: Pacer) -> tuple[float, list[list[object]]]:
    """The most CPU time the loop spent between two turns of another task during the scan."""
    holds: list[float] = []
    done = False

    async def other() -> None:
        last = time.thread_time()
        while not done:
            await asyncio.sleep(0)
            now = time.thread_time()
            holds.append(now - last)
            last = now

    # As the server runs (gateway/app.py freezes what start-up built): a full collection
    # then walks only what requests made, not every object the test session holds.
    gc.collect()
    gc.freeze()
    try:
        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        found = await find_many(DETECTOR, texts, pacer)
        done = True
        await task
    finally:
        gc.unfreeze()
    return max(holds), found  # type: ignore[return-value]


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_the_loop_is_shared_every_few_ms_whatever_the_shape(shape: str) -> None:
    texts = SHAPES[shape]
    pacer = Pacer()
    hold, found = await _longest_hold(texts, pacer)
    # A slice (2 ms), plus the unit that ended it (about 1 ms), with room for a slow CI.
    assert SLICE_S == 0.002
    assert hold < 0.025, f"{shape}: the loop was held {hold * 1000:.0f} ms"
    assert pacer.yields > 0
    assert found == [DETECTOR.find(t) for t in texts]


async def test_a_scan_past_its_budget_is_refused() -> None:
    texts = [_varied("10.1.2.3 ", 16384, i) for i in range(100)]  # dense look-alikes
    pacer = Pacer(budget_s=0.05)
    with pytest.raises(GatewayError) as raised:
        await find_many(DETECTOR, texts, pacer)
    assert raised.value.reason is errors.BOUNDARY_TOO_COSTLY
    assert 0.05 < pacer.spent_s < 0.05 + 0.1


async def test_an_answer_s_scan_shares_the_request_s_budget_and_says_so() -> None:
    pacer = Pacer(budget_s=0.05)
    await find_many(DETECTOR, ["hello"], pacer)
    pacer.resume(errors.BOUNDARY_ANSWER_TOO_COSTLY)
    with pytest.raises(GatewayError) as raised:
        await find_many(DETECTOR, [_varied("10.1.2.3 ", 16384, i) for i in range(100)], pacer)
    assert raised.value.reason is errors.BOUNDARY_ANSWER_TOO_COSTLY
    assert raised.value.status == 502
