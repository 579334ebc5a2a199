"""Changing the policies folder safely: an atomic write, and the archive of replaced versions.

A promotion or a rollback only ever writes files, so a gateway picks the change up by its hot
reload and a GitOps setup can make the same change with a commit. The live file is written
to a temporary file in the same folder, flushed to disk, renamed over ``W.yaml`` and the
folder synced: a reader (the reload poll, another instance on a shared volume) sees the old
file or the new one, never half of either, and a crash leaves one of them.

Replaced versions are kept in ``policies/.history/W/sha256-<hash>.yaml`` (the loader reads
only the folder's top level, so the archive is never loaded). The archive travels with the
folder (a volume, a Git repository), so ``rollback`` works where the audit database is out
of reach; the database history (gateway/audit/history.py) keeps every version any gateway
loaded, and is where ``rollback`` looks when the archive lacks the one asked for.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["ARCHIVE", "archive", "archived", "candidate_path", "live_path", "write_atomic"]

ARCHIVE = ".history"


def live_path(directory: Path, workflow: str) -> Path:
    return directory / f"{workflow}.yaml"


def candidate_path(directory: Path, workflow: str) -> Path:
    return directory / f"{workflow}.candidate.yaml"


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temporary file, fsync, rename, fsync of the folder.
    The temporary name does not end in ``.yaml``, so the reload poll never reads it; the
    file keeps the mode of the one it replaces (a gateway may run as another user)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _name(version: str) -> str:
    return version.replace(":", "-") + ".yaml"


def archive(directory: Path, workflow: str, version: str, text: str) -> Path:
    """Keep ``text`` as ``.history/W/sha256-<hash>.yaml`` (once: a version's text is fixed)."""
    folder = directory / ARCHIVE / workflow
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _name(version)
    if not path.exists():
        write_atomic(path, text)
    return path


def archived(directory: Path, workflow: str) -> dict[str, str]:
    """Version -> text of every archived version of ``workflow``."""
    folder = directory / ARCHIVE / workflow
    if not folder.is_dir():
        return {}
    return {
        p.name[: -len(".yaml")].replace("-", ":", 1): p.read_text(encoding="utf-8")
        for p in sorted(folder.glob("sha256-*.yaml"))
    }
