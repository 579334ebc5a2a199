"""The local spool: where records wait, fsync'd, while the sink is down.

One append-only JSON-lines file per process. A record is durable once ``append`` returns (the
file and, the first time, its folder are fsync'd). A crash can leave a torn last line: it was never
acknowledged, so it is skipped on reading. Records hold no raw values, so neither does this.

Worker processes sharing the folder (``--workers N``) each ``claim`` a slot: the lowest one no
live process holds, held by an ``flock`` for the process's life. A restarted worker takes
over the file its predecessor left; a worker finding the file of a free slot (after N was
lowered) moves its records into its own spool before anything else.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gateway.audit.record import AuditRecord

__all__ = ["Spool"]

log = logging.getLogger("gateway.audit")


class Spool:
    """Blocking file calls: the writer runs them on a thread."""

    def __init__(self, folder: Path, slot: int = 0) -> None:
        self.path = folder / ("audit-spool.jsonl" if slot == 0 else f"audit-spool.{slot}.jsonl")
        self._lock: int | None = None

    @classmethod
    def claim(cls, folder: Path) -> Spool:
        """The spool of one of several processes sharing ``folder`` (see the module)."""
        folder.mkdir(parents=True, exist_ok=True)
        slot = 0
        while (fd := _try_lock(folder, slot)) is None:
            slot += 1
        spool = cls(folder, slot)
        spool._lock = fd
        for path in sorted(folder.glob("audit-spool.*.jsonl")):
            middle = path.name.split(".")[1]
            other = int(middle) if middle.isdigit() else slot
            if other != slot and (held := _try_lock(folder, other)) is not None:
                try:
                    orphan = cls(folder, other)
                    if records := orphan.read():
                        spool.append(records)
                    orphan.clear()
                finally:
                    os.close(held)
        return spool

    def release(self) -> None:
        """Give the claimed slot up (the process's exit does too)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:  # missing, or not even reachable: nothing to replay from it
            return False

    def append(self, records: Sequence[AuditRecord]) -> None:
        """Raise OSError if the records could not be made durable."""
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"".join(r.to_json() + b"\n" for r in records))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    def read(self) -> list[AuditRecord]:
        """Every complete record, oldest first."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        records: list[AuditRecord] = []
        for n, line in enumerate(data.split(b"\n"), 1):
            if not line:
                continue
            try:
                records.append(AuditRecord.from_json(line))
            except (ValueError, TypeError):
                log.warning("audit spool %s: line %d is torn or unreadable, skipped", self.path, n)
        return records

    def clear(self) -> None:
        """Called once every spooled record is committed to the sink."""
        self.path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)


def _try_lock(folder: Path, slot: int) -> int | None:
    fd = os.open(folder / f"audit-spool.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
