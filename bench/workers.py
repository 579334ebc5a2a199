"""Does ``gateway serve --workers 2`` serve twice what one worker does? The default deployment.

    python bench/workers.py                # about 1.5 min: 3 rounds of 1 and 2 workers, 8 s cells
    python bench/workers.py --quick        # about 20 s smoke run
    python bench/workers.py --before main  # main's gateway too, in the same rounds
    python bench/workers.py --upstream python  # bench/overhead.py's upstream instead of nginx

The same config, policy and 1 KB chat request as bench/overhead.py, its instant upstream's
answer served by nginx (bench/nginx.py; ``--upstream python`` for overhead.py's own, the
default when nginx is not installed), and the default deployment: key auth, the circuit
breaker, metrics (with ``PROMETHEUS_MULTIPROC_DIR`` for two workers, as docs/observability.md
asks of several), the SQLite audit with ``durability: sync`` (the policy uses no limits and no
tokenize, so several workers may run without Redis). In one run, alternating rounds of 1 and 2
workers, each a fresh ``gateway serve`` under 64 keep-alive connections, closed loop. Target:
at least 1.7x.

The load comes from wrk (``apt-get install wrk``), one thread: 16-44 µs of CPU per request
here, where a Python generator cost about 50-150 µs on the same cores. Nothing is pinned: the
workers, the upstream and wrk share the machine's cores, as on a small host, so what the
upstream and wrk take is printed beside each cell (inside this bench nginx took 37-52 µs per
request and the Python upstream 40-65, mostly the kernel's loopback path and wake-ups:
docs/performance.md). Without wrk the bench falls back to bench/overhead.py's Python
generator, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nginx  # bench/ is not a package: its folder is on the path
import overhead as ov

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.7
BUSY_HOST = 0.1  # an event loop runnable but not running this share of a cell: other work
WRK_THREADS = 1  # one epoll loop drives tens of thousands of req/s: the gateway's few thousand
# wrk calls ``response`` per answer (a few µs in LuaJIT) so a wrong body counts as an error,
# not only a status >= 400 as its own summary does; ``done`` prints one JSON line to parse.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
bad, first = 0, ""
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"chat.completion"', 1, true) then
    bad = bad + 1
    if first == "" then first = status .. " " .. string.sub(body, 1, 200) end
  end
end
function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad")
    if first == "" then first = t:get("first") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d,"bad":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, bad))
  io.write("WRK-FIRST-ERROR ", first, "\\n")
end
"""


@dataclass(slots=True)
class Load:
    """What one measured run of the load generator saw, and the CPU it took itself."""

    requests: int
    elapsed: float
    p50: float
    p99: float
    errors: int
    first_error: str
    cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


@dataclass(slots=True)
class Gateway:
    """A gateway's code (this checkout, or ``--before``'s) with its own config, key and audit
    file; run from ``source`` (``python -m`` puts the working directory first on the path)."""

    name: str
    source: Path
    config: Path
    key: str
    script: Path  # wrk's, with this gateway's key


@dataclass(slots=True)
class Cell:
    gateway: str
    workers: int
    load: Load
    gateway_cpu: float  # the gateway's process tree (supervisor and workers)
    worker_cpu: list[float]  # each serving process
    upstream_cpu: float
    connections: list[int]  # open client connections per serving process, mid-run
    commits: float  # audit batches committed (gateway_audit_commit_seconds_count)
    commit_seconds: float  # their summed duration (lock waits, the transaction, the fsync)
    # each serving process's event loop thread: shares of the cell on a CPU, waiting for one
    # (runnable), and asleep (nothing to do: every request it holds waits on something)
    loops: list[tuple[float, float, float]] = field(default_factory=list)


def _cpu(pid: int) -> float:
    """CPU seconds of one process, all its threads, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loop_times(pid: int) -> tuple[float, float]:
    """Seconds the main thread (the event loop) of ``pid`` ran, and waited runnable for a CPU."""
    try:
        ran, waited, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return math.nan, math.nan
    return int(ran) / 1e9, int(waited) / 1e9


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _servers(pid: int, workers: int) -> list[int]:
    """The processes that serve: ``pid`` itself, or the supervisor's workers (the children
    that hold a listening socket, not multiprocessing's resource tracker)."""
    if workers == 1:
        return [pid]
    return [c for c in _children(pid) if _socket_inodes(c)]


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _connections(port: int, pids: list[int]) -> list[int]:
    """Established connections to ``port`` held by each of ``pids`` (which worker the kernel
    gave each client connection to)."""
    accepted: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                accepted.add(cols[9])
    return [len(_socket_inodes(p) & accepted) for p in pids]


