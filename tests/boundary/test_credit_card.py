"""CREDIT_CARD: Luhn plus brand prefix and length, Mastercard 2-series and 19 digits included."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", ["4111 1111 1111 1111"]),
        ("4111-1111-1111-1111", ["4111-1111-1111-1111"]),
        ("pan=4012888888881881;", ["4012888888881881"]),
        ("visa 13 4222222222222", ["4222222222222"]),
        ("MC 5555 5555 5555 4444", ["5555 5555 5555 4444"]),
        ("MC 2-series 2223003122003222", ["2223003122003222"]),
        ("MC 2-series 2720 8246 2819 4829", ["2720 8246 2819 4829"]),
        ("amex 3782 822463 10005", ["3782 822463 10005"]),
        ("discover 6011111111111117", ["6011111111111117"]),
        ("visa 19 4526018159083016612", ["4526018159083016612"]),
        ("unionpay 19 6231860913909960302", ["6231860913909960302"]),
        ("jcb 3530111333300000", ["3530111333300000"]),
        ("diners 30569309025904", ["30569309025904"]),
        ("４１１１ １１１１ １１１１ １１１１", ["４１１１ １１１１ １１１１ １１１１"]),
        ("5555\u200b5555\u200b5555\u200b4444", ["5555\u200b5555\u200b5555\u200b4444"]),
        # look-alikes
        ("4111 1111 1111 1112", []),  # Luhn fails
        ("order_no=100000000000000008", []),  # Luhn passes, no card brand
        ("1111111111111111", []),
        ("EAN 4006381333931", []),
        ("tracking 00340434161234567890", []),
        ("uuid 4111a111-1111-1111-1111-111111111111", []),
    ],
)
def test_credit_card(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("CREDIT_CARD", text) == expected


def test_unbranded_luhn_number_needs_context(detect: Detect) -> None:
    assert detect("CREDIT_CARD", "credit card 100000000000000008") == ["100000000000000008"]
