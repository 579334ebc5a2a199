"""``detect(entity, text)``: the values one entity's detector finds, as presidio's tests read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.boundary import DetectionSpec, Detector, build_detector

Detect = Callable[[str, str], list[str]]


@pytest.fixture(scope="session")
def detect() -> Detect:
    detectors: dict[str, Detector] = {}

    def run(entity: str, text: str) -> list[str]:
        if entity not in detectors:
            detectors[entity] = build_detector(DetectionSpec(frozenset({entity})), None)
        return [text[f.start : f.end] for f in detectors[entity].find(text)]

    return run
