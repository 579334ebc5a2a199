"""Run a detector from async code without stalling the event loop on large bodies.

Small texts (the common case) are scanned inline: a hop elsewhere costs more than the scan.
A large text is scanned on the loop in windows of ``WINDOW`` characters, yielding between
them, so other requests wait about one window (~1 ms) per step. Each window reads ``MARGIN``
characters before its own part (context words) and ``OVERLAP`` after it, so an entity that
starts in its part is seen whole if it is shorter than that. A finding that reaches the
window's end, or the start of a JWT or private key that no finding covers (a cut JWT does not
match at all), makes the window look four times further, up to ``MAX_REACH``; past that the
text is scanned whole in a worker thread. Detectors that cannot be windowed (NER, a policy's
own patterns) always run in a worker thread, where the GIL still shares the core with the
loop: bench/detect.py measures small-scan latency in both cases.

A value may be split across two texts of one request (two content parts, two messages): the
end of each text is scanned joined to the start of the next, and a value that straddles the
join is reported in both, each part at its own span.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.boundary.detector import PatternDetector, resolve
from gateway.boundary.findings import Detector, Finding

__all__ = ["INLINE_CHARS", "JOIN_REACH", "find_all", "find_windowed"]

INLINE_CHARS = 16 * 1024  # about 3 ms of scanning on one core (bench/detect.py)
WINDOW = 4 * 1024  # about 1 ms of scanning: other requests wait at most about that long
MARGIN = 64  # more than the context window before a match (rules.py)
OVERLAP = 256  # longer than any entity that a cut would hide rather than shorten
MAX_REACH = 128 * 1024
_LONG_ENTITIES = ("eyJ", "-----BEGIN")
_SLACK = 8
JOIN_REACH = 96  # characters of each side of a join between two texts: a split short value


async def find_all(detector: Detector, texts: Sequence[str]) -> list[list[Finding]]:
    """``detector.find`` for each text, in order, without holding the loop for long."""
    found: list[list[Finding]] = [[] for _ in texts]
    small = [i for i, text in enumerate(texts) if len(text) <= INLINE_CHARS]
    if isinstance(detector, PatternDetector):
        # One NER batch and one cache look-up per text: a chat's history costs little.
        for i, findings in zip(small, detector.find_many([texts[i] for i in small]), strict=True):
            found[i] = findings
    else:
        for i in small:
            found[i] = detector.find(texts[i])
    for i, text in enumerate(texts):
        if len(text) <= INLINE_CHARS:
            continue
        if isinstance(detector, PatternDetector) and detector.chunkable:
            found[i] = await find_windowed(detector, text)
        else:
            found[i] = await asyncio.to_thread(detector.find, text)
    if len(texts) > 1:
        _add_straddling(detector, texts, found)
    return found


def _may_continue(tail: str, head: str) -> bool:
    """Whether ``head`` may go on a value that ``tail`` ends with: not after a sentence's end
    ("... support@example.com." | "Thank you"), and across a space only between digits."""
    if not tail.strip() or not head.strip():
        return False
    if tail[-1].isspace() or head[0].isspace():
        return tail.rstrip()[-1].isdigit() and head.lstrip()[0].isdigit()
    return tail[-1] not in ".,;:!?)]}\"'"


def _add_straddling(detector: Detector, texts: Sequence[str], found: list[list[Finding]]) -> None:
    """Each value cut by the join of two neighbouring texts, added to both as its parts.

    Patterns only (NER reads whole sentences, and a name cut in two is not one): a card typed
    as "4111 1111" in one part and "1111 1111" in the next is a card in neither alone.
    """
    find = detector.find_patterns if isinstance(detector, PatternDetector) else detector.find
    for i in range(len(texts) - 1):
        left, right = texts[i], texts[i + 1]
        if not left or not right:
            continue
        tail, head = left[-JOIN_REACH:], right[:JOIN_REACH]
        if not _may_continue(tail, head):
            continue
        # Digits on both sides were two groups of one number ("4111 1111" | "1111 1111").
        sep = " " if tail[-1].isdigit() and head[0].isdigit() else ""
        cut, base, resume = len(tail), len(left) - len(tail), len(tail) + len(sep)
        # A finding that overlaps one of either text's own was found whole already
        # ("ann@example.com" + "card ..." joins into a longer, wrong address).
        straddling = [
            f
            for f in find(tail + sep + head)
            if f.start < cut
            and f.end > resume
            and not any(g.end > base + f.start for g in found[i])
            and not any(g.start < f.end - resume for g in found[i + 1])
        ]
        if not straddling:
            continue
        # Each part without the spaces at the join: masking changes only the value's characters.
        end, begin = len(left.rstrip()), len(right) - len(right.lstrip())
        found[i] = resolve(
            found[i] + [Finding(base + f.start, end, f.entity, f.score, f.rule) for f in straddling]
        )
        found[i + 1] = resolve(
            found[i + 1]
            + [Finding(begin, f.end - resume, f.entity, f.score, f.rule) for f in straddling]
        )


async def find_windowed(
    detector: Detector, text: str, window: int = WINDOW, overlap: int = OVERLAP
) -> list[Finding]:
    """The findings of ``detector.find(text)``, scanned window by window on the loop."""
    kept: list[Finding] = []
    for own_start in range(0, len(text), window):
        own_end = min(len(text), own_start + window)
        start = max(0, own_start - MARGIN)
        markers = _long_entity_starts(text, own_start, own_end)
        reach = overlap
        while True:
            end = min(len(text), own_end + reach)
            found = [
                Finding(start + f.start, start + f.end, f.entity, f.score, f.rule)
                for f in detector.find(text[start:end])
            ]
            mine = [f for f in found if own_start <= f.start < own_end]
            # A JWT or key start inside one found earlier (its payload) needs nothing more.
            around = [f for f in kept if f.end > own_start] + found
            if end == len(text) or _complete(mine, markers, end, around):
                break
            if reach >= MAX_REACH:  # something very long: scan the text whole, off the loop
                return await asyncio.to_thread(detector.find, text)
            reach *= 4
        kept.extend(mine)
        await asyncio.sleep(0)
    return resolve(kept)


def _long_entity_starts(text: str, start: int, end: int) -> list[int]:
    found = []
    for marker in _LONG_ENTITIES:
        at = text.find(marker, start, end + len(marker) - 1)
        while at >= 0:
            found.append(at)
            at = text.find(marker, at + 1, end + len(marker) - 1)
    return found


def _complete(mine: list[Finding], markers: list[int], end: int, around: list[Finding]) -> bool:
    """None of ``mine`` may go on past ``end``; each JWT or key start lies in a finding.

    "Near the end" allows for a cut that stops a match a few characters short: a key cut
    right after a line break, a URL whose trailing punctuation was dropped.
    """
    if any(f.end >= end - _SLACK for f in mine):
        return False
    return all(any(f.start <= at < f.end for f in around) for at in markers)
