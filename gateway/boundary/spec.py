"""What one policy asks detection to find: built from the policy's ``data`` section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_MIN_SCORE", "CustomRecognizer", "DetectionSpec"]

# presidio's AnalyzerEngine keeps every hit above 0 by default; a weak pattern (a bare digit run
# scored 0.05) then masks half a log file. Our scores put context-free weak hits below this.
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True, slots=True)
class CustomRecognizer:
    """A policy's own pattern, reported as entity ``name`` with rule ``custom.NAME``.

    A match scores ``score``; one of the ``context`` words nearby (a few words before or
    just after) adds 0.35, as in presidio. So a pattern that should count only in context
    gets a score under the policy's ``min_score`` and context words that lift it over.

    >>> CustomRecognizer("PROJECT_CODE", r"PRJ-[0-9]{5}", context=("project",), score=0.9)
    """

    name: str
    pattern: str
    context: tuple[str, ...] = ()
    score: float = 0.8


@dataclass(frozen=True, slots=True)
class DetectionSpec:
    """Entities to find, thresholds, the policy's own rules and its allow list.

    ``min_score`` applies to every entity without an entry in ``min_scores``; both must be
    above 0 (a zero threshold turns every weak pattern hit into a finding). ``deny_terms``
    are reported as entity ``DENY_TERM``; custom recognizers under their own names. Allow-list
    entries are compared with the matched value case-insensitively, after normalization.
    """

    entities: frozenset[str]
    min_score: float = DEFAULT_MIN_SCORE
    min_scores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    custom: tuple[CustomRecognizer, ...] = ()
    deny_terms: tuple[str, ...] = ()
    allow_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entity, score in {"*": self.min_score, **self.min_scores}.items():
            if not 0 < score <= 1:
                raise ValueError(f"min_score for {entity} must be in (0, 1], got {score}")
        for custom in self.custom:
            if not 0 < custom.score <= 1:
                raise ValueError(f"custom recognizer {custom.name}: score must be in (0, 1]")

    def threshold(self, entity: str) -> float:
        """The score a finding of ``entity`` needs to be reported."""
        return self.min_scores.get(entity, self.min_score)
