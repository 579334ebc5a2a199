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
"""

from __future__ import annotations

import asyncio
import time

from gateway import errors
from gateway.errors import GatewayError, Reason

__all__ = ["SLICE_S", "Pacer"]

SLICE_S = 0.002  # how long a scan holds the loop before it lets others run (a unit may add ~1 ms)


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
        self._since = time.perf_counter()
        self._cpu_since = time.thread_time()
        self.spent_s = 0.0  # CPU seconds scanned on the loop's thread so far
        self.yields = 0

    def resume(self, refusal: Reason | None = None) -> None:
        """Start another scan of the same request (its answer's): what ran in between (the
        upstream call, other requests) is not this scan's. ``refusal``: its reason if over."""
        self._since = time.perf_counter()
        self._cpu_since = time.thread_time()
        if refusal is not None:
            self.refusal = refusal

    async def tick(self) -> None:
        """Yield to the loop if this slice is over; raise GatewayError past the budget."""
        if time.perf_counter() - self._since < self._slice:
            return
        self._charge()
        await asyncio.sleep(0)
        self.yields += 1
        self._since = time.perf_counter()
        self._cpu_since = time.thread_time()

    def charge(self, seconds: float) -> None:
        """Count work done off the loop (a worker thread) against the budget."""
        self.spent_s += seconds
        self._check()

    def finish(self) -> None:
        """Count the last slice: a scan's final unit may be what passes the budget."""
        self._charge()

    def _charge(self) -> None:
        now = time.thread_time()
        self.spent_s += now - self._cpu_since
        self._cpu_since = now
        self._check()

    def _check(self) -> None:
        if self._budget is not None and self.spent_s > self._budget:
            raise GatewayError(
                self.refusal,
                detail=f"scanning used {self.spent_s:.2f} s of CPU, over {self._budget:g} s",
            )
