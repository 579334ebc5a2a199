"""Gateway API keys: shown once at creation, stored only as a hash with subject and roles.

Keys carry 256 bits of randomness, so a fast hash (SHA-256) is the right choice, as for
GitHub or Stripe tokens: a slow password hash would only add latency to every request.
A key may expire (``expires_at``) and be revoked (``revoked_at``); records are never deleted,
so ``gateway keys list`` keeps the history and a revoked key's id is never reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from gateway import errors
from gateway.auth.principal import Principal
from gateway.auth.refusal import unauthorized
from gateway.yamlsource import ConfigError, load_model

__all__ = [
    "KEY_PREFIX",
    "KeyRecord",
    "KeyStore",
    "create_key",
    "hash_key",
    "read_keys",
    "revoke_key",
]

KEY_PREFIX = "gwk_"

log = logging.getLogger("gateway.auth")


class KeyRecord(BaseModel):
    """One key as stored: its hash and who it stands for, never the key itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    hash: str
    subject: str
    roles: list[str]
    team: str | None = None
    created_at: str
    expires_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class _KeysFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: Annotated[list[KeyRecord], Field(default_factory=list)]


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    # (inode, size, mtime): a rewrite through os.replace always changes the inode, so a
    # revocation is seen even when the clock's granularity hides the new mtime.
    signature: tuple[int, int, int]
    by_hash: dict[str, Principal]
    revoked: frozenset[str]


class KeyStore:
    """Looks keys up by hash; re-reads the file when it changes, keeping the last good copy.

    Re-reading lets ``gateway keys create`` and ``gateway keys revoke`` take effect without a
    restart; the file is stat'ed at most once per ``recheck_s`` so the request path does no I/O
    in between, and a revocation is honoured within ``recheck_s``.
    """

    def __init__(self, path: Path, recheck_s: float = 1.0) -> None:
        self._path = path
        self._recheck_s = recheck_s
        self._checked = time.monotonic()
        self._snapshot = self._read()

    def resolve(self, key: str) -> Principal:
        """The key's principal; raises a 401 GatewayError for unknown, revoked or expired keys."""
        now = time.monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            self._refresh()
        digest = hash_key(key)
        principal = self._snapshot.by_hash.get(digest)
        if principal is None:
            revoked = digest in self._snapshot.revoked
            raise unauthorized(errors.AUTH_REVOKED if revoked else errors.AUTH_INVALID_KEY)
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise unauthorized(errors.AUTH_EXPIRED, f"key {principal.key_id} expired")
        return principal

    def _refresh(self) -> None:
        try:
            if self._signature() != self._snapshot.signature:
                self._snapshot = self._read()
        except ConfigError as exc:  # a half-edited file: keep serving the last good keys
            log.warning("keys file not reloaded, keeping the last good keys: %s", exc)

    def _signature(self) -> tuple[int, int, int]:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> _Snapshot:
        signature = self._signature()
        if signature == (0, 0, 0):
            return _Snapshot(signature, {}, frozenset())
        records = read_keys(self._path)
        live = {r.hash: _principal(r) for r in records if r.revoked_at is None}
        revoked = frozenset(r.hash for r in records if r.revoked_at is not None)
        return _Snapshot(signature, live, revoked)


def _principal(record: KeyRecord) -> Principal:
    expires = record.expires_at.timestamp() if record.expires_at is not None else None
    return Principal(
        record.subject, frozenset(record.roles), record.team, record.id, "key", expires
    )


def read_keys(path: Path) -> list[KeyRecord]:
    """Every record of a keys file (none if it does not exist); ConfigError if it is bad."""
    return load_model(path, _KeysFile)[0].keys if path.exists() else []


def create_key(
    path: Path,
    subject: str,
    roles: list[str],
    team: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, KeyRecord]:
    """Add a new key to ``path`` and return it with its record; the key is not stored."""
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        id=key_id,
        hash=hash_key(key),
        subject=subject,
        roles=roles,
        team=team,
        created_at=_now().isoformat(timespec="seconds"),
        expires_at=expires_at,
    )
    _edit(path, lambda records: [*records, record])
    return key, record


def revoke_key(path: Path, key_id: str) -> KeyRecord:
    """Mark key ``key_id`` revoked (it stays listed); KeyError if there is no such key."""
    found: list[KeyRecord] = []

    def revoke(records: list[KeyRecord]) -> list[KeyRecord]:
        out = []
        for r in records:
            if r.id == key_id:
                r = r if r.revoked_at else r.model_copy(update={"revoked_at": _now()})
                found.append(r)
            out.append(r)
        if not found:
            raise KeyError(key_id)
        return out

    _edit(path, revoke)
    return found[0]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _edit(path: Path, change: Callable[[list[KeyRecord]], list[KeyRecord]]) -> None:
    """Read, change and atomically replace the file, one writer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        records = change(read_keys(path))
        data = {"keys": [r.model_dump(mode="json", exclude_none=True) for r in records]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                YAML(typ="safe", pure=True).dump(data, out)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
