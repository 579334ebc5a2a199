"""find_all: the same findings as ``find``, inline for small texts, windowed or in a thread
for large ones, and the loop keeps running meanwhile."""

from __future__ import annotations

import asyncio
import random
import string
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.boundary import CustomRecognizer, DetectionSpec, build_detector, find_all
from gateway.boundary.findings import Finding
from gateway.boundary.pace import Pacer
from gateway.boundary.scan import INLINE_CHARS, find_windowed
from gateway.errors import GatewayError
from tests.boundary.corpus import load_corpus

ENTITIES = frozenset(
    {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "URL"}
    | {"SECRET"}
)
DETECTOR = build_detector(DetectionSpec(ENTITIES), None)
SAMPLES = [s.text for s in load_corpus()]


class _Recording:
    """A detector that notes the thread each call ran on, wrapping a real one."""

    def __init__(self, spec: DetectionSpec) -> None:
        self.inner = build_detector(spec, None)
        self.threads: list[int] = []

    @property
    def entities(self) -> frozenset[str]:
        return self.inner.entities

    def find(self, text: str) -> list[Finding]:
        self.threads.append(threading.get_ident())
        return self.inner.find(text)


async def test_small_texts_are_scanned_inline() -> None:
    detector = _Recording(DetectionSpec(ENTITIES))
    small = ["mail ann@example.com", "card 4111 1111 1111 1111"]
    assert await find_all(detector, small) == [detector.inner.find(t) for t in small]
    assert set(detector.threads) == {threading.get_ident()}


async def test_a_detector_that_cannot_be_windowed_runs_in_a_thread() -> None:
    spec = DetectionSpec(ENTITIES, custom=(CustomRecognizer("TICKET", r"T-\d{4}"),))
    big = "filler " * (INLINE_CHARS // 7) + "ann@example.com T-1234"
    assert not build_detector(spec, None).chunkable  # type: ignore[attr-defined]
    detector = _Recording(spec)
    (found,) = await find_all(detector, [big])
    assert [f.rule for f in found] == ["email", "custom.TICKET"]
    assert detector.threads and threading.get_ident() not in detector.threads


@settings(max_examples=150)
@given(st.randoms(use_true_random=False), st.integers(300, 3000))
async def test_windowed_scan_equals_the_whole_text_scan(rng: random.Random, window: int) -> None:
    text = "\n".join(rng.choice(SAMPLES) for _ in range(30))
    whole = DETECTOR.find(text)
    assert await find_windowed(DETECTOR, text, window=window, overlap=256) == whole


@pytest.mark.parametrize(
    "long_entity",
    [
        "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 200,
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ" + "a" * 6000 + ".sig_nature_1234",
        "DB_PASSWORD=" + "x7" * 3000,
    ],
)
async def test_an_entity_longer_than_the_overlap_is_still_found_whole(long_entity: str) -> None:
    text = "filler text. " * 3000 + long_entity + " and more filler." * 100
    assert await find_windowed(DETECTOR, text) == DETECTOR.find(text)
    assert any(f.end - f.start > 2048 for f in DETECTOR.find(text))


async def test_the_loop_keeps_running_while_a_large_body_is_scanned() -> None:
    big = "order 4111 1111 1111 1111 for ann@example.com. " * 40_000  # ~2 MB
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    (found,) = await find_all(DETECTOR, [big])
    task.cancel()
    assert len(found) == 80_000
    assert ticks > 100  # one window per tick, about 250 windows


def _base64(size: int, seed: int) -> str:
    rng = random.Random(seed)
    text = "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=size))
    # An eyJ every 256 KB or so in random base64; a few more here, each in a short run.
    return "".join(text[i : i + 65536] + "eyJ" for i in range(0, size, 65536))


@pytest.mark.parametrize(
    "text",
    [
        _base64(1024 * 1024, 1),
        "log: -----BEGIN CERTIFICATE-----\n"
        + "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n" * 4000,
    ],
    ids=["base64 with eyJ", "a 200 KB certificate"],
)
async def test_a_start_settled_in_its_window_never_widens_it_to_the_whole_text(text: str) -> None:
    """A JWT start whose run of token characters ends in the view, or a BEGIN line that is
    no private key's, needs no wider window: under a budget the scan is never refused for a
    value past the widest window (the mock's echoed 4 MB of base64 once went whole to a
    thread, 0.6 s of CPU past the budget)."""
    pacer = Pacer(budget_s=60)
    assert await find_windowed(DETECTOR, text, pacer=pacer) == DETECTOR.find(text)


async def test_a_value_past_the_widest_window_is_refused_under_a_budget_not_scanned_whole() -> None:
    text = "filler text. " * 100 + "token eyJ" + "a1_" * 150_000 + " and more filler." * 100
    with pytest.raises(GatewayError) as raised:
        await find_windowed(DETECTOR, text, pacer=Pacer(budget_s=60))
    assert raised.value.reason is errors.BOUNDARY_TOO_COSTLY
    # Offline tools have no budget: scanned whole, off the loop.
    assert await find_windowed(DETECTOR, text, pacer=Pacer()) == DETECTOR.find(text)
