"""Undo trivial obfuscation before matching, keeping a map back to the client's offsets.

NFKC folds full-width and compatibility forms (full-width digits and "@"), every decimal digit
of any script (Arabic-Indic, Devanagari, ...) becomes its ASCII digit, and zero-width characters
are dropped, so a card number typed in full-width digits with a zero-width space inside is
matched as a card number and reported at its original span.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "normalize"]

_LAST_DIGIT = 0x1FBF9  # no decimal digit lies above (Unicode 15), so the scan stays short
_INVISIBLE = "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(c): None for c in _INVISIBLE}
    for code in range(0x80, _LAST_DIGIT + 1):
        if unicodedata.category(chr(code)) == "Nd":
            table[code] = str(unicodedata.digit(chr(code)))
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
