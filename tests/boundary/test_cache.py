"""Caches keep nothing of a value: keyed hashes for keys, offsets and names for entries.

And they pay: a conversation resent whole finds its earlier turns in the cache, a request's
texts go to the NER model in one batch, and texts without a capitalized word skip it.
"""

from __future__ import annotations

import gc
import hashlib

import pytest

from gateway.boundary import DetectionSpec, build_detector, find_all, load_ner, patterns
from gateway.boundary import detector as detector_module
from gateway.boundary.keyed import KeyedCache, digest
from gateway.boundary.ner import NerModel
from gateway.boundary.rules import Hit
from tests.boundary.corpus import NER_MODEL


class _Counting:
    """The real NER model, counting the texts it is given."""

    def __init__(self, inner: NerModel) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def hits(self, text: str, entities: frozenset[str]) -> list[tuple[str, Hit]]:
        return self.hits_many([text], entities)[0]

    def hits_many(self, texts: list[str], entities: frozenset[str]) -> list[list[tuple[str, Hit]]]:
        self.batches.append(len(texts))
        return self.inner.hits_many(texts, entities)


@pytest.fixture(scope="module")
def spacy_ner() -> NerModel:
    return load_ner("spacy", NER_MODEL)


def test_keys_are_keyed_digests() -> None:
    assert len(digest("4111 1111 1111 1111")) == 16
    assert digest("4111") != hashlib.blake2b(b"4111\x00\xff", digest_size=16).digest()
    assert digest("ab", "c") != digest("a", "bc")


def test_the_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache: KeyedCache[int] = KeyedCache(2)
    a, b, c = (cache.key(x) for x in "abc")
    cache[a], cache[b] = 1, 2
    assert cache[a] == 1  # a is now the most recent
    cache[c] = 3
    assert len(cache) == 2 and a in cache and b not in cache


def test_no_value_is_kept_by_the_findings_cache() -> None:
    number, card = "+44 20 7946 0958", "4556 7375 8689 9855"
    detector = build_detector(DetectionSpec(frozenset({"PHONE_NUMBER", "CREDIT_CARD"})), None)
    found = detector.find(f"call {number}, card {card}")
    assert [f.entity for f in found] == ["PHONE_NUMBER", "CREDIT_CARD"]
    assert not hasattr(patterns, "_SCORES")  # the phone score cache is gone
    for cache in (detector_module._FOUND,):
        for key, value in cache._entries.items():
            assert isinstance(key, bytes) and len(key) == 16
            for secret in (number, card, "79460958", "4556737586899855"):
                assert secret not in repr(value)


def test_cached_findings_are_not_walked_by_full_garbage_collections() -> None:
    # 8,192 texts of 64 findings as objects made each full collection walk half a million.
    detector = build_detector(DetectionSpec(frozenset({"PHONE_NUMBER", "EMAIL_ADDRESS"})), None)
    text = " ".join(f"call +1 212 555 {i:04d} or ann{i}@example.com" for i in range(20))
    found = detector.find(text)
    assert len(found) == 40
    gc.collect()
    assert all(not gc.is_tracked(value) for value in detector_module._FOUND._entries.values())
    assert detector.find(text) == found  # read back as the same findings


def test_a_cached_text_is_not_scanned_again_and_a_new_version_does_not_share(
    spacy_ner: NerModel,
) -> None:
    ner = _Counting(spacy_ner)
    spec = DetectionSpec(frozenset({"PERSON", "EMAIL_ADDRESS"}))
    detector = build_detector(spec, ner)
    text = "Please ask Maria Gonzalez (maria@example.com) about it."
    first = detector.find(text)
    assert detector.find(text) == first
    assert ner.batches == [1]
    build_detector(spec, ner).find(text)  # a reloaded policy: its own entries
    assert ner.batches == [1, 1]


async def test_a_request_s_texts_go_to_ner_in_one_batch_and_lower_case_ones_skip_it(
    spacy_ner: NerModel,
) -> None:
    ner = _Counting(spacy_ner)
    detector = build_detector(DetectionSpec(frozenset({"PERSON"})), ner)
    texts = ["Hi, I am Jonas Weber.", "ok", '{"level": "info"}', "Thanks, Aiko Sato"]
    found = await find_all(detector, texts)
    assert ner.batches == [2]
    assert [[t[f.start : f.end] for f in fs] for t, fs in zip(texts, found, strict=True)] == [
        ["Jonas Weber"],
        [],
        [],
        ["Aiko Sato"],
    ]
    turn = "And what about Lena?"
    await find_all(detector, [*texts, turn])  # the next request resends the history
    assert ner.batches == [2, 1]
