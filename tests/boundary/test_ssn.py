"""US_SSN: the formatted shape with presidio's invalidation rules; bare nine digits need context."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN 536-22-8741", ["536-22-8741"]),
        ("her number is 412 55 9087", ["412 55 9087"]),
        ("ssn: 412.55.9087", ["412.55.9087"]),
        ("social security 219098765", ["219098765"]),
        ("id 219098765", []),
        ("mixed 536-22 8741", []),
        ("never issued 000-12-3456 666-12-3456 900-12-3456", []),
        ("zero groups 536-00-8741 536-22-0000", []),
        ("placeholders 123-45-6789 078-05-1120", []),
        ("part 536-22-8741-B", []),
    ],
)
def test_ssn(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("US_SSN", text) == expected
