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
from collections.abc import Awaitable

import orjson
import pytest
from ruamel.yaml import YAML

from gateway import errors
from gateway.auth.principal import Principal
from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.actions import Rewriter, TokenMinter
from gateway.boundary.batch import find_many
from gateway.boundary.pace import FRESH_S, REWRITE_UNIT, SLICE_S, Pacer, rewrite_paced
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.surfaces.openai_chat import parse

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


def test_a_scan_starts_without_a_cpu_reading_and_is_charged_no_less_than_its_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scan over in under ``FRESH_S`` (a 1 KB prompt) makes no system call for the CPU
    clock and is charged its wall time; a longer one's first reading carries the clock's
    values on without a jump, and it is charged from the CPU clock from then on."""
    wall, cpu, reads = [100.0], [5.0], []
    monkeypatch.setattr(time, "perf_counter", lambda: wall[0])
    monkeypatch.setattr(time, "thread_time", lambda: reads.append(cpu[0]) or cpu[0])
    pacer = Pacer(budget_s=1.0)
    wall[0] += FRESH_S / 2
    cpu[0] += FRESH_S / 4
    pacer.finish()
    assert reads == []
    assert pacer.spent_s == pytest.approx(FRESH_S / 2)  # the wall time: no less than the CPU
    pacer.resume()
    wall[0] += 0.5  # the upstream call: not the answer's scan
    pacer.resume()
    began = pacer.clock()
    wall[0] += 0.001
    cpu[0] += 0.0005
    first = pacer.clock()
    assert reads == [cpu[0]]
    assert first - began == pytest.approx(0.001)  # the stretch before the reading: wall time
    wall[0] += 0.001
    cpu[0] += 0.0002
    assert pacer.clock() - first == pytest.approx(0.0002)  # from then on: CPU time
    pacer.finish()
    assert pacer.spent_s == pytest.approx(FRESH_S / 2 + 0.0012)


# 2,000 messages of 2 KB of phone numbers: 230,000 findings, rewritten in one piece (0.4 s
# of CPU on the loop, outside the budget) before rewriting was paced.
PHONES = [_varied("call 555 0100 or ", 2000, i) for i in range(2000)]
PHONE_POLICY = """\
workflow: w
owner: o@example.com
access: {roles: [r], models: [m]}
data:
  entities: {PHONE_NUMBER: mask}
"""


def _phone_request() -> tuple[CompiledPolicy, NormalizedRequest, RequestContext]:
    policy = compile_policy(Policy.model_validate(YAML(typ="safe").load(PHONE_POLICY)), "w.yaml")
    messages = [{"role": "user", "content": text} for text in PHONES]
    request = parse(orjson.dumps({"model": "m", "messages": messages}))
    ctx = RequestContext("chat", "w")
    ctx.principal = Principal("alice", frozenset({"r"}))
    return policy, request, ctx


async def _longest_hold_of(work: Awaitable[object]) -> float:
    """The most CPU time the loop spent between two turns of another task during ``work``."""
    holds: list[float] = []
    done = False

    async def other() -> None:
        last = time.thread_time()
        while not done:
            await asyncio.sleep(0)
            now = time.thread_time()
            holds.append(now - last)
            last = now

    gc.collect()
    gc.freeze()
    try:
        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        try:
            await work
        finally:
            done = True
            await task
    finally:
        gc.unfreeze()
    return max(holds)


async def test_rewriting_many_findings_shares_the_loop() -> None:
    policy, request, ctx = _phone_request()
    boundary = Boundary(MemoryVault(), TokenMinter(b"k" * 32))
    hold = await _longest_hold_of(boundary.inspect(ctx, request, policy))
    assert hold < 0.025, f"the loop was held {hold * 1000:.0f} ms"
    assert ctx.boundary is not None
    assert ctx.boundary.request["mask"]["PHONE_NUMBER"] > 200_000
    assert all("555 0100" not in slot.text for slot in request.texts)


async def test_rewriting_counts_against_the_budget() -> None:
    texts = PHONES[:400]
    found = [DETECTOR.find(text) for text in texts]  # scanned: only the rewrite is counted
    pacer = Pacer(budget_s=0.02)
    rewriter = Rewriter({"PHONE_NUMBER": "mask"}, "w", TokenMinter(b"k" * 32))

    async def rewrite_all() -> None:
        for text, findings in zip(texts, found, strict=True):
            await rewrite_paced(rewriter.request_text, text, findings, pacer)
        pacer.finish()

    with pytest.raises(GatewayError) as raised:
        await rewrite_all()
    assert raised.value.reason is errors.BOUNDARY_TOO_COSTLY


async def test_a_paced_rewrite_equals_the_whole_one() -> None:
    text = " ".join(PHONES[:24])  # more findings than two units rewrite
    findings = DETECTOR.find(text)
    assert len(findings) > 2 * REWRITE_UNIT
    whole = Rewriter({"PHONE_NUMBER": "mask"}, "w", TokenMinter(b"k" * 32))
    paced = Rewriter({"PHONE_NUMBER": "mask"}, "w", TokenMinter(b"k" * 32))
    pacer = Pacer()
    out = await rewrite_paced(paced.request_text, text, findings, pacer)
    assert out == whole.request_text(text, findings)
    assert paced.counts == whole.counts


async def test_dense_parts_start_at_the_unit_the_last_one_measured() -> None:
    """250 parts of IP addresses: each new part's first window is the size the last window
    measured, not a quarter window of dense text again (about 6 ms each). Addresses drawn at
    random: no window repeats another (``_varied``'s texts do, every 2 KB, and other tests scan
    them), so the findings cache answers none and each unit measures the text's density."""
    rng = random.Random(213)
    texts = [
        " ".join(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                 for _ in range(1400))[:16384]
        for _ in range(40)
    ]  # fmt: skip
    pacer = Pacer()
    await _longest_hold(texts[:1], pacer)
    assert pacer.unit_chars is not None and pacer.unit_chars < 1024
    hold, found = await _longest_hold(texts, pacer)
    assert hold < 0.025, f"the loop was held {hold * 1000:.0f} ms"
    assert found == [DETECTOR.find(t) for t in texts]
