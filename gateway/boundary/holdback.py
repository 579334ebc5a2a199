"""The hold-back window: scan a streamed text as it grows, releasing only what is decided.

A text arrives in pieces; an entity or a token may straddle two of them. The last ``window``
characters are held back, and a cut never falls inside a finding or a token, so an entity no
longer than the window is seen whole, exactly as in the complete text. Detection also sees
up to ``CONTEXT`` characters already released, so look-behinds and context words match as
they would in the whole text.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.boundary.actions import TOKEN_PATTERN
from gateway.boundary.findings import Detector, Finding

__all__ = ["CONTEXT", "HoldBack"]

CONTEXT = 96

# (text, findings, start, end) -> text[start:end] rewritten
Rewrite = Callable[[str, list[Finding], int, int], str]


class HoldBack:
    """One text channel of a streamed answer (a choice's content, a block's text)."""

    def __init__(self, detector: Detector, rewrite: Rewrite, window: int) -> None:
        self._detector = detector
        self._rewrite = rewrite
        self._window = window
        self._left = ""  # released original text, for context
        self._pending = ""

    def feed(self, piece: str) -> str:
        """The rewritten text that can be released now ("" while it is held back)."""
        self._pending += piece
        if len(self._pending) <= self._window:
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        """Everything still held, rewritten: the channel has ended."""
        return self._release(final=True) if self._pending else ""

    def _release(self, final: bool) -> str:
        text = self._left + self._pending
        offset = len(self._left)
        findings = [f for f in self._detector.find(text) if f.end > offset]
        cut = len(text) if final else len(text) - self._window
        spans = [(f.start, f.end) for f in findings]
        spans += [m.span() for m in TOKEN_PATTERN.finditer(text, offset)]
        moved = True
        while moved:  # a cut moved out of one span may land in another that overlaps it
            moved = False
            for start, end in spans:
                if start < cut < end:
                    cut, moved = start, True
        if cut <= offset:
            return ""
        out = self._rewrite(text, [f for f in findings if f.start < cut], offset, cut)
        self._left = text[max(0, cut - CONTEXT) : cut]
        self._pending = text[cut:]
        return out
