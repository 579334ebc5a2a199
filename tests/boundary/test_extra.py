"""Other presidio recognizers, switched on by entity name; presidio kept off the network."""

from __future__ import annotations

import pytest
import tldextract

from gateway.boundary import DetectionSpec, build_detector
from gateway.boundary.extra import extra_entities


@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [
        ("UK_NHS", "NHS number 943 476 5919", ["943 476 5919"]),
        ("UK_NHS", "NHS number 943 476 5910", []),  # checksum
        ("IN_PAN", "PAN ABCPD1234E on file", ["ABCPD1234E"]),
        ("MAC_ADDRESS", "eth0 00:1A:2B:3C:4D:5E up", ["00:1A:2B:3C:4D:5E"]),
        ("US_DRIVER_LICENSE", "ref 123456789", []),  # a bare digit run, no context word
    ],
)
def test_presidio_recognizer_by_entity(entity: str, text: str, expected: list[str]) -> None:
    findings = build_detector(DetectionSpec(frozenset({entity})), None).find(text)
    assert [text[f.start : f.end] for f in findings] == expected
    assert all(f.rule == f"presidio.{entity}" for f in findings)


def test_catalogue_holds_presidio_pattern_entities_only() -> None:
    entities = extra_entities()
    assert {"UK_NHS", "US_DRIVER_LICENSE", "DE_TAX_ID", "IBAN_CODE"} <= entities
    assert "PERSON" not in entities  # NER entities come from the nlp model, not presidio


def test_tldextract_never_fetches_the_suffix_list() -> None:
    assert tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls == ()
