"""What total inspection costs: every string, key and number of a request inspected, against
only the slots the surface models, in one run, in process (parse + the boundary step).

    python bench/total.py            # about 20 s
    python bench/total.py --quick    # about 4 s

Two requests: the 1 KB support ticket of bench/boundary.py, and an agent request whose tool
schemas are large (20 tools x 8 parameters with descriptions, enums, defaults, titles; about
16 KB). "before" is what the gateway inspected until total inspection: the surface's modelled
slots (the walk's own slots removed, its time subtracted); "after" is every leaf.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from boundary import DATA, prompt
from ruamel.yaml import YAML

from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.context import RequestContext
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.surfaces.openai_chat import parse
from gateway.surfaces.openai_chat.request import NONTEXT
from gateway.surfaces.total import every_leaf


def chat_body() -> bytes:
    return json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": prompt()}]}, separators=(",", ":")
    ).encode()


def tools_body() -> bytes:
    def param(i: int) -> dict[str, Any]:
        return {
            "type": "string",
            "title": f"Parameter {i}",
            "description": f"The value of parameter {i}, as the user gave it in the ticket.",
            "enum": ["open", "pending", "closed", "escalated"],
            "default": "open",
            "examples": ["open"],
        }

    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{t}",
                "description": f"Tool {t}: looks up a ticket field and updates it when asked.",
                "parameters": {
                    "type": "object",
                    "properties": {f"field_{t}_{i}": param(i) for i in range(8)},
                    "required": [f"field_{t}_0"],
                },
            },
        }
        for t in range(20)
    ]
    messages = [{"role": "user", "content": "Close ticket 48213 for jane.doe@acme-corp.com."}]
    return json.dumps(
        {"model": "m", "messages": messages, "tools": tools, "temperature": 0.2},
        separators=(",", ":"),
    ).encode()


def _modelled(request: NormalizedRequest) -> NormalizedRequest:
    """The request with only the slots the surface models (the walk's removed)."""
    request.texts = [s for s in request.texts if s.kind != "field" and s.form == "string"]
    return request


def _per_call(fn: Callable[[], object], rounds: int) -> float:
    t0 = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - t0) / rounds * 1e6


def measure(raw: bytes, rounds: int) -> tuple[float, float, int, int]:
    """µs per request before and after, and the number of slots each inspects."""
    doc = YAML(typ="safe").load(
        "workflow: masked\nowner: b@example.com\naccess: {roles: [b], models: [m]}\n" + DATA
    )
    policy = compile_policy(Policy.model_validate(doc), "masked.yaml")
    boundary = Boundary(MemoryVault(), TokenMinter(os.urandom(32)))

    def walk() -> None:
        request = _modelled(parse(raw))
        every_leaf(request, NONTEXT)

    async def inspect(modelled: bool, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            request = parse(raw)
            if modelled:
                request = _modelled(request)
            await boundary.inspect(RequestContext("chat", "masked"), request, policy)
        return (time.perf_counter() - t0) / n * 1e6

    parse_us = _per_call(lambda: parse(raw), rounds)
    filtered_us = _per_call(lambda: _modelled(parse(raw)), rounds)
    walk_us = _per_call(walk, rounds) - filtered_us  # every_leaf alone
    after = asyncio.run(inspect(False, rounds))
    before = asyncio.run(inspect(True, rounds)) - walk_us - (filtered_us - parse_us)
    slots_after = len(parse(raw).texts)
    slots_before = len(_modelled(parse(raw)).texts)
    return before, after, slots_before, slots_after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 200 if args.quick else 2000
    print("## Total inspection cost (bench/total.py), in process: parse + boundary step")
    print("\n| request | body | slots before / after | before | after | added |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, raw in (("1 KB chat", chat_body()), ("20 tools, large schemas", tools_body())):
        before, after, n_before, n_after = measure(raw, rounds)
        print(
            f"| {name} | {len(raw) / 1024:.1f} KB | {n_before} / {n_after} | {before:,.0f} µs"
            f" | {after:,.0f} µs | {after - before:+,.0f} µs |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
