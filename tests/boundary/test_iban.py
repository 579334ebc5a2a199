"""IBAN_CODE: mod-97 checksum and the country's length, compact or in groups of four."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DE89 3704 0044 0532 0130 00", ["DE89 3704 0044 0532 0130 00"]),
        ("auf DE89370400440532013000.", ["DE89370400440532013000"]),
        ("GB29NWBK60161331926819", ["GB29NWBK60161331926819"]),
        ("FR14 2004 1010 0505 0001 3M02 606", ["FR14 2004 1010 0505 0001 3M02 606"]),
        ("NL91ABNA0417164300, BE68539007547034", ["NL91ABNA0417164300", "BE68539007547034"]),
        ("NO9386011117947", ["NO9386011117947"]),
        # the IBAN ends where its country's length says, not at the next number
        ("DE89 3704 0044 0532 0130 00 2 days", ["DE89 3704 0044 0532 0130 00"]),
        (
            "DE89370400440532013000 GB29NWBK60161331926819",
            ["DE89370400440532013000", "GB29NWBK60161331926819"],
        ),
        # look-alikes
        ("DE88 3704 0044 0532 0130 00", []),  # checksum
        ("DE89 3704 0044 0532 0130", []),  # too short
        ("XX89370400440532013000", []),  # no such country
        ("SKU AB12CDEF34567890", []),
    ],
)
def test_iban(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("IBAN_CODE", text) == expected
