"""One thread that runs a blocking store's calls in order, for the event loop to await.

``loop.run_in_executor`` on a one-thread pool did the same with a concurrent future chained
to an asyncio one, a work item, a lock and a semaphore per call: at one request at a time
(one commit each) that bookkeeping was a tenth of the gateway's CPU per request (py-spy,
docs/performance.md). Here a call is one queue put and one ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CallThread"]

log = logging.getLogger("gateway.audit")

T = TypeVar("T")
# No future and no loop: a call ``post``ed, which nobody waits for.
_Call = tuple[Callable[[], Any], "asyncio.Future[Any] | None", asyncio.AbstractEventLoop | None]


class CallThread:
    """Calls run one after the other on a thread started with the first; ``stop`` ends it
    once the calls queued before it have run."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the thread; its result or its exception here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._start()
        self._calls.put((fn, future, loop))
        return await future

    def post(self, fn: Callable[[], object]) -> None:
        """``fn()`` on the thread, from any thread, nobody waiting for it (an exception is
        logged)."""
        if self._thread is None:
            self._start()
        self._calls.put((fn, None, None))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                # A daemon: a store left open never holds the process at exit (``stop``
                # drains it on a clean close, and each call is one transaction).
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, future, loop = call
            try:
                result, error = fn(), None
            except BaseException as exc:  # noqa: BLE001  handed to the caller, whatever it is
                result, error = None, exc
            if future is None or loop is None:
                if error is not None:
                    log.error("%s: a call failed", self._name, exc_info=error)
                continue
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, result, error)

    def stop(self) -> None:
        """Run what is queued, then end the thread (blocks until it has)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._calls.put(None)
            thread.join()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
