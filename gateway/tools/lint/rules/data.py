"""The ``data`` section: every entity has a detector, patterns compile, thresholds apply."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.boundary.ner import NER_ENTITIES
from gateway.boundary.policy import data_problems
from gateway.tools.lint.core import Issue, LintContext, PolicyFile, Rule

__all__ = ["RULES"]

_HINTS = {
    "data.unknown_entity": "use an entity a detector provides (docs/data-boundary.md: "
    "'Detection: what finds what'), or define it under data.custom with a pattern",
    "data.needs_ner": "configure 'nlp: {engine: spacy, model: NAME}' in gateway.yaml",
    "data.custom_in_entities": "remove it from data.entities and set its action in data.custom",
    "data.min_score_unused": "name the entity in data.entities, or remove its min_scores entry",
    "data.bad_pattern": "fix the regular expression (Python re syntax)",
}


def _code(loc: tuple[str | int, ...], message: str, custom: set[str]) -> str:
    if loc[:2] == ("data", "min_scores"):
        return "data.min_score_unused"
    if loc[:2] == ("data", "custom"):
        return "data.bad_pattern"
    if loc[-1] in custom:
        return "data.custom_in_entities"
    return "data.needs_ner" if loc[-1] in NER_ENTITIES else "data.unknown_entity"


def entities(ctx: LintContext, f: PolicyFile) -> Iterator[Issue]:
    """The boundary's own checks (``data_problems``), each under a stable code."""
    data = f.policy.data
    if data is None:
        return
    custom = {c.name for c in data.custom}
    for loc, message in data_problems(data, ctx.ner_configured):
        code = _code(loc, message, custom)
        yield f.issue(loc, "error", code, message, _HINTS[code])


def masked_without_data(_: LintContext, f: PolicyFile) -> Iterator[Issue]:
    if f.policy.retention.content == "masked" and f.policy.data is None:
        yield f.issue(
            ("retention", "content"),
            "error",
            "retention.masked_without_data",
            "retention.content: masked needs a data section: without one the text kept would "
            "be the raw text",
            "add a data section, or set retention.content: none",
        )


RULES: tuple[Rule, ...] = (entities, masked_without_data)
