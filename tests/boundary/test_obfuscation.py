"""Obfuscated and split values: found, and reported at exactly the characters that were sent.

Each case lists the values the detector must report, as substrings of the text as sent (so
masking replaces exactly them), and look-alikes that must stay untouched.
"""

from __future__ import annotations

import pytest

from gateway.boundary import DetectionSpec, build_detector, find_all
from tests.boundary.conftest import Detect

OPENAI = "sk-proj-N5KXSc7Tvo-hBKqFYY-kv5ZJr3J1TWDtkwtDDb_xHKas1VOqT3BlbkFJS2G8NPRVdD53X83RZJzzzzgEOzdmenCkhvMdgaKj"
GITHUB = "ghp_vJDCTbyvHNsG9eh6Yo4gfqrc5XlrWi0B26R0"


@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [
        # Card groups split by double spaces, line breaks, dots, slashes, underscores.
        ("CREDIT_CARD", "card 4111  1111  1111  1111 ok", ["4111  1111  1111  1111"]),
        ("CREDIT_CARD", "card 4111\n1111\n1111\n1111 ok", ["4111\n1111\n1111\n1111"]),
        ("CREDIT_CARD", "pay 4111.1111.1111.1111 now", ["4111.1111.1111.1111"]),
        ("CREDIT_CARD", "pay 4111/1111/1111/1111 now", ["4111/1111/1111/1111"]),
        ("CREDIT_CARD", "pay 4111_1111_1111_1111 now", ["4111_1111_1111_1111"]),
        ("CREDIT_CARD", "pay 4111 - 1111 - 1111 - 1111 now", []),  # three separators: prose
        # Invisible characters the first normalizer kept.
        ("CREDIT_CARD", "pay 4\u034f111 1111 1111 1111", ["4\u034f111 1111 1111 1111"]),
        (
            "CREDIT_CARD",
            "pay 4111\ufe0f1111\ufe0e1111\ufe001111",
            ["4111\ufe0f1111\ufe0e1111\ufe001111"],
        ),
        ("CREDIT_CARD", "pay 4111\U000e0020111111111111\U000e0041", ["4111\U000e0020111111111111"]),
        ("CREDIT_CARD", "pay 4\u0301111 1111 1111 1\u0332111", ["4\u0301111 1111 1111 1\u0332111"]),
        ("CREDIT_CARD", "pay 4111\u2066 1111 1111 1111", ["4111\u2066 1111 1111 1111"]),
        # SSNs with en dashes, non-breaking hyphens, minus signs; nine digits by an SSN word.
        ("US_SSN", "SSN 536\u201322\u20138741", ["536\u201322\u20138741"]),
        ("US_SSN", "SSN 536\u201122\u20118741", ["536\u201122\u20118741"]),
        ("US_SSN", "ssn 536\u221222\u22128741", ["536\u221222\u22128741"]),
        ("US_SSN", "my SSN is 536228741.", ["536228741"]),
        ("US_SSN", "order 536228741.", []),
        ("US_SSN", "range 2019\u20132021", []),
        # Spelled-out e-mail addresses, reported over everything that spells them.
        ("EMAIL_ADDRESS", "mail ann [at] example (dot) org", ["ann [at] example (dot) org"]),
        ("EMAIL_ADDRESS", "mail ann(AT)example{DOT}org!", ["ann(AT)example{DOT}org"]),
        (
            "EMAIL_ADDRESS",
            "bob <at> mail [dot] example [dot] com",
            ["bob <at> mail [dot] example [dot] com"],
        ),
        ("EMAIL_ADDRESS", "look [at] this (dot)", []),
        ("EMAIL_ADDRESS", "meet me [at] noon", []),
        # A provider key with one line break inside.
        ("SECRET", f"key {OPENAI[:40]}\n{OPENAI[40:]} ok", [f"{OPENAI[:40]}\n{OPENAI[40:]}"]),
        ("SECRET", f"key {GITHUB[:20]}\r\n{GITHUB[20:]}", [f"{GITHUB[:20]}\r\n{GITHUB[20:]}"]),
        ("SECRET", f"key {GITHUB}\nThanks", [GITHUB]),
    ],
)
def test_obfuscated_values(detect: Detect, entity: str, text: str, expected: list[str]) -> None:
    assert detect(entity, text) == expected


@pytest.mark.parametrize(
    "lookalike",
    [
        "version 4.1.11.1111 released",
        "sizes 1024 2048 4096 8192 bytes",
        "commit 4111111111111111aaf3 merged",
        "on 2024/11/11 at 11:11",
        "order ORD-4111-1111-1111",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "ids 1234.5678.9012 and 98/76/54",
    ],
)
def test_lookalikes_stay(lookalike: str) -> None:
    entities = frozenset({"CREDIT_CARD", "US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "IBAN_CODE"})
    assert build_detector(DetectionSpec(entities), None).find(lookalike) == []


async def test_a_value_split_across_two_texts_is_found_in_both() -> None:
    detector = build_detector(DetectionSpec(frozenset({"CREDIT_CARD", "EMAIL_ADDRESS"})), None)
    texts = ["my card is 4111 1111", "1111 1111, thanks", "mail ann@example.com", "x"]
    found = await find_all(detector, texts)
    parts = [[t[f.start : f.end] for f in fs] for t, fs in zip(texts, found, strict=True)]
    assert parts == [["4111 1111"], ["1111 1111"], ["ann@example.com"], []]


async def test_values_whole_on_each_side_are_not_joined() -> None:
    detector = build_detector(DetectionSpec(frozenset({"EMAIL_ADDRESS", "CREDIT_CARD"})), None)
    texts = ["mail ann@example.com", "card 4111 1111 1111 1111"]
    assert await find_all(detector, texts) == [detector.find(t) for t in texts]


async def test_a_sentence_end_is_no_join() -> None:
    spec = DetectionSpec(frozenset({"EMAIL_ADDRESS"}), allow_list=("support@example.com",))
    detector = build_detector(spec, None)
    texts = ["You reply as support@example.com.", "Thank the customer."]
    assert await find_all(detector, texts) == [[], []]


async def test_number_groups_split_at_a_space_are_joined() -> None:
    detector = build_detector(DetectionSpec(frozenset({"CREDIT_CARD"})), None)
    texts = ["card: 4111 1111 ", "1111 1111 please"]
    found = await find_all(detector, texts)
    assert [[t[f.start : f.end] for f in fs] for t, fs in zip(texts, found, strict=True)] == [
        ["4111 1111"],
        ["1111 1111"],
    ]
