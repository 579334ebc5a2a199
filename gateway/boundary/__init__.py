"""The data boundary: find PII and secrets in text, then mask, tokenize or block them."""

from gateway.boundary.findings import Detector, Finding

__all__ = ["Detector", "Finding"]
