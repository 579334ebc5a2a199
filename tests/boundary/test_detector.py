"""build_detector: the spec's entities only, thresholds, allow list, overlaps, policy rules."""

from __future__ import annotations

import itertools

import pytest

from gateway.boundary import (
    CustomRecognizer,
    DetectionSpec,
    build_detector,
    detectable_entities,
    entity_problems,
)

PATTERN_ENTITIES = frozenset(
    {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "URL"}
    | {"SECRET"}
)


def found(spec: DetectionSpec, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in build_detector(spec, None).find(text)]


def test_only_the_named_entities_are_found() -> None:
    text = "mail bob@corp.example.com or call +44 20 7946 0958"
    assert found(DetectionSpec(frozenset({"PHONE_NUMBER"})), text) == [
        ("PHONE_NUMBER", "+44 20 7946 0958")
    ]


def test_findings_are_sorted_and_do_not_overlap() -> None:
    text = "db postgres://app:Zx9pLm2Q@db.example.com/app, www.example.com, ann@example.com"
    findings = build_detector(DetectionSpec(PATTERN_ENTITIES), None).find(text)
    assert [f.start for f in findings] == sorted(f.start for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    assert ("SECRET", "Zx9pLm2Q") in [(f.entity, text[f.start : f.end]) for f in findings]
    assert ("EMAIL_ADDRESS", "ann@example.com") in [
        (f.entity, text[f.start : f.end]) for f in findings
    ]


def test_a_url_inside_an_email_address_is_not_reported() -> None:
    assert found(
        DetectionSpec(frozenset({"URL", "EMAIL_ADDRESS"})), "to jo@shop.example.co.uk"
    ) == [("EMAIL_ADDRESS", "jo@shop.example.co.uk")]
    assert found(DetectionSpec(frozenset({"URL"})), "to jo@shop.example.co.uk") == []


def test_per_entity_threshold_overrides_the_default() -> None:
    text = "phone 4155550132"  # a bare digit run: 0.3, plus 0.35 for the context word
    assert found(DetectionSpec(frozenset({"PHONE_NUMBER"})), text) == [
        ("PHONE_NUMBER", "4155550132")
    ]
    strict = DetectionSpec(frozenset({"PHONE_NUMBER"}), min_scores={"PHONE_NUMBER": 0.7})
    assert found(strict, text) == []
    assert found(DetectionSpec(frozenset({"PHONE_NUMBER"})), "ref 4155550132") == []


@pytest.mark.parametrize("score", [0.0, -0.1, 1.5])
def test_thresholds_must_be_above_zero(score: float) -> None:
    with pytest.raises(ValueError, match="min_score"):
        DetectionSpec(frozenset({"URL"}), min_score=score)
    with pytest.raises(ValueError, match="min_score for URL"):
        DetectionSpec(frozenset({"URL"}), min_scores={"URL": score})


def test_allow_list_is_case_insensitive() -> None:
    spec = DetectionSpec(frozenset({"EMAIL_ADDRESS"}), allow_list=("support@example.com",))
    assert found(spec, "Support@Example.com and eve@example.com") == [
        ("EMAIL_ADDRESS", "eve@example.com")
    ]


def test_custom_recognizer_and_deny_terms() -> None:
    spec = DetectionSpec(
        frozenset(),
        custom=(
            CustomRecognizer("PROJECT_CODE", r"PRJ-[0-9]{5}"),
            CustomRecognizer("TICKET", r"T-[0-9]{4}", context=("ticket",), score=0.3),
        ),
        deny_terms=("Project Falcon", "falcon-9"),
    )
    detector = build_detector(spec, None)
    assert detector.entities == {"PROJECT_CODE", "TICKET", "DENY_TERM"}
    text = "PRJ-12345 for PROJECT FALCON, ticket T-1234. Unrelated: the nightly build number is now T-9999 of falcon-9x"
    assert [(f.entity, f.rule, text[f.start : f.end]) for f in detector.find(text)] == [
        ("PROJECT_CODE", "custom.PROJECT_CODE", "PRJ-12345"),
        ("DENY_TERM", "deny_term", "PROJECT FALCON"),
        ("TICKET", "custom.TICKET", "T-1234"),
    ]


def test_invalid_custom_pattern_fails_at_build() -> None:
    spec = DetectionSpec(frozenset(), custom=(CustomRecognizer("BAD", "PRJ-[0-9"),))
    with pytest.raises(ValueError, match="custom recognizer BAD: invalid pattern"):
        build_detector(spec, None)


def test_other_presidio_recognizers_switch_on_by_name() -> None:
    assert found(DetectionSpec(frozenset({"UK_NHS"})), "NHS number 943 476 5919") == [
        ("UK_NHS", "943 476 5919")
    ]


def test_entities_without_a_detector_are_problems() -> None:
    assert entity_problems(["EMAIL_ADRESS"], ner_configured=False) == [
        "unknown entity EMAIL_ADRESS (did you mean EMAIL_ADDRESS?)"
    ]
    assert entity_problems(["PERSON", "URL"], ner_configured=False) == [
        "entity PERSON needs an NER model: configure 'nlp: {engine: spacy, model: NAME}' in gateway.yaml"
    ]
    assert entity_problems(["PERSON", "LOCATION"], ner_configured=True) == []
    assert "PERSON" not in detectable_entities(False)
    assert PATTERN_ENTITIES | {"UK_NHS", "US_DRIVER_LICENSE"} <= detectable_entities(False)
    with pytest.raises(ValueError, match="needs an NER model"):
        build_detector(DetectionSpec(frozenset({"LOCATION"})), None)
