"""Every other presidio pattern recognizer, switched on by naming its entity in a policy.

``UK_NHS``, ``US_DRIVER_LICENSE``, ``DE_TAX_ID``, ... run presidio's own recognizer (its
regexes, validators and scores) on the normalized text; context words add the same boost as
for our rules. Recognizers that need an NLP engine or a remote service are not offered.
"""

from __future__ import annotations

import functools
import inspect

import presidio_analyzer.predefined_recognizers as predefined
import tldextract
from presidio_analyzer import PatternRecognizer

from gateway.boundary.rules import CONTEXT_BOOST, Hit, near

__all__ = ["ExtraRecognizer", "extra_entities"]

# presidio's e-mail and URL validators call tldextract, whose default extractor fetches the
# public suffix list from the internet on first use: use the snapshot it ships instead.
tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls = ()


@functools.cache
def _catalogue() -> dict[str, tuple[type[PatternRecognizer], ...]]:
    found: dict[str, list[type[PatternRecognizer]]] = {}
    for name in predefined.__all__:
        cls = getattr(predefined, name)
        if not (inspect.isclass(cls) and issubclass(cls, PatternRecognizer)):
            continue
        param = inspect.signature(cls).parameters.get("supported_entity")
        if param is not None and isinstance(param.default, str):
            found.setdefault(param.default, []).append(cls)
    return {entity: tuple(classes) for entity, classes in found.items()}


def extra_entities() -> frozenset[str]:
    """Entities a presidio pattern recognizer finds (ours included)."""
    return frozenset(_catalogue())


class ExtraRecognizer:
    """presidio's recognizers for one entity, built once per policy."""

    def __init__(self, entity: str) -> None:
        self.entity = entity
        self._recognizers = [cls(supported_entity=entity) for cls in _catalogue()[entity]]

    def hits(self, text: str, lowered: str) -> list[Hit]:
        found: list[Hit] = []
        for recognizer in self._recognizers:
            context = tuple(w.lower() for w in recognizer.context or ())
            for result in recognizer.analyze(text, [self.entity], None):
                score = float(result.score)
                if context and near(lowered, result.start, result.end, context):
                    score = min(1.0, score + CONTEXT_BOOST)
                found.append((result.start, result.end, score))
        return found
