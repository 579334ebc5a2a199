"""Short texts scanned together find exactly what each finds alone: a neighbour's context
word, digits or look-alike never reaches across the separator."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.batch import find_many

DETECTOR = build_detector(
    DetectionSpec(
        frozenset(
            {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "SECRET"}
        ),
        deny_terms=("Project Nightingale",),
    ),
    None,
)
PIECES = [
    "jane.doe@acme-corp.com", "4111 1111 1111 1111", "4111111111111111", "536-22-8947",
    "203.0.113.42", "version", "build", "v", "phone", "call", "ssn", "card", "+44 20 7946 0958",
    "5551234567", "123456789", "AKIAZ7Q3XJ2LMNP4RT6W", "Project", "Nightingale", "qty 13",
    "1.2.3.4", "-", ":", "=", "password", "\n", " ", "x" * 300, "a",
]  # fmt: skip
TEXTS = st.lists(st.sampled_from(PIECES), max_size=4).map(" ".join)


@settings(max_examples=300)
@given(st.lists(TEXTS, min_size=2, max_size=30))
def test_batched_findings_equal_each_texts_own(texts: list[str]) -> None:
    assert asyncio.run(find_many(DETECTOR, texts)) == [DETECTOR.find(t) for t in texts]


def test_a_finding_across_the_separator_sends_texts_back_alone() -> None:
    texts = ["mail jane.doe@acme-corp.com", "ends with 4111 1111", "1111 1111 starts"]
    assert asyncio.run(find_many(DETECTOR, texts)) == [DETECTOR.find(t) for t in texts]
