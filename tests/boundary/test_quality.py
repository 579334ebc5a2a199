"""Leak and over-masking rates on the labelled corpora, ours next to presidio's AnalyzerEngine.

Fails if ours gets worse than tests/data/quality_thresholds.yaml (the README's figures) on
either corpus, or stops beating presidio with its default recognizers on the hand-written one
(bench/detect.py compares both corpora with presidio). Run with ``-s`` to see the table and
every leak and over-masked look-alike.
"""

from __future__ import annotations

import json

import pytest
import yaml

from gateway.boundary import DetectionSpec, build_detector, load_ner
from tests.boundary.corpus import (
    GENERATED,
    NER_MODEL,
    THRESHOLDS,
    Sample,
    Score,
    load_corpus,
    load_generated,
    presidio_analyzer,
    score,
)
from tests.data.generate_corpus import generate


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return load_corpus()


@pytest.fixture(scope="module")
def entities(samples: list[Sample]) -> list[str]:
    return sorted({entity for sample in samples for entity, _ in sample.sensitive})


def test_corpus_labels_occur_in_their_texts(samples: list[Sample]) -> None:
    for sample in samples:
        for _, value in sample.sensitive + sample.lookalikes:
            assert value in sample.text, f"{sample.id}: {value!r} not in text"
    assert len({s.id for s in samples}) == len(samples)


def _row(name: str, result: Score) -> str:
    return (
        f"{name:<34} {len(result.leaks):>4}/{result.sensitive:<4} {result.leak_rate:>7.1%}"
        f" {len(result.overmasked):>6}/{result.lookalikes:<4} {result.over_masking_rate:>7.1%}"
    )


def test_ours_beats_presidio_and_holds_the_recorded_rates(
    samples: list[Sample], entities: list[str]
) -> None:
    detector = build_detector(DetectionSpec(frozenset(entities)), load_ner("spacy", NER_MODEL))
    ours = score(samples, lambda text: [(f.start, f.end) for f in detector.find(text)])
    presidio = presidio_analyzer(NER_MODEL)
    theirs = score(samples, presidio)
    theirs_same = score(samples, lambda text: presidio(text, entities))

    print(f"\n{'detector':<34} {'leaked':>9} {'rate':>7} {'over-masked':>11} {'rate':>7}")
    print(_row("gateway", ours))
    print(_row("presidio (default recognizers)", theirs))
    print(_row("presidio (same entities)", theirs_same))
    for entity in entities:
        mine, base = ours.per_entity[entity], theirs_same.per_entity[entity]
        print(f"  {entity:<16} leaked: gateway {mine[0]}/{mine[1]}, presidio {base[0]}/{base[1]}")
    for leak in ours.leaks:
        print("  gateway leak:", leak)
    for over in ours.overmasked:
        print("  gateway over-masked:", over)

    recorded = yaml.safe_load(THRESHOLDS.read_text())
    assert ours.leak_rate <= recorded["leak_rate"], ours.leaks
    assert ours.over_masking_rate <= recorded["over_masking_rate"], ours.overmasked
    for baseline in (theirs, theirs_same):
        assert ours.leak_rate < baseline.leak_rate
        assert ours.over_masking_rate < baseline.over_masking_rate


def test_the_generated_corpus_is_what_its_generator_makes() -> None:
    assert json.loads(GENERATED.read_text(encoding="utf-8")) == generate()


def test_the_generated_corpus_holds_the_recorded_rates_and_the_targets() -> None:
    samples = load_generated()
    entities = sorted({entity for sample in samples for entity, _ in sample.sensitive})
    assert len(samples) >= 2000
    assert len({s.id.split("-")[1] for s in samples}) >= 10  # locales
    assert len({s.id.split("-")[0] for s in samples}) >= 20  # document shapes
    for sample in samples:
        for _, value in sample.sensitive + sample.lookalikes:
            assert value in sample.text, f"{sample.id}: {value!r} not in text"
    detector = build_detector(DetectionSpec(frozenset(entities)), load_ner("spacy", NER_MODEL))
    ours = score(samples, lambda text: [(f.start, f.end) for f in detector.find(text)])
    print(f"\n{'detector':<34} {'leaked':>9} {'rate':>7} {'over-masked':>11} {'rate':>7}")
    print(_row("gateway (generated corpus)", ours))
    for entity in entities:
        leaked, total = ours.per_entity[entity]
        print(f"  {entity:<16} leaked: gateway {leaked}/{total}")
    for leak in ours.leaks:
        print("  gateway leak:", leak)
    for over in ours.overmasked:
        print("  gateway over-masked:", over)

    recorded = yaml.safe_load(THRESHOLDS.read_text())["generated"]
    assert ours.leak_rate <= recorded["leak_rate"], ours.leaks
    assert ours.over_masking_rate <= recorded["over_masking_rate"], ours.overmasked
    for entity in entities:
        assert ours.per_entity[entity][0] <= recorded["entity_leaks"].get(entity, 0), entity
    person = ours.per_entity["PERSON"]
    assert person[0] <= 0.05 * person[1]
    assert ours.over_masking_rate <= 0.01