def _audit_commits(port: int) -> tuple[float, float]:
    """(batches committed, seconds they took) so far, from the gateway's /metrics."""
    with urllib.request.urlopen(f"http://{ov.HOST}:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for part in found:
            if line.startswith(f"gateway_audit_commit_seconds_{part} "):
                found[part] = float(line.split()[1])
    return found["count"], found["sum"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(
    wrk: str,
    script: Path,
    port: int,
    opts: argparse.Namespace,
    seconds: float,
    during: Callable[[], None],
) -> Load:
    """One wrk run; ``during`` is called half-way through it (the connections are counted)."""
    url = f"http://{ov.HOST}:{port}{ov.GATEWAY_PATH}"
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{opts.concurrency}", f"-d{max(1, round(seconds))}s",
            "--timeout", "10s", "-s", str(script), url]  # fmt: skip
    cpu = _children_cpu()  # wrk is the only child reaped while it runs
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds / 2)
    during()
    out, _ = proc.communicate(timeout=seconds + 30)
    cpu = _children_cpu() - cpu
    line = next((x for x in out.splitlines() if x.startswith("WRK {")), None)
    if proc.returncode != 0 or line is None:
        raise ov.BenchError(f"wrk failed ({proc.returncode}): {out[-2000:]}")
    got = json.loads(line[4:])
    first = next((x[16:] for x in out.splitlines() if x.startswith("WRK-FIRST-ERROR ")), "")
    socket_errors = sum(got[k] for k in ("connect", "read", "write", "timeout"))
    return Load(
        requests=got["requests"], elapsed=got["duration_us"] / 1e6, p50=got["p50_us"] / 1e6,
        p99=got["p99_us"] / 1e6, errors=socket_errors + max(got["bad"], got["status"]),
        first_error=first or (f"{socket_errors} socket errors" if socket_errors else ""), cpu=cpu,
    )  # fmt: skip


def _python_load(port: int, key: str, opts: argparse.Namespace, during: Callable[[], None]) -> Load:
    """bench/overhead.py's generator in this process (when wrk is missing)."""
    target = ov.Target("gateway", port, ov.GATEWAY_PATH, key, "gateway")
    cpu = time.process_time()

    async def run() -> ov.Sample:
        loop = asyncio.get_running_loop()
        loop.call_later(opts.warmup + opts.duration / 2, during)
        return await ov.run_load(
            target, opts.concurrency, opts.warmup, opts.duration, ov.Probe(None, set())
        )

    sample = uvloop.run(run())
    return Load(
        requests=len(sample.latencies), elapsed=sample.elapsed, p50=sample.pct(0.5),
        p99=sample.pct(0.99), errors=sample.errors, first_error=sample.first_error,
        cpu=time.process_time() - cpu,
    )  # fmt: skip


def _gateway(
    procs: ov.Processes, name: str, source: Path, upstream_port: int, opts: argparse.Namespace
) -> Gateway:
    folder = procs.work / f"{name}-config"
    folder.mkdir()
    config = ov.write_config(folder, upstream_port)
    if opts.no_audit:
        config.write_text(config.read_text() + "audit: {enabled: false}\n")
    key = ov.create_key(config, {**os.environ, "PYTHONPATH": str(source)})
    script = folder / "load.lua"
    script.write_text(WRK_SCRIPT.format(body=ov.chat_body(stream=False).decode(), key=key))
    return Gateway(name, source, config, key, script)


def _cell(
    procs: ov.Processes,
    env: dict[str, str],
    gw: Gateway,
    workers: int,
    opts: argparse.Namespace,
    wrk: str | None,
) -> Cell:
    port = ov._free_port()
    name = f"{gw.name}-{workers}w-{time.monotonic_ns()}"
    env = {**env, "PYTHONPATH": str(gw.source)}
    if workers > 1:  # every worker's metrics in one scrape (docs/observability.md)
        metrics = procs.work / f"{name}-metrics"
        metrics.mkdir()
        env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    argv = [*ov._gateway_cli(gw.config), "serve", "--port", str(port), "--log-level", "warning"]
    pid = procs.start(name, [*argv, "--workers", str(workers)], set(), env, cwd=gw.source)
    upstream = procs.procs["upstream"].pid
    try:
        ov._wait_ready(procs, name, port, "/readyz", 60)
        deadline = time.monotonic() + 30
        while len(servers := _servers(pid, workers)) < workers:  # every worker up
            if time.monotonic() > deadline:
                raise ov.BenchError(f"{workers} workers never came up", name)
            time.sleep(0.1)
        time.sleep(0.5)
        connections: list[int] = []

        def count() -> None:
            connections.extend(_connections(port, servers))

        if wrk is not None:
            _wrk(wrk, gw.script, port, opts, opts.warmup, lambda: None)
        commits = _audit_commits(port)
        loops = [_loop_times(p) for p in servers]
        before = [_cpu(p) for p in servers], _cpu(pid), _cpu(upstream)
        if wrk is not None:
            load = _wrk(wrk, gw.script, port, opts, opts.duration, count)
        else:
            load = _python_load(port, gw.key, opts, count)
        after = [_cpu(p) for p in servers], _cpu(pid), _cpu(upstream)
        loops = [
            (ran - r0, waited - w0)
            for (r0, w0), (ran, waited) in zip(loops, map(_loop_times, servers), strict=True)
        ]
        commits_after = _audit_commits(port)
        worker_cpu = [a - b for a, b in zip(after[0], before[0], strict=True)]
        supervisor = after[1] - before[1] if workers > 1 else 0.0
    finally:
        proc = procs.procs.pop(name)
        proc.terminate()
        proc.wait(timeout=30)
    return Cell(
        gateway=gw.name, workers=workers, load=load, gateway_cpu=sum(worker_cpu) + supervisor,
        worker_cpu=worker_cpu, upstream_cpu=after[2] - before[2], connections=connections,
        commits=commits_after[0] - commits[0], commit_seconds=commits_after[1] - commits[1],
        loops=[(r / load.elapsed, w / load.elapsed, 1 - (r + w) / load.elapsed) for r, w in loops],
    )  # fmt: skip


