"""One step vocabulary, one hook that times the steps, one function that decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.context import RequestContext
from gateway.policy.loader import load_policies
from gateway.steps import Decision, Step, decide
from gateway.tools.cases import CasePrincipal, CaseRequest
from gateway.tools.offline import OfflineGateway
from tests.fakes.upstream import REFUSAL
from tests.policy.cliutil import GOOD, make_root

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


QUALITY = GOOD.replace("[gpt-test]", "[gpt-test, mock-model]") + "quality:\n  max_refusal: 0.5\n"


@pytest.mark.parametrize(
    ("fallback", "recorded"),
    [
        ("", [(Step.QUALITY, "error", "quality.refusal")]),
        (
            "fallback:\n  on: [low_confidence]\n  models: [mock-model]\n  message: later\n",
            [
                (Step.FALLBACK, "transform", "quality.refusal"),  # the next model
                (Step.FALLBACK, "transform", "quality.refusal"),  # then the message
            ],
        ),
    ],
)
async def test_quality_refusals_are_the_quality_steps_and_fallbacks_the_fallbacks(
    tmp_path: Path, fallback: str, recorded: list[tuple[Step, str, str]]
) -> None:
    config = load_config(make_root(tmp_path, {"triage.yaml": QUALITY + fallback}), {"K1": "k"})
    policies = load_policies(tmp_path / "policies", config.models)
    caller = CasePrincipal(subject="ann", roles=("agent",))
    request = CaseRequest(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    async with OfflineGateway(config, policies, tmp_path, [caller]) as gateway:
        run = await gateway.send("triage", caller, request, REFUSAL)
    assert [(d.step, d.outcome, d.code) for d in run.ctx.decisions] == recorded
    entered = [step for step, _ in run.ctx.timings]
    assert entered[:3] == [Step.GATEWAY, Step.AUTHENTICATE, Step.RESOLVE_POLICY]
    assert entered.index(Step.FORWARD) < entered.index(Step.QUALITY) < entered.index(Step.FALLBACK)
