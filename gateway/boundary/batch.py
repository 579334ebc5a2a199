"""Many short texts scanned as one: total inspection makes a slot of every key, enum value
and title of a tool schema, and a detector call costs about 25 µs however short its text.

Short texts (at most ``SHORT`` characters) are deduplicated and joined with a separator
longer than any rule's context window (rules.py reads 48 characters before a match and 24
after) and made only of blanks, so no context word, look-behind or neighbouring digit reaches
from one text into the next: each text's findings are those it has alone. A finding that
spans a separator (a blank-tolerant pattern) sends every text it touches back to a scan of
its own. Only detectors whose findings are local (``PatternDetector.chunkable``, the same
condition windowed scanning relies on) are batched; others scan text by text. The request's
``Pacer`` (pace.py) looks at the clock after each batch: the loop is shared every few ms.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from gateway.boundary.detector import PatternDetector
from gateway.boundary.findings import Detector, Finding
from gateway.boundary.pace import Pacer
from gateway.boundary.scan import WINDOW, find_all, next_size

__all__ = ["SEPARATOR", "SHORT", "find_many"]

SHORT = 512
SEPARATOR = "\n" + " " * 62 + "\n"  # 64 characters: past any context window


async def find_many(
    detector: Detector, texts: Sequence[str], pacer: Pacer | None = None
) -> list[list[Finding]]:
    """``detector.find`` for each text, in order (the same findings), fewer calls.

    ``pacer``: the request's clock and budget (pace.py); a fresh one without a budget if None.
    """
    pacer = pacer or Pacer()
    if len(texts) < 2 or not (isinstance(detector, PatternDetector) and detector.chunkable):
        return await find_all(detector, texts, pacer)
    unique = list(dict.fromkeys(texts))
    short = [t for t in unique if len(t) <= SHORT]
    long = [t for t in unique if len(t) > SHORT]
    found = dict(zip(long, await find_all(detector, long, pacer), strict=True))
    batch: list[str] = []
    size = 0
    for text in short:
        # A unit's size as the last one measured it (pace.py): dense texts, smaller batches.
        if batch and size + len(text) > (pacer.unit_chars or WINDOW):
            began = pacer.clock()
            found.update(_scan(detector, batch))
            pacer.unit_chars = next_size(size, WINDOW, pacer.clock() - began)
            await pacer.tick()
            batch, size = [], 0
        batch.append(text)
        size += len(text) + len(SEPARATOR)
    if batch:
        found.update(_scan(detector, batch))
    pacer.finish()
    return [found[t] for t in texts]


def _scan(detector: Detector, batch: list[str]) -> dict[str, list[Finding]]:
    if len(batch) == 1:
        return {batch[0]: detector.find(batch[0])}
    starts = []
    at = 0
    for text in batch:
        starts.append(at)
        at += len(text) + len(SEPARATOR)
    per: list[list[Finding]] = [[] for _ in batch]
    alone: set[int] = set()
    for f in detector.find(SEPARATOR.join(batch)):
        i = bisect_right(starts, f.start) - 1
        if f.end > starts[i] + len(batch[i]):  # across a separator: scan the texts it spans
            alone.update(range(i, bisect_right(starts, f.end - 1)))
            continue
        per[i].append(Finding(f.start - starts[i], f.end - starts[i], f.entity, f.score, f.rule))
    for i in alone:
        per[i] = detector.find(batch[i])
    return dict(zip(batch, per, strict=True))
