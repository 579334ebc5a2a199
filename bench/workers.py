"""Does ``gateway serve --workers 2`` serve twice what one worker does? The default deployment.

    python bench/workers.py            # about 50 s: 2 rounds of 1 and 2 workers, 8 s cells
    python bench/workers.py --quick    # about 15 s smoke run

The same instant upstream, config, policy and load generator as bench/overhead.py, and the
default deployment: SQLite audit with ``durability: sync``, memory state (the bench policy uses
no limits and no tokenize, so several workers may run without Redis). In one run, alternating
rounds of 1 and 2 workers, each a fresh ``gateway serve`` at concurrency 64 (closed loop, keep-
alive connections). Nothing is pinned: the gateway's workers, the upstream and the load
generator share the machine's cores, as they would share a small host, so on a 2-core machine
the load generator's own CPU caps what two workers can show. Target: at least 1.7x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead as ov  # bench/ is not a package: its folder is on the path

TARGET = 1.7


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the workers), from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cell(
    procs: ov.Processes,
    env: dict[str, str],
    config: Path,
    key: str,
    workers: int,
    opts: argparse.Namespace,
) -> tuple[ov.Sample, float, float]:
    """The sample, the gateway's CPU seconds, and the CPU seconds of everything else the
    run needs (this load generator and the upstream), which shares the same cores."""
    port = ov._free_port()
    name = f"gateway-{workers}w-{time.monotonic_ns()}"
    argv = [*ov._gateway_cli(config), "serve", "--port", str(port), "--log-level", "warning"]
    pid = procs.start(name, [*argv, "--workers", str(workers)], set(), env)
    try:
        ov._wait_ready(procs, name, port, "/readyz", 60)
        time.sleep(1.0)  # every worker up, not only the first to answer
        target = ov.Target("gateway", port, ov.GATEWAY_PATH, key, name)
        upstream = procs.procs["upstream"].pid
        cpu, other = _tree_cpu(pid), _tree_cpu(upstream) + time.process_time()
        sample = uvloop.run(
            ov.run_load(target, opts.concurrency, opts.warmup, opts.duration, ov.Probe(None, set()))
        )
        cpu = _tree_cpu(pid) - cpu
        other = _tree_cpu(upstream) + time.process_time() - other
    finally:
        proc = procs.procs.pop(name)
        proc.terminate()
        proc.wait(timeout=30)
    return sample, cpu, other


def ceiling(one_us: float, two_us: float, other_us: float, cores: int) -> float:
    """The 2-worker/1-worker ratio ``cores`` idle cores would give when the gateway costs
    ``one_us`` CPU per request with one worker and ``two_us`` with two, and the load
    generator and upstream ``other_us``: one worker is capped by its one core, two by the
    cores all of them share. Independent of other work on the host, which (with the
    kernel's autogroup scheduling) gives this run's session the same share of the CPU
    whether it has one worker or two."""
    one = min(1 / one_us, cores / (one_us + other_us))
    two = min(2 / two_us, cores / (two_us + other_us))
    return two / one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (8)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of 1 then 2 workers (2)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s cells")
    parser.add_argument(
        "--no-audit", action="store_true", help="audit.enabled: false (to see what the audit costs)"
    )
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.duration, opts.warmup, opts.rounds = 2.0, 0.5, 1
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    load_before = os.getloadavg()[0]
    rps: dict[int, list[float]] = {1: [], 2: []}
    per_request: dict[int, list[tuple[float, float]]] = {1: [], 2: []}  # (gateway, other) µs
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-workers-") as tmp:
        procs = ov.Processes(Path(tmp))
        try:
            upstream_port = ov._free_port()
            script = str(Path(ov.__file__).resolve())
            upstream = [sys.executable, script, "--serve-upstream", str(upstream_port)]
            procs.start("upstream", upstream, set(), env)
            ov._wait_ready(procs, "upstream", upstream_port, None, 10)
            config = ov.write_config(Path(tmp), upstream_port)
            if opts.no_audit:
                config.write_text(config.read_text() + "audit: {enabled: false}\n")
            key = ov.create_key(config, env)
            for r in range(opts.rounds):
                for workers in (1, 2):
                    print(f"round {r + 1}, {workers} worker(s) ...", end="", file=sys.stderr)
                    sample, cpu, other = _cell(procs, env, config, key, workers, opts)
                    if sample.errors:
                        raise ov.BenchError(f"{sample.errors} errors: {sample.first_error}")
                    rps[workers].append(sample.rps)
                    done = len(sample.latencies)
                    if done:
                        per_request[workers].append((cpu / done * 1e6, other / done * 1e6))
                    print(f" {sample.rps:,.0f} req/s", file=sys.stderr)
                    lines.append(
                        f"| {r + 1} | {workers} | {sample.rps:,.0f} | {ov._ms(sample.pct(0.5))}"
                        f" | {ov._ms(sample.pct(0.99))} | {ov._us(cpu / done if done else 0)}"
                        f" | {cpu / sample.elapsed:.2f} | {ov._us(other / done if done else 0)} |"
                    )
        except (ov.BenchError, OSError) as exc:
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
    one, two = statistics.median(rps[1]), statistics.median(rps[2])
    ratio = two / one
    one_us = statistics.median(g for g, _ in per_request[1])
    two_us = statistics.median(g for g, _ in per_request[2])
    other_us = statistics.median(o for _, o in per_request[1] + per_request[2])
    cores = os.cpu_count() or 1
    best = ceiling(one_us, two_us, other_us, cores)
    print(
        f"\n{os.cpu_count()} CPUs, concurrency {opts.concurrency}, {opts.duration:g} s cells,"
        f" load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run"
        " (other work on the host shows here).\n\n"
        "| round | workers | req/s | p50 | p99 | gateway CPU per request | cores it got"
        " | load generator + upstream CPU per request |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        f"2 workers / 1 worker (medians): {ratio:.2f}x, target >= {TARGET}x:"
        f" **{'PASS' if ratio >= TARGET else 'MISS'}**\n"
        f"From CPU per request ({one_us:.0f} µs with 1 worker, {two_us:.0f} µs with 2, and"
        f" {other_us:.0f} µs for the load generator and upstream), {cores} idle cores would"
        f" give: {best:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
