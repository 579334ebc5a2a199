"""The checks a completed answer must pass, in a fixed order: confidence, refusal, schema,
patterns. The first failure is the reason; the others are not run."""

from __future__ import annotations

import fastjsonschema
import orjson

from gateway import errors
from gateway.errors import GatewayError
from gateway.quality.refusal import refusal_share
from gateway.quality.rules import QualityRules
from gateway.surfaces.base import Choice

__all__ = ["Choice", "check"]


def check(rules: QualityRules, choices: list[Choice]) -> bool:
    """Raise GatewayError with the failed check's reason code; return whether the confidence
    check ran (False: ``min_avg_logprob`` is set but the answer carried no logprobs)."""
    q = rules.source
    confidence_checked = q.min_avg_logprob is None
    for choice in choices:
        if q.min_avg_logprob is not None and choice.logprobs:
            confidence_checked = True
            average = sum(choice.logprobs) / len(choice.logprobs)
            if average < q.min_avg_logprob:
                raise GatewayError(
                    errors.QUALITY_LOW_CONFIDENCE,
                    detail=f"average logprob {average:.3f} < {q.min_avg_logprob}",
                )
        text = choice.text
        if text is None:
            continue
        if q.max_refusal is not None and (share := refusal_share(text)) > q.max_refusal:
            raise GatewayError(
                errors.QUALITY_REFUSAL, detail=f"refusal share {share:.2f} > {q.max_refusal}"
            )
        if rules.validate is not None:
            _validate(rules, text)
        for pattern in rules.must_match:
            if pattern.search(text) is None:
                raise GatewayError(
                    errors.QUALITY_PATTERN_FAILED, detail=f"must_match {pattern.pattern!r}"
                )
        for pattern in rules.must_not_match:
            if pattern.search(text) is not None:
                raise GatewayError(
                    errors.QUALITY_PATTERN_FAILED, detail=f"must_not_match {pattern.pattern!r}"
                )
    return confidence_checked


def _validate(rules: QualityRules, text: str) -> None:
    assert rules.validate is not None
    try:
        rules.validate(orjson.loads(text))
    except orjson.JSONDecodeError:
        raise GatewayError(errors.QUALITY_SCHEMA_INVALID, detail="answer is not JSON") from None
    except fastjsonschema.JsonSchemaValueException as exc:
        # The path and the keyword, never the value: the answer may hold personal data.
        raise GatewayError(
            errors.QUALITY_SCHEMA_INVALID, detail=f"{exc.name} fails {exc.rule}"
        ) from None
