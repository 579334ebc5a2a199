"""Retries, failed checks and fallback models together never outlast ``upstream.timeout_s``:
measured on the wall clock against a stalling fake upstream."""

from __future__ import annotations

import time

import openai
import pytest

from tests.audit.conftest import AuditedGateway
from tests.fakes.upstream import FakeUpstream, Reply, Stall, Status

TIMEOUT_S = 1.5  # the deadline policy's upstream.timeout_s


@pytest.mark.parametrize("stream", [False, True])
def test_check_failure_then_stalled_backup_ends_at_the_deadline(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    # 0.4 s of retries on the requested model, an unsure answer, then a backup that stalls.
    upstream.script("gpt-up", Status(503, retry_after=0.4), Reply("unsure", logprob=-3))
    upstream.script("gpt-backup-up", Stall(10), Stall(10), Stall(10))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        # A held stream fails before its head too: the SDK raises on create.
        gw.openai("deadline").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    elapsed = time.monotonic() - started
    assert (caught.value.status_code, caught.value.code) == (504, "upstream.timeout")
    assert TIMEOUT_S - 0.1 <= elapsed < TIMEOUT_S + 0.4, elapsed
    assert len(upstream.requests_for("gpt-up")) == 2
    assert len(upstream.requests_for("gpt-backup-up")) == 1  # no retry could fit
    r = gw.one(caught.value.response.headers["x-request-id"], wait=2)
    assert r.reasons == ["quality.low_confidence", "upstream.timeout"]


def test_retries_stop_before_a_wait_that_would_pass_the_deadline(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Status(503, retry_after=1.0), Status(503, retry_after=1.0))
    upstream.script("gpt-backup-up", Stall(10))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai("deadline").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    elapsed = time.monotonic() - started
    assert caught.value.code == "upstream.timeout"
    assert TIMEOUT_S - 0.1 <= elapsed < TIMEOUT_S + 0.4, elapsed
    # 1 s waited for the one retry that fit; the backup got what was left.
    assert [r.body["model"] for r in upstream.received] == ["gpt-up", "gpt-up", "gpt-backup-up"]
