"""Refusals: sentences in which the model declines instead of answering.

A small, fixed phrase set (docs/quality-and-fallbacks.md) rather than a classifier: it is cheap, its
misses are predictable, and an operator can read exactly what counts. A sentence counts when
it contains one of the phrases (after lower-casing and folding typographic apostrophes).
"""

from __future__ import annotations

import re

__all__ = ["REFUSAL_PHRASES", "refusal_share"]

REFUSAL_PHRASES = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i can't do that",
    "i cannot do that",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i won't be able to",
    "i must decline",
    "i'm not comfortable",
    "as an ai language model",
    "i'm sorry, but i can",
    "i apologize, but i can",
    "i'm sorry, i can't",
    "sorry, i can't",
    "i'm sorry, i cannot",
)
# The boilerplate that follows a refusal counts with it: it adds no answer.
_FILLER = (
    "anything else i can help",
    "is there something else",
    "let me know if you",
    "i'd be happy to help with something else",
)
_PHRASES = re.compile("|".join(re.escape(p) for p in (*REFUSAL_PHRASES, *_FILLER)))
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def refusal_share(text: str) -> float:
    """The share of ``text``'s non-blank characters in refusal sentences: 0.0 to 1.0.

    >>> refusal_share("I'm sorry, but I can't help with that.")
    1.0
    """
    folded = text.lower().replace("\u2019", "'")
    if _PHRASES.search(folded) is None:  # the common case: one scan, no sentence split
        return 0.0
    total = refused = 0
    for sentence in _SENTENCE.finditer(folded):
        size = len(sentence.group().strip())
        total += size
        if _PHRASES.search(sentence.group()):
            refused += size
    return refused / total if total else 0.0
