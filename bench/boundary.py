"""What the data boundary adds to a request: one gateway, two workflows, measured in one run.

    python bench/boundary.py            # about 25 s: 5 s per cell
    python bench/boundary.py --quick    # about 8 s smoke run

The harness is bench/overhead.py's (instant upstream, the gateway pinned alone on one core,
a raw keep-alive load generator). One gateway serves two workflows that differ only in
their ``data`` section: ``plain`` has none, ``masked`` masks, tokenizes and blocks (nothing
here is blocked). Both get the same 1 KB prompt with a few entities (two e-mail addresses, a
phone number, an IBAN, an IP address), at the same concurrency, interleaved, so the difference
is what the boundary step costs. The step is also timed in process, without HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from overhead import (
    MODEL,
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
    run_streams,
    write_config,
)

DATA = """data:
  entities: {EMAIL_ADDRESS: tokenize, PHONE_NUMBER: mask, IBAN_CODE: mask, IP_ADDRESS: mask,
             CREDIT_CARD: block, US_SSN: block, SECRET: block}
  scan_output: true
"""


def prompt() -> str:
    """About 1 KB of a support ticket with five entities."""
    text = (
        "Ticket 48213 from jane.doe@acme-corp.com: the customer says the invoice for order "
        "1234-5678 was charged twice. Please call back on +44 20 7946 0958 before 5pm. "
        "Refund to IBAN DE89 3704 0044 0532 0130 00. Login attempts came from 203.0.113.42; "
        "cc accounts@acme-corp.com. Version 2.4.1 of the app, build 2024-03-01. "
    )
    filler = "The customer has been with us since 2019 and usually pays on time. "
    while len(text) < 1024:
        text += filler
    return text[:1024]


def body(stream: bool) -> bytes:
    data: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": prompt()}]}
    if stream:
        data["stream"] = True
    return json.dumps(data, separators=(",", ":")).encode()


def in_process(rounds: int) -> tuple[float, float]:
    """Microseconds per request of the boundary step alone, and of detection alone."""
    from ruamel.yaml import YAML

    from gateway.boundary.actions import TokenMinter
    from gateway.boundary.step import Boundary
    from gateway.boundary.vault import MemoryVault
    from gateway.context import RequestContext
    from gateway.policy.compile import compile_policy
    from gateway.policy.models import Policy
    from gateway.surfaces.openai_chat import parse

    doc = YAML(typ="safe").load(
        "workflow: masked\nowner: b@example.com\naccess: {roles: [b], models: [m]}\n" + DATA
    )
    policy = compile_policy(Policy.model_validate(doc), "masked.yaml")
    assert policy.data is not None
    boundary = Boundary(MemoryVault(), TokenMinter(os.urandom(32)))
    raw = body(stream=False)
    text = prompt()
    detector = policy.data.detector
    assert len(detector.find(text)) == 5, detector.find(text)

    async def step() -> float:
        t0 = time.perf_counter()
        for _ in range(rounds):
            request = parse(raw)
            await boundary.inspect(RequestContext("chat", "masked"), request, policy)
        return (time.perf_counter() - t0) / rounds

    async def parse_only() -> float:
        t0 = time.perf_counter()
        for _ in range(rounds):
            parse(raw)
        return (time.perf_counter() - t0) / rounds

    whole = asyncio.run(step()) - asyncio.run(parse_only())
    t0 = time.perf_counter()
    for _ in range(rounds):
        detector.find(text)
    return whole * 1e6, (time.perf_counter() - t0) / rounds * 1e6


def _row(name: str, s: Sample) -> str:
    return (
        f"| {name} | {s.rps:,.0f} | {percentile(s.latencies, 0.5) * 1e3:.2f} ms"
        f" | {percentile(s.latencies, 0.99) * 1e3:.2f} ms | {s.cpu_per_request * 1e6:,.0f} µs |"
    )


async def measure(
    plain: Target, masked: Target, gateway_pid: int, cores: set[int], args: argparse.Namespace
) -> str:
    probe = Probe(gateway_pid, cores)
    lines = []
    for c in args.concurrency:
        samples: dict[str, list[Sample]] = {"plain": [], "masked": []}
        for _ in range(args.rounds):  # interleaved, so drift on a shared VM hits both
            for target in (plain, masked):
                samples[target.name].append(
                    await run_load(
                        target, c, args.warmup, args.duration / args.rounds, probe, body(False)
                    )
                )
        merged = {n: _merge(v) for n, v in samples.items()}
        added50 = percentile(merged["masked"].latencies, 0.5) - percentile(
            merged["plain"].latencies, 0.5
        )
        added99 = percentile(merged["masked"].latencies, 0.99) - percentile(
            merged["plain"].latencies, 0.99
        )
        cpu = merged["masked"].cpu_per_request - merged["plain"].cpu_per_request
        lines += [
            f"\nconcurrency {c}, non-streaming, 1 KB prompt with 5 entities",
            "| workflow | req/s | p50 | p99 | gateway CPU/req |",
            "|---|---:|---:|---:|---:|",
            _row("plain (no data section)", merged["plain"]),
            _row("masked", merged["masked"]),
            f"added by the boundary: p50 **{added50 * 1e3:.2f} ms**, p99 {added99 * 1e3:.2f} ms,"
            f" CPU {cpu * 1e6:,.0f} µs/req",
        ]
    streams = {}
    for target in (plain, masked):
        streams[target.name] = await run_streams(target, args.streams, 20, body(True))
    lines += ["\nstreaming, concurrency 1 (20 events; the hold-back window holds the short answer)"]
    lines += [
        "| workflow | first event p50 | last byte p50 | last byte p99 |",
        "|---|---:|---:|---:|",
    ]
    for name, s in streams.items():
        if s.errors:
            raise BenchError(f"{name} streams: {s.errors} errors, first: {s.first_error}")
        lines.append(
            f"| {name} | {percentile(s.first, 0.5) * 1e3:.2f} ms"
            f" | {percentile(s.last, 0.5) * 1e3:.2f} ms | {percentile(s.last, 0.99) * 1e3:.2f} ms |"
        )
    return "\n".join(lines)


def _merge(samples: list[Sample]) -> Sample:
    out = Sample()
    for s in samples:
        out.latencies += s.latencies
        out.errors += s.errors
        out.first_error = out.first_error or s.first_error
        out.elapsed += s.elapsed
        out.gateway_cpu = (
            s.gateway_cpu if out.gateway_cpu != out.gateway_cpu else out.gateway_cpu + s.gateway_cpu
        )
    if out.errors:
        raise BenchError(f"{out.errors} errors, first: {out.first_error}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per workflow and concurrency"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.duration, args.rounds, args.streams = 2.0, 2, 50
    step_us, detect_us = in_process(300 if args.quick else 2000)
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
            config = write_config(work, up_port, {"plain": "", "masked": DATA})
            key = create_key(config, env)
            gw_pid = procs.start(
                "gateway",
                [*_gateway_cli(config), *f"serve --port {gw_port} --log-level warning".split()],
                where.gateway,
                env,
            )
            _wait_ready(procs, "upstream", up_port, None, 10)
            _wait_ready(procs, "gateway", gw_port, "/healthz", 60)
            plain = Target("plain", gw_port, "/w/plain/v1/chat/completions", key, "gateway")
            masked = Target("masked", gw_port, "/w/masked/v1/chat/completions", key, "gateway")
            cores = where.gateway | where.others or set(range(os.cpu_count() or 1))
            table = uvloop.run(measure(plain, masked, gw_pid, cores, args))
        except BenchError as exc:
            print(f"benchmark failed: {exc}\n{procs.stderr_tail('gateway')}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
    print("## Data boundary cost (bench/boundary.py)")
    print(
        f"\nin process: boundary step {step_us:.0f} µs per request (detection {detect_us:.0f} µs)"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
