"""Caches that never hold a value: entries are keyed by a keyed hash of it.

A conversation resends its history every turn, so caching what detection learned about a
text (or a phone number) saves most of the work. Keeping the text itself as the key would
keep personal data in memory after its request ended; a BLAKE2b digest under a key drawn
once per process cannot be reversed or tested against guesses without that key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["KeyedCache", "digest"]

_KEYED = hashlib.blake2b(key=secrets.token_bytes(32), digest_size=16)  # copied: key set once
V = TypeVar("V")


def digest(*parts: str) -> bytes:
    """A 16-byte keyed hash of ``parts`` (separated, so ("ab", "c") != ("a", "bc"))."""
    h = _KEYED.copy()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00\xff")
    return h.digest()


class KeyedCache(Generic[V]):
    """A bounded LRU map from ``key(value)`` to what was computed about the value."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, V] = OrderedDict()

    @staticmethod
    def key(*parts: str) -> bytes:
        return digest(*parts)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def __getitem__(self, key: bytes) -> V:
        self._entries.move_to_end(key)
        return self._entries[key]

    def get(self, key: bytes) -> V | None:
        """The entry (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def __setitem__(self, key: bytes, value: V) -> None:
        self._entries[key] = value
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
