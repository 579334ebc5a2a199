"""One step vocabulary, one hook that times the steps, one function that decides."""

from __future__ import annotations

import pytest

from gateway.context import RequestContext
from gateway.steps import Decision, Step, decide

MASKED = "boundary.masked"


@pytest.mark.parametrize(
    ("decisions", "outcome", "decision", "header"),
    [
        ([], "allow", "allow", "allow"),
        ([(Step.QUALITY, "allow", "quality.unchecked")], "allow", "allow",
         "allow; reason=quality.unchecked"),
        ([(Step.BOUNDARY, "transform", MASKED)], "transform", "masked", "masked"),
        # The answer masked: the header says masked, the record says which step decided.
        ([(Step.INSPECT_ANSWER, "transform", MASKED)], "transform", "transform", "masked"),
        ([(Step.ACCESS, "transform", "access.max_tokens_clamped"),
          (Step.BOUNDARY, "transform", MASKED)], "transform", "transform", "masked"),
        ([(Step.BOUNDARY, "transform", MASKED), (Step.FALLBACK, "transform", "upstream.error")],
         "transform", "masked", "transform; reason=upstream.error"),
        ([(Step.BOUNDARY, "transform", MASKED), (Step.FORWARD, "error", "upstream.timeout"),
          (Step.QUALITY, "allow", "quality.unchecked")], "error", "error",
         "error; reason=upstream.timeout"),
        ([(Step.QUALITY, "deny", "quality.refusal"), (Step.AUDIT, "error", "audit.unavailable")],
         "error", "error", "error; reason=audit.unavailable"),
    ],
)  # fmt: skip
def test_one_verdict_and_its_views(
    decisions: list[tuple[Step, str, str]], outcome: str, decision: str, header: str
) -> None:
    verdict = decide(Decision(*d) for d in decisions)  # type: ignore[arg-type]
    assert (verdict.outcome, verdict.decision, verdict.header) == (outcome, decision, header)
    assert verdict.reasons == tuple(code for _, _, code in decisions)


def test_step_names_are_the_strings_records_keep() -> None:
    assert [str(s) for s in Step][1:4] == ["authenticate", "resolve_policy", "read_request"]
    assert Step.QUALITY == "quality" and Step("fallback") is Step.FALLBACK


class _Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Step, float]] = []

    def left(self, ctx: RequestContext, step: Step, seconds: float) -> None:
        self.calls.append((ctx.request_id, step, seconds))


def test_enter_times_each_step_once_and_tells_the_observer() -> None:
    seen = _Seen()
    ctx = RequestContext("chat", "w")
    ctx.observer = seen
    ctx.enter(Step.AUTHENTICATE)
    ctx.enter(Step.ACCESS)
    assert ctx.step is Step.ACCESS
    ctx.leave()
    ctx.leave()  # nothing runs: nothing more is recorded
    ctx.enter(Step.AUDIT)
    ctx.leave()
    assert [s for s, _ in ctx.timings] == [Step.GATEWAY, Step.AUTHENTICATE, Step.ACCESS, Step.AUDIT]
    assert all(seconds >= 0 for _, seconds in ctx.timings)
    assert [(s, t) for _, s, t in seen.calls] == ctx.timings
    assert {rid for rid, _, _ in seen.calls} == {ctx.request_id}
