"""Many instances under faults, for longer than the test suite can wait (not run by
``make test``): four ``gateway serve`` processes on a private Redis Cluster (three primaries
with a replica each) and a private PostgreSQL (audit, ``durability: sync``), mixed traffic
from SDK clients, and during the run one instance SIGKILLed, the limits' Redis primary failed
over and PostgreSQL restarted. The scenario and its checks are tests/stores/fleet.py's, the
same the bounded test (tests/stores/test_fleet.py) runs for about a minute.

    python bench/soak.py                   # 300 s of traffic, faults at 20, 40 and 60 %
    python bench/soak.py --seconds 60 --clients 12
    python bench/soak.py --chain           # the audit chain's ceiling: 1 and 4 writers

``--chain`` measures the one PostgreSQL chain head directly, without gateways: 1 writer (the
baseline) and then 4 writer processes (four instances) appending batches to one schema of a
private PostgreSQL, each commit synchronous (``durability: sync``), for batch sizes of 1, 8
and 32 records (what group commit makes of 1, 8 and 32 concurrent requests per instance).
Prints records/s and commit latency (p50, p99): the head row is locked per commit, so
writers take turns, and records/s is the ceiling four instances share.

Prints the figures (audit records/s, records per commit and mean commit latency with four
instances on one PostgreSQL chain, client latency, RSS of each surviving instance before and
after) beside the baseline of the same run: the same traffic for the first 20 % of the run,
before any fault. Exits 1 naming what did not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/

from gateway.audit.chain import Chain
from gateway.audit.postgres import PostgresSink
from tests.audit.conftest import record
from tests.audit.privatepg import PrivatePostgres
from tests.fakes.upstream import FakeUpstream
from tests.stores.cluster import PrivateCluster
from tests.stores.fleet import Fleet, problems, report

RSS_GROWTH_MB = 80


def _writer(url: str, schema: str, key: bytes, batch: int, seconds: float, n: int, out) -> None:  # type: ignore[no-untyped-def]
    async def run() -> list[float]:
        sink = PostgresSink(url, schema, Chain(key))
        await sink.write([record(n * 10_000_000)])  # connected, schema made
        took: list[float] = []
        i, end = 1, time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            await sink.write([record(n * 10_000_000 + i + j) for j in range(batch)])
            took.append(time.perf_counter() - started)
            i += batch
        await sink.close()
        return took

    out.put(asyncio.run(run()))


def chain(seconds: float) -> int:
    """Records/s and commit latency of 1 and 4 writers on one chain, per batch size."""
    pg = PrivatePostgres()
    key = secrets.token_bytes(32)
    fork = multiprocessing.get_context("fork")
    print("| writers | records/commit | records/s | commits/s | commit p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    try:
        pg.start()
        for batch in (1, 8, 32):
            for writers in (1, 4):
                schema = f"chain_{batch}_{writers}"
                out = fork.Queue()
                procs = [
                    fork.Process(target=_writer, args=(pg.url, schema, key, batch, seconds, n, out))
                    for n in range(writers)
                ]
                for proc in procs:
                    proc.start()
                took = [t for _ in procs for t in out.get(timeout=seconds + 120)]
                for proc in procs:
                    proc.join()
                took.sort()
                print(
                    f"| {writers} | {batch} | {len(took) * batch / seconds:,.0f} "
                    f"| {len(took) / seconds:,.0f} | {statistics.median(took) * 1000:.2f} "
                    f"| {took[int(len(took) * 0.99)] * 1000:.2f} |"
                )
    finally:
        pg.destroy()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--chain", action="store_true", help="the audit chain's ceiling only")
    args = parser.parse_args()
    if args.chain:
        return chain(min(args.seconds, 5.0))
    faults = {
        "kill": args.seconds * 0.2,
        "failover": args.seconds * 0.4,
        "pg_restart": args.seconds * 0.6,
    }
    cluster = PrivateCluster()
    with FakeUpstream() as upstream, tempfile.TemporaryDirectory(prefix="soak-") as root:
        try:
            cluster.start()
            fleet = Fleet(Path(root), cluster, upstream)
            fleet.start()
            try:
                fleet.run(args.seconds, args.clients, faults, until=fleet.limits_used_up)
                figures = report(fleet)
                found = problems(fleet, figures, RSS_GROWTH_MB)
            finally:
                fleet.stop()
        finally:
            cluster.destroy()
    print(json.dumps(figures, indent=1, default=str))
    for problem in found:
        print(f"FAILED: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
