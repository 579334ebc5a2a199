"""The hash chain over audit records, its verification and the purge checkpoints.

Each stored record carries ``hash = H(prev_hash | seq | time | workflow | digest)`` where
``digest`` is the SHA-256 of the record's canonical JSON. ``H`` is HMAC-SHA256 under the key
in ``audit.key_env`` when it is set (then nobody without the key can forge a consistent
chain), else plain SHA-256 (which still shows any edit made without recomputing the chain).

A purge erases a record's body but keeps its seq, time, workflow, digest and hashes (a
tombstone), so the chain still links through it; tombstones at the start of the chain are
then dropped and replaced by one signed checkpoint: the seq and hash verification starts from.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from gateway.audit.record import AuditRecord

__all__ = [
    "GENESIS",
    "Chain",
    "Checkpoint",
    "StoredRow",
    "VerifyReport",
    "verify_rows",
]

GENESIS = "0" * 64


@dataclass(slots=True)
class StoredRow:
    """A row as the sinks store it; ``body`` is None once purged (a tombstone). Never
    changed once made; not ``frozen``, whose 12 ``object.__setattr__`` calls were a sixth
    of linking a record on the audit thread."""

    seq: int
    time: float
    workflow: str | None
    request_id: str
    decision: str
    subject: str | None
    reasons: str  # " code1 code2 " for portable LIKE filters
    entity_types: str  # " EMAIL_ADDRESS PERSON "
    body: bytes | None
    digest: str
    prev_hash: str
    hash: str

    def values(self) -> tuple[object, ...]:
        """In the column order of gateway/audit/sql.py ``COLUMNS``."""
        return (
            self.seq, self.time, self.workflow, self.request_id, self.decision, self.subject,
            self.reasons, self.entity_types, self.body, self.digest, self.prev_hash, self.hash,
        )  # fmt: skip

    def record(self) -> AuditRecord | None:
        return AuditRecord.from_json(self.body) if self.body is not None else None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where verification starts after a purge: the last dropped record's seq and hash."""

    seq: int
    hash: str
    at: float
    purged: int
    signature: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None
    request_id: str | None = None


def _spaced(items: Iterable[str]) -> str:
    return " " + " ".join(items) + " " if items else " "


Prepared = tuple[AuditRecord, bytes, str]  # a record, its canonical JSON and that JSON's digest


def prepare(records: Iterable[AuditRecord]) -> list[Prepared]:
    """Each record's canonical JSON and digest: what a row needs that is not the chain's."""
    prepared: list[Prepared] = []
    for record in records:
        body = record.to_json()
        prepared.append((record, body, hashlib.sha256(body).hexdigest()))
    return prepared


