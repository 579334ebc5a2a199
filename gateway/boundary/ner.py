"""Named entities (PERSON, LOCATION, ...) from an installed spaCy model package.

``nlp: {engine: spacy, model: en_core_web_sm}`` in gateway.yaml loads the model once at start;
a model that is not installed is a start-up error, never a download. spaCy gives no score per
entity, so every hit scores 0.85 as presidio's SpacyRecognizer does.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from gateway.boundary.rules import Hit

__all__ = ["NER_ENTITIES", "NerModel", "NerUnavailableError", "SpacyNer", "load_ner"]

NER_SCORE = 0.85
# spaCy's OntoNotes labels, named as presidio's SpacyRecognizer names them.
_LABELS = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "NORP": "NRP",
}
NER_ENTITIES = frozenset(_LABELS.values())
# A small model tags "Epoch 1700000000", "nginx:1.25.3" or a git hash as PERSON or LOCATION:
# names of people and places have no digits or code punctuation and start with a capital.
_NOT_A_NAME = re.compile(r"[\d=:/@_#{}<>|\\]")


class NerUnavailableError(Exception):
    """The configured NER model cannot be loaded (not installed, or not a spaCy pipeline)."""


class NerModel(Protocol):
    """Finds named entities; ``hits`` yields ``(entity, start, end, score)`` per entity.

    ``hits_many`` is ``hits`` for several texts at once (a request's messages), which a
    model reads faster in one batch than one by one.
    """

    def hits(self, text: str, entities: frozenset[str]) -> list[tuple[str, Hit]]: ...

    def hits_many(
        self, texts: list[str], entities: frozenset[str]
    ) -> list[list[tuple[str, Hit]]]: ...


class SpacyNer:
    """A loaded spaCy pipeline; only its NER component runs (the others are disabled)."""

    def __init__(self, model: str) -> None:
        import spacy  # spaCy (~1 s to import) is paid only by gateways that configure NER

        try:
            self._nlp = spacy.load(model, enable=["ner"])
        except OSError as exc:
            raise NerUnavailableError(
                f"spaCy model '{model}' is not installed (install its package; nothing is "
                "downloaded at run time)"
            ) from exc
        if "ner" not in self._nlp.pipe_names:
            raise NerUnavailableError(f"spaCy model '{model}' has no 'ner' component")
        self.model = model

    def hits(self, text: str, entities: frozenset[str]) -> list[tuple[str, Hit]]:
        return self.hits_many([text], entities)[0]

    def hits_many(self, texts: list[str], entities: frozenset[str]) -> list[list[tuple[str, Hit]]]:
        return [_doc_hits(doc, entities) for doc in self._nlp.pipe(texts)]


def _doc_hits(doc: Any, entities: frozenset[str]) -> list[tuple[str, Hit]]:
    found: list[tuple[str, Hit]] = []
    for ent in doc.ents:
        entity = _LABELS.get(ent.label_)
        if (
            entity in entities
            and _name_like(ent.text)
            and not _after_number(doc.text, ent.start_char)
        ):
            found.append((entity, (ent.start_char, ent.end_char, NER_SCORE)))
    return found


def _after_number(text: str, start: int) -> bool:
    """ "30 GiB", "12 Mbps": a capitalized word right after a number is a unit."""
    return _NUMBER_BEFORE.search(text, max(0, start - 12), start) is not None


_NUMBER_BEFORE = re.compile(r"\d[ \t]?\Z")


def _name_like(text: str) -> bool:
    return text[:1].isupper() and not _NOT_A_NAME.search(text)


def load_ner(engine: str, model: str) -> NerModel:
    """The NER model gateway.yaml's ``nlp`` section names; raises NerUnavailableError."""
    if engine != "spacy":
        raise NerUnavailableError(f"unknown NLP engine '{engine}' (supported: spacy)")
    return SpacyNer(model)
