"""The local spool: where records wait, fsync'd, while the sink is down.

One append-only JSON-lines file. A record is durable once ``append`` returns (the file and,
the first time, its folder are fsync'd). A crash can leave a torn last line: it was never
acknowledged, so it is skipped on reading. Records hold no raw values, so neither does this.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gateway.audit.record import AuditRecord

__all__ = ["Spool"]

log = logging.getLogger("gateway.audit")


class Spool:
    """Blocking file calls: the writer runs them on a thread."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "audit-spool.jsonl"

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


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
