"""What quality checks and the circuit breaker cost per request, next to the same request
without them, all measured in the same run.

    python bench/fallback.py            # about 20 s
    python bench/fallback.py --quick    # a few seconds

In process on uvloop (no sockets, so the figures are the gateway's own work): one chat
request through the whole pipeline against an instant in-process provider that answers a
200-byte JSON route with logprobs (whole, or as 20 streamed events), with

* no quality section and no breaker (the baseline),
* the circuit breaker in memory, and in the local Redis (two script calls per attempt),
* a quality section with every check (logprobs, a JSON Schema, two regexes, refusals) and a
  fallback section, streams held whole (``streaming: buffer``),
* both.

Each figure is the best of several rounds, to keep other work on the machine out of it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import orjson
import redis
import redis.asyncio as aioredis
import uvloop

from gateway.auth import Authenticator, Principal
from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.config import BreakerConfig, ModelConfig
from gateway.context import RequestContext
from gateway.normalized import Api, NormalizedRequest
from gateway.pipeline import Call, Pipeline
from gateway.policy import PolicyRegistry
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.quality.checks import check
from gateway.quality.read import read_body
from gateway.surfaces import OPENAI
from gateway.upstream import Forwarder
from gateway.upstream.breaker import Breaker, MemoryBreaker, RedisBreaker
from gateway.upstream.provider import Timeouts, UpstreamResponse
from gateway.upstream.sse import replay

REDIS_URL = "redis://127.0.0.1:6379/0"
ROUTE = '{"queue": "smb", "priority": 2, "reason": "Small team asking about pricing for 20 seats."}'
SCHEMA = {
    "type": "object",
    "required": ["queue", "priority"],
    "additionalProperties": False,
    "properties": {
        "queue": {"enum": ["smb", "enterprise"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string", "maxLength": 500},
    },
}
PROMPT = "x" * 1000


def _logprobs(words: list[str]) -> dict[str, object]:
    return {
        "content": [{"token": w, "logprob": -0.1, "bytes": [], "top_logprobs": []} for w in words]
    }


class RouteProvider:
    """An instant OpenAI-format provider answering ROUTE, with logprobs when asked."""

    name = "bench"

    def __init__(self) -> None:
        words = ROUTE.split(" ")
        self.pieces = [w + " " for w in words[:-1]] + [words[-1]]

    def speaks(self, api: Api) -> bool:
        return api == "openai_chat"

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        lp = request.body.get("logprobs") is True
        if not request.stream:
            logprobs = _logprobs(self.pieces) if lp else None
            choice = {"index": 0, "message": {"role": "assistant", "content": ROUTE},
                      "finish_reason": "stop", "logprobs": logprobs}  # fmt: skip
            body = {"id": "c", "object": "chat.completion", "created": 0, "model": upstream_model,
                    "choices": [choice], "usage": {"prompt_tokens": 250, "completion_tokens": 20,
                                                   "total_tokens": 270}}  # fmt: skip
            return UpstreamResponse(200, "application/json", body=orjson.dumps(body))
        events = []
        for piece in self.pieces:
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None,
                      "logprobs": _logprobs([piece]) if lp else None}  # fmt: skip
            events.append(b"data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk",
                                                    "choices": [choice]}) + b"\n\n")  # fmt: skip
        events.append(b"data: [DONE]\n\n")
        return UpstreamResponse(200, "text/event-stream", events=replay(events))

    async def aclose(self) -> None:
        return None


class NoAuth(Authenticator):
    def __init__(self) -> None:
        self._principal = Principal("bench", frozenset({"r"}), None, None, "key")

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self._principal


def _pipeline(folder: Path, checked: bool, breaker: Breaker | None) -> Pipeline:
    doc: dict[str, object] = {
        "workflow": "w",
        "owner": "o",
        "access": {"roles": ["r"], "models": ["m"]},
    }
    if checked:
        doc["quality"] = {
            "min_avg_logprob": -1.0,
            "json_schema": "route.json",
            "must_match": ['"queue"'],
            "must_not_match": ["(?i)competitor"],
            "max_refusal": 0.5,
        }
        doc["fallback"] = {
            "on": ["low_confidence", "schema_invalid", "upstream_error"],
            "message": "m",
        }
    (folder / "route.json").write_bytes(orjson.dumps(SCHEMA))
    policy = compile_policy(Policy.model_validate(doc), str(folder / "w.yaml"))
    models = {"m": ModelConfig(provider="bench", upstream_model="m")}
    forwarder = Forwarder({"bench": RouteProvider()}, models, breaker)
    boundary = Boundary(MemoryVault(), TokenMinter(b"k" * 32))
    return Pipeline(NoAuth(), PolicyRegistry({"w": policy}), forwarder, boundary)


async def _request_us(pipeline: Pipeline, stream: bool, n: int) -> float:
    """µs per request over ``n`` requests (one round)."""
    body = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    )

    async def read() -> bytes:
        return body

    t0 = time.perf_counter()
    for _ in range(n):
        ctx = RequestContext("chat", "w")
        reply = await pipeline.complete(ctx, Call(OPENAI, "w", {}, read))
        assert reply.status == 200, reply.body
        if reply.events is not None:
            async for _ in reply.events:
                pass
    return (time.perf_counter() - t0) / n * 1e6


async def _step_us(fn: object, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


async def main(quick: bool) -> None:
    n, rounds = (300, 3) if quick else (2000, 5)
    config = BreakerConfig(redis_prefix=f"bench:breaker:{uuid.uuid4().hex[:8]}:")
    redis_breaker = RedisBreaker(config, REDIS_URL)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [
            ("baseline: no quality, no breaker", False, None),
            ("+ breaker (memory)", False, MemoryBreaker(config)),
            ("+ breaker (Redis)", False, redis_breaker),
            ("+ quality checks + fallback", True, None),
            ("+ quality + breaker (memory)", True, MemoryBreaker(config)),
        ]
        pipelines = [_pipeline(folder, checked, breaker) for _, checked, breaker in cases]
        best = [[float("inf"), float("inf")] for _ in cases]
        for _ in range(rounds):  # interleaved, so drift in the machine's load hits every case
            for i, pipeline in enumerate(pipelines):
                best[i][0] = min(best[i][0], await _request_us(pipeline, False, n))
                best[i][1] = min(best[i][1], await _request_us(pipeline, True, n // 2))
        rows = [(label, w, st) for (label, _, _), (w, st) in zip(cases, best, strict=True)]
        policy = compile_policy(
            Policy.model_validate(
                {
                    "workflow": "w",
                    "owner": "o",
                    "access": {"roles": ["r"], "models": ["m"]},
                    "quality": {
                        "min_avg_logprob": -1.0,
                        "json_schema": "route.json",
                        "must_match": ['"queue"'],
                        "must_not_match": ["(?i)competitor"],
                        "max_refusal": 0.5,
                    },
                }
            ),
            str(folder / "w.yaml"),
        )
    rules = policy.quality
    assert rules is not None
    provider = RouteProvider()
    request = NormalizedRequest("openai_chat", {"logprobs": True}, "m", False, None)
    answer = (await provider.send(request, "m", Timeouts(1, None, 0))).body or b""

    async def checks() -> None:
        check(rules, read_body("openai_chat", answer, True)[0])

    memory = MemoryBreaker(config)

    async def memory_breaker() -> None:
        await memory.allow("bench/m")
        await memory.record("bench/m", True)

    async def redis_round() -> None:
        await redis_breaker.allow("bench/m")
        await redis_breaker.record("bench/m", True)

    ping_client = aioredis.Redis.from_url(REDIS_URL)

    async def ping() -> None:
        await ping_client.ping()

    steps = [
        ("read + every check on the answer (strip logprobs)", await _step_us(checks, n, rounds)),
        ("breaker allow + record, memory", await _step_us(memory_breaker, n, rounds)),
        (
            "breaker allow + record, Redis (2 script calls)",
            await _step_us(redis_round, n // 2, rounds),
        ),
        ("for scale: one Redis PING round trip", await _step_us(ping, n // 2, rounds)),
    ]
    await ping_client.aclose()
    await redis_breaker.aclose()
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{config.redis_prefix}*"):
        client.delete(key)
    client.close()

    print(f"Python {platform.python_version()} on {platform.machine()}, in process, uvloop; "
          f"best of {rounds} rounds of {n} requests (streams: {n // 2})")  # fmt: skip
    base_whole, base_stream = rows[0][1], rows[0][2]
    print("\n| request through the pipeline | whole µs | added | stream (20 events) µs | added |")
    print("|---|---:|---:|---:|---:|")
    for label, whole, stream in rows:
        added = "" if label.startswith("baseline") else f"{whole - base_whole:+.1f}"
        added_s = "" if label.startswith("baseline") else f"{stream - base_stream:+.1f}"
        print(f"| {label} | {whole:.1f} | {added} | {stream:.1f} | {added_s} |")
    print("\n| step alone | µs per call |")
    print("|---|---:|")
    for label, us in steps:
        print(f"| {label} | {us:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    uvloop.run(main(args.quick))
    sys.exit(0)
