"""Policy test files (``policies/tests/*.yaml``): cases of a request and what must happen.

Each case names a caller, a request as a client would send it, optionally the model's canned
answer, and what is expected: the decision, its reason codes, the text that reached the model
and the text that reached the client. ``gateway policy test`` runs them (gateway/tools/offline.py).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.errors import REASONS
from gateway.surfaces import ANTHROPIC, COUNT_TOKENS, EMBEDDINGS, OPENAI, RESPONSES, SURFACES
from gateway.surfaces.base import Surface
from gateway.yamlsource import ConfigError, Problem, line_of, load_model

__all__ = [
    "CASE_APIS",
    "Case",
    "CaseFile",
    "CasePrincipal",
    "CaseRequest",
    "Expect",
    "LocatedCase",
    "Observed",
    "TextMatch",
    "case_files",
    "load_cases",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CasePrincipal(_Strict):
    """The caller, as a gateway key or a token would name it."""

    subject: Annotated[str, Field(min_length=1)]
    roles: tuple[str, ...] = ()  # a tuple, so a caller can key the scratch keys
    team: str | None = None


# What a case's ``api`` names: a surface of the registry by its endpoint (``chat``,
# ``messages``, ``responses``, ``embeddings``, ``count_tokens``), or by its SDK for the two
# every client has (``openai``: chat, ``anthropic``: messages).
CASE_APIS: dict[str, Surface] = {
    "openai": OPENAI,
    "anthropic": ANTHROPIC,
    **{s.endpoint: s for s in SURFACES.values()},
}


class CaseRequest(_Strict):
    """A request in a client's wire API (``api``, one of ``CASE_APIS``); ``body`` adds any
    other field (``tools``, ...).

    ``messages`` for chat, messages and count_tokens (and for the Responses API, as its
    ``input`` items); ``input`` for embeddings (a string or a list) and the Responses API.
    ``system`` is Anthropic's system prompt and the Responses API's ``instructions``.
    ``max_tokens`` goes in the API's own ceiling field; Anthropic requires one: unset, it is
    the workflow's ``max_output_tokens`` (1024 without one).
    """

    api: str = "openai"
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None
    input: str | list[Any] | None = None
    system: str | None = None
    stream: bool = False
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    body: dict[str, Any] = {}

    @field_validator("api")
    @classmethod
    def _known_api(cls, api: str) -> str:
        if api not in CASE_APIS:
            close = difflib.get_close_matches(api, CASE_APIS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown api '{api}'{hint}: one of {', '.join(CASE_APIS)}")
        return api

    @model_validator(mode="after")
    def _shape(self) -> CaseRequest:
        """The fields the API takes: a case that could never be sent is a broken file."""
        surface = self.surface
        if surface is EMBEDDINGS:
            if self.input is None or self.messages is not None or self.system is not None:
                raise ValueError("an embeddings request takes 'input' (no messages, no system)")
        elif surface is RESPONSES:
            if (self.input is None) == (self.messages is None):
                raise ValueError("a Responses request takes 'input' or 'messages' (one of them)")
        elif self.messages is None or self.input is not None:
            raise ValueError(f"a {self.api} request takes 'messages' (no 'input')")
        if surface in (EMBEDDINGS, COUNT_TOKENS) and (self.stream or self.max_tokens):
            raise ValueError(f"a {surface.endpoint} request has no 'stream' or 'max_tokens'")
        return self

    @property
    def surface(self) -> Surface:
        """The wire API the request is sent in."""
        return CASE_APIS[self.api]


class TextMatch(_Strict):
    """A looser match than the exact text: every ``contains`` in it, no ``excludes``."""

    contains: list[str] = []
    excludes: list[str] = []


class Expect(_Strict):
    """What must happen. A field left out is not checked; ``upstream_text: null`` means
    nothing reached the model."""

    decision: Literal["allow", "transform", "deny", "error"]
    reasons: list[str] | None = None  # the reason codes, in any order, exactly these
    status: int | None = None
    upstream_text: str | TextMatch | None = None
    client_text: str | TextMatch | None = None

    @field_validator("reasons")
    @classmethod
    def _known_codes(cls, reasons: list[str] | None) -> list[str] | None:
        """A typo in an expected code would make a case that can never pass, or never fail."""
        for code in reasons or ():
            if code not in REASONS:
                close = difflib.get_close_matches(code, REASONS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"unknown reason code '{code}'{hint}")
        return reasons


@dataclass(frozen=True, slots=True)
class Observed:
    """What one case did: the verdict, what reached the model (None: nothing) and the client."""

    decision: str
    reasons: list[str]
    status: int
    upstream_text: str | None
    client_text: str

    def failures(self, expect: Expect) -> list[str]:
        """One line per expectation not met; the fields ``expect`` leaves out are not checked."""
        out: list[str] = []
        if self.decision != expect.decision:
            out.append(f"decision: expected {expect.decision}, got {self.decision}")
        if expect.reasons is not None and sorted(set(expect.reasons)) != sorted(set(self.reasons)):
            out.append(f"reasons: expected {sorted(set(expect.reasons))}, got {self.reasons}")
        if expect.status is not None and expect.status != self.status:
            out.append(f"status: expected {expect.status}, got {self.status}")
        given = expect.model_fields_set
        if "upstream_text" in given:
            out += _text_failures("upstream_text", expect.upstream_text, self.upstream_text)
        if "client_text" in given:
            out += _text_failures("client_text", expect.client_text, self.client_text or None)
        return out


def _text_failures(field: str, expected: str | TextMatch | None, got: str | None) -> list[str]:
    if expected is None:
        return [] if got is None else [f"{field}: expected none, got {got!r}"]
    if got is None:
        return [f"{field}: expected {_show(expected)}, got none"]
    if isinstance(expected, str):
        return [] if got == expected else [f"{field}: expected {expected!r}, got {got!r}"]
    out = [f"{field}: {got!r} does not contain {c!r}" for c in expected.contains if c not in got]
    out += [f"{field}: {got!r} contains {x!r}" for x in expected.excludes if x in got]
    return out


def _show(expected: str | TextMatch) -> str:
    return repr(expected) if isinstance(expected, str) else f"text containing {expected.contains}"


class Case(_Strict):
    name: Annotated[str, Field(min_length=1)]
    workflow: str | None = None  # default: the file's workflow
    principal: CasePrincipal
    request: CaseRequest
    upstream_answer: str | None = None  # default: the mock quotes the last user message
    expect: Expect


class CaseFile(_Strict):
    workflow: str | None = None
    cases: Annotated[list[Case], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class LocatedCase:
    """A case with the workflow it runs against and where it is written."""

    case: Case
    workflow: str
    file: str
    line: int

    @property
    def where(self) -> str:
        """``file:line``, the file relative to the working folder when it is inside it."""
        relative = os.path.relpath(self.file)
        return f"{self.file if relative.startswith('..') else relative}:{self.line}"


def case_files(policies: Path) -> list[Path]:
    folder = policies / "tests"
    return sorted((*folder.glob("*.yaml"), *folder.glob("*.yml"))) if folder.is_dir() else []


def load_cases(paths: list[Path], workflows: set[str]) -> list[LocatedCase]:
    """Every case of every file; raises ConfigError with every problem at its file:line
    (schema, a case without a workflow, a workflow that is not among ``workflows``)."""
    problems: list[Problem] = []
    found: list[LocatedCase] = []
    for path in paths:
        try:
            parsed, doc = load_model(path, CaseFile)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for i, case in enumerate(parsed.cases):
            workflow = case.workflow or parsed.workflow
            loc: tuple[str | int, ...] = (
                ("cases", i, "workflow") if case.workflow else ("workflow",)
            )
            if workflow is None:
                problems.append(
                    Problem(str(path), line_of(doc, ("cases", i)),
                            f"cases[{i}]: no workflow: set 'workflow' in the case or the file")
                )  # fmt: skip
            elif workflow not in workflows:
                known = ", ".join(sorted(workflows))
                problems.append(
                    Problem(str(path), line_of(doc, loc),
                            f"unknown workflow '{workflow}' (policies: {known})")
                )  # fmt: skip
            else:
                found.append(LocatedCase(case, workflow, str(path), line_of(doc, ("cases", i))))
    if problems:
        raise ConfigError(problems)
    return found
