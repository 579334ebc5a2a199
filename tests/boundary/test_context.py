"""Context-bearing values: a value its context names is caught even when it fails validation.

Validation (libphonenumber, Luhn, mod-97, SSA ranges) decides values that nothing around them
names; a context word or a field name (JSON, YAML, key=value, XML, a CSV header, an SQL column
list) keeps a value of the entity's shape whatever its validity.
"""

from __future__ import annotations

import pytest

from gateway.boundary.fields import Fields, key_words, matches
from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [
        # Unassigned area codes, written the North American way: the grouping names them.
        ("PHONE_NUMBER", "Reach Bob at (555) 234-0199 after lunch", ["(555) 234-0199"]),
        ("PHONE_NUMBER", "Bob 212.555.0147, Ann 389-555-0199", ["212.555.0147", "389-555-0199"]),
        # Any country's shape beside a phone word, valid or not.
        ("PHONE_NUMBER", "phone 099 123 45", ["099 123 45"]),
        ("PHONE_NUMBER", "Tel: +49 (0) 30 1234 567", ["+49 (0) 30 1234 567"]),
        ("PHONE_NUMBER", "mobile 0612 3456 789 (NL)", ["0612 3456 789"]),
        # Fields name them.
        ("PHONE_NUMBER", '{"phone": "12345678"}', ["12345678"]),
        ("PHONE_NUMBER", "contact:\n  mobileNumber: 4471229\n", ["4471229"]),
        ("PHONE_NUMBER", "user=ann tel_no=4471229 status=ok", ["4471229"]),
        ("PHONE_NUMBER", "<phone>4471229</phone>", ["4471229"]),
        (
            "PHONE_NUMBER",
            "name,phone,city\nAnn,4471229,Rome\nBob,4471230,Oslo",
            ["4471229", "4471230"],
        ),
        ("PHONE_NUMBER", "id\tphone\n7\t4471229\n", ["4471229"]),
        (
            "PHONE_NUMBER",
            "INSERT INTO users (name, phone) VALUES ('Ann, B', '4471229'), ('Bob', '1234567');",
            ["4471229", "1234567"],
        ),
        # Look-alikes: labelled as something else, or no context at all.
        ("PHONE_NUMBER", "order 12345678 for the contact form", []),
        ("PHONE_NUMBER", "call about ticket 44712290", []),
        ("PHONE_NUMBER", "build 20240311 shipped", []),
        ("PHONE_NUMBER", "name,order_id\nAnn,4471229\n", []),
        ("PHONE_NUMBER", "phone: released on 2024-03-01", []),
        ("US_SSN", "SSN 912-34-5678", ["912-34-5678"]),
        ("US_SSN", "social security number 666-12-3456 (test)", ["666-12-3456"]),
        ("US_SSN", "ssn=900123456", ["900123456"]),
        ("US_SSN", "TIN: 000-12-3456", ["000-12-3456"]),
        ("US_SSN", '{"ssn": "219098765"}', ["219098765"]),
        ("US_SSN", "ssn,name\n666-12-3456,Ann", ["666-12-3456"]),
        ("US_SSN", "part 912-34-5678", []),
        ("US_SSN", "setting 912-34-5678", []),  # "tin" inside a word is no context
        ("CREDIT_CARD", "card number 4111 1111 1111 1112", ["4111 1111 1111 1112"]),
        ("CREDIT_CARD", '{"card_number": "4111111111111112"}', ["4111111111111112"]),
        ("CREDIT_CARD", "cc: 4111-1111-1111-1112", ["4111-1111-1111-1112"]),
        ("CREDIT_CARD", "order 4111 1111 1111 1112", []),
        ("CREDIT_CARD", "card batch 41111 111111 11112", []),  # not a card's grouping
        ("IBAN_CODE", "IBAN DE89 3704 0044 0532 0130 02", ["DE89 3704 0044 0532 0130 02"]),
        ("IBAN_CODE", "account: GB29NWBK60161331926818 ok", ["GB29NWBK60161331926818"]),
        ("IBAN_CODE", "ref GB29NWBK60161331926818 ok", []),
        ("IBAN_CODE", "account DE12 PROJECT NOTES", []),
    ],
)
def test_context_keeps_invalid_values(
    detect: Detect, entity: str, text: str, expected: list[str]
) -> None:
    assert detect(entity, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ITIN 912-70-1234", ["912-70-1234"]),
        ("taxpayer id 912 88 1234", ["912 88 1234"]),
        ("W-7 filed, ITIN 912-34-5678", ["912-34-5678"]),  # outside ITIN groups, named
        ('{"itin": "912701234"}', ["912701234"]),
        ("part 912-34-5678", []),
        ("SSN 536-22-8741", []),
    ],
)
def test_itin(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("US_ITIN", text) == expected


def test_an_itin_beside_ssn_words_is_masked_as_an_ssn(detect: Detect) -> None:
    assert detect("US_SSN", "SSN (an ITIN really): 912-70-1234") == ["912-70-1234"]


@pytest.mark.parametrize(
    ("key", "entity", "expected"),
    [
        ("customerFullName", "PERSON", True),
        ("file_name", "PERSON", False),
        ("hostname", "PERSON", False),
        ("contact_phone", "PHONE_NUMBER", True),
        ("telephone", "PHONE_NUMBER", True),
        ("ssn_last4", "US_SSN", True),
        ("iban", "IBAN_CODE", True),
        ("amount", "IBAN_CODE", False),
    ],
)
def test_field_names(key: str, entity: str, expected: bool) -> None:
    assert matches(entity, key_words(key)) is expected


def test_a_header_far_above_still_names_its_column() -> None:
    rows = "".join(f"{i},Ann,{1000000 + i}\n" for i in range(150))
    text = "id,name,phone\n" + rows
    at = text.index("1000149")
    assert "phone" in Fields(text).key_at(at)
    assert "phone" not in Fields("id,name,phone").key_at(8)
