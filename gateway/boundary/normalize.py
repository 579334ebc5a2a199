"""Undo trivial obfuscation before matching, keeping a map back to the client's offsets.

NFKC folds full-width and compatibility forms (full-width digits and "@"), every decimal digit
of any script (Arabic-Indic, Devanagari, ...) becomes its ASCII digit, hyphens and dashes that
stand for "-" become it, and invisible characters are dropped (zero-width ones, the combining
grapheme joiner, variation selectors, tag characters, combining marks NFKC left alone), so a
card number typed in full-width digits with a zero-width space inside is matched as a card
number and reported at its original span. An address written ``ann [at] example (dot) org``
is matched as ``ann@example.org`` and reported over all of what was written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "normalize"]

_LAST_DIGIT = 0x1FBF9  # no decimal digit lies above (Unicode 15), so the scan stays short
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u180b\u180c\u180d\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u3164\ufeff\uffa0"
)
_INVISIBLE_RANGES = (
    (0xFE00, 0xFE0F),  # variation selectors
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
# Hyphen, non-breaking hyphen, figure dash, en dash, minus sign: an SSN typed in a word processor.
_HYPHENS = "\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d"


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(c): None for c in _INVISIBLE}
    for low, high in _INVISIBLE_RANGES:
        table.update(dict.fromkeys(range(low, high + 1)))
    table.update({ord(c): "-" for c in _HYPHENS})
    for code in range(0x80, _LAST_DIGIT + 1):
        category = unicodedata.category(chr(code))
        if category == "Nd":
            table[code] = str(unicodedata.digit(chr(code)))
        elif category in ("Mn", "Me"):
            # Applied after NFKC: a mark it composed ("e" + U+0301 -> "é") is gone by then;
            # one left over sits on a digit or a symbol to hide it.
            table[code] = None
    return table


_FOLD = _fold_table()
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@dataclass(frozen=True, slots=True)
class Normalized:
    """The text to match on; ``span`` maps a match in it back to the original text."""

    text: str
    # For normalized char i: the original span of the character it came from. None: identity.
    _starts: list[int] | None = None
    _ends: list[int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self._starts is None or self._ends is None:
            return start, end
        return self._starts[start], self._ends[end - 1]


def _fold(chars: str) -> str:
    return unicodedata.normalize("NFKC", chars).translate(_FOLD)


def normalize(text: str) -> Normalized:
    """Fold ``text`` for matching; ASCII text (the common case) is returned as it is."""
    folded = _folded(text)
    if _SPELLED.search(folded.text) is None:
        return folded
    return _respell(folded)


# "ann [at] example (dot) org", "ann(at)example{dot}org", "ann <AT> example [DOT] org".
_SPELLED = re.compile(r"[\[({<]\s*(?:at|dot)\s*[\])}>]", re.IGNORECASE)
_SPELLED_PART = re.compile(
    r"(?<=\w)\s{0,2}[\[({<]\s*(at|dot)\s*[\])}>]\s{0,2}(?=\w)", re.IGNORECASE
)


def _respell(norm: Normalized) -> Normalized:
    """``norm`` with each spelled-out "@" and "." written as the character, mapped back."""
    text = norm.text
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _SPELLED_PART.finditer(text):
        parts.append(text[pos : m.start()])
        starts.extend(range(pos, m.start()))
        ends.extend(range(pos + 1, m.start() + 1))
        parts.append("@" if m.group(1).lower() == "at" else ".")
        starts.append(m.start())
        ends.append(m.end())
        pos = m.end()
    if not parts:
        return norm
    parts.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    # Compose with the first map: a position in the new text -> in norm.text -> original.
    first = [norm.span(s, e) for s, e in zip(starts, ends, strict=True)]
    return Normalized("".join(parts), [a for a, _ in first], [b for _, b in first])


def _folded(text: str) -> Normalized:
    if text.isascii():
        return Normalized(text)
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for run in _NON_ASCII.finditer(text):
        a, b = run.span()
        parts.append(text[pos:a])
        starts.extend(range(pos, a))
        ends.extend(range(pos + 1, a + 1))
        folded = _fold(run.group())
        if len(folded) == b - a:
            # One character in, one out: offsets line up without looking at each one.
            parts.append(folded)
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
        else:
            for i in range(a, b):
                piece = _fold(text[i])
                parts.append(piece)
                starts.extend([i] * len(piece))
                ends.extend([i + 1] * len(piece))
        pos = b
    parts.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    return Normalized("".join(parts), starts, ends)
