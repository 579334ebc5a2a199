"""What the policy lifecycle costs on the request path: a candidate present against absent,
measured in one run, and the hot-reload poll.

    python bench/policy_live.py            # about 25 s
    python bench/policy_live.py --quick    # about 8 s smoke run

The harness is bench/overhead.py's (instant upstream, the gateway pinned alone on one core).
One gateway serves two workflows with the same policy (bench/boundary.py's masking ``data``
section); ``judged`` also has a ``judged.candidate.yaml`` (the same entities, stricter
actions: judged from the live findings), and ``detects`` one with another threshold (judged
with its own detection, a second pass over the text). Both get the same 1 KB
prompt with five entities, interleaved, so the difference is what the candidate costs. In
process: the resolve step with and without a candidate, the candidate's own verdict, and one
poll of the policies folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from boundary import DATA, _merge, _row, body
from overhead import (
    BenchError,
    Probe,
    Processes,
    Sample,
    Target,
    _free_port,
    _gateway_cli,
    _wait_ready,
    create_key,
    percentile,
    placement,
    run_load,
    write_config,
)

CANDIDATE = """data:
  entities: {EMAIL_ADDRESS: block, PHONE_NUMBER: mask, IBAN_CODE: block, IP_ADDRESS: mask,
             CREDIT_CARD: block, US_SSN: block, SECRET: block}
  scan_output: true
"""
# A candidate that detects differently (another threshold) runs its own detection.
OWN_DETECTION = CANDIDATE.replace("  scan_output: true", "  min_score: 0.6\n  scan_output: true")


def in_process(work: Path, rounds: int) -> dict[str, float]:
    """Microseconds: resolve without / with a candidate, the candidates' verdicts, one poll."""
    from gateway.auth.principal import Principal
    from gateway.policy.reload import PolicyReloader, start_registry
    from gateway.rollout.shadow import judge_caller, judge_request
    from gateway.surfaces.openai_chat import parse

    folder = work / "policies"
    registry = start_registry(folder, ["bench-model"], None)
    assert registry.last_error is None, registry.last_error
    judged, detects = registry.current.candidates["judged"], registry.current.candidates["detects"]
    assert judged.data is not None
    assert detects.data is not None
    assert judged.data.detector is registry.current.policies["judged"].data.detector  # type: ignore[union-attr]
    assert detects.data.detector is not registry.current.policies["detects"].data.detector  # type: ignore[union-attr]
    principal = Principal(subject="bench", roles=frozenset({"bench"}), team=None)
    raw = body(stream=False)

    def resolve(name: str) -> float:
        t0 = time.perf_counter()
        for _ in range(rounds * 50):
            policies = registry.current
            policy = policies.policies[name]
            policies.candidates.get(policy.name)
        return (time.perf_counter() - t0) / (rounds * 50) * 1e6

    async def verdict(name: str) -> float:
        candidate = registry.current.candidates[name]
        live = registry.current.policies[name]
        requests = [parse(raw) for _ in range(rounds)]
        t0 = time.perf_counter()
        for request in requests:
            v = judge_caller(candidate, principal, "chat")
            await judge_request(v, candidate, request, live)
        return (time.perf_counter() - t0) / rounds * 1e6

    reloader = PolicyReloader(registry, folder, ["bench-model"])
    t0 = time.perf_counter()
    for _ in range(rounds):
        reloader.fingerprint()
    poll = (time.perf_counter() - t0) / rounds * 1e6
    return {
        "resolve, no candidate": resolve("plain"),
        "resolve, candidate present": resolve("judged"),
        "candidate verdict, same detection (at request time)": asyncio.run(verdict("judged")),
        "candidate verdict, own detection (1 KB)": asyncio.run(verdict("detects")),
        f"one poll of the policies folder ({len(os.listdir(folder))} files)": poll,
    }


async def measure(
    targets: list[Target], gateway_pid: int, cores: set[int], args: argparse.Namespace
) -> str:
    probe = Probe(gateway_pid, cores)
    lines = []
    for c in args.concurrency:
        samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
        for _ in range(args.rounds):  # interleaved, so drift on a shared VM hits all
            for target in targets:
                samples[target.name].append(
                    await run_load(
                        target, c, args.warmup, args.duration / args.rounds, probe, body(False)
                    )
                )
        merged = {n: _merge(v) for n, v in samples.items()}
        base = merged["plain"]
        lines += [
            f"\nconcurrency {c}, non-streaming, 1 KB prompt with 5 entities, same live policy",
            "| workflow | req/s | p50 | p99 | gateway CPU/req |",
            "|---|---:|---:|---:|---:|",
            _row("no candidate", base),
            _row("candidate, same detection", merged["judged"]),
            _row("candidate, own detection", merged["detects"]),
        ]
        for name in ("judged", "detects"):
            s = merged[name]
            p50 = percentile(s.latencies, 0.5) - percentile(base.latencies, 0.5)
            p99 = percentile(s.latencies, 0.99) - percentile(base.latencies, 0.99)
            cpu = s.cpu_per_request - base.cpu_per_request
            lines.append(
                f"added by {name}: p50 **{p50 * 1e3:.2f} ms**, p99 {p99 * 1e3:.2f} ms,"
                f" CPU {cpu * 1e6:,.0f} µs/req"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.duration, args.rounds = 2.0, 2
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    overhead = Path(__file__).resolve().with_name("overhead.py")
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        procs = Processes(work)
        try:
            up_port, gw_port = _free_port(), _free_port()
            procs.start(
                "upstream", [sys.executable, str(overhead), "--serve-upstream", str(up_port)],
                where.others, env,
            )  # fmt: skip
            config = write_config(work, up_port, {"plain": DATA, "judged": DATA, "detects": DATA})
            for name, data in (("judged", CANDIDATE), ("detects", OWN_DETECTION)):
                live = (work / "policies" / f"{name}.yaml").read_text()
                (work / "policies" / f"{name}.candidate.yaml").write_text(live.replace(DATA, data))
            figures = in_process(work, 300 if args.quick else 2000)
            key = create_key(config, env)
            gw_pid = procs.start(
                "gateway",
                [*_gateway_cli(config), *f"serve --port {gw_port} --log-level warning".split()],
                where.gateway,
                env,
            )
            _wait_ready(procs, "upstream", up_port, None, 10)
            _wait_ready(procs, "gateway", gw_port, "/healthz", 60)
            targets = [
                Target(n, gw_port, f"/w/{n}/v1/chat/completions", key, "gateway")
                for n in ("plain", "judged", "detects")
            ]
            cores = where.gateway | where.others or set(range(os.cpu_count() or 1))
            table = uvloop.run(measure(targets, gw_pid, cores, args))
        except BenchError as exc:
            print(f"benchmark failed: {exc}\n{procs.stderr_tail('gateway')}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
    print("## Policy lifecycle cost (bench/policy_live.py)\n")
    print("| in process | µs |\n|---|---:|")
    for name, us in figures.items():
        print(f"| {name} | {us:.2f} |")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
