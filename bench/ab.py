"""A change's effect on the default deployment: the gateway at a git ref beside this checkout.

    python bench/ab.py --before main                      # c=1 and c=16, 3 rounds of 3 s
    python bench/ab.py --before HEAD~1 --concurrency 16 --rounds 5
    python bench/ab.py --before main --streams 200        # also the first streamed event
    python bench/ab.py --profile /tmp/flame               # no --before: py-spy the checkout
    python bench/ab.py --before main --callgrind          # instructions per request
    python bench/ab.py --before HEAD --callgrind --before-yaml \
        'observe: {metrics: {enabled: false}}'            # what metrics cost

Both gateways are ``gateway serve`` as ``make run`` deploys it (key auth, the circuit breaker,
metrics, the access log, the sync SQLite audit trail) with bench/overhead.py's config, against
its instant upstream. ``--before REF`` checks REF out into a temporary git worktree and runs it
from there (PYTHONPATH), so both run on this venv's packages. They are measured in turn, one
cell at a time, in interleaved rounds, each alone on the pinned core: the host's noise moves
both. The primary figure is CPU time per request (from /proc, steadier than req/s on a
shared host); each cell's best round is printed beside the other's.

``--callgrind`` runs both under valgrind and counts the instructions each spends per
request (after a warm-up): a figure the host's load does not move, for changes smaller than
the noise of a shared machine.

``--profile DIR`` records the checkout's gateway under load with py-spy (``pip install
'.[bench]'``) at each concurrency: ``DIR/c16.txt`` (collapsed stacks), ``DIR/c16.svg``
(flame graph), and prints the heaviest frames by their own and their inclusive share.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    chat_body,
    checkout,
    create_key,
    percentile,
    placement,
    run_load,
    run_streams,
    write_config,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(slots=True)
class Gateway:
    name: str
    target: Target
    pid: int
    folder: Path


def _start(
    procs: Processes,
    name: str,
    source: Path,
    upstream_port: int,
    policy: str,
    cpus: set[int],
    env: dict[str, str],
    extra: str,
    callgrind: bool = False,
    settings: str = "",
) -> Gateway:
    """One gateway with its own config folder (keys, audit file) run from ``source``;
    ``callgrind``: under valgrind, counting instructions (its dumps in the folder)."""
    (folder := procs.work / name).mkdir()
    env = {**env, "PYTHONPATH": str(source)}
    config = write_config(folder, upstream_port, {"bench": policy})
    if settings:  # gateway.yaml sections of this gateway's own (``observe: ...``)
        config.write_text(config.read_text() + settings.replace("\\n", "\n") + "\n")
    key = create_key(config, env)
    port = _free_port()
    argv = [*_gateway_cli(config), *f"serve --port {port} --log-level warning".split()]
    if extra:
        argv += extra.split()
    if callgrind:
        out = folder / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
    # In the source tree: ``python -m`` puts the working directory first on sys.path, before
    # PYTHONPATH, so from anywhere else it would import that folder's gateway instead.
    pid = procs.start(name, argv, cpus, env, cwd=source)
    _wait_ready(procs, name, port, "/healthz", 600 if callgrind else 30)
    return Gateway(name, Target(name, port, GATEWAY_PATH, key, name), pid, folder)


def _summary(collapsed: Path, top: int) -> str:
    """The heaviest frames of py-spy's collapsed stacks: own share and inclusive share."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "| own | frame |", "|---:|---|"]
    lines += [f"| {n / total:.1%} | `{f}` |" for f, n in own.most_common(top)]
    lines += ["", "| inclusive | frame |", "|---:|---|"]
    lines += [
        f"| {n / total:.1%} | `{f}` |"
        for f, n in inclusive.most_common(top * 3)
        if not f.startswith(("<module>", "run (", "_run_once", "run_until", "main ("))
    ][:top]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``handle (gateway/app.py:123)`` -> ``handle (gateway/app.py)``, site-packages trimmed."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    if str(ROOT) in where:
        where = where.split(str(ROOT) + "/", 1)[1]
    return f"{name} ({where})"


