"""Pattern rules for personal data: e-mail, phone, card, SSN, IBAN, IP address, URL.

Patterns and validators follow presidio's recognizers (same entity names, checksums, SSN
invalidation rules) with their known weak spots fixed: Mastercard 2-series and 19-digit cards,
no URL inside an e-mail address, file names (``main.py``) not taken for domains, dates and bare
digit runs not taken for phone numbers unless a context word is near.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import phonenumbers

from gateway.boundary.rules import Check, Hit, Rule

__all__ = ["PII_RULES"]

_B = r"(?<![\w\-./+])"  # start of a token: not inside a word, id, version or path
_E = r"(?![\w\-]|[./]\w)"  # end of a token

# --- e-mail ------------------------------------------------------------------------------

# Matched from the "@" (a fast literal search), the local part then read backwards: a
# pattern starting with a word character would be tried at every letter of the text.
_EMAIL = re.compile(
    r"@[^\W_](?:[\w-]{0,61}[^\W_])?(?:\.[^\W_](?:[\w-]{0,61}[^\W_])?)*\.(?:[^\W\d_]{2,63}|xn--[\w-]+)"
    r"(?![\w-])"
)

# RFC 5322 allows "/" too, but then "/static/img/logo@2x.png" would be an address.
_LOCAL_CHARS = frozenset("!#$%&'*+=?^`{|}~-.")
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "ico", "pdf"})


def _email(match: re.Match[str]) -> Hit | None:
    text, at = match.string, match.start()
    start = at
    while (
        start > 0
        and at - start < 64
        and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_CHARS or text[start - 1] == "_")
    ):
        start -= 1
    while start < at and text[start] == ".":
        start += 1
    if start == at or text[start - 1 : start] == "/":
        return None
    if match.group().rsplit(".", 1)[-1].lower() in _FILE_SUFFIXES:
        return None
    return start, match.end(), 0.9


# --- phone -------------------------------------------------------------------------------

_PHONE = re.compile(_B + r"(?:\+|00)?\(?\d[\d \t\u00a0().\-/]{4,22}\d" + r"(?![\w\-]|[./:]\d)")
# Dates, times and the SSN shape are not phone numbers in any region we parse for.
_NOT_PHONE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}[-/]\d{4}|\d{3}-\d{2}-\d{4}"
)
# National numbers are tried in the regions whose format they could be: those dialled with a
# trunk "0" and those without. Each parse costs ~15 us, so the split halves the work.
_TRUNK_REGIONS = ("GB", "DE", "FR", "NL", "CH", "IT", "AU", "IN", "BR", "IL")
_PLAIN_REGIONS = ("US", "ES", "IT", "IN")
_PHONE_CONTEXT = ("phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "contact")


def _phone(match: re.Match[str]) -> Hit | None:
    score = _phone_score(match.group())
    return None if score is None else (match.start(), match.end(), score)


# A conversation resends its history every turn: the same numbers come back again and again.
@functools.lru_cache(maxsize=4096)
def _phone_score(raw: str) -> float | None:
    digits = sum(c.isdigit() for c in raw)
    if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(raw):
        return None
    if raw.startswith(("+", "00")):
        number = _parse("+" + raw.lstrip("+")[2 if raw.startswith("00") else 0 :], None)
        if number is not None and phonenumbers.is_valid_number(number):
            return 0.75
    regions = _TRUNK_REGIONS if raw.lstrip("(")[:1] == "0" else _PLAIN_REGIONS
    if not any(_valid_in(raw, region) for region in regions):
        return None
    formatted = any(c in raw for c in " -.()/\t\u00a0")
    # A bare run of digits is as likely an id or a timestamp: it needs a context word.
    return 0.6 if formatted else 0.3


def _parse(raw: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None


def _valid_in(raw: str, region: str) -> bool:
    number = _parse(raw, region)
    return (
        number is not None
        and phonenumbers.is_possible_number(number)
        and phonenumbers.is_valid_number(number)
    )


# --- credit card -------------------------------------------------------------------------

_CARD = re.compile(_B + r"\d(?:[ \-]?\d){11,18}" + _E)
# (prefix range low, high, allowed lengths): Visa, Mastercard 51-55 and 2221-2720, Amex,
# Discover, JCB, Diners, UnionPay, Maestro; 19-digit Visa/Discover/JCB/UnionPay included.
_BRANDS = (
    ("4", "4", (13, 16, 19)),
    ("51", "55", (16,)),
    ("2221", "2720", (16,)),
    ("34", "34", (15,)),
    ("37", "37", (15,)),
    ("6011", "6011", (16, 17, 18, 19)),
    ("644", "649", (16, 17, 18, 19)),
    ("65", "65", (16, 17, 18, 19)),
    ("3528", "3589", (16, 17, 18, 19)),
    ("300", "305", (14, 15, 16, 17, 18, 19)),
    ("36", "36", (14, 15, 16, 17, 18, 19)),
    ("38", "39", (16, 17, 18, 19)),
    ("62", "62", (16, 17, 18, 19)),
    ("50", "50", (12, 13, 14, 15, 16, 17, 18, 19)),
    ("56", "58", (12, 13, 14, 15, 16, 17, 18, 19)),
    ("67", "67", (12, 13, 14, 15, 16, 17, 18, 19)),
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _branded(digits: str) -> bool:
    for low, high, lengths in _BRANDS:
        if len(digits) in lengths and low <= digits[: len(low)] <= high:
            return True
    return False


def _card(match: re.Match[str]) -> Hit | None:
    digits = match.group().replace(" ", "").replace("-", "")
    if len(set(digits)) == 1 or not _luhn(digits):
        return None
    # Luhn alone passes one random number in ten: an unbranded one needs a context word.
    return match.start(), match.end(), 0.9 if _branded(digits) else 0.2


# --- US SSN ------------------------------------------------------------------------------

_SSN = re.compile(_B + r"(\d{3})([- .]?)(\d{2})\2(\d{4})" + _E)
_SSN_PLACEHOLDERS = frozenset({"123456789", "987654320", "078051120"})


def _ssn(match: re.Match[str]) -> Hit | None:
    area, sep, group, serial = match.groups()
    digits = area + group + serial
    if (
        area in ("000", "666")
        or area >= "900"
        or group == "00"
        or serial == "0000"
        or len(set(digits)) == 1
        or digits in _SSN_PLACEHOLDERS
    ):
        return None
    # 9 bare digits are any id; "123-45-6789" is the SSN shape but also a part number.
    return match.start(), match.end(), 0.6 if sep else 0.2


# --- IBAN --------------------------------------------------------------------------------

_IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){10,30}(?![a-z0-9])")
# Length of an IBAN per country (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    cc: int(n)
    for cc, n in re.findall(
        r"([A-Z]{2})(\d\d)",
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
        "DK18 DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 "
        "IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 "
        "ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 "
        "SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20",
    )
}


def _iban(match: re.Match[str]) -> Hit | None:
    raw = match.group()
    length = _IBAN_LENGTHS.get(raw[:2], 0)
    compact, end = "", match.start()
    for i, ch in enumerate(raw):
        if ch.isalnum():
            compact += ch
            if len(compact) == length:
                end = match.start() + i + 1
                break
    if len(compact) != length or (end < match.end() and raw[end - match.start()].isalnum()):
        return None
    rotated = compact[4:] + compact[:4]
    if int("".join(str(int(c, 36)) for c in rotated)) % 97 != 1:
        return None
    return match.start(), end, 0.95


# --- IP address --------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(
    r"(?<![\w.])" + rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/\d{{1,2}})?" + r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


_VERSION_BEFORE = re.compile(r"(?:version|build|release|\bver)\W{0,3}$", re.IGNORECASE)


def _ipv4(match: re.Match[str]) -> Hit | None:
    # "appVersion 2.14.3.1": four-part version numbers have the shape of an address.
    if _VERSION_BEFORE.search(match.string, max(0, match.start() - 12), match.start()):
        return None
    return match.start(), match.end(), 0.7


def _ipv6(match: re.Match[str]) -> Hit | None:
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return None
    return match.start(), match.end(), 0.7


# --- URL ---------------------------------------------------------------------------------

# Without a scheme, a path stops at ":" so "registry.example.com/app:1.8.2" keeps its tag.
_URL_TAIL = r"""(?::\d{2,5})?(?:[/?#][^\s<>"'`{}|\\^:]*)?"""
_SCHEME_URL = re.compile(r"""(?i)\b(?:https?|ftps?|sftp|wss?)://[^\s<>"'`{}|\\^]+""")
_TLDS = (
    "com|org|net|edu|gov|mil|int|io|co|ai|app|dev|info|biz|cloud|tech|online|site|shop|"
    "us|uk|de|fr|es|it|nl|eu|ca|au|ch|se|no|dk|fi|pl|be|at|ie|nz|br|mx|jp|cn|ru|in"
)
_DOMAIN = re.compile(
    r"(?i)(?<![\w@.\-/:])(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    rf"(?:{_TLDS})(?![\w\-@]|\.\w)" + _URL_TAIL
)
_TRAILING = ".,;:!?)]}'\""


def _url(score: float) -> Check:
    def check(match: re.Match[str]) -> Hit | None:
        start, end = match.span()
        while end > start and match.string[end - 1] in _TRAILING:
            end -= 1
        return start, end, score

    return check


PII_RULES: tuple[Rule, ...] = (
    Rule("EMAIL_ADDRESS", "email", _EMAIL, _email, needles=("@",)),
    Rule("PHONE_NUMBER", "phone", _PHONE, _phone, context=_PHONE_CONTEXT),
    Rule(
        "CREDIT_CARD",
        "credit_card",
        _CARD,
        _card,
        context=("card", "credit", "visa", "mastercard", "amex", "debit", "cc ", "pan"),
    ),
    Rule("US_SSN", "us_ssn", _SSN, _ssn, context=("ssn", "social security", "ss#", "ssa")),
    Rule("IBAN_CODE", "iban", _IBAN, _iban),
    Rule("IP_ADDRESS", "ipv4", _IPV4, _ipv4, needles=(".",)),
    Rule("IP_ADDRESS", "ipv6", _IPV6, _ipv6, needles=(":",)),
    Rule("URL", "url", _SCHEME_URL, _url(0.7), needles=("://",)),
    Rule("URL", "domain", _DOMAIN, _url(0.55), needles=(".",)),
)
