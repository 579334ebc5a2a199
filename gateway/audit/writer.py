"""Group commit off the request path: one task writes whatever records are waiting as one
batch, so in sync mode concurrent requests share a commit instead of queueing for one each.

When the sink fails, the batch goes to the spool (fsync'd) and later batches follow it there,
in order, until a replay of the whole spool succeeds (tried at most once a second, with or
without traffic). A record is acknowledged only once it is in the sink or the spool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.audit.record import AuditRecord
from gateway.audit.sink import AuditSink, SinkError
from gateway.audit.spool import Spool

__all__ = ["AuditWriter"]

log = logging.getLogger("gateway.audit")

_RETRY_S = 1.0
_Item = tuple[AuditRecord, "asyncio.Future[bool] | None"]


class AuditWriter:
    """``put`` answers whether the response may complete (docs/audit.md: durability)."""

    def __init__(
        self,
        sink: AuditSink,
        spool: Spool,
        *,
        sync: bool,
        block: bool,
        batch_max: int,
        max_delay_s: float,
        queue_max: int,
        on_commit: Callable[[float], None] | None = None,
    ) -> None:
        self._sink = sink
        self._on_commit = on_commit  # told each batch commit's duration (gateway/observe/)
        self._spool = spool
        self._sync = sync
        self._block = block
        self._batch_max = batch_max
        self._max_delay = 0.0 if sync else max_delay_s  # nobody waits for a batch to fill
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(queue_max)
        self._task: asyncio.Task[None] | None = None
        # The loop ``start`` ran on, which every ``put`` comes from: asyncio.get_running_loop()
        # costs a getpid() system call (CPython's check for a fork) on every request.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._healthy = True
        self._next_replay = 0.0
        self._spooled = False  # records wait in the spool: new ones must queue behind them

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._spooled = await asyncio.to_thread(lambda: self._spool.pending)
        if self._spooled:
            await self._replay()
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        self._task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """A writer that dies of a bug must not leave requests waiting for it forever."""
        if not task.cancelled() and task.exception() is not None:
            log.error("audit writer stopped", exc_info=task.exception())
        self._healthy = False
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if future is not None and not future.done():
                future.set_result(False)
            self._queue.task_done()

    async def put(self, record: AuditRecord) -> bool:
        """Queue ``record``; in sync mode wait until it is durable. False: refuse the response."""
        if self._task is None or self._task.done() or self._loop is None:
            log.error("audit writer not running: record of request %s dropped", record.request_id)
            return not self._block
        future = self._loop.create_future() if self._sync else None
        try:
            self._queue.put_nowait((record, future))
        except asyncio.QueueFull:
            log.error("audit queue full: record of request %s dropped", record.request_id)
            return not self._block
        if future is None:
            return self._healthy or not self._block
        return await future or not self._block

    @property
    def depth(self) -> int:
        """Records waiting for a commit."""
        return self._queue.qsize()

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    def put_nowait(self, record: AuditRecord) -> None:
        """For a request nobody waits on any more (a stream the client cut)."""
        try:
            self._queue.put_nowait((record, None))
        except asyncio.QueueFull:
            log.error("audit queue full: record of request %s dropped", record.request_id)

    async def close(self) -> None:
        """Write what is queued, then close the sink."""
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._sink.close()
        self._spool.release()

    async def _run(self) -> None:
        while True:
            if self._spooled:  # replayed once a second, with or without traffic
                try:
                    first = await asyncio.wait_for(self._queue.get(), _RETRY_S)
                except TimeoutError:
                    await self._replay()
                    continue
            else:  # nothing to replay: no timer and no task per batch
                first = await self._queue.get()
            batch = [first]
            if self._max_delay:
                deadline = time.monotonic() + self._max_delay
                while len(batch) < self._batch_max and (left := deadline - time.monotonic()) > 0:
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), left))
                    except TimeoutError:
                        break
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            ok = False
            try:
                ok = await self._persist([record for record, _ in batch])
            finally:  # whatever happened, nobody is left waiting on this batch
                self._healthy = ok
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_result(ok)
                    self._queue.task_done()

    async def _persist(self, records: Sequence[AuditRecord]) -> bool:
        if self._spooled and time.monotonic() >= self._next_replay:
            await self._replay()
        if not self._spooled:
            try:
                started = time.perf_counter()
                await self._sink.write(records)
                if self._on_commit is not None:
                    self._on_commit(time.perf_counter() - started)
                return True
            except SinkError as exc:
                log.error("audit sink failed, spooling to %s: %s", self._spool.path, exc)
                self._next_replay = time.monotonic() + _RETRY_S
        try:
            await asyncio.to_thread(self._spool.append, records)
            self._spooled = True
            return True
        except OSError as exc:
            ids = ", ".join(r.request_id for r in records[:5])
            log.error(
                "audit spool failed too, %d record(s) lost (%s ...): %s", len(records), ids, exc
            )
            return False

    async def _replay(self) -> None:
        """Move the spool into the sink, oldest first; on failure try again in a second."""
        records = await asyncio.to_thread(self._spool.read)
        try:
            for i in range(0, len(records), self._batch_max):
                await self._sink.write(records[i : i + self._batch_max], replay=True)
        except SinkError as exc:
            log.warning("audit sink still down, %d record(s) stay spooled: %s", len(records), exc)
            self._next_replay = time.monotonic() + _RETRY_S
            return
        await asyncio.to_thread(self._spool.clear)
        self._spooled = False
        log.info("audit spool replayed: %d record(s)", len(records))
