"""What a tool hold costs a streamed answer, next to the same stream relayed as it comes, all
measured in the same run.

    python bench/review.py            # about 20 s
    python bench/review.py --quick    # a few seconds

In process on uvloop (no sockets): one streamed chat request through the whole pipeline
against an instant in-process provider answering 20 text events and, for the held cells, a
tool call, with

* no review section (the baseline: relayed event by event),
* ``review.on: [tool:refund_payment]`` and an answer calling no held tool: the stream is read
  whole first, then relayed (what every stream of a tool-holding workflow pays),
* the same with an answer calling ``refund_payment``: held, the item written to the review
  store (SQLite, in a temporary folder), the client answered with the fallback message.

Reported: µs per request (the whole stream read), and the time to the first event, which the
buffering moves to the end of the stream. Each figure is the best of several rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import orjson
import uvloop

from gateway.auth import Authenticator, Principal
from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.config import ModelConfig
from gateway.context import RequestContext
from gateway.normalized import Api, NormalizedRequest
from gateway.pipeline import Call, Pipeline
from gateway.policy import PolicyRegistry
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.review.db import SqliteDb
from gateway.review.service import Reviews
from gateway.review.spec import ReviewConfig
from gateway.review.store import ReviewStore
from gateway.surfaces import OPENAI
from gateway.upstream import Forwarder
from gateway.upstream.provider import Timeouts, UpstreamResponse
from gateway.upstream.sse import replay

WORDS = [f"word{i} " for i in range(20)]


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [choice]}  # fmt: skip
    return b"data: " + orjson.dumps(data) + b"\n\n"


class StreamProvider:
    """An instant OpenAI-format provider: 20 text events, then a call of ``tool`` if set."""

    name = "bench"

    def __init__(self, tool: str | None) -> None:
        events = [_chunk({"role": "assistant", "content": w}) for w in WORDS]
        if tool is not None:
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": tool, "arguments": '{"order": 42}'}}  # fmt: skip
            events.append(_chunk({"tool_calls": [call]}))
        events += [_chunk({}, "tool_calls" if tool else "stop"), b"data: [DONE]\n\n"]
        self.events = events

    def speaks(self, api: Api) -> bool:
        return api == "openai_chat"

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        return UpstreamResponse(200, "text/event-stream", events=replay(list(self.events)))

    async def aclose(self) -> None:
        return None


class NoAuth(Authenticator):
    def __init__(self) -> None:
        self._principal = Principal("bench", frozenset({"r"}), None, None, "key")

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        return self._principal


def _pipeline(folder: Path, holds: bool, tool: str | None) -> tuple[Pipeline, Reviews]:
    doc: dict[str, object] = {"workflow": "w", "owner": "o",
                              "access": {"roles": ["r"], "models": ["m"]}}  # fmt: skip
    if holds:
        doc["fallback"] = {"on": ["upstream_error"], "message": "A person will look at it."}
        doc["review"] = {"on": ["tool:refund_payment"], "mode": "hold"}
    policy = compile_policy(Policy.model_validate(doc), str(folder / "w.yaml"))
    models = {"m": ModelConfig(provider="bench", upstream_model="m")}
    forwarder = Forwarder({"bench": StreamProvider(tool)}, models, None)
    boundary = Boundary(MemoryVault(), TokenMinter(b"k" * 32))
    store = ReviewStore(SqliteDb(folder / f"reviews-{holds}-{tool}.db"))
    reviews = Reviews(store, None, ReviewConfig(), {}, "admin")
    registry = PolicyRegistry({"w": policy})
    reviews.connect(boundary, registry)
    return Pipeline(NoAuth(), registry, forwarder, boundary, reviews=reviews), reviews


async def _round(pipeline: Pipeline, n: int, status: int) -> tuple[float, float]:
    """(µs per request, µs to the first event) over ``n`` requests."""
    body = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "refund order 42"}],
         "stream": True}
    )  # fmt: skip

    async def read() -> bytes:
        return body

    first = 0.0
    t0 = time.perf_counter()
    for _ in range(n):
        started = time.perf_counter()
        reply = await pipeline.complete(RequestContext("chat", "w"), Call(OPENAI, "w", {}, read))
        assert reply.status == status, reply.status
        assert reply.events is not None
        seen = False
        async for _ in reply.events:
            if not seen:
                first += time.perf_counter() - started
                seen = True
    return (time.perf_counter() - t0) / n * 1e6, first / n * 1e6


async def main(quick: bool) -> None:
    n, rounds = (100, 3) if quick else (500, 5)
    cells = [("relayed as it comes (no review: baseline)", False, None, 200),
             ("tool-holding workflow, no held tool called: read whole", True, "lookup", 200),
             ("held: refund_payment called, item queued (SQLite)", True, "refund_payment",
              202)]  # fmt: skip
    print(f"python {platform.python_version()}, uvloop, {n} requests a round, best of {rounds}")
    print("| streamed chat answer (20 events) | µs per request | µs to first event |")
    print("| --- | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        for label, holds, tool, status in cells:
            pipeline, reviews = _pipeline(Path(tmp), holds, tool)
            best = (float("inf"), float("inf"))
            for _ in range(rounds):
                best = min(best, await _round(pipeline, n, status))
            await pipeline.aclose()
            await reviews.aclose()
            print(f"| {label} | {best[0]:,.0f} | {best[1]:,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if sys.version_info >= (3, 12):
        asyncio.run(main(args.quick), loop_factory=uvloop.new_event_loop)
    else:
        uvloop.run(main(args.quick))
