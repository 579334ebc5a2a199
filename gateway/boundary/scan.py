"""Run a detector from async code without stalling the event loop, whatever the body's shape.

A request's texts are scanned on the loop in units of about ``WINDOW`` characters (~1 ms):
short texts in groups, a longer one window by window; a ``Pacer`` (pace.py) shared by all of a
request's units yields to the loop every few milliseconds and bounds the scan's CPU time, so
ten thousand short texts wait their turn as one long text does. Each window reads ``MARGIN``
characters before its own part (context words) and ``OVERLAP`` after it, so an entity that
starts in its part is seen whole if it is shorter than that. A finding that reaches the
window's end, or the start of a JWT or private key that no finding covers (a cut JWT does not
match at all), makes the window look four times further, up to ``MAX_REACH``; past that the
text is scanned whole in a worker thread if the request has no CPU budget (offline tools),
else refused as too costly: a whole-text scan cannot be stopped at the budget (4 MB scanned so
took 0.6 s past it). A JWT start whose run of token characters ends inside the view, or a
``-----BEGIN`` that is not a private key's header, is settled there: no finding can start at
it and run past the view, so random base64 (an ``eyJ`` every 256 KB) or a certificate never
widens a window. Detectors that cannot be windowed (NER, a policy's own patterns) scan a long
text in a worker thread, where the GIL still shares the core with the loop: bench/detect.py
measures small-scan latency in both cases.

A value may be split across two texts of one request (two content parts, two messages): the
end of each text is scanned joined to the start of the next, and a value that straddles the
join is reported in both, each part at its own span.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time
from collections.abc import Iterator, Sequence

from gateway.boundary.detector import PatternDetector, resolve
from gateway.boundary.findings import Detector, Finding
from gateway.boundary.pace import Pacer
from gateway.boundary.secrets import PEM_BEGIN

__all__ = ["INLINE_CHARS", "JOIN_REACH", "find_all", "find_windowed", "next_size"]

WINDOW = 4 * 1024  # about 1 ms of scanning (bench/detect.py): one unit of a request's scan
INLINE_CHARS = WINDOW  # a longer text is scanned window by window (or in a thread)
MARGIN = 64  # more than the context window before a match (rules.py)
OVERLAP = 256  # longer than any entity that a cut would hide rather than shorten
MAX_REACH = 128 * 1024
UNIT_S = 0.001  # what one window should cost; a dense one shrinks the next, down to MIN_WINDOW
MIN_WINDOW = 256
_LONG_ENTITIES = ("eyJ", "-----BEGIN")
# What ends a JWT's run of characters ([\w.-]): ASCII only, which normalizing (NFKC, digits)
# leaves as it is, so the run read on the raw text is no shorter than the rule's.
_JWT_RUN_END = re.compile(r"[ \t\r\n\"'`<>()\[\]{},;:!?/+=*&^%$#@|\\~]")
_PEM_HEADER = re.compile(r"-----BEGIN[A-Z0-9 ]*")
_SLACK = 8
JOIN_REACH = 96  # characters of each side of a join between two texts: a split short value


async def find_all(
    detector: Detector, texts: Sequence[str], pacer: Pacer | None = None
) -> list[list[Finding]]:
    """``detector.find`` for each text, in order, without holding the loop for long.

    ``pacer``: the request's clock (pace.py), shared with its other scans; a fresh one
    without a budget if None.
    """
    pacer = pacer or Pacer()
    if len(texts) == 1 and len(texts[0]) <= INLINE_CHARS:  # a prompt, an answer: one unit
        found = _unit(detector, list(texts), pacer)
        await pacer.tick()
        pacer.finish()
        return found
    found = [[] for _ in texts]
    small = [i for i, text in enumerate(texts) if len(text) <= INLINE_CHARS]
    for group in _groups(small, texts, pacer):
        scanned = _unit(detector, [texts[i] for i in group], pacer)
        for i, findings in zip(group, scanned, strict=True):
            found[i] = findings
        await pacer.tick()
    for i, text in enumerate(texts):
        if len(text) <= INLINE_CHARS:
            continue
        if isinstance(detector, PatternDetector) and detector.chunkable:
            found[i] = await find_windowed(detector, text, pacer=pacer)
        else:
            found[i] = await _in_thread(detector, text, pacer)
    if len(texts) > 1:
        await _add_straddling(detector, texts, found, pacer)
    pacer.finish()
    return found


def _unit(detector: Detector, texts: list[str], pacer: Pacer) -> list[list[Finding]]:
    """Short texts scanned as one unit; the next unit is sized by its time (``next_size``)."""
    began = pacer.clock()
    if isinstance(detector, PatternDetector):
        # One NER batch and one cache look-up per group: a chat's history costs little.
        scanned = detector.find_many(texts)
    else:
        scanned = [detector.find(text) for text in texts]
    pacer.unit_chars = next_size(sum(map(len, texts)), WINDOW, pacer.clock() - began)
    return scanned


def _groups(indices: list[int], texts: Sequence[str], pacer: Pacer) -> Iterator[list[int]]:
    """``indices`` in runs of about ``WINDOW`` characters of text (fewer where the last unit
    found the text dense: ``pacer.unit_chars``): one unit of work each."""
    group: list[int] = []
    size = 0
    for i in indices:
        if group and size + len(texts[i]) > (pacer.unit_chars or WINDOW):
            yield group
            group, size = [], 0
        group.append(i)
        size += len(texts[i]) + 64  # a text's own cost (a hash, a look-up: ~25 us) counts too
    if group:
        yield group


async def _in_thread(detector: Detector, text: str, pacer: Pacer) -> list[Finding]:
    """``detector.find(text)`` in a worker thread, its time counted against the budget."""
    started = time.perf_counter()
    found = await asyncio.to_thread(detector.find, text)
    pacer.charge(time.perf_counter() - started)
    return found


def _may_continue(tail: str, head: str) -> bool:
    """Whether ``head`` may go on a value that ``tail`` ends with: not after a sentence's end
    ("... support@example.com." | "Thank you"), and across a space only between digits."""
    if not tail.strip() or not head.strip():
        return False
    if tail[-1].isspace() or head[0].isspace():
        return tail.rstrip()[-1].isdigit() and head.lstrip()[0].isdigit()
    return tail[-1] not in ".,;:!?)]}\"'"


async def _add_straddling(
    detector: Detector, texts: Sequence[str], found: list[list[Finding]], pacer: Pacer
) -> None:
    """Each value cut by the join of two neighbouring texts, added to both as its parts.

    Patterns only (NER reads whole sentences, and a name cut in two is not one): a card typed
    as "4111 1111" in one part and "1111 1111" in the next is a card in neither alone.
    """
    find = detector.find_patterns if isinstance(detector, PatternDetector) else detector.find
    for i in range(len(texts) - 1):
        await pacer.tick()  # ten thousand joins are ten thousand scans
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
        found[i] = _resolved(
            found[i] + [Finding(base + f.start, end, f.entity, f.score, f.rule) for f in straddling]
        )
        found[i + 1] = _resolved(
            found[i + 1]
            + [Finding(begin, f.end - resume, f.entity, f.score, f.rule) for f in straddling]
        )


async def find_windowed(
    detector: Detector,
    text: str,
    window: int = WINDOW,
    overlap: int = OVERLAP,
    pacer: Pacer | None = None,
) -> list[Finding]:
    """The findings of ``detector.find(text)``, scanned window by window on the loop."""
    pacer = pacer or Pacer()
    kept: list[Finding] = []
    # No finding is longer than one window's whole view: older ones end before this window.
    longest = MARGIN + window + MAX_REACH
    # The first window is a quarter size: a dense text (4 KB of IP addresses cost 26 ms) is
    # known by it before a whole window of it is scanned in one unit.
    # The request's earlier texts may have shown a smaller unit (250 parts of dense text).
    own_start, size = 0, min(max(MIN_WINDOW, window // 4), pacer.unit_chars or window)
    while own_start < len(text):
        own_end = min(len(text), own_start + size)
        began = pacer.clock()
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
            recent = kept[bisect.bisect_left(kept, own_start - longest, key=_start) :]
            around = [f for f in recent if f.end > own_start] + found
            if end == len(text) or _complete(text, mine, markers, end, around):
                break
            if reach >= MAX_REACH:  # something very long: scan the text whole, off the loop
                if pacer.bounded:  # ... which nothing could stop at the budget
                    pacer.refuse(f"a value runs past {MAX_REACH // 1024} KB")
                return await _in_thread(detector, text, pacer)
            reach *= 4
            await pacer.tick()
        kept.extend(mine)
        size = pacer.unit_chars = next_size(size, window, pacer.clock() - began)
        own_start = own_end
        await pacer.tick()
    return await _resolved_paced(kept, pacer)


def next_size(size: int, window: int, took: float) -> int:
    """The next window's size, so that one takes about ``UNIT_S``: a window's cost follows
    its findings, not its length (4 KB of IP addresses cost 26 ms, of prose 1 ms). It at
    most doubles: a window the findings cache answered costs nothing, and the next one, not
    cached, would be a whole window of dense text again (17 ms)."""
    fitted = int(size * UNIT_S / took) if took > 0 else window
    return max(MIN_WINDOW, min(window, fitted, 2 * size))


def _start(finding: Finding) -> int:
    return finding.start


def _resolved(findings: list[Finding]) -> list[Finding]:
    """``resolve(findings)`` in linear time for findings that mostly do not overlap.

    Which of two overlapping findings is kept depends only on the findings that overlap
    them, so each run of overlapping findings is resolved on its own: a window's findings
    overlap only those of its neighbours, and a text of a hundred thousand look-alikes
    costs one pass, not a sort of all of them at once.
    """
    return [f for run in _runs(findings) for f in run]


async def _resolved_paced(findings: list[Finding], pacer: Pacer) -> list[Finding]:
    """``_resolved`` with a look at the clock every few hundred runs (a long text of
    look-alikes has tens of thousands)."""
    out: list[Finding] = []
    for i, run in enumerate(_runs(findings)):
        out.extend(run)
        if i % 256 == 255:
            await pacer.tick()
    return out


def _runs(findings: list[Finding]) -> Iterator[list[Finding]]:
    run: list[Finding] = []
    reach = -1
    for f in sorted(findings, key=_start):
        if run and f.start >= reach:
            yield run if len(run) == 1 else resolve(run)
            run = []
        run.append(f)
        reach = max(reach, f.end) if len(run) > 1 else f.end
    if run:
        yield run if len(run) == 1 else resolve(run)


def _long_entity_starts(text: str, start: int, end: int) -> list[int]:
    found = []
    for marker in _LONG_ENTITIES:
        at = text.find(marker, start, end + len(marker) - 1)
        while at >= 0:
            found.append(at)
            at = text.find(marker, at + 1, end + len(marker) - 1)
    return found


def _complete(
    text: str, mine: list[Finding], markers: list[int], end: int, around: list[Finding]
) -> bool:
    """None of ``mine`` may go on past ``end``; each JWT or key start lies in a finding or
    is settled inside the view (``_settled``).

    "Near the end" allows for a cut that stops a match a few characters short: a key cut
    right after a line break, a URL whose trailing punctuation was dropped.
    """
    if any(f.end >= end - _SLACK for f in mine):
        return False
    if not markers:
        return True
    # One sweep, not each marker against each finding: a window may hold hundreds of both.
    spans = sorted((f.start, f.end) for f in around)
    covered_to, i = -1, 0
    for at in sorted(markers):
        while i < len(spans) and spans[i][0] <= at:
            covered_to = max(covered_to, spans[i][1])
            i += 1
        if covered_to <= at and not _settled(text, at, end):
            return False
    return True


def _settled(text: str, at: int, end: int) -> bool:
    """Whether no JWT or private key that starts at ``at`` can run past ``end``: a JWT's run
    of token characters ends before it, or a ``-----BEGIN`` line is read whole and is not a
    private key's header."""
    if text.startswith("eyJ", at):
        return _JWT_RUN_END.search(text, at, end - _SLACK) is not None
    header = _PEM_HEADER.match(text, at)
    if header is None:
        return True
    head = text[at : header.end() + 5]  # a private key's header ends with "-----"
    return header.end() + 5 < end - _SLACK and head.isascii() and not PEM_BEGIN.match(head)
