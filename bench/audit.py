"""What the audit trail adds to a request: audit off, async and sync, SQLite and PostgreSQL,
measured in one run.

    python bench/audit.py            # about 40 s: 3 s per cell, 2 rounds
    python bench/audit.py --quick    # smoke run

The harness is bench/overhead.py's (instant upstream, raw keep-alive load generator, the
gateway pinned on one core). Five gateways serve the same policy and key and differ only in
their ``audit`` section; they are all started first and measured in turn, round after round,
so host drift falls on every variant alike. PostgreSQL is the local one (127.0.0.1:5432,
database ``test``), in a schema of this run's own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import uvloop
from overhead import (
    GATEWAY_PATH,
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

PG = "postgresql://postgres@127.0.0.1:5432/test"
VARIANTS = {
    "off": "audit: {enabled: false}\n",
    "sqlite async": "audit: {durability: async, sqlite_path: async.db, purge_interval_s: 0}\n",
    "sqlite sync": "audit: {durability: sync, sqlite_path: sync.db, purge_interval_s: 0}\n",
    "postgres async": "audit: {durability: async, pg_schema: SCHEMA, purge_interval_s: 0}\n"
    f"stores: {{audit_url: '{PG}'}}\n",
    "postgres sync": "audit: {durability: sync, pg_schema: SCHEMA, purge_interval_s: 0}\n"
    f"stores: {{audit_url: '{PG}'}}\n",
}


def _row(name: str, c: int, s: Sample, base: Sample) -> str:
    p50, p99 = percentile(s.latencies, 0.5), percentile(s.latencies, 0.99)
    b50, b99 = percentile(base.latencies, 0.5), percentile(base.latencies, 0.99)
    return (
        f"| {name} | {c} | {s.rps:,.0f} | {p50 * 1e3:.2f} ms | **{(p50 - b50) * 1e3:+.2f} ms** "
        f"| {p99 * 1e3:.2f} ms | **{(p99 - b99) * 1e3:+.2f} ms** "
        f"| {s.cpu_per_request * 1e6:,.0f} µs | {s.errors} |"
    )


async def measure(
    targets: dict[str, Target], pids: dict[str, int], cores: set[int], args: argparse.Namespace
) -> str:
    best: dict[tuple[str, int], Sample] = {}
    for _ in range(args.rounds):
        for c in args.concurrency:
            for name, target in targets.items():
                probe = Probe(pids[name], cores)
                s = await run_load(target, c, args.warmup, args.duration, probe)
                key = (name, c)
                # The better of the rounds: noise only ever adds latency.
                if key not in best or percentile(s.latencies, 0.5) < percentile(
                    best[key].latencies, 0.5
                ):
                    best[key] = s
                print(".", end="", file=sys.stderr, flush=True)
    lines = [
        "| audit | concurrency | req/s | p50 | added p50 | p99 | added p99 | gateway CPU/req "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in args.concurrency:
        for name in targets:
            lines.append(_row(name, c, best[(name, c)], best[("off", c)]))
    return "\n".join(lines)


def fsync_ms(folder: Path, n: int = 50) -> float:
    """The disk's own price of durability: median append + fsync of a small file, in ms."""
    times = []
    fd = os.open(folder / "fsync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 512)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return percentile(times, 0.5) * 1e3


def run(args: argparse.Namespace) -> int:
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    schema = f"bench_audit_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="gateway-bench-audit-") as tmp:
        work = Path(tmp)
        procs = Processes(work)
        try:
            upstream_port = _free_port()
            procs.start(
                "upstream",
                [sys.executable, str(Path(__file__).with_name("overhead.py")), "--serve-upstream",
                 str(upstream_port)],
                where.others,
                env,
            )  # fmt: skip
            base = write_config(work, upstream_port).read_text()
            key = create_key(work / "gateway.yaml", env)
            targets: dict[str, Target] = {}
            pids: dict[str, int] = {}
            for i, (name, audit) in enumerate(VARIANTS.items()):
                config = work / f"gateway-{i}.yaml"
                config.write_text(base + audit.replace("SCHEMA", schema))
                port = _free_port()
                pids[name] = procs.start(
                    f"gateway-{i}",
                    [*_gateway_cli(config), *f"serve --port {port} --log-level warning".split()],
                    where.gateway,
                    env,
                )
                targets[name] = Target(name, port, GATEWAY_PATH, key, f"gateway-{i}")
            _wait_ready(procs, "upstream", upstream_port, None, 10)
            for target in targets.values():
                _wait_ready(procs, target.process, target.port, "/healthz", 30)
            table = uvloop.run(measure(targets, pids, where.gateway, args))
            disk = fsync_ms(work)
            procs.check_alive()
        except (BenchError, OSError) as exc:
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            for name in procs.procs:
                print(f"--- tail of {name} stderr ---\n{procs.stderr_tail(name)}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
            asyncio.run(_drop(schema))
    print(
        f"\n{args.duration:g} s per cell, best of {args.rounds} rounds; gateway on CPU "
        f"{sorted(where.gateway) or 'any'}; added = against audit off in the same run; "
        f"this disk's append + fsync: {disk:.2f} ms (p50)\n"
    )
    print(table)
    return 0


async def _drop(schema: str) -> None:
    db = await asyncpg.connect(PG)
    try:
        await db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell (3)")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.5 s cells, 1 round")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.quick:
        args.duration, args.warmup, args.rounds = 0.5, 0.1, 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
