"""The hold-back window: scan a streamed text as it grows, releasing only what is decided.

A text arrives in pieces; an entity or a token may straddle two of them. The last ``window``
characters are held back, and a cut never falls inside a finding or a token, so an entity no
longer than the window is seen whole, exactly as in the complete text. Detection also sees
up to ``CONTEXT`` characters already released, so look-behinds and context words match as
they would in the whole text.

Some secrets are longer than any window and match only once complete (a private key, a long
JWT, a connection string with a long password). While one is being written (``open_secret``)
the window grows to hold all of it, up to ``LONG_ENTITY_BOUND`` characters; past that the
stream ends with ``boundary.blocked_output`` rather than let the rest of it out piecewise.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway import errors
from gateway.boundary.actions import TOKEN_PATTERN
from gateway.boundary.findings import Detector, Finding
from gateway.boundary.secrets import open_secret
from gateway.errors import GatewayError

__all__ = ["CONTEXT", "LONG_ENTITY_BOUND", "HoldBack"]

CONTEXT = 96
# How much of one secret still being written a stream holds back: an RSA-4096 private key in
# PEM is ~3.3 KB, a JWT with many claims a few KB.
LONG_ENTITY_BOUND = 16 * 1024
# A piece with none of these cannot end a held secret (a token ends at a space or a quote, a
# key at "-----END" or a line of prose): no need to scan again.
_CLOSING = frozenset(" \t\r\n\"'`<>)]}-@")

# (text, findings, start, end) -> text[start:end] rewritten
Rewrite = Callable[[str, list[Finding], int, int], str]


class HoldBack:
    """One text channel of a streamed answer (a choice's content, a block's text)."""

    def __init__(
        self,
        detector: Detector,
        rewrite: Rewrite,
        window: int,
        bound: int = LONG_ENTITY_BOUND,
        *,
        hold_secrets: bool = True,
    ) -> None:
        """``hold_secrets`` False (shadow mode): an open secret is not held past the window,
        so the stream is never ended for one; it is released as the window moves."""
        self._hold_secrets = hold_secrets
        self._detector = detector
        self._rewrite = rewrite
        self._window = window
        self._bound = bound
        self._left = ""  # released original text, for context
        self._pending = ""
        self._holding = False  # an open secret was held at the last release

    def feed(self, piece: str) -> str:
        """The rewritten text that can be released now ("" while it is held back)."""
        self._pending += piece
        if len(self._pending) <= self._window:
            return ""
        if (
            self._holding
            and len(self._pending) <= self._bound
            and not any(c in _CLOSING for c in piece)
        ):
            return ""  # the held secret goes on: nothing new can be decided
        return self._release(final=False)

    def finish(self) -> str:
        """Everything still held, rewritten: the channel has ended."""
        return self._release(final=True) if self._pending else ""

    def _release(self, final: bool) -> str:
        text = self._left + self._pending
        offset = len(self._left)
        # One that starts in the released context was decided there: seen now through a
        # truncated context, it may be an artifact ("...Wk3@db.internal" without "app:").
        findings = [f for f in self._detector.find(text) if f.start >= offset]
        cut = len(text) if final else len(text) - self._window
        self._holding = False
        if not final and self._hold_secrets and "SECRET" in self._detector.entities:
            held = open_secret(text, offset)
            if held is not None:
                if len(text) - held > self._bound:
                    raise GatewayError(
                        errors.BOUNDARY_BLOCKED_OUTPUT,
                        "The answer contained a secret longer than the gateway can hold back.",
                        detail=f"an open secret past {self._bound} characters",
                    )
                cut = min(cut, held)
                self._holding = True
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
