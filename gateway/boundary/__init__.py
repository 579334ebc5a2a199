"""The data boundary: find PII and secrets in text, then mask, tokenize or block them."""

from gateway.boundary.detector import build_detector, detectable_entities, entity_problems
from gateway.boundary.findings import Detector, Finding
from gateway.boundary.ner import NerModel, NerUnavailableError, load_ner
from gateway.boundary.scan import find_all
from gateway.boundary.spec import CustomRecognizer, DetectionSpec

__all__ = [
    "CustomRecognizer",
    "DetectionSpec",
    "Detector",
    "Finding",
    "NerModel",
    "NerUnavailableError",
    "build_detector",
    "detectable_entities",
    "entity_problems",
    "find_all",
    "load_ner",
]
