"""The policies page: each loaded workflow's ``policy test`` results (run once per set of
loaded versions, not on every view), the candidates with their shadow verdicts against live,
read from the overview's rollups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import Console
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, ReviewGateway, start_review_gateway
from tests.support.clients import openai_client
from tests.support.server import write_yaml

CASES = {
    "workflow": "held",
    "cases": [
        {"name": "a plain question goes through", "principal": {"subject": "t", "roles": ["analyst"]},
         "request": {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]},
         "expect": {"decision": "allow"}},
        {"name": "this expectation is wrong on purpose",
         "principal": {"subject": "t", "roles": ["analyst"]},
         "request": {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
         "expect": {"decision": "deny"}},
    ],
}  # fmt: skip
# What flagged.yaml would become: e-mail addresses masked instead of blocked.
CANDIDATE = {
    "workflow": "flagged", "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
    "data": {"entities": {"EMAIL_ADDRESS": "mask", "PHONE_NUMBER": "mask"}},
    "fallback": {"on": ["blocked"], "message": "x", "review": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def gw(
    upstream: FakeUpstream, hook: Hook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReviewGateway]:
    root = tmp_path_factory.mktemp("policies-page")
    write_yaml(root / "policies" / "tests" / "held.yaml", CASES)
    write_yaml(root / "policies" / "flagged.candidate.yaml", CANDIDATE)
    started = start_review_gateway(root, upstream, hook)
    try:
        yield started
    finally:
        started.server.stop()


def _page(console: Console) -> str:
    for _ in range(50):
        text = console.get("policies").text
        if "running" not in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the policy test run never finished")


def test_policy_test_results_per_workflow_and_candidate_verdicts(gw: ReviewGateway) -> None:
    client = openai_client(base_url=f"{gw.url}/w/flagged/v1", api_key=gw.analyst, max_retries=0)
    for text in ("mail a.b@example.com please", "no values here"):
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": text}]
        )
    admin = Console(gw.url, gw.admin)
    try:
        text = _page(admin)
        row = text.split("<td>held</td>", 1)[1].split("</tr>", 1)[0]
        assert "1 passed, 1 failed" in row
        assert "this expectation is wrong on purpose" in text
        assert "decision: expected deny, got allow" in text
        assert "held.yaml:" in text  # the failing case's file:line
        candidates = text.split("<h2>Candidates</h2>", 1)[1]
        row = candidates.split("<td>flagged</td>", 1)[1].split("</tr>", 1)[0]
        # judged 2, same 1 (no values), differs 1 (blocked live, masked by the candidate)
        assert "<td>2</td><td>1</td>" in row
        assert "transform -&gt; masked 1" in row  # live: the fallback answered the block
        ran = text.split("Run <time", 1)[1].split(">", 1)[0]
        again = _page(admin)  # the same versions: the cached run, not a new one
        assert again.split("Run <time", 1)[1].split(">", 1)[0] == ran
    finally:
        admin.close()
    # An edited case file is a new key: the next view runs the cases again.
    cases = {**CASES, "cases": CASES["cases"][:1]}  # type: ignore[index]
    write_yaml(Path(gw.root) / "policies" / "tests" / "held.yaml", cases)
    admin = Console(gw.url, gw.admin)
    try:
        row = _page(admin).split("<td>held</td>", 1)[1].split("</tr>", 1)[0]
        assert "1 passed, 0 failed" in row
    finally:
        admin.close()


def test_a_record_of_a_version_no_longer_loaded_shows_its_text_from_the_history(
    gw: ReviewGateway,
) -> None:
    client = openai_client(base_url=f"{gw.url}/w/held/v1", api_key=gw.analyst, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "before the edit"}]
    )
    request_id = raw.headers["x-request-id"]
    path = Path(gw.root) / "policies" / "held.yaml"
    path.write_text(path.read_text().replace("tests@example.com", "new-owner@example.com"))
    admin = Console(gw.url, gw.admin)
    try:
        for _ in range(100):  # the reload is picked up within a second or so
            if "new-owner@example.com" in admin.get("policies").text:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the edited policy was never reloaded")
        explorer = admin.get(f"explorer?request={request_id}").text
        seq = explorer.split("record?seq=", 1)[1].split('"', 1)[0]
        page = admin.get(f"record?seq={seq}").text
        assert "no longer loaded" in page
        assert "as the history kept it" in page
        assert "tests@example.com" in page  # the old text, not the file as it is now
    finally:
        admin.close()
