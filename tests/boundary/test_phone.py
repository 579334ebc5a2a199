"""PHONE_NUMBER: international and national formats; dates, ids and bare digit runs are not."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +1 (415) 555-0132", ["+1 (415) 555-0132"]),
        ("London +44 20 7946 0958.", ["+44 20 7946 0958"]),
        ("Munich +49 (0)89 1234567", ["+49 (0)89 1234567"]),
        ("from abroad 0049 30 901820", ["0049 30 901820"]),
        ("Paris +33 1 42 68 53 00", ["+33 1 42 68 53 00"]),
        ("Mumbai +91 98765 43210", ["+91 98765 43210"]),
        ("São Paulo +55 11 91234-5678", ["+55 11 91234-5678"]),
        ("Tokyo +81 3-1234-5678", ["+81 3-1234-5678"]),
        ("NYC (212) 555-0187", ["(212) 555-0187"]),
        ("SF 415.555.0199", ["415.555.0199"]),
        ("Rückruf 030 12345678", ["030 12345678"]),
        ("mon numéro 06 12 34 56 78", ["06 12 34 56 78"]),
        ("mobile 0412 345 678", ["0412 345 678"]),
        ("+４４ ２０ ７９４６ ０９５８", ["+４４ ２０ ７９４６ ０９５８"]),
        ("+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", ["+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨"]),
        # a bare digit run counts only with a context word
        ("call me on 4155550132", ["4155550132"]),
        ("ref 4155550132", []),
        ("epoch 1700000000", []),
        # look-alikes
        ("on 2024-03-01 at 10:32", []),
        ("2024-11-05 10:32:00", []),
        ("due 03/15/2025", []),
        ("ISBN 978-3-16-148410-0", []),
        ("order ORD-2024-118877", []),
        ("SSN 536-22-8741", []),
        ("build 20241125.3", []),
        ("total 1,234,567", []),
        ("ip 192.168.100.200", []),
        ("uuid 550e8400-e29b-41d4-a716-446655440000", []),
    ],
)
def test_phone(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("PHONE_NUMBER", text) == expected
