"""Where the runtime switches live: paused workflows and aborted canaries.

Every instance polls them (gateway/rollout/service.py, every 250 ms), so a pause or an abort
written by one instance is obeyed by all within a poll, and both survive restarts:

- with ``stores.redis_url``, one Redis hash (``<prefix>:rollout:{flags}``): ``pause:W`` and
  ``abort:W:VERSION`` fields holding JSON. An abort is written with HSETNX, so exactly one
  instance wins it and records it (audit, metric, webhook);
- otherwise a JSON file in the policies folder, ``.rollout-flags.json``, rewritten atomically
  (a temporary file renamed over it) under an ``flock``, so ``--workers N`` processes sharing
  the folder never lose each other's writes. The folder must then be writable.

Values are the operator's reason and identity, or the abort's figures; never request data.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.stores.redis import RedisClient, StoreError

__all__ = ["FileFlags", "FlagStore", "RedisFlags", "Snapshot"]

FILE_NAME = ".rollout-flags.json"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The switches as last read: workflow -> pause entry; (workflow, version) -> abort entry."""

    paused: dict[str, dict[str, Any]]
    aborted: dict[tuple[str, str], dict[str, Any]]


EMPTY = Snapshot({}, {})


class FlagStore(Protocol):
    """Every failure to read or write is a StoreError."""

    async def read(self) -> Snapshot: ...

    async def pause(self, workflow: str, entry: dict[str, Any]) -> None: ...

    async def resume(self, workflow: str) -> bool:
        """Whether it was paused."""
        ...

    async def abort(self, workflow: str, version: str, entry: dict[str, Any]) -> bool:
        """Whether this call set the abort (False: it was already set, by anyone)."""
        ...


def _snapshot(fields: Mapping[bytes | str, bytes | str]) -> Snapshot:
    paused: dict[str, dict[str, Any]] = {}
    aborted: dict[tuple[str, str], dict[str, Any]] = {}
    for field, raw in fields.items():
        name = field.decode() if isinstance(field, bytes) else field
        kind, _, rest = name.partition(":")
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # not ours to read; never a reason to stop obeying the others
        if kind == "pause":
            paused[rest] = value
        elif kind == "abort" and ":" in rest:
            workflow, _, version = rest.partition(":")
            aborted[(workflow, version)] = value
    return Snapshot(paused, aborted)


class RedisFlags:
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._key = client.key("flags")

    async def read(self) -> Snapshot:
        return _snapshot(await self._client.call(lambda r: r.hgetall(self._key)))

    async def pause(self, workflow: str, entry: dict[str, Any]) -> None:
        value = orjson.dumps(entry)
        await self._client.call(lambda r: r.hset(self._key, f"pause:{workflow}", value))

    async def resume(self, workflow: str) -> bool:
        removed = await self._client.call(lambda r: r.hdel(self._key, f"pause:{workflow}"))
        return bool(removed)

    async def abort(self, workflow: str, version: str, entry: dict[str, Any]) -> bool:
        field, value = f"abort:{workflow}:{version}", orjson.dumps(entry)
        return bool(await self._client.call(lambda r: r.hsetnx(self._key, field, value)))


class FileFlags:
    """The switches in ``folder/.rollout-flags.json``; re-read only when the file changed."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._lock_path = folder / ".rollout-flags.lock"
        self._seen: tuple[int, int, int] | None = None
        self._last = EMPTY

    async def read(self) -> Snapshot:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._last = None, EMPTY
            return EMPTY
        except OSError as exc:
            raise StoreError(f"rollout flags: {type(exc).__name__}") from exc
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen != self._seen:
            self._last = _snapshot(self._fields())
            self._seen = seen
        return self._last

    async def pause(self, workflow: str, entry: dict[str, Any]) -> None:
        await asyncio.to_thread(self._update, f"pause:{workflow}", entry, True)

    async def resume(self, workflow: str) -> bool:
        return await asyncio.to_thread(self._update, f"pause:{workflow}", None, True)

    async def abort(self, workflow: str, version: str, entry: dict[str, Any]) -> bool:
        return await asyncio.to_thread(self._update, f"abort:{workflow}:{version}", entry, False)

    def _fields(self) -> dict[bytes | str, bytes | str]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StoreError(f"rollout flags: {type(exc).__name__}") from exc
        if not isinstance(raw, dict):
            raise StoreError("rollout flags: not a JSON object")
        return {str(k): orjson.dumps(v) for k, v in raw.items()}

    def _update(self, field: str, entry: dict[str, Any] | None, replace: bool) -> bool:
        """Set (``entry``) or remove (None) ``field``; with ``replace`` False an existing
        field is kept. Whether the file changed."""
        try:
            with self._locked():
                fields = {str(k): orjson.loads(v) for k, v in self._fields().items()}
                present = field in fields
                if entry is None:
                    if not present:
                        return False
                    del fields[field]
                elif present and not replace:
                    return False
                else:
                    fields[field] = entry
                tmp = self.path.with_name(f"{FILE_NAME}.{os.getpid()}.tmp")
                tmp.write_bytes(orjson.dumps(fields, option=orjson.OPT_INDENT_2))
                os.replace(tmp, self.path)
                return True
        except OSError as exc:
            raise StoreError(f"rollout flags: {type(exc).__name__}: {exc.strerror}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def entry(**values: Any) -> dict[str, Any]:
    """A flag's value: ``values`` and when it was set."""
    return {**values, "at": round(time.time(), 3)}
