"""What the rollout costs per request: the one assignment and the canary's signal count,
each beside a workflow without a candidate, measured in the same run.

    python bench/rollout.py            # about 10 s
    python bench/rollout.py --quick    # about 2 s

In process, on the objects the request path uses: ``assign`` (the resolve step's choice of
version) for a workflow without a candidate (the baseline), with a shadow candidate
(``percent: 0``), and with a canary keyed by subject and by a session header; then
``Rollout.note`` (what the audit step adds: the version metric and, under ``abort_on``, the
sample) for a workflow without and with a canary; and one poll of the switches and flush of
the signals (memory stores; off the request path, every 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repeats; best kept")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeat = 20_000, 2
    for line in run(args.rounds, args.repeat):
        print(line)
    return 0


def run(rounds: int, repeat: int) -> list[str]:
    from gateway.auth.principal import Principal
    from gateway.context import RequestContext
    from gateway.observe.metrics import Metrics
    from gateway.policy.compile import compile_policy
    from gateway.policy.models import Policy
    from gateway.policy.registry import PolicyRegistry
    from gateway.rollout.assign import NO_FLAGS, assign
    from gateway.rollout.flags import FileFlags
    from gateway.rollout.service import Rollout
    from gateway.rollout.signals import MemorySignals
    from gateway.steps import Decision, Step

    def policy(name: str, **extra: Any) -> Any:
        body = {
            "workflow": name,
            "owner": "bench@example.com",
            "access": {"roles": ["bench"], "models": ["bench-model"]},
            **extra,
        }
        return compile_policy(Policy.model_validate(body), f"{name}.yaml")

    names = ("plain", "shadowed", "canary", "session")
    live = {n: policy(n) for n in names}
    candidates = {
        "shadowed": policy("shadowed", description="next"),
        "canary": policy(
            "canary",
            description="next",
            rollout={"percent": 10, "abort_on": {"window_s": 60, "error_rate": 0.05}},
        ),
        "session": policy(
            "session", description="next", rollout={"percent": 10, "key": "header:x-session-id"}
        ),
    }
    registry = PolicyRegistry(live, candidates)
    policies = registry.current
    callers = [Principal(f"user-{i}", frozenset({"bench"})) for i in range(1024)]
    headers = [{"x-session-id": f"conv-{i}"} for i in range(1024)]

    def assigning(name: str) -> float:
        chosen = policies.policies[name]
        t0 = time.perf_counter()
        for i in range(rounds):
            assign(policies, chosen, callers[i & 1023], headers[i & 1023], NO_FLAGS)
        return (time.perf_counter() - t0) / rounds * 1e6

    folder = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    rollout = Rollout(registry, FileFlags(folder), MemorySignals(), None, Metrics(), {}, {})

    def contexts(name: str) -> list[RequestContext]:
        out = []
        for i in range(1024):
            ctx = RequestContext("chat", name)
            ctx.principal = callers[i]
            ctx.policy = assign(policies, policies.policies[name], callers[i], headers[i]).policy
            ctx.decisions.append(Decision(Step.ACCESS, "allow", None))
            out.append(ctx)
        return out

    def noting(name: str) -> float:
        batch = contexts(name)
        t0 = time.perf_counter()
        for i in range(rounds):
            rollout.note(batch[i & 1023])
        took = (time.perf_counter() - t0) / rounds * 1e6
        asyncio.run(rollout.poll())  # flush, so the tally does not grow across repeats
        return took

    def polling() -> float:
        async def polls() -> float:
            n = max(1, rounds // 1000)
            t0 = time.perf_counter()
            for _ in range(n):
                await rollout.poll()
            return (time.perf_counter() - t0) / n * 1e6

        return asyncio.run(polls())

    cells = {
        "assign: no candidate (baseline)": lambda: assigning("plain"),
        "assign: shadow candidate (percent 0)": lambda: assigning("shadowed"),
        "assign: canary 10% by subject": lambda: assigning("canary"),
        "assign: canary 10% by header": lambda: assigning("session"),
        "note: no candidate (baseline)": lambda: noting("plain"),
        "note: canary with abort_on (sample counted)": lambda: noting("canary"),
        "poll: switches read + signals flushed + judged (every 250 ms)": polling,
    }
    best: dict[str, float] = {}
    for _ in range(repeat):  # interleaved, so drift on a shared VM hits all
        for name, cell in cells.items():
            best[name] = min(best.get(name, float("inf")), cell())
    base_assign = best["assign: no candidate (baseline)"]
    base_note = best["note: no candidate (baseline)"]
    lines = ["| per request | µs | added to its baseline |", "|---|---:|---:|"]
    for name, us in best.items():
        base = base_assign if name.startswith("assign") else base_note
        added = "" if name.startswith("poll") or "baseline" in name else f"{us - base:+.2f}"
        lines.append(f"| {name} | {us:.2f} | {added} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
