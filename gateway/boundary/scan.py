"""Run a detector from async code without stalling the event loop on large bodies.

Small inputs (the common case) are scanned inline: a thread hop costs more than the scan.
Larger ones, and anything an NER model reads, go to a worker thread, so the loop keeps
serving other requests; the regex engine holds the GIL while it matches, but Python hands
the GIL back to the loop every switch interval (5 ms), which bounds the stall. bench/detect.py
measures small-request latency while large bodies are scanned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.boundary.detector import PatternDetector
from gateway.boundary.findings import Detector, Finding

__all__ = ["INLINE_CHARS", "find_all"]

# About 1 ms of pattern scanning on one core (bench/detect.py); below it, scan in the loop.
INLINE_CHARS = 16 * 1024


def _find_each(detector: Detector, texts: Sequence[str]) -> list[list[Finding]]:
    return [detector.find(text) for text in texts]


async def find_all(detector: Detector, texts: Sequence[str]) -> list[list[Finding]]:
    """``detector.find`` for each text, in order; off the loop when the input is large."""
    inline = sum(map(len, texts)) <= INLINE_CHARS and not (
        isinstance(detector, PatternDetector) and detector.uses_ner
    )
    if inline:
        return _find_each(detector, texts)
    return await asyncio.to_thread(_find_each, detector, texts)
