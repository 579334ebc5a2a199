"""A policy's ``data`` section compiled once at load: the detector and the action per entity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.boundary.detector import DENY_TERM, build_detector, entity_problems
from gateway.boundary.findings import Detector
from gateway.boundary.ner import NerModel
from gateway.boundary.spec import CustomRecognizer, DetectionSpec
from gateway.policy.models import DataAction, DataPolicy

__all__ = ["BoundaryPolicy", "compile_data", "data_problems"]


@dataclass(frozen=True, slots=True)
class BoundaryPolicy:
    """What the boundary step reads per request: no parsing or regex building per call."""

    source: DataPolicy
    detector: Detector
    actions: Mapping[str, DataAction]
    shadow: bool

    def action(self, entity: str) -> DataAction:
        # Everything the detector reports was asked for; an unlisted name is a bug: block.
        return self.actions.get(entity, "block")


def _spec(data: DataPolicy) -> DetectionSpec:
    return DetectionSpec(
        entities=frozenset(e for e, action in data.entities.items() if action != "allow"),
        min_score=data.min_score,
        min_scores=MappingProxyType(dict(data.min_scores)),
        custom=tuple(
            CustomRecognizer(c.name, c.pattern, tuple(c.context), c.score)
            for c in data.custom
            if c.action != "allow"
        ),
        deny_terms=tuple(data.deny_terms),
        allow_list=tuple(data.allow_list),
    )


def data_problems(
    data: DataPolicy, ner_configured: bool
) -> list[tuple[tuple[str | int, ...], str]]:
    """Each problem of a ``data`` section with the path of the key it is about."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    custom = {c.name for c in data.custom}
    for entity in data.entities:
        if entity in custom:
            problems.append(
                (
                    ("data", "entities", entity),
                    f"data.entities: {entity} is a custom recognizer; set its action there",
                )
            )
        else:
            for message in entity_problems([entity], ner_configured):
                problems.append((("data", "entities", entity), f"data.entities: {message}"))
    for entity in data.min_scores:
        if entity not in data.entities and entity not in custom:
            problems.append(
                (
                    ("data", "min_scores", entity),
                    f"data.min_scores: {entity} is not named in data.entities or data.custom",
                )
            )
    for i, c in enumerate(data.custom):
        try:
            build_detector(
                DetectionSpec(frozenset(), custom=(CustomRecognizer(c.name, c.pattern),)), None
            )
        except ValueError as exc:
            problems.append((("data", "custom", i, "pattern"), f"data.custom[{i}]: {exc}"))
    return problems


def compile_data(data: DataPolicy, ner: NerModel | None, shadow: bool) -> BoundaryPolicy:
    """The runtime form of a ``data`` section that ``data_problems`` found no fault with."""
    actions: dict[str, DataAction] = dict(data.entities)
    actions.update({c.name: c.action for c in data.custom})
    actions[DENY_TERM] = "block"
    return BoundaryPolicy(data, build_detector(_spec(data), ner), MappingProxyType(actions), shadow)
