"""Gateway API keys: shown once at creation, stored only as a hash with subject and roles.

Keys carry 256 bits of randomness, so a fast hash (SHA-256) is the right choice, as for
GitHub or Stripe tokens: a slow password hash would only add latency to every request.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from gateway.auth.principal import Principal
from gateway.yamlsource import ConfigError, load_model

__all__ = ["KeyRecord", "KeyStore", "create_key", "hash_key"]

_PREFIX = "gwk_"

log = logging.getLogger("gateway.auth")


class KeyRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    hash: str
    subject: str
    roles: list[str]
    team: str | None = None
    created_at: str


class _KeysFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: Annotated[list[KeyRecord], Field(default_factory=list)]


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    mtime_ns: int
    by_hash: dict[str, Principal]


class KeyStore:
    """Looks keys up by hash; re-reads the file when it changes, keeping the last good copy.

    Re-reading lets ``gateway keys create`` take effect without a restart; the file is stat'ed
    at most once per ``recheck_s`` so the request path does no I/O in between.
    """

    def __init__(self, path: Path, recheck_s: float = 1.0) -> None:
        self._path = path
        self._recheck_s = recheck_s
        self._checked = time.monotonic()
        self._snapshot = self._read()

    def principal(self, key: str) -> Principal | None:
        now = time.monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            self._refresh()
        return self._snapshot.by_hash.get(hash_key(key))

    def _refresh(self) -> None:
        try:
            if self._mtime() != self._snapshot.mtime_ns:
                self._snapshot = self._read()
        except ConfigError as exc:  # a half-edited file: keep serving the last good keys
            log.warning("keys file not reloaded, keeping the last good keys: %s", exc)

    def _mtime(self) -> int:
        try:
            return self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _read(self) -> _Snapshot:
        mtime = self._mtime()
        if mtime == 0:
            return _Snapshot(0, {})
        records, _ = load_model(self._path, _KeysFile)
        return _Snapshot(
            mtime,
            {r.hash: Principal(r.subject, frozenset(r.roles), r.team, r.id) for r in records.keys},
        )


def create_key(
    path: Path, subject: str, roles: list[str], team: str | None = None
) -> tuple[str, KeyRecord]:
    """Add a new key to ``path`` and return it with its record; the key is not stored."""
    key_id = secrets.token_hex(4)
    key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        id=key_id,
        hash=hash_key(key),
        subject=subject,
        roles=roles,
        team=team,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    existing = load_model(path, _KeysFile)[0].keys if path.exists() else []
    data = {"keys": [r.model_dump(exclude_none=True) for r in (*existing, record)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        YAML(typ="safe", pure=True).dump(data, out)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return key, record
