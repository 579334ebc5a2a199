"""One compiled pattern rule: a regex, a check that scores each match, and its context words.

Rules are built once per policy. ``needles`` keep a rule from scanning text that cannot hold
its entity: the rule runs only if one of them occurs in the lower-cased text (a C-speed
substring search), which skips most rules on most prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CONTEXT_BOOST",
    "CONTEXT_SCORE",
    "NEEDS_CONTEXT",
    "Check",
    "Hit",
    "Rule",
    "Words",
    "context_near",
    "fixed",
    "near",
    "word_pattern",
]

# As presidio's LemmaContextAwareEnhancer: a context word nearby adds this much.
CONTEXT_BOOST = 0.35
# A check's score for a value of the entity's shape that fails validation (an unassigned area
# code, a bad checksum): kept only where a context word or a field name names the entity, then
# scored CONTEXT_SCORE. Validation raises confidence in a value alone; it never excuses one
# that its context names.
NEEDS_CONTEXT = 0.0
CONTEXT_SCORE = 0.7
_BEFORE, _AFTER = 48, 24

Hit = tuple[int, int, float]
Check = Callable[[re.Match[str]], Hit | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """``check`` turns a match into ``(start, end, score)`` or rejects it (None)."""

    entity: str
    name: str
    regex: re.Pattern[str]
    check: Check
    needles: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    # After a rejected match, look again from its second character (a card number after
    # "qty 13"), or skip it whole where a re-scan would only re-validate its tail (phones).
    rescan: bool = True
    # Match on the lower-cased text: a case-insensitive regex is several times slower.
    on_lowered: bool = False
    # Words that name the entity strongly enough to keep a value that fails validation
    # (``context`` words may be looser), and the words of field names that do (fields.py).
    strict_context: Words | None = None
    fields: frozenset[str] = frozenset()

    def hits(self, text: str, lowered: str) -> list[Hit]:
        if self.needles and not any(n in lowered for n in self.needles):
            return []
        found = []
        pos = 0
        subject = lowered if self.on_lowered else text
        strict: bool | None = None  # whether a strict context word occurs anywhere
        while (match := self.regex.search(subject, pos)) is not None:
            hit = self.check(match)
            if hit is None:
                pos = match.start() + 1 if self.rescan else max(match.end(), match.start() + 1)
                continue
            start, end, score = hit
            pos = max(end, match.start() + 1)  # a hit shorter than its match: go on after it
            if score == NEEDS_CONTEXT:
                words = self.strict_context
                if strict is None:
                    strict = words is not None and words.anywhere(lowered)
                if strict and words is not None and words.near(lowered, start, end):
                    score = CONTEXT_SCORE
            elif self.context and score < 1.0 and near(lowered, start, end, self.context):
                score = min(1.0, score + CONTEXT_BOOST)
            found.append((start, end, score))
        return found


def near(lowered: str, start: int, end: int, words: tuple[str, ...]) -> bool:
    """A context word within a few words before or just after ``lowered[start:end]``."""
    before = lowered[max(0, start - _BEFORE) : start]
    after = lowered[end : end + _AFTER]
    return any(w in before or w in after for w in words)


@dataclass(frozen=True, slots=True)
class Words:
    """Context words matched whole (``tin`` but not inside "setting"), see ``word_pattern``."""

    regex: re.Pattern[str]
    needles: tuple[str, ...]  # a prefix of each word: none in a text, no word in it

    def anywhere(self, lowered: str) -> bool:
        return any(n in lowered for n in self.needles)

    def near(self, lowered: str, start: int, end: int) -> bool:
        return (
            self.regex.search(lowered, max(0, start - _BEFORE), start) is not None
            or self.regex.search(lowered, end, end + _AFTER) is not None
        )


def word_pattern(*words: str) -> Words:
    """Any of ``words`` (lower case) as a whole word, for ``Rule.strict_context``."""
    regex = re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, words)) + r")(?![a-z])")
    return Words(regex, tuple(sorted({w[:3] for w in words})))


def context_near(text: str, start: int, end: int, words: tuple[str, ...]) -> bool:
    """``near`` for a check that has only the original text: lower-cases just the window."""
    before = text[max(0, start - _BEFORE) : start].lower()
    after = text[end : end + _AFTER].lower()
    return any(w in before or w in after for w in words)


def fixed(score: float, group: int = 0) -> Check:
    """A check that accepts every match with ``score``, spanning ``group``."""

    def check(match: re.Match[str]) -> Hit | None:
        return match.start(group), match.end(group), score

    return check
