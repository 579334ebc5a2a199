"""A policy's ``quality`` section compiled once at load: the JSON Schema validator (from its
file next to the policies) and the regexes; problems reported at the key they are about.

fastjsonschema rather than jsonschema: it compiles a schema into Python code, which validated
a typical answer in 5 us against jsonschema's 90 us (docs/quality-and-fallbacks.md). It knows drafts
4, 6 and 7, so a schema declaring a later draft is refused at load instead of half-checked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

from gateway.quality.spec import QualityPolicy

__all__ = ["QualityRules", "compile_quality", "quality_problems"]

Loc = tuple[str | int, ...]
_DRAFTS = ("draft-04", "draft-06", "draft-07")


@dataclass(frozen=True, slots=True)
class QualityRules:
    source: QualityPolicy
    validate: Callable[[Any], Any] | None  # raises JsonSchemaValueException
    schema_digest: str | None  # the schema file's content is part of the policy version
    must_match: tuple[re.Pattern[str], ...]
    must_not_match: tuple[re.Pattern[str], ...]

    @property
    def wants_logprobs(self) -> bool:
        return self.source.min_avg_logprob is not None

    @property
    def buffers_streams(self) -> bool:
        return self.source.streaming == "buffer"


def _local_refs_only(node: Any) -> str | None:
    """A ``$ref`` leaving the file would make fastjsonschema fetch it: refused at load."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                return ref
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _schema(path: str, policies_dir: Path) -> tuple[Callable[[Any], Any], str]:
    """The compiled validator and the file's digest; raises ValueError saying what is wrong."""
    base = policies_dir.resolve()
    file = (base / path).resolve()
    if not file.is_relative_to(base):
        raise ValueError(f"'{path}' is outside the policies folder")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read '{path}': {exc.strerror}") from None
    try:
        schema = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"'{path}' is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"'{path}' must hold a JSON object (a schema)")
    declared = schema.get("$schema")
    if isinstance(declared, str) and not any(d in declared for d in _DRAFTS):
        raise ValueError(f"'{path}': only JSON Schema drafts 4, 6 and 7 are supported")
    if (ref := _local_refs_only(schema)) is not None:
        raise ValueError(f"'{path}': only local $ref ('#/...') are allowed, not '{ref[:80]}'")
    try:
        validate = fastjsonschema.compile(schema, handlers={}, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException as exc:
        raise ValueError(f"'{path}' is not a valid JSON Schema: {exc}") from None
    return validate, hashlib.sha256(raw).hexdigest()


def quality_problems(quality: QualityPolicy, policies_dir: Path) -> list[tuple[Loc, str]]:
    """Each problem of a ``quality`` section with the path of the key it is about."""
    problems: list[tuple[Loc, str]] = []
    if quality.json_schema is not None:
        try:
            _schema(quality.json_schema, policies_dir)
        except ValueError as exc:
            problems.append((("quality", "json_schema"), f"quality.json_schema: {exc}"))
    for key in ("must_match", "must_not_match"):
        for i, pattern in enumerate(getattr(quality, key)):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(((("quality", key, i)), f"quality.{key}[{i}]: {exc}"))
    return problems


def compile_quality(quality: QualityPolicy, policies_dir: Path) -> QualityRules:
    """Raises ValueError on a problem ``quality_problems`` reports."""
    validate, digest = (
        _schema(quality.json_schema, policies_dir) if quality.json_schema else (None, None)
    )
    return QualityRules(
        source=quality,
        validate=validate,
        schema_digest=digest,
        must_match=tuple(re.compile(p) for p in quality.must_match),
        must_not_match=tuple(re.compile(p) for p in quality.must_not_match),
    )
