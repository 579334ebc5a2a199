"""Pause and resume: through Redis they reach a second instance within a second and survive a
restart; without Redis the policies folder carries them; ``mode: paused`` in a file; the
fallback message answers where there is one; every pause is in the audit chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.cli import main
from gateway.rollout.flags import FILE_NAME
from tests.fakes.upstream import FakeUpstream
from tests.rollout.conftest import Fleet, wait_until

QUIET: dict[str, Any] = {
    "workflow": "quiet",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["mock-model"]},
}
KIND: dict[str, Any] = {
    **QUIET,
    "workflow": "kind",
    "fallback": {"message": "We are down for maintenance, back soon."},
}
POLICIES = {"quiet.yaml": QUIET, "kind.yaml": KIND}


def paused(answer_status: int, body: Any) -> bool:
    return answer_status == 503 and body["error"]["code"] == "policy.paused"


def test_pause_reaches_another_instance_within_a_second_and_survives_a_restart(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(upstream, POLICIES, shared=True)
    assert fleet.chat(1, "quiet").status == 200

    done = fleet.admin_post(0, "/workflows/quiet/pause", {"reason": "incident 42: bad answers"})
    assert done.status_code == 200, done.text
    took = wait_until(lambda: fleet.chat(1, "quiet").status == 503, timeout=1.0)
    assert took < 1.0
    refused = fleet.chat(1, "quiet")
    assert paused(refused.status, refused.body)
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["x-gateway-decision"].startswith("error")
    assert refused.headers["x-gateway-policy-version"].startswith("sha256:")
    assert fleet.chat(1, "kind").status == 200  # only the paused workflow

    # Who and why, on the audit chain, which still verifies.
    (event,) = [r for r in fleet.records("rollout") if r.workflow == "quiet"]
    assert event.subject == "root" and event.reasons == ["rollout.paused"]
    assert event.rollout == {"action": "pause", "reason": "incident 42: bad answers"}
    assert refused.headers["x-request-id"] in {r.request_id for r in fleet.records("chat")}

    # A restarted instance obeys the pause before its first request.
    fleet.restart(1)
    again = fleet.chat(1, "quiet")
    assert paused(again.status, again.body)

    assert fleet.admin_post(1, "/workflows/quiet/resume").json()["resumed"] is True
    took = wait_until(lambda: fleet.chat(0, "quiet").status == 200, timeout=1.0)
    assert took < 1.0
    actions = [r.rollout["action"] for r in fleet.records("rollout") if r.rollout]
    assert actions == ["pause", "resume"]
    assert main(["--config", str(fleet.config), "audit", "verify"]) == 0


def test_a_paused_workflow_answers_with_its_fallback_message(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(upstream, POLICIES, shared=True, n=1)
    assert fleet.admin_post(0, "/workflows/kind/pause", {"reason": "upgrade"}).status_code == 200
    answer = fleet.chat(0, "kind")
    assert answer.status == 200
    assert answer.body.choices[0].message.content == "We are down for maintenance, back soon."
    assert answer.headers["x-gateway-fallback"] == "policy.paused"


def test_without_redis_the_policies_folder_carries_the_pause(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(upstream, POLICIES, shared=False)
    assert fleet.admin_post(0, "/workflows/quiet/pause", {"reason": "drill"}).status_code == 200
    assert (fleet.root / "policies" / FILE_NAME).exists()
    took = wait_until(lambda: fleet.chat(1, "quiet").status == 503, timeout=1.0)
    assert took < 1.0
    fleet.restart(0)
    assert fleet.chat(0, "quiet").status == 503
    fleet.admin_post(0, "/workflows/quiet/resume")
    wait_until(lambda: fleet.chat(1, "quiet").status == 200, timeout=1.0)


def test_mode_paused_in_the_policy_file(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(upstream, {"quiet.yaml": {**QUIET, "mode": "paused"}}, shared=False, n=1)
    answer = fleet.chat(0, "quiet")
    assert paused(answer.status, answer.body)
    # A runtime resume cannot override the file: it says so.
    resumed = fleet.admin_post(0, "/workflows/quiet/resume").json()
    assert resumed == {"workflow": "quiet", "resumed": False, "mode_paused": True}
    assert fleet.chat(0, "quiet").status == 503


@pytest.mark.parametrize("body", [{}, {"reason": "  "}, {"reason": "x" * 501}])
def test_a_pause_needs_a_reason(
    fleets: Callable[..., Fleet], upstream: FakeUpstream, body: dict[str, Any]
) -> None:
    fleet = fleets(upstream, POLICIES, shared=False, n=1)
    refused = fleet.admin_post(0, "/workflows/quiet/pause", body)
    assert refused.status_code == 400
    assert fleet.chat(0, "quiet").status == 200


def test_pause_routes_need_the_admin_role_and_a_known_workflow(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    import httpx

    fleet = fleets(upstream, POLICIES, shared=False, n=1)
    url = f"{fleet.url(0)}/admin/workflows/quiet/pause"
    as_analyst = httpx.post(
        url, json={"reason": "x"}, headers={"authorization": f"Bearer {fleet.analyst}"}
    )
    assert as_analyst.status_code == 403
    assert fleet.admin_post(0, "/workflows/nope/pause", {"reason": "x"}).status_code == 404
    assert fleet.chat(0, "quiet").status == 200


def test_cli_pauses_and_resumes_through_the_admin_api(
    fleets: Callable[..., Fleet],
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet = fleets(upstream, POLICIES, shared=False, n=1)
    monkeypatch.setenv("GATEWAY_ADMIN_KEY", fleet.admin)
    cfg = ["--config", str(fleet.config)]
    url = ["--url", fleet.url(0)]
    assert main(["workflow", "pause", "quiet", "--reason", "cli drill", *url, *cfg]) == 0
    wait_until(lambda: fleet.chat(0, "quiet").status == 503, timeout=1.0)
    assert main(["workflow", "status", *url, *cfg]) == 0
    shown = capsys.readouterr().out
    assert "quiet" in shown and "paused" in shown and "cli drill" in shown
    assert main(["workflow", "resume", "quiet", *url, *cfg]) == 0
    wait_until(lambda: fleet.chat(0, "quiet").status == 200, timeout=1.0)
