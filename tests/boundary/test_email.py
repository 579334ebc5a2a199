"""EMAIL_ADDRESS: the address and only it; no hit on handles, paths or image names."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.smith@example.com today", ["john.smith@example.com"]),
        ("<maria+billing@acme-corp.co.uk>", ["maria+billing@acme-corp.co.uk"]),
        (
            "o'brien@example.ie, user_42@sub.mail.example.org",
            ["o'brien@example.ie", "user_42@sub.mail.example.org"],
        ),
        ("josé@exämple.de", ["josé@exämple.de"]),
        ("punycode a@xn--80ak6aa92e.com", ["a@xn--80ak6aa92e.com"]),
        ("end of sentence: bob@example.com.", ["bob@example.com"]),
        ('{"email":"ann@example.org"}', ["ann@example.org"]),
        ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", ["ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ"]),
        ("an\u200bna@exam\u200bple.com", ["an\u200bna@exam\u200bple.com"]),
        # look-alikes
        ("ping @alice about it", []),
        ("deploy@ci finished", []),
        ("noreply@ is not an address", []),
        ('<img src="/static/img/logo@2x.png">', []),
        ("icons: avatar@3x.jpg", []),
        ("npm i @types/node@20.11.0", []),
        ("git@github:org/repo", []),
    ],
)
def test_email(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("EMAIL_ADDRESS", text) == expected