def ceiling(one_us: float, two_us: float, other_us: float, cores: int) -> float:
    """The 2-worker/1-worker ratio ``cores`` idle cores would give when the gateway costs
    ``one_us`` CPU per request with one worker and ``two_us`` with two, and the load
    generator and upstream ``other_us``: one worker is capped by its one core, two by the
    cores all of them share."""
    one = min(1 / one_us, cores / (one_us + other_us))
    two = min(2 / two_us, cores / (two_us + other_us))
    return two / one


def _row(r: int, c: Cell) -> str:
    n, s = c.load.requests, c.load.elapsed
    per = [f"{x / s:.2f}" for x in c.worker_cpu]
    loops = " / ".join(f"{run:.2f} {wait:.2f} {idle:.2f}" for run, wait, idle in c.loops)
    batch = f"{n / c.commits:.1f}" if c.commits else "-"
    commit = ov._ms(c.commit_seconds / c.commits) if c.commits else "-"
    return (
        f"| {r} | {c.gateway} | {c.workers} | {c.load.rps:,.0f} | {ov._ms(c.load.p50)}"
        f" | {ov._ms(c.load.p99)}"
        f" | {ov._us(c.gateway_cpu / n)} | {c.gateway_cpu / s:.2f} ({' + '.join(per)})"
        f" | {loops} | {'/'.join(str(x) for x in c.connections)} | {c.commits / s:,.0f}"
        f" | {batch} | {commit} | {ov._us(c.load.cpu / n)} | {ov._us(c.upstream_cpu / n)} |"
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (8)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1 then 2 workers (3)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s cells")
    parser.add_argument("--python-load", action="store_true", help="bench/overhead.py's generator")
    parser.add_argument(
        "--before", metavar="REF", help="also a git ref's gateway, in the same rounds (main)"
    )
    parser.add_argument(
        "--no-audit", action="store_true", help="audit.enabled: false (to see what the audit costs)"
    )
    parser.add_argument(
        "--upstream",
        choices=("nginx", "python"),
        help="the instant upstream: nginx if installed (bench/nginx.py), else bench/overhead.py's",
    )
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.duration, opts.warmup, opts.rounds = 3.0, 1.0, 1
    opts.nginx = nginx.find()
    if opts.upstream is None:
        opts.upstream = "nginx" if opts.nginx else "python"
        if opts.nginx is None:
            print(
                "nginx not found (apt-get install nginx-light): the upstream is bench/overhead.py's"
                " Python one, whose own CPU on the same cores lowers the ratio this bench shows",
                file=sys.stderr,
            )
    elif opts.upstream == "nginx" and opts.nginx is None:
        parser.error("--upstream nginx: no nginx binary found (apt-get install nginx-light)")
    wrk = None if opts.python_load else shutil.which("wrk")
    if wrk is None and not opts.python_load:
        print(
            "wrk not found (apt-get install wrk): falling back to bench/overhead.py's Python"
            " load generator, whose own CPU on the same cores caps the ratio this bench shows",
            file=sys.stderr,
        )
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    load_before = os.getloadavg()
    cells: list[tuple[int, Cell]] = []
    with (
        tempfile.TemporaryDirectory(prefix="gateway-bench-workers-") as tmp,
        contextlib.ExitStack() as trees,
    ):
        procs = ov.Processes(Path(tmp))
        try:
            tree: Path | None = None
            if opts.before:
                tree = trees.enter_context(ov.checkout(opts.before, Path(tmp) / "before"))
            upstream_port = ov._free_port()
            if opts.upstream == "nginx":
                upstream = nginx.upstream(opts.nginx, Path(tmp), upstream_port)
            else:
                script = str(Path(ov.__file__).resolve())
                upstream = [sys.executable, script, "--serve-upstream", str(upstream_port)]
            procs.start("upstream", upstream, set(), env)
            ov._wait_ready(procs, "upstream", upstream_port, None, 10)
            gateways = [_gateway(procs, "after" if tree else "gateway", ROOT, upstream_port, opts)]
            if tree is not None:
                gateways.insert(0, _gateway(procs, "before", tree, upstream_port, opts))
            for r in range(1, opts.rounds + 1):
                for gw in gateways:
                    for workers in (1, 2):
                        print(
                            f"round {r}, {gw.name}, {workers} worker(s) ...",
                            end="",
                            file=sys.stderr,
                        )
                        cell = _cell(procs, env, gw, workers, opts, wrk)
                        if cell.load.errors:
                            raise ov.BenchError(
                                f"{cell.load.errors} errors, first: {cell.load.first_error}"
                            )
                        cells.append((r, cell))
                        print(f" {cell.load.rps:,.0f} req/s", file=sys.stderr)
        except (ov.BenchError, OSError, subprocess.SubprocessError) as exc:
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop()  # before the worktree it runs from is removed
    print(report(cells, opts, wrk, load_before))
    return 0


def _nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return done.stderr.strip().rpartition("/")[2]  # "nginx version: nginx/1.22.1"


def report(
    cells: list[tuple[int, Cell]],
    opts: argparse.Namespace,
    wrk: str | None,
    load_before: tuple[float, float, float],
) -> str:
    waited = max((wait for _, c in cells for _, wait, _ in c.loops), default=0.0)
    cores = os.cpu_count() or 1
    generator = (
        f"wrk ({WRK_THREADS} thread, Lua script for the body and key)"
        if wrk
        else "bench/overhead.py's Python generator (wrk not found)"
    )
    upstream = (
        f"nginx {_nginx_version(opts.nginx)} (bench/nginx.py)"
        if opts.upstream == "nginx"
        else "bench/overhead.py's Python upstream"
    )
    after = os.getloadavg()
    verdicts = []
    for name in dict.fromkeys(c.gateway for _, c in cells):
        by = {w: [c for _, c in cells if c.gateway == name and c.workers == w] for w in (1, 2)}
        one, two = (_median([c.load.rps for c in by[w]]) for w in (1, 2))
        one_us, two_us = (_median([c.gateway_cpu / c.load.requests for c in by[w]]) for w in (1, 2))
        other_us = _median([(c.load.cpu + c.upstream_cpu) / c.load.requests for c in by[1] + by[2]])
        ratio = two / one
        verdicts.append(
            f"{name}: 2 workers / 1 worker (medians of req/s) **{ratio:.2f}x**, target >="
            f" {TARGET}x: **{'PASS' if ratio >= TARGET else 'MISS'}**. From CPU per request"
            f" ({one_us * 1e6:.0f} µs with 1 worker, {two_us * 1e6:.0f} µs with 2,"
            f" {other_us * 1e6:.0f} µs for the load generator and upstream), {cores} idle cores"
            f" would give {ceiling(one_us, two_us, other_us, cores):.2f}x."
        )
    return (
        f"\n{cores} CPUs, {generator}, instant upstream {upstream}, concurrency"
        f" {opts.concurrency}, keep-alive, closed loop,"
        f" {opts.duration:g} s cells after {opts.warmup:g} s of warm-up. Load average (1, 5, 15"
        f" min) {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f} before the run,"
        f" {after[0]:.1f} {after[1]:.1f} {after[2]:.1f} after (other work on the host).\n\n"
        "| round | gateway | workers | req/s | p50 | p99 | gateway CPU per request | cores the"
        " gateway got (per worker) | event loops: on a CPU, waiting for one, idle | connections"
        " per worker | audit commits/s | records per commit | commit time | load generator CPU"
        " per request | upstream CPU per request |\n"
        "|---|---|---|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|\n"
        + "\n".join(_row(r, c) for r, c in cells)
        + "\n\n"
        "Event loops: the share of the cell each worker's main thread ran, waited runnable for"
        " a CPU (other work on the host), and slept (every request it held was waiting: on the"
        " upstream, the audit commit, the load generator). Commit time: one audit batch's write,"
        " from its records' serialization to the WAL's sync (gateway_audit_commit_seconds).\n\n"
        + (
            f"**The host was busy**: an event loop waited for a CPU up to {waited:.0%} of a"
            " cell; with Linux's autogroup scheduling this run's gateway gets one share of the"
            " CPU whether it has one worker or two, so the ratios below are the host's.\n\n"
            if waited > BUSY_HOST
            else ""
        )
        + "\n".join(verdicts)
    )


if __name__ == "__main__":
    sys.exit(main())
