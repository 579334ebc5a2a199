"""What the limits step costs per request: memory and Redis, next to a bare Redis PING.

    python bench/limits.py            # about 10 s
    python bench/limits.py --quick    # about 2 s smoke run
    BENCH_REDIS_URL=redis://127.0.0.1:6391/0 python bench/limits.py   # another Redis

One process on uvloop drives the real ``Limits`` step (estimate, keys, prices, one store
call) for a policy with five counters: requests and tokens per minute per user, requests
per hour per workflow, dollars per day per user and per month per workflow. Rounds
interleave, in the same run and over the same client connection:

* ``PING``: a bare Redis round trip (redis-py asyncio), the floor of any shared check;
* ``EVALSHA`` of an empty script with the admit's keys and argument: the floor of any
  script call;
* ``admit`` against the memory store and against Redis (one EVALSHA for all five counters);
* ``admit + settle``: the whole request's limits work (two round trips with Redis);
* the same two with the store reserving slot by slot, as on a Redis Cluster, where the
  per-user counters sit in the user's slot and the per-workflow ones in the workflow's: two
  held slots, and two settled, per request (run on the single Redis, so the round trips are
  comparable).

The Redis admit should cost at most 1.5 PINGs: one round trip, plus the script and the
Python around it. The median of the rounds' per-call means is printed as a markdown table,
wall-clock and this process's CPU (``time.process_time``: the gateway's share, not Redis's).
The file runs against an older tree too (the slot-by-slot rows are then left out), so one run
can alternate two trees: ``cd /tmp && OLD/.venv/bin/python NEW/bench/limits.py``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop

from gateway.auth.principal import Principal
from gateway.config import LimitsConfig, ModelConfig
from gateway.context import RequestContext
from gateway.limits.memory import MemoryStore
from gateway.limits.redis import ADMIT_SHA, RedisStore, admit_payload
from gateway.limits.step import Limits
from gateway.limits.store import Ask
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.stores import open_redis
from gateway.surfaces import openai_chat

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MODELS = {
    "gpt-4o-mini": ModelConfig(
        provider="openai", upstream_model="gpt-4o-mini", usd_per_mtok_in=0.15, usd_per_mtok_out=0.6
    )
}
BODY = orjson.dumps(
    {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "messages": [
            {"role": "system", "content": "Classify the lead and route it."},
            {"role": "user", "content": "We are a 40-person firm looking for a quote. " * 8},
        ],
    }
)


def policy() -> CompiledPolicy:
    source = Policy.model_validate(
        {
            "workflow": "bench",
            "owner": "bench@example.com",
            "access": {"roles": ["agent"], "models": ["gpt-4o-mini"], "max_output_tokens": 256},
            "limits": {
                "rate": [
                    {"per": "user", "requests_per_minute": 10**9, "tokens_per_minute": 10**12},
                    {"per": "workflow", "requests_per_hour": 10**9},
                ],
                "budget": [
                    {"per": "user", "usd_per_day": 10**6},
                    {"per": "workflow", "usd_per_month": 10**7},
                ],
            },
        }
    )
    return compile_policy(source, "bench.yaml")


def one_request(
    limits: Limits, compiled: CompiledPolicy, settle: bool
) -> Callable[[], Awaitable[None]]:
    principal = Principal("alice", frozenset({"agent"}))

    async def run() -> None:
        ctx = RequestContext("chat", "bench", principal=principal)
        await limits.admit(ctx, openai_chat.parse(BODY), compiled)
        if settle:
            ctx.model_used, ctx.tokens_in, ctx.tokens_out = "gpt-4o-mini", 120, 80
            await limits.settle(ctx)

    return run


async def per_call_us(call: Callable[[], Awaitable[object]], n: int) -> tuple[float, float]:
    """Wall-clock and process CPU microseconds per call."""
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def split_store(url: str, prefix: str, bound: float) -> RedisStore | None:
    """A store that reserves slot by slot on this (single) Redis; None on a tree from before
    slot-by-slot reserves."""
    if "split" not in inspect.signature(RedisStore).parameters:
        return None
    client = open_redis(url, user="lim", prefix=prefix, timeout_s=bound)
    return RedisStore(client, split=True)


def _one_ask(limits: Limits, compiled: CompiledPolicy) -> Ask:
    ask = limits.ask(Principal("alice", frozenset({"agent"})), openai_chat.parse(BODY), compiled)
    assert ask is not None
    return ask


def _queue_admit(pipe: Any, ask: Ask) -> None:
    payload = admit_payload(ask)
    keys = [r.key for r in ask.rates] + [b.key for b in ask.budgets]
    pipe.evalsha(ADMIT_SHA, len(keys), *keys, orjson.dumps(payload))


async def pipelined_us(store: RedisStore, queue: Callable[[Any], None], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        async with store.client.pipeline(transaction=False) as pipe:
            for _ in range(n):
                queue(pipe)
            started = time.perf_counter()
            await pipe.execute()
            best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


async def parse_only() -> None:
    openai_chat.parse(BODY)


async def main(quick: bool) -> None:
    rounds, n = (3, 300) if quick else (9, 1500)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    compiled = policy()
    memory = Limits(MemoryStore(), MODELS, prefix)
    # The default bound, or 2 s on a loaded machine: a call given up on would end the run,
    # and what is measured is the calls' cost, not the bound.
    bound = max(LimitsConfig().store_timeout_ms / 1000, 2.0)
    redis_store = RedisStore(open_redis(REDIS_URL, user="lim", prefix=prefix, timeout_s=bound))
    shared = Limits(redis_store, MODELS, prefix)
    ask = _one_ask(shared, compiled)
    keys = [r.key for r in ask.rates] + [b.key for b in ask.budgets]
    argument = orjson.dumps(admit_payload(ask))
    empty = await redis_store.client.script_load("return 1")

    async def empty_script() -> None:
        await redis_store.client.evalsha(empty, len(keys), *keys, argument)

    split = split_store(REDIS_URL, prefix, bound)
    cells: dict[str, Callable[[], Awaitable[object]]] = {
        "Redis PING (baseline)": redis_store.client.ping,
        "EVALSHA of an empty script, same keys and argument": empty_script,
        "request parse only (subtracted below)": parse_only,
        "admit, memory": one_request(memory, compiled, settle=False),
        "admit, Redis": one_request(shared, compiled, settle=False),
        "admit + settle, memory": one_request(memory, compiled, settle=True),
        "admit + settle, Redis": one_request(shared, compiled, settle=True),
    }
    if split is not None:
        by_slot = Limits(split, MODELS, prefix)
        cells["admit, Redis slot by slot (2 slots)"] = one_request(by_slot, compiled, False)
        cells["admit + settle, Redis slot by slot"] = one_request(by_slot, compiled, True)
    for call in cells.values():  # warm up: connection, script load, caches
        await per_call_us(call, 50)
    results: dict[str, list[float]] = {name: [] for name in cells}
    cpus: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(rounds):
        for name, call in cells.items():
            wall, spent = await per_call_us(call, n)
            results[name].append(wall)
            cpus[name].append(spent)
    # The same two calls pipelined, so no round trip is waited for: what is left is the
    # work on both ends (client encoding and parsing, the server's command or script).
    work = {
        "PING": await pipelined_us(redis_store, lambda p: p.ping(), n),
        "admit script": await pipelined_us(redis_store, lambda p: _queue_admit(p, ask), n),
    }
    await redis_store.client.delete(
        *[k async for k in redis_store.client.scan_iter(f"{{{prefix}:lim*")]
    )
    await redis_store.aclose()
    if split is not None:
        await split.aclose()

    median = {name: statistics.median(v) for name, v in results.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    ping, parse = median["Redis PING (baseline)"], median["request parse only (subtracted below)"]
    parse_cpu = cpu["request parse only (subtracted below)"]
    print(f"{rounds} rounds x {n} sequential calls; median of the rounds' means\n")
    print("| call | µs per request | in PINGs | CPU µs per request |")
    print("|---|---:|---:|---:|")
    for name, us in median.items():
        cost = us if "admit" not in name else us - parse
        cpu_cost = cpu[name] if "admit" not in name else cpu[name] - parse_cpu
        print(f"| {name} | {cost:.1f} | {cost / ping:.2f} | {cpu_cost:.1f} |")
    admit = median["admit, Redis"] - parse
    verdict = "within" if admit <= 1.5 * ping else "OVER"
    print(f"\nRedis admit = {admit / ping:.2f} PING round trips ({verdict} the 1.5 target)")
    print(
        f"Pipelined (no round trip waited for), per call: PING {work['PING']:.1f} µs, "
        f"admit script with its 5 keys {work['admit script']:.1f} µs"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    uvloop.run(main(parser.parse_args().quick))
