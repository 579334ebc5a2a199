"""Pattern rules for personal data: e-mail, phone, card, SSN, IBAN (network.py: IP, URL).

Patterns and validators follow presidio's recognizers (same entity names, checksums, SSN
invalidation rules) with their known weak spots fixed: Mastercard 2-series and 19-digit cards,
no URL inside an e-mail address, file names (``main.py``) not taken for domains, dates and bare
digit runs not taken for phone numbers unless a context word is near.

A value of an entity's shape that fails validation (an unassigned area code, a bad checksum,
an SSN area the SSA never issues) is kept where a context word or its field names the entity
(``NEEDS_CONTEXT``): validation decides only values that nothing around them names.
"""

from __future__ import annotations

import re

from gateway.boundary.fields import FIELD_WORDS
from gateway.boundary.phones import NationalNumbers, valid_international
from gateway.boundary.rules import NEEDS_CONTEXT, Hit, Rule, context_near, word_pattern

__all__ = ["PII_RULES"]

# Start of a token, not inside a word, id, version or path. The look-behind comes after the
# first digit: a pattern that starts with a character class lets the regex engine skip
# ahead to candidates, one that starts with a look-behind is tried at every position.
_B = r"\d(?<![\w\-./+]\d)"
_E = r"(?![\w\-]|[./]\w)"  # end of a token

# --- e-mail ------------------------------------------------------------------------------

# Matched from the "@" (a fast literal search), the local part then read backwards: a
# pattern starting with a word character would be tried at every letter of the text.
_EMAIL = re.compile(
    r"@[^\W_](?:[\w-]{0,61}[^\W_])?(?:\.[^\W_](?:[\w-]{0,61}[^\W_])?)*\.(?:[^\W\d_]{2,63}|xn--[\w-]+)"
    r"(?![\w-])"
)

# RFC 5322 allows "/" too, but then "/static/img/logo@2x.png" would be an address.
# "&" and "=" too, but then "name=x&email=ann@example.com" would be one address.
_LOCAL_CHARS = frozenset("!#$%'*+?^`{|}~-.")
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

_PHONE = re.compile(r"[+(\d](?<![\w\-./+][+(\d])\(?\d?[\d \u00a0().\-/]{4,22}\d(?![\w\-]|[./:]\d)")
# Dates, the SSN shape and dotted quads are not phone numbers in any region we parse for.
_NOT_PHONE = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}[-/]\d{4}|\d{3}-\d{2}-\d{4}"
)
# National numbers are tried in the regions whose format they could be: those dialled with a
# trunk "0" and those without. Each parse costs ~15 us, so the split halves the work.
_TRUNK_DIALLED = NationalNumbers(
    ("GB", "DE", "FR", "NL", "CH", "IT", "AU", "IN", "BR", "IL", "SE", "AT", "BE", "IE"),
    trunk_required=True,
)
_PLAIN_DIALLED = NationalNumbers(("US", "ES", "IT", "IN", "PL", "BR", "PT"), trunk_required=False)
_PHONE_CONTEXT = ("phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "contact")
# Words that name a phone number outright: an invalid number beside one is still a number.
_PHONE_WORDS = word_pattern(
    "phone", "phones", "tel", "tel.", "telephone", "mobile", "cell", "cellphone", "fax",
    "whatsapp", "sms", "call", "text", "ring", "dial", "handy", "telefon", "telefono",
    "téléphone", "tél", "portable", "móvil", "movil", "celular", "telefone", "ph",
)  # fmt: skip
# "order 20240311", "ticket 4471 2290": another label right before the value names it.
_LABELLED = re.compile(
    r"(?:order|invoice|ticket|ref|reference|id|sku|version|build|zip|postcode|case|tracking"
    r"|serial|iban|account|acct|card|ssn|po|pin|otp|code|qty|amount|total)\W{0,3}\Z"
)
# A North American number written in its usual groups: "(555) 234-0199", "212.555.0147".
# Its area code may be one no plan has assigned yet: the grouping names it a phone number.
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d([ .\-]))[2-9]\d\d[ .\-]\d{4}")
# Also written as phone numbers whatever the plan says: "+31 6 93249532" (a country code and
# groups), "(11) 98676-4545" (an area code in parentheses, then groups).
_WRITTEN_AS_PHONE = re.compile(
    r"\+[1-9]\d{0,2}(?:[ .\-]\(?\d{1,8}\)?)+|\+[1-9]\d{0,2} ?\(\d{1,4}\)(?:[ .\-]?\d{2,5})+"
    r"|\(\d{2,4}\) ?\d{3,5}[ .\-]\d{3,4}"
)


