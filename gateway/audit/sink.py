"""Where audit records go: the sink protocol both backends implement, and the query shape.

A sink links each batch onto the chain inside one transaction that also locks the chain
head, so several gateway instances can share one PostgreSQL sink and still form one chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.audit.chain import Chain, Checkpoint, StoredRow
from gateway.audit.record import AuditRecord

__all__ = ["AuditSink", "AuditStore", "PurgeResult", "Query", "SinkError"]


class SinkError(Exception):
    """The sink could not take or give records; the driver's own exception is the cause."""


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of ``gateway audit list`` and ``GET /admin/audit``; all optional, ANDed."""

    workflow: str | None = None
    decision: str | None = None
    reason: str | None = None
    subject: str | None = None
    entity: str | None = None
    since: float | None = None
    until: float | None = None
    after_seq: int | None = None  # pagination: records after this seq
    limit: int = 100


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Per workflow, how many records were (or would be, in a dry run) purged."""

    purged: dict[str, int]
    dropped: int  # tombstones folded into a checkpoint
    checkpoint: Checkpoint | None


class AuditSink(Protocol):
    async def write(self, records: Sequence[AuditRecord], *, replay: bool = False) -> None:
        """Commit ``records`` durably, in order, linked onto the chain; raise SinkError.

        ``replay``: the records may already be stored (a spool replayed after a crash) and
        those are skipped, found by request id.
        """
        ...

    async def close(self) -> None: ...


class AuditStore(AuditSink, Protocol):
    """A sink that can also be read, verified and purged (the CLI and the admin API)."""

    chain: Chain

    async def query(self, query: Query) -> list[StoredRow]: ...

    async def get(self, key: str) -> StoredRow | None:
        """By seq (digits) or request id."""
        ...

    def rows(self) -> AsyncIterator[StoredRow]:
        """Every row in seq order, read in pages."""
        ...

    async def head(self) -> tuple[int, str] | None: ...

    async def readiness(self) -> str | None:
        """Why the gateway must not serve on this store (unreachable, schema incompatible)."""
        ...

    async def key_fingerprint(self) -> str | None:
        """The fingerprint of the key the chain was started with (``Chain.fingerprint``);
        None for a chain started before fingerprints were kept, or still empty."""
        ...

    async def checkpoint(self) -> Checkpoint | None: ...

    async def purge(
        self, cutoffs: dict[str, float], default_cutoff: float, *, dry_run: bool, now: float
    ) -> PurgeResult:
        """Purge records older than their workflow's cutoff (epoch seconds); records of no
        workflow in ``cutoffs`` use ``default_cutoff``."""
        ...