async def _profile(gw: Gateway, concurrency: list[int], seconds: float, out: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    probe = Probe(gw.pid, set())
    for c in concurrency:
        raw = out / f"c{c}.txt"
        record = [spy, "record", "--pid", str(gw.pid), "--rate", "250", "--gil"]
        spying = await asyncio.create_subprocess_exec(
            *record,
            "--duration",
            f"{seconds:g}",
            "--format",
            "raw",
            "-o",
            str(raw),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(0.5)
        sample = await run_load(gw.target, c, 0.0, seconds - 1.0, probe)
        await spying.wait()
        print(f"\n## py-spy, concurrency {c}: {sample.rps:,.0f} req/s under the profiler\n")
        print(_summary(raw, 25))
        svg = out / f"c{c}.svg"
        flame = [spy, "record", "--pid", str(gw.pid), "--rate", "250", "--gil"]
        spying = await asyncio.create_subprocess_exec(
            *flame,
            "--duration",
            "3",
            "-o",
            str(svg),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(0.3)
        await run_load(gw.target, c, 0.0, 2.5, probe)
        await spying.wait()


async def _compare(
    gateways: list[Gateway], concurrency: list[int], rounds: int, seconds: float, body: bytes
) -> dict[tuple[str, int], list[Sample]]:
    cells: dict[tuple[str, int], list[Sample]] = collections.defaultdict(list)
    for r in range(rounds):
        for c in concurrency:
            for gw in gateways if r % 2 == 0 else reversed(gateways):
                probe = Probe(gw.pid, set())
                sample = await run_load(gw.target, c, 0.3, seconds, probe, body)
                cells[gw.name, c].append(sample)
                print(
                    f"round {r + 1} {gw.name} c={c}: {sample.rps:,.0f} req/s,"
                    f" {sample.cpu_per_request * 1e6:.0f} µs CPU/req,"
                    f" p50 {sample.pct(0.5) * 1e3:.2f} ms, p99 {sample.pct(0.99) * 1e3:.2f} ms,"
                    f" loop waited for a CPU {sample.wait_share:.0%},"
                    f" {sample.errors} errors",
                    file=sys.stderr,
                )
    return cells


async def _instructions(
    gateways: list[Gateway], concurrency: list[int], seconds: float, body: bytes
) -> dict[tuple[str, int], float]:
    """Instructions per request of each gateway under callgrind (independent of the host's
    load): counters zeroed after a warm-up, dumped after ``seconds`` of load. What the
    gateway spends idle in as long (its once-a-second tasks) is measured too and taken off,
    so a gateway slower under valgrind does not look dearer per request."""
    counts: dict[tuple[str, int], float] = {}
    idle: dict[str, float] = {}
    for gw in gateways:
        await _control("-z", gw.pid)
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        idle[gw.name] = await _dump(gw) / (time.perf_counter() - started)
    for c in concurrency:
        for gw in gateways:
            probe = Probe(gw.pid, set())
            await run_load(gw.target, c, 0.0, 3.0, probe, body)  # warm-up
            await _control("-z", gw.pid)
            started = time.perf_counter()
            sample = await run_load(gw.target, c, 0.0, seconds, probe, body)
            total = await _dump(gw)
            elapsed = time.perf_counter() - started
            done = len(sample.latencies) + sample.errors
            counts[gw.name, c] = (total - idle[gw.name] * elapsed) / max(1, done)
            print(
                f"{gw.name} c={c}: {done} requests, {counts[gw.name, c] / 1e6:.3f} M instructions"
                f" each ({idle[gw.name] * elapsed / max(1, done) / 1e6:.3f} M idle work taken"
                f" off), {sample.errors} errors",
                file=sys.stderr,
            )
    return counts


async def _dump(gw: Gateway) -> int:
    """The instructions counted since the last zeroing."""
    before = set(gw.folder.glob("callgrind.out*"))
    await _control("-d", gw.pid)
    (dump,) = set(gw.folder.glob("callgrind.out*")) - before
    return _total(dump)


async def _control(flag: str, pid: int) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control", flag, str(pid), stdout=subprocess.DEVNULL
    )
    await control.wait()


def _total(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise BenchError(f"no totals in {dump}")


async def _streams(gateways: list[Gateway], rounds: int, count: int) -> str:
    """Time to the first event and to the last byte of ``count`` streams per round, one
    after the other on a keep-alive connection, the gateways interleaved; medians of the
    rounds' p50s (through-the-gateway times: the instant upstream adds about 0.03 ms)."""
    firsts: dict[str, list[float]] = collections.defaultdict(list)
    lasts: dict[str, list[float]] = collections.defaultdict(list)
    for r in range(max(1, rounds)):
        for gw in gateways if r % 2 == 0 else reversed(gateways):
            sample = await run_streams(gw.target, count, max(10, count // 10))
            firsts[gw.name].append(percentile(sample.first, 0.5))
            lasts[gw.name].append(percentile(sample.last, 0.5))
            print(
                f"round {r + 1} {gw.name} streams: first event p50"
                f" {firsts[gw.name][-1] * 1e3:.3f} ms, last byte p50"
                f" {lasts[gw.name][-1] * 1e3:.3f} ms, {sample.errors} errors",
                file=sys.stderr,
            )
    lines = ["| gateway | first event p50 | last byte p50 |", "|---|---:|---:|"]
    for gw in gateways:
        first = sorted(firsts[gw.name])[len(firsts[gw.name]) // 2]
        last = sorted(lasts[gw.name])[len(lasts[gw.name]) // 2]
        lines.append(f"| {gw.name} | {first * 1e3:.3f} ms | {last * 1e3:.3f} ms |")
    return "\n".join(lines)


def _table(cells: dict[tuple[str, int], list[Sample]], names: list[str], cs: list[int]) -> str:
    lines = [
        "| c | gateway | CPU/req (best, median) | req/s (best) | p50 (median) | p99 (median)"
        " | p99/p50 (median) | loop waited for a CPU (median) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cs:
        for name in names:
            samples = cells[name, c]
            cpu = sorted(s.cpu_per_request * 1e6 for s in samples)
            p50 = sorted(s.pct(0.5) * 1e3 for s in samples)
            p99 = sorted(s.pct(0.99) * 1e3 for s in samples)
            ratio = sorted(s.pct(0.99) / s.pct(0.5) for s in samples)
            wait = sorted(s.wait_share for s in samples)
            rps = max(s.rps for s in samples)
            mid = len(samples) // 2
            lines.append(
                f"| {c} | {name} | {cpu[0]:.0f} µs, {cpu[mid]:.0f} µs | {rps:,.0f}"
                f" | {p50[mid]:.2f} ms | {p99[mid]:.2f} ms | {ratio[mid]:.2f}"
                f" | {wait[mid]:.0%} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", help="a git ref to run beside this checkout")
    parser.add_argument("--after", help="a git ref to run instead of this checkout")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (1,16)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell (3)")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the checkout")
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions per request (valgrind)"
    )
    parser.add_argument(
        "--streams", type=int, default=0, help="also N streamed requests per round (first event)"
    )
    parser.add_argument("--policy", default="", help="YAML appended to the bench policy")
    parser.add_argument("--serve", default="", help="extra `gateway serve` arguments")
    parser.add_argument(
        "--before-yaml", default="", help="gateway.yaml lines of the before gateway ('\\n')"
    )
    parser.add_argument("--after-yaml", default="", help="gateway.yaml lines of the after one")
    args = parser.parse_args(argv)
    concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="gateway-ab-") as tmp, contextlib.ExitStack() as trees:
        work = Path(tmp)
        procs = Processes(work)
        try:
            upstream_port = _free_port()
            procs.start(
                "upstream",
                [sys.executable, str(HERE / "overhead.py"), "--serve-upstream", f"{upstream_port}"],
                where.others,
                env,
            )
            _wait_ready(procs, "upstream", upstream_port, None, 10)
            common = (upstream_port, args.policy, where.gateway, env, args.serve, args.callgrind)
            after = ROOT
            if args.after:
                after = trees.enter_context(checkout(args.after, work / "checkout-after"))
            gateways = [_start(procs, "after", after, *common, args.after_yaml)]
            if args.before:
                before = trees.enter_context(checkout(args.before, work / "checkout-before"))
                gateways.insert(0, _start(procs, "before", before, *common, args.before_yaml))
            body = chat_body(stream=False)
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                uvloop.run(_profile(gateways[-1], concurrency, 8.0, args.profile))
            if args.callgrind:
                counts = uvloop.run(_instructions(gateways, concurrency, args.duration, body))
                print("\n| c | " + " | ".join(g.name for g in gateways) + " | change |")
                print("|---:|" + "---:|" * (len(gateways) + 1))
                for c in concurrency:
                    row = [counts[g.name, c] for g in gateways]
                    change = f"{row[-1] / row[0] - 1:+.1%}" if len(row) > 1 else ""
                    cells = " | ".join(f"{n / 1e6:.2f} M instr" for n in row)
                    print(f"| {c} | {cells} | {change} |")
            elif args.rounds:
                cells = uvloop.run(
                    _compare(gateways, concurrency, args.rounds, args.duration, body)
                )
                names = [g.name for g in gateways]
                print(f"\n{_table(cells, names, concurrency)}")
                for c in concurrency if args.before else []:
                    b = min(s.cpu_per_request for s in cells["before", c])
                    a = min(s.cpu_per_request for s in cells["after", c])
                    if not math.isnan(a) and not math.isnan(b):
                        change = f"{b * 1e6:.0f} -> {a * 1e6:.0f} µs ({a / b - 1:+.0%})"
                        print(f"c={c}: CPU/req {change}")
            if args.streams:
                print("\n" + uvloop.run(_streams(gateways, args.rounds, args.streams)))
            procs.check_alive()
        except BenchError as exc:
            procs.print_failure(exc)
            return 1
        finally:
            procs.stop()  # before the worktrees they run from are removed
    return 0


if __name__ == "__main__":
    sys.exit(main())