class Chain:
    """Links records into rows and signs checkpoints with one key (or none)."""

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    def _h(self, *parts: str) -> str:
        data = "|".join(parts).encode()
        if self._key is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def fingerprint(self) -> str:
        """Names the key without revealing it: its HMAC of a fixed label ("unkeyed" if none).
        A sink stores it with the chain's first record, so ``verify`` under another key says
        so instead of calling the first record edited."""
        if self._key is None:
            return "unkeyed"
        return hmac.new(self._key, b"gateway audit chain key", hashlib.sha256).hexdigest()[:32]

    def row_hash(self, prev: str, seq: int, time: float, workflow: str | None, digest: str) -> str:
        return self._h(prev, str(seq), repr(time), workflow or "", digest)

    def link(self, seq: int, prev: str, records: Iterable[AuditRecord]) -> list[StoredRow]:
        """Rows for ``records`` following ``seq``/``prev``, in order."""
        return self.link_prepared(seq, prev, prepare(records))

    def link_prepared(self, seq: int, prev: str, prepared: Iterable[Prepared]) -> list[StoredRow]:
        """``link`` for records whose bodies ``prepare`` has already serialized: only the
        chain hashes are left, the part that needs the head."""
        rows: list[StoredRow] = []
        for record, body, digest in prepared:
            seq += 1
            h = self.row_hash(prev, seq, record.time, record.workflow, digest)
            rows.append(
                StoredRow(
                    seq=seq,
                    time=record.time,
                    workflow=record.workflow,
                    request_id=record.request_id,
                    decision=record.decision,
                    subject=record.subject,
                    reasons=_spaced(record.reasons),
                    entity_types=_spaced(record.entity_types),
                    body=body,
                    digest=digest,
                    prev_hash=prev,
                    hash=h,
                )
            )
            prev = h
        return rows

    def sign(self, seq: int, hash_: str, at: float, purged: int) -> Checkpoint:
        return Checkpoint(
            seq, hash_, at, purged, self._h("checkpoint", str(seq), hash_, repr(at), str(purged))
        )

    def checkpoint_ok(self, cp: Checkpoint) -> bool:
        return hmac.compare_digest(
            self.sign(cp.seq, cp.hash, cp.at, cp.purged).signature, cp.signature
        )

    def problem_in(self, row: StoredRow) -> str | None:
        """What is wrong with one row taken alone: its hash, digest or filter columns."""
        if row.hash != self.row_hash(row.prev_hash, row.seq, row.time, row.workflow, row.digest):
            return "edited: its hash does not match its contents"
        if row.body is None:
            return None
        if hashlib.sha256(row.body).hexdigest() != row.digest:
            return "edited: its body does not match its digest"
        record = row.record()
        assert record is not None
        expected = (record.request_id, record.decision, record.subject,
                    _spaced(record.reasons), _spaced(record.entity_types))  # fmt: skip
        actual = (row.request_id, row.decision, row.subject, row.reasons, row.entity_types)
        if expected != actual:
            return "edited: its indexed columns do not match its body"
        return None


async def _lookahead(
    rows: AsyncIterator[StoredRow],
) -> AsyncIterator[tuple[StoredRow, StoredRow | None]]:
    current = await anext(rows, None)
    while current is not None:
        following = await anext(rows, None)
        yield current, following
        current = following


async def verify_rows(
    chain: Chain,
    rows: AsyncIterator[StoredRow],
    checkpoint: Checkpoint | None,
    head: tuple[int, str] | None,
) -> VerifyReport:
    """Walk ``rows`` in seq order from ``checkpoint`` and name the first record edited,
    inserted or deleted; ``head`` is the (seq, hash) the sink last committed."""
    if checkpoint is not None and not chain.checkpoint_ok(checkpoint):
        return VerifyReport(False, 0, "checkpoint signature is wrong", checkpoint.seq)
    seq, prev = (checkpoint.seq, checkpoint.hash) if checkpoint else (0, GENESIS)
    checked = 0
    async for row, following in _lookahead(rows):
        at, rid = row.seq, row.request_id
        linked = row.prev_hash == prev and row.seq == seq + 1
        problem = chain.problem_in(row) if linked else "unlinked"
        if problem is not None:
            if following is not None and following.prev_hash == prev:
                return VerifyReport(False, checked, "inserted: the chain skips it", at, rid)
            if linked:
                return VerifyReport(False, checked, problem, at, rid)
            if row.seq > seq + 1:
                missing = f"{seq + 1}" if row.seq == seq + 2 else f"{seq + 1}-{row.seq - 1}"
                return VerifyReport(
                    False,
                    checked,
                    f"deleted: record(s) {missing} before it are missing",
                    seq=at,
                    request_id=rid,
                )
            return VerifyReport(
                False, checked, "deleted or replaced: it does not link to the record before it",
                at, rid,
            )  # fmt: skip
        seq, prev = row.seq, row.hash
        checked += 1
    if head is not None and (head[0], head[1]) != (seq, prev):
        if head[0] > seq:
            return VerifyReport(
                False, checked, f"deleted: records {seq + 1}-{head[0]} at the end are missing",
                seq + 1,
            )  # fmt: skip
        return VerifyReport(False, checked, "the chain head does not match the last record", seq)
    return VerifyReport(True, checked)
