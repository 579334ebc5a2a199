"""What one SQLite audit commit costs in CPU, by the number of records it carries.

    python bench/commit.py                     # batches of 1, 13 and 29 records, 12 rounds
    python bench/commit.py --sizes 1,32 --rounds 5

``SqliteSink.write`` alone (the sync audit's group commit: prepare, the append under the
locks, the ``fdatasync`` of the WAL on the sink's thread) on uvloop, into a file in the temp
folder, 100 commits per cell, the sizes interleaved round after round. Printed: CPU per commit
(the process's, all threads), best and median of the rounds, and from the smallest and the
largest size a commit's fixed cost and the cost per record. With several workers each commits
fewer records (bench/workers.py: 13 per commit with two workers, 29 with one), so the fixed
cost is paid more often per request: ``fixed x (1/small - 1/large)``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ for its record
from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from tests.audit.conftest import record

PER_CELL = 100


async def _measure(sizes: list[int], rounds: int, folder: Path) -> dict[int, list[float]]:
    sink = SqliteSink(folder / "audit.db", Chain(b"k" * 32))
    n = 0

    async def commits(size: int, count: int) -> float:
        nonlocal n
        cpu = 0.0
        for _ in range(count):
            records = [record(n + i) for i in range(size)]
            n += size
            started = time.process_time()
            await sink.write(records)
            cpu += time.process_time() - started
        return cpu / count

    try:
        await commits(max(sizes), 50)  # the file, its indexes and the WAL grown
        found: dict[int, list[float]] = {s: [] for s in sizes}
        for r in range(rounds):
            for size in sizes if r % 2 == 0 else reversed(sizes):
                found[size].append(await commits(size, PER_CELL))
        return found
    finally:
        await sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,13,29", help="records per commit (1,13,29)")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    with tempfile.TemporaryDirectory(prefix="gateway-commit-") as tmp:
        found = uvloop.run(_measure(sizes, args.rounds, Path(tmp)))
    print("| records per commit | CPU per commit (best, median) | per record (best) |")
    print("|---:|---:|---:|")
    for size in sizes:
        best, median = min(found[size]) * 1e6, statistics.median(found[size]) * 1e6
        print(f"| {size} | {best:,.0f} µs, {median:,.0f} µs | {best / size:.1f} µs |")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        per = (min(found[large]) - min(found[small])) / (large - small)
        fixed = min(found[small]) - small * per
        print(f"\nfixed {fixed * 1e6:.0f} µs a commit, {per * 1e6:.1f} µs a record (best rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