# "(30065899 bytes)", "1500 ms": a number with a unit is a quantity.
_UNIT_AFTER = re.compile(
    r"[ \t]?(?:bytes?|[kmgtp]i?b|[kmg]bps|ms|sec|seconds?|px|pt|mm|cm|km|kg|mg|ml|%|rpm|hz)\b",
    re.IGNORECASE,
)


def _phone(match: re.Match[str]) -> Hit | None:
    raw = match.group()
    # A bare run of digits is as likely an id or a timestamp: without a context word (or a
    # phone field) it is not a phone number, and not worth validating.
    if raw.isdigit() and not context_near(match.string, *match.span(), _PHONE_CONTEXT):
        score: float | None = None
    else:
        score = _validate_phone(raw)
    if score is None:
        digits = len(_NON_DIGIT.sub("", raw))
        if not 7 <= digits <= 15 or _NOT_PHONE.fullmatch(raw):
            return None
        # A phone-shaped value that failed validation: kept only where context names it.
        score = NEEDS_CONTEXT
    text, start = match.string, match.start()
    if _UNIT_AFTER.match(text, match.end()) or (
        raw[0] != "+" and _LABELLED.search(text[max(0, start - 16) : start].lower())
    ):
        return None
    return start, match.end(), score


# No cache of scores: one keyed by the number would keep it after its request (the findings
# cache in detector.py spares a conversation's history its second scan instead).
_NON_DIGIT = re.compile(r"\D+")


def _validate_phone(raw: str) -> float | None:
    digits = _NON_DIGIT.sub("", raw.replace("(0)", ""))
    if not 7 <= len(digits) <= 15 or _NOT_PHONE.fullmatch(raw):
        return None
    international = digits[2:] if raw.startswith("00") else digits
    if raw.startswith(("+", "00")) and valid_international(international):
        return 0.75
    if raw.startswith("+"):
        return 0.6 if _WRITTEN_AS_PHONE.fullmatch(raw) and len(digits) >= 8 else None
    if raw.lstrip("(")[:1] == "0":
        valid = _TRUNK_DIALLED.valid(digits)
    else:
        valid = _PLAIN_DIALLED.valid(digits)
    if not valid:
        return 0.6 if _NANP.fullmatch(raw) or _WRITTEN_AS_PHONE.fullmatch(raw) else None
    return 0.3 if raw.isdigit() else 0.6  # a bare run has a context word: 0.3 + 0.35


# --- credit card -------------------------------------------------------------------------

# Groups may be split by one or two separators of any common kind (double spaces, a line
# break, dots, slashes, underscores: a hand-typed or obfuscated number).
_CARD = re.compile(_B + r"(?:(?:[ \-._/]|\r?\n){0,2}\d){11,18}" + _E)
_CARD_WORDS = word_pattern(
    "card", "credit", "debit", "visa", "mastercard", "amex", "pan", "cc", "cardholder",
    "kreditkarte", "karte", "carte", "tarjeta", "carta", "cartão",
)  # fmt: skip
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


def _card_score(digits: str) -> float | None:
    if not 12 <= len(digits) <= 19 or len(set(digits)) == 1 or not _luhn(digits):
        return None
    # Luhn alone passes one random number in ten: an unbranded one needs a context word.
    return 0.9 if _branded(digits) else 0.2


_GROUP = re.compile(r"\d+")


def _card(match: re.Match[str]) -> Hit | None:
    digits = _NON_DIGIT.sub("", match.group())
    score = _card_score(digits)
    if score is not None and _card_grouped(match.group()):
        return match.start(), match.end(), score
    if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _card_grouped(match.group()):
        # A card's shape that fails Luhn: a typo or a test number, still a card where the
        # text says so. Kept only with a card word or field (NEEDS_CONTEXT).
        return match.start(), match.end(), NEEDS_CONTEXT
    # "qty 13 4111 1111 1111 1111" or "4111 1111 1111 1111 12": the card is the candidate's
    # digit groups less some at one end. Cheaper than scanning the text again.
    groups = [(g.start(), g.end()) for g in _GROUP.finditer(match.group())]
    for k in range(1, len(groups)):
        for a, b in ((groups[k][0], groups[-1][1]), (groups[0][0], groups[-1 - k][1])):
            score = _card_score(_NON_DIGIT.sub("", match.group()[a:b]))
            if score is not None and _card_grouped(match.group()[a:b]):
                return match.start() + a, match.start() + b, score
    return None


def _card_grouped(raw: str) -> bool:
    """One run of digits, or written as cards are: groups of four (the last may be shorter),
    4-6-5 (Amex) or 4-6-4 (Diners). "504-6896337-3404440" is an order number."""
    groups = [len(g) for g in _GROUP.findall(raw)]
    return (
        len(groups) == 1
        or (groups[:-1] == [4] * (len(groups) - 1) and groups[-1] <= 4)
        or groups in ([4, 6, 5], [4, 6, 4])
    )


