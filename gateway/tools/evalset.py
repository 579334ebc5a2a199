"""Evaluation sets (``evaluation.set``): one JSON case a line, input messages and what the
answer must be, so a prompt, model or policy change is judged on fixed cases.

    {"name": "greets", "messages": [{"role": "user", "content": "hello"}],
     "expect": {"regex": "hello", "decision": "allow"}}

A case may also name its ``api`` (openai | anthropic), ``model``, ``system``, ``principal``
(default: a caller holding the policy's roles) and the ``answer`` recorded from the model,
which ``gateway eval --offline`` plays back instead of asking the upstream. Expectations, all
optional and all checked: the exact ``text``, text it ``contains``, a ``regex`` searched in
it, ``json`` fields (dotted paths into the answer parsed as JSON), a JSON ``schema`` the answer
must satisfy, the ``decision`` (allow | transform | deny | error, as ``policy test``) and the
``fallback`` that answered (model | message | none).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import fastjsonschema
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.tools.cases import CasePrincipal
from gateway.yamlsource import ConfigError, Problem

__all__ = ["EvalCase", "EvalExpect", "EvalSet", "load_set"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EvalExpect(_Strict):
    text: str | None = None
    contains: list[str] = []
    regex: str | None = None
    json_fields: Annotated[dict[str, Any] | None, Field(alias="json")] = None
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    decision: Literal["allow", "transform", "deny", "error"] | None = None
    fallback: Literal["model", "message", "none"] | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)  # re.error is a ValueError: reported at the case's line
        return value

    @field_validator("json_schema")
    @classmethod
    def _local_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _refs_stay_local(value)
            fastjsonschema.compile(value, handlers={}, use_default=False)
        return value


def _refs_stay_local(node: Any) -> None:
    """A ``$ref`` leaving the schema would make fastjsonschema fetch it: refused."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise ValueError(f"only local $ref ('#/...') are allowed, not '{ref[:80]}'")
        for item in node.values():
            _refs_stay_local(item)
    elif isinstance(node, list):
        for item in node:
            _refs_stay_local(item)


class EvalCase(_Strict):
    name: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[dict[str, Any]], Field(min_length=1)]
    api: Literal["openai", "anthropic"] = "openai"
    model: str | None = None  # default: --model, else the policy's first model
    system: str | None = None
    principal: CasePrincipal | None = None
    answer: str | None = None  # the model's recorded answer, played back by --offline
    expect: EvalExpect

    def failures(self, text: str, decision: str, fallback: str | None) -> list[str]:
        """One line per expectation the answer does not meet."""
        e, out = self.expect, []
        if e.text is not None and text != e.text:
            out.append(f"text: expected {e.text!r}, got {_short(text)}")
        out += [f"text: {_short(text)} does not contain {c!r}" for c in e.contains if c not in text]
        if e.regex is not None and re.search(e.regex, text) is None:
            out.append(f"regex: {e.regex!r} not found in {_short(text)}")
        if e.decision is not None and decision != e.decision:
            out.append(f"decision: expected {e.decision}, got {decision}")
        if e.fallback is not None and (fallback or "none") != e.fallback:
            out.append(f"fallback: expected {e.fallback}, got {fallback or 'none'}")
        if e.json_fields is not None or e.json_schema is not None:
            out += _json_failures(e, text)
        return out


def _short(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


_MISSING = object()


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _json_failures(expect: EvalExpect, text: str) -> list[str]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [f"json: the answer is not JSON: {_short(text)}"]
    out: list[str] = []
    for path, wanted in (expect.json_fields or {}).items():
        got = _at(data, path)
        if got is _MISSING:
            out.append(f"json: {path} missing")
        elif got != wanted:
            out.append(f"json: {path} expected {wanted!r}, got {got!r}")
    if expect.json_schema is not None:
        validate: Callable[[Any], Any] = fastjsonschema.compile(
            expect.json_schema, handlers={}, use_default=False
        )
        try:
            validate(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            out.append(f"schema: {exc.message}")
    return out


@dataclass(frozen=True, slots=True)
class EvalSet:
    """The cases of a set file, each with its line, and the file's digest (runs of the same
    set are comparable; an edited set starts a new series)."""

    path: Path
    cases: list[tuple[int, EvalCase]]
    digest: str


def load_set(policies_dir: Path, name: str) -> EvalSet:
    """Read ``name`` (relative to the policies folder, never outside it); raises ConfigError
    with every bad line at its file:line."""
    base = policies_dir.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise ConfigError([Problem(name, 0, "evaluation.set is outside the policies folder")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, f"cannot read file: {exc.strerror}")]) from exc
    problems: list[Problem] = []
    cases: list[tuple[int, EvalCase]] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            cases.append((number, EvalCase.model_validate(orjson.loads(line))))
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(str(path), number, f"not JSON: {exc}"))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "case"
                problems.append(Problem(str(path), number, f"{where}: {err['msg']}"))
    if not cases and not problems:
        problems.append(Problem(str(path), 0, "no cases"))
    names = [c.name for _, c in cases]
    problems += [
        Problem(str(path), n, f"case name '{c.name}' is used twice")
        for n, c in cases
        if names.count(c.name) > 1
    ]
    if problems:
        raise ConfigError(problems)
    return EvalSet(path, cases, hashlib.sha256(raw).hexdigest())
