"""A candidate's detector failing is recorded as the candidate's verdict (the kinds of failure
detection has); anything else is a bug of the gateway's own and is not swallowed."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from gateway import errors
from gateway.auth.principal import Principal
from gateway.boundary.findings import Finding
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.rollout.shadow import judge_caller, judge_request
from gateway.surfaces.openai_chat import parse

LIVE: dict[str, Any] = {
    "workflow": "w",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    "data": {"entities": {"EMAIL_ADDRESS": "mask"}},
}


class Bug(Exception):
    """Not a way detection fails: a fault that must surface."""


class Failing:
    """A detector at the edge that fails as told (a catastrophic regex, a bug)."""

    def __init__(self, exc: Exception) -> None:
        self._exc = exc

    @property
    def entities(self) -> frozenset[str]:
        return frozenset({"PHONE_NUMBER"})

    def find(self, text: str) -> list[Finding]:
        raise self._exc


def policies(exc: Exception) -> tuple[CompiledPolicy, CompiledPolicy]:
    live = compile_policy(Policy.model_validate(LIVE), "w.yaml")
    body = {**LIVE, "data": {"entities": {"PHONE_NUMBER": "block"}}}
    candidate = compile_policy(Policy.model_validate(body), "w.candidate.yaml")
    assert candidate.data is not None
    data = dataclasses.replace(candidate.data, detector=Failing(exc), shadow=True)
    return live, dataclasses.replace(candidate, data=data)


def judged(exc: Exception) -> list[str | None]:
    live, candidate = policies(exc)
    caller = Principal("alice", frozenset({"analyst"}))
    verdict = judge_caller(candidate, caller, "chat")
    request = parse(b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}')
    asyncio.run(judge_request(verdict, candidate, request, live))
    return [d.code for d in verdict.decisions]


@pytest.mark.parametrize("exc", [RecursionError(), ValueError("span"), MemoryError(), OSError()])
def test_detection_failures_are_the_candidates_verdict(exc: Exception) -> None:
    assert judged(exc) == [errors.BOUNDARY_DETECTOR.code]


def test_a_bug_is_not_swallowed() -> None:
    with pytest.raises(Bug):
        judged(Bug())