# --- US SSN ------------------------------------------------------------------------------

_SSN = re.compile(rf"({_B}\d\d)([- .]?)(\d{{2}})\2(\d{{4}})" + _E)
_SSN_PLACEHOLDERS = frozenset({"123456789", "987654320", "078051120"})
# Words that name a taxpayer number: an SSN-shaped value beside one is masked even where
# the SSA never issued its area (ITINs use 9xx, test data uses 000 and 666).
_SSN_WORDS = word_pattern(
    "ssn", "ssns", "ss#", "social security", "social-security", "socsec", "tin", "itin",
    "taxpayer", "tax id", "tax-id", "ssa", "sozialversicherungsnummer",
)  # fmt: skip


def _ssn(match: re.Match[str]) -> Hit | None:
    area, sep, group, serial = match.groups()
    digits = area + group + serial
    if len(set(digits)) == 1:
        return None
    if (
        area in ("000", "666")
        or area >= "900"
        or group == "00"
        or serial == "0000"
        or digits in _SSN_PLACEHOLDERS
    ):
        return match.start(), match.end(), NEEDS_CONTEXT
    # 9 bare digits are any id; "123-45-6789" is the SSN shape but also a part number.
    return match.start(), match.end(), 0.6 if sep else 0.2


# --- US ITIN: 9xx, then 50-65, 70-88, 90-92 or 94-99 ----------------------------------------

_ITIN = re.compile(r"(9(?<![\w\-./+]9)\d\d)([- .]?)(\d{2})\2(\d{4})" + _E)
_ITIN_GROUPS = frozenset(
    f"{n:02d}" for n in [*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)]
)
_ITIN_WORDS = word_pattern("itin", "tin", "taxpayer", "tax id", "tax-id", "w-7", "irs")


def _itin(match: re.Match[str]) -> Hit | None:
    _, sep, group, _ = match.groups()
    if group not in _ITIN_GROUPS:
        return match.start(), match.end(), NEEDS_CONTEXT
    return match.start(), match.end(), 0.4 if sep else 0.1


# --- IBAN --------------------------------------------------------------------------------

_IBAN = re.compile(r"[A-Z](?<![\w-][A-Z])[A-Z]\d{2}(?:[ \-]?[A-Z0-9]){10,30}(?![a-z0-9])")
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


_IBAN_WORDS = word_pattern(
    "iban", "account", "acct", "bank", "konto", "kontonummer", "compte", "cuenta", "conto",
    "rekening", "sepa", "transfer", "wire", "bic", "swift",
)  # fmt: skip


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
        # Not this country's length (or no such country): an IBAN only where named one.
        return _iban_shaped(match)
    rotated = compact[4:] + compact[:4]
    if int("".join(str(int(c, 36)) for c in rotated)) % 97 != 1:
        return _iban_shaped(match)
    return match.start(), end, 0.95


def _iban_shaped(match: re.Match[str]) -> Hit | None:
    raw = match.group().rstrip(" -")
    if len(_NON_DIGIT.sub("", raw)) < 10:
        return None  # "DE12 PROJECT NOTES": letters after a country code are words
    return match.start(), match.start() + len(raw), NEEDS_CONTEXT


PII_RULES: tuple[Rule, ...] = (
    Rule("EMAIL_ADDRESS", "email", _EMAIL, _email, needles=("@",)),
    Rule(
        "PHONE_NUMBER",
        "phone",
        _PHONE,
        _phone,
        context=_PHONE_CONTEXT,
        rescan=False,
        strict_context=_PHONE_WORDS,
        fields=FIELD_WORDS["PHONE_NUMBER"],
    ),
    Rule(
        "CREDIT_CARD",
        "credit_card",
        _CARD,
        _card,
        context=("card", "credit", "visa", "mastercard", "amex", "debit", "cc ", "pan"),
        rescan=False,
        strict_context=_CARD_WORDS,
        fields=FIELD_WORDS["CREDIT_CARD"],
    ),
    Rule(
        "US_SSN",
        "us_ssn",
        _SSN,
        _ssn,
        context=("ssn", "social security", "ss#", "ssa"),
        strict_context=_SSN_WORDS,
        fields=FIELD_WORDS["US_SSN"],
    ),
    Rule(
        "US_ITIN",
        "us_itin",
        _ITIN,
        _itin,
        context=("itin", "taxpayer", "tax id", "w-7"),
        strict_context=_ITIN_WORDS,
        fields=FIELD_WORDS["US_ITIN"],
    ),
    Rule(
        "IBAN_CODE",
        "iban",
        _IBAN,
        _iban,
        strict_context=_IBAN_WORDS,
        fields=FIELD_WORDS["IBAN_CODE"],
    ),
)
