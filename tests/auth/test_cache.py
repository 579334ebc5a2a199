"""The verified-token cache: bounded, and never past a token's exp."""

from __future__ import annotations

import hashlib

from gateway.auth.cache import VerifiedTokens
from gateway.auth.principal import Principal


def _p(exp: float) -> Principal:
    return Principal("s", frozenset({"r"}), None, None, "jwt", exp)


def _d(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest()


def test_entries_end_at_exp() -> None:
    cache = VerifiedTokens()
    cache.put(_d(1), _p(exp=100.0), now=50.0)
    assert cache.get(_d(1), now=99.9) is not None
    assert cache.get(_d(1), now=100.0) is None
    assert len(cache) == 0  # dropped once seen expired
    cache.put(_d(2), _p(exp=100.0), now=100.0)  # already expired: not stored
    assert len(cache) == 0


def test_bounded_oldest_out_first() -> None:
    cache = VerifiedTokens(max_entries=3)
    for i in range(5):
        cache.put(_d(i), _p(exp=1e12), now=0.0)
    assert len(cache) == 3
    assert [cache.get(_d(i), now=0.0) is not None for i in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    cache.clear()
    assert len(cache) == 0
