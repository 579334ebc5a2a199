"""Share the event loop while one request's text is scanned, and bound what the scan may cost.

Detection runs on the event loop in short units: a batch of short texts, a window of a long
one, the join of two texts. A ``Pacer`` is one request's clock across all of its units: after
each unit it yields to the loop once ``SLICE_S`` has passed since the last yield, whatever the
texts' shape (ten thousand short texts or one long one), so other requests wait a few
milliseconds at most. Yielding per text instead would let many short texts hold the loop for
seconds; yielding after every unit would cost a loop turn per unit.

It also adds up the CPU time the scan used on the loop's thread (``time.thread_time``, so a
loaded machine does not make a request look costlier) and refuses the request once it passes
the budget (``server.max_scan_cpu_s``): a body built to be slow to scan (dense look-alikes,
long runs that every rule reads) is answered in bounded time, never let through uninspected.
Rewriting the findings (``rewrite_paced``) runs on the same clock and budget: a body of
230,000 phone numbers took 0.4 s to rewrite in one piece.

Reading the thread's CPU clock is a system call: a masked 1 KB request made ten, 10-25 us of
CPU per request on a loaded 2-core host. ``clock`` reads it again only when the last reading
is more than ``FRESH_S`` old; within that it answers the last reading plus the wall time
since, which CPU time never outruns. So a scan is never charged less than its CPU time (it
starts from a real reading, and its charges add up to the last clock value less that start),
and more only by what preemption took of those short stretches; and a unit that short sizes
the next exactly as its CPU time would (scan.py ``next_size`` doubles any unit under half of
``UNIT_S``).

A scan starts (``Pacer()``, ``resume``) without a reading at all: most scans (a 1 KB prompt,
a short answer, cached) are over in far less than ``FRESH_S`` and are charged the wall time
they took. The first reading a longer one needs fixes the offset from the clock's values so
far to the CPU clock, so the values run on without a jump and the stretch before it is
charged as the wall time it took, again no less than its CPU time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from gateway import errors
from gateway.boundary.findings import Finding
from gateway.errors import GatewayError, Reason

__all__ = ["FRESH_S", "REWRITE_UNIT", "SLICE_S", "Pacer", "rewrite_paced"]

SLICE_S = 0.002  # how long a scan holds the loop before it lets others run (a unit may add ~1 ms)
# Findings rewritten in one unit (about 1 ms at ~1 us each): 2,000 messages of phone numbers
# hold 230,000 findings, which took 0.4 s in one piece.
REWRITE_UNIT = 1024
FRESH_S = 0.0002  # a CPU clock reading this recent is reused (plus the wall time since)


class Pacer:
    """One request's scanning clock: ``await pacer.tick()`` after each unit of work.

    ``budget_s`` None: no budget (offline tools, which run one request at a time); else the
    request's text and its answer's share it. ``refusal``: the reason a request past its
    budget is refused with.

    Used as: ``for unit in units: scan(unit); await pacer.tick()``, then ``pacer.finish()``.
    """

    def __init__(
        self,
        budget_s: float | None = None,
        refusal: Reason = errors.BOUNDARY_TOO_COSTLY,
        slice_s: float = SLICE_S,
    ) -> None:
        self._budget = budget_s
        self.refusal = refusal
        self._slice = slice_s
        self._since = self._read_at = 0.0  # when this slice began, when the clock was read
        self._cpu_since = self._read = 0.0  # the clock's value then, and as last read
        self._offset = 0.0  # the clock's values less the CPU clock's
        self._unread = False  # no reading since the scan began: the offset is still open
        self._start()
        self.spent_s = 0.0  # CPU seconds scanned on the loop's thread so far
        self.yields = 0
        # Characters one unit of this request's text may hold, as its last unit measured
        # (scan.py): the next text starts there, not at a whole window of dense text again.
        self.unit_chars: int | None = None

    def resume(self, refusal: Reason | None = None) -> None:
        """Start another scan of the same request (its answer's): what ran in between (the
        upstream call, other requests) is not this scan's. ``refusal``: its reason if over."""
        self._start()
        if refusal is not None:
            self.refusal = refusal

    async def tick(self) -> None:
        """Yield to the loop if this slice is over; raise GatewayError past the budget."""
        if time.perf_counter() - self._since < self._slice:
            return
        self._charge()
        await asyncio.sleep(0)
        self.yields += 1
        self._restart()

    def clock(self) -> float:
        """The loop thread's CPU time now, or no less: the last reading plus the wall time
        since, if that reading is under ``FRESH_S`` old (the module's docstring)."""
        now = time.perf_counter()
        if now - self._read_at < FRESH_S:
            return self._read + (now - self._read_at)
        return self._read_clock(now)

    def _read_clock(self, now: float) -> float:
        cpu = time.thread_time()
        if self._unread:  # the scan's first reading: its values so far run on from here
            self._offset = self._read + (now - self._read_at) - cpu
            self._unread = False
        self._read, self._read_at = cpu + self._offset, now
        return self._read

    @property
    def bounded(self) -> bool:
        """Whether the scan has a budget (the server's; offline tools have none)."""
        return self._budget is not None

    def refuse(self, detail: str) -> NoReturn:
        """Refuse now, as past the budget: work that could not be stopped at it."""
        raise GatewayError(self.refusal, detail=detail)

    def charge(self, seconds: float) -> None:
        """Count work done off the loop (a worker thread) against the budget."""
        self.spent_s += seconds
        self._check()

    def finish(self) -> None:
        """Count the last slice: a scan's final unit may be what passes the budget."""
        self._charge()

    def _charge(self) -> None:
        now = self.clock()
        self.spent_s += now - self._cpu_since
        self._cpu_since = now
        self._check()

    def _start(self) -> None:
        """A new scan, from no reading (the module's docstring): what ran before is not
        counted, and what runs from now on is charged at least the wall time it takes."""
        self._since = self._read_at = time.perf_counter()
        self._cpu_since = self._read
        self._unread = True

    def _restart(self) -> None:
        """A new slice after a yield, from a real reading: what ran in between is not counted."""
        self._since = now = time.perf_counter()
        self._cpu_since = self._read_clock(now)

    def _check(self) -> None:
        if self._budget is not None and self.spent_s > self._budget:
            raise GatewayError(
                self.refusal,
                detail=f"scanning used {self.spent_s:.2f} s of CPU, over {self._budget:g} s",
            )


async def rewrite_paced(
    rewrite: Callable[[str, list[Finding], int, int], str],
    text: str,
    findings: Sequence[Finding],
    pacer: Pacer,
) -> str:
    """``rewrite(text, findings, 0, len(text))`` in pieces of ``REWRITE_UNIT`` findings, the
    clock looked at after each: the loop is shared and the CPU counted against the budget.

    ``findings`` are sorted and do not overlap, so each piece runs from one finding's start
    to the next piece's first one.
    """
    pieces = []
    at = 0
    for first in range(0, len(findings), REWRITE_UNIT):
        chunk = list(findings[first : first + REWRITE_UNIT])
        following = first + REWRITE_UNIT
        end = findings[following].start if following < len(findings) else len(text)
        pieces.append(rewrite(text, chunk, at, end))
        at = end
        await pacer.tick()
    return "".join(pieces) if pieces else text
