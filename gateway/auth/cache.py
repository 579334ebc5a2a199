"""Tokens already verified, so a client reusing its token pays for one signature check."""

from __future__ import annotations

from gateway.auth.principal import Principal

__all__ = ["VerifiedTokens"]


class VerifiedTokens:
    """Principals by SHA-256 of their token, each kept no later than the token's ``exp``.

    Keyed by a hash, so the cache never holds a usable token. Bounded: when full, the oldest
    entry goes first (insertion order), so a flood of distinct valid tokens costs memory
    ``max_entries`` at most. Cleared whenever the verification keys change, so a key the
    identity provider withdrew stops admitting tokens at once.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: dict[bytes, Principal] = {}

    def get(self, digest: bytes, now: float) -> Principal | None:
        principal = self._entries.get(digest)
        if principal is None:
            return None
        assert principal.expires_at is not None
        if principal.expires_at <= now:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: bytes, principal: Principal, now: float) -> None:
        if principal.expires_at is None or principal.expires_at <= now:
            return
        if len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = principal

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
