"""This gateway beside its peers, in one run: the LiteLLM proxy and the Portkey gateway.

    python bench/peers.py                       # installs the peers, then about 3 minutes
    python bench/peers.py --cache /tmp/peers    # keep the installs for the next run

A bench, never a test (it installs from PyPI and npm). It installs the LiteLLM proxy
(``litellm[proxy]``, pip, into a venv of its own) and the Portkey gateway (npm package
``@portkey-ai/gateway``, into a folder of its own), then starts each, pinned alone to one core
like this gateway, in front of bench/overhead.py's instant upstream, and measures them in
turn, in interleaved rounds, with bench/overhead.py's load generator on the other core:

* requests per second at concurrency 16 and the CPU each request costs (the process and its
  children, from /proc);
* added p50 at concurrency 1 and added p99 at concurrency 16, against the upstream directly;
* the first streamed event, added, at concurrency 1.

This gateway runs as ``make run`` deploys it (key auth, the circuit breaker, the sync SQLite
audit trail, metrics); its masking cell adds bench/boundary.py's policy (masks, tokenizes,
blocks; the 1 KB prompt has nothing to find, so it measures the inspection). The peers run
with their defaults: LiteLLM with a master key (it refuses to start without one, and checks it
in memory), Portkey with no auth of its own.
The table is printed in markdown, each figure as a ratio to this gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from boundary import DATA as MASKING
from overhead import (
    DIRECT_PATH,
    GATEWAY_PATH,
    HOST,
    MODEL,
    BenchError,
    ClientProtocol,
    Processes,
    Sample,
    _free_port,
    _gateway_cli,
    _wait_ready,
    chat_body,
    create_key,
    percentile,
    placement,
    run_load,
    write_config,
)

HERE = Path(__file__).resolve().parent
# The newest release whose proxy extras (litellm-proxy-extras) are on PyPI as of this bench.
LITELLM = ("litellm[proxy]==1.108.7", "litellm-proxy-extras==0.4.110")
PORTKEY = "@portkey-ai/gateway@1.15.2"


@dataclass(slots=True)
class Peer:
    """A target speaking OpenAI chat completions at ``path`` with ``headers``."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    pid: int | None  # the process whose CPU (with its children's) is counted
    process: str = ""

    def request(self, body: bytes) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"host: {HOST}:{self.port}"]
        lines += [
            f"{k}: {v}" for k, v in {"content-type": "application/json", **self.headers}.items()
        ]
        lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def connect(self) -> ClientProtocol:
        _, protocol = await asyncio.get_running_loop().create_connection(
            ClientProtocol, HOST, self.port
        )
        return protocol


class TreeProbe:
    """CPU time of a process and its descendants, from /proc (the peers may fork workers)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def snapshot(self) -> float:
        if self.pid is None:
            return float("nan")
        total = 0
        for pid in _tree(self.pid):
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9

    def fill(self, sample: Sample, before: float) -> None:
        sample.gateway_cpu = self.snapshot() - before


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass(slots=True)
class Cells:
    rps16: list[float] = field(default_factory=list)
    cpu16: list[float] = field(default_factory=list)
    p50_1: list[float] = field(default_factory=list)
    p99_16: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    errors: int = 0
    stream_failed: bool = False


def install(cache: Path, progress: Callable[[str], None]) -> tuple[Path, Path]:
    """The LiteLLM proxy's executable and the Portkey gateway's entry script."""
    venv = cache / "litellm"
    litellm = venv / "bin" / "litellm"
    if not litellm.exists():
        progress(f"installing {LITELLM[0]} into {venv} ...\n")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", *LITELLM], check=True, timeout=1800
        )
    portkey = cache / "portkey"
    script = portkey / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if not script.exists():
        progress(f"installing {PORTKEY} into {portkey} ...\n")
        portkey.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(portkey), PORTKEY],
            check=True,
            timeout=1800,
        )
    return litellm, script


def _litellm_config(work: Path, upstream: int) -> Path:
    path = work / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://{HOST}:{upstream}/v1\n"
        "      api_key: x\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        "  master_key: os.environ/LITELLM_MASTER_KEY\n"
    )
    return path


def start_all(
    procs: Processes, work: Path, litellm: Path, portkey: Path, core: set[int], others: set[int]
) -> tuple[Peer, list[Peer]]:
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    upstream = _free_port()
    procs.start(
        "upstream",
        [sys.executable, str(HERE / "overhead.py"), "--serve-upstream", f"{upstream}"],
        others,
        env,
    )
    _wait_ready(procs, "upstream", upstream, None, 10)
    direct = Peer("the upstream itself", upstream, DIRECT_PATH, {}, None, "upstream")
    peers: list[Peer] = []
    for name, policy in (("gateway", ""), ("gateway-masking", MASKING)):
        folder = work / name
        folder.mkdir()
        config = write_config(folder, upstream, {"bench": policy})
        key = create_key(config, env)
        port = _free_port()
        pid = procs.start(
            name,
            [*_gateway_cli(config), *f"serve --port {port} --log-level warning".split()],
            core,
            env,
        )
        _wait_ready(procs, name, port, "/healthz", 60)
        label = "this gateway, default deployment" if not policy else "this gateway, masking"
        peers.append(Peer(label, port, GATEWAY_PATH, {"authorization": f"Bearer {key}"}, pid, name))
    port = _free_port()
    pid = procs.start(
        "portkey",
        ["node", str(portkey), f"--port={port}"],
        core,
        {**env, "PORT": str(port), "NODE_ENV": "production"},
    )
    _wait_ready(procs, "portkey", port, None, 60)
    portkey_headers = {
        "authorization": "Bearer x",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"http://{HOST}:{upstream}/v1",
    }
    peers.append(
        Peer(
            "Portkey gateway (Node)", port, "/v1/chat/completions", portkey_headers, pid, "portkey"
        )
    )
    port = _free_port()
    master = f"sk-{secrets.token_hex(32)}"  # it refuses to start without one
    pid = procs.start(
        "litellm",
        [
            str(litellm),
            "--config",
            str(_litellm_config(work, upstream)),
            "--host",
            HOST,
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        core,
        {**env, "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": master},
    )
    _wait_ready(procs, "litellm", port, "/health/liveliness", 180)
    peers.append(
        Peer(
            "LiteLLM proxy",
            port,
            DIRECT_PATH,
            {"authorization": f"Bearer {master}"},
            pid,
            "litellm",
        )
    )
    return direct, peers


async def measure(
    direct: Peer, peers: list[Peer], rounds: int, seconds: float, streams: int
) -> tuple[dict[str, Cells], Cells]:
    body, stream_body = chat_body(stream=False), chat_body(stream=True)
    cells = {p.name: Cells() for p in peers}
    base = Cells()
    for r in range(rounds):
        for target in [direct, *(peers if r % 2 == 0 else reversed(peers))]:
            cell = base if target is direct else cells[target.name]
            probe = TreeProbe(target.pid)
            s16 = await run_load(target, 16, 0.5, seconds, probe, body)  # type: ignore[arg-type]
            s1 = await run_load(target, 1, 0.3, seconds / 2, probe, body)  # type: ignore[arg-type]
            st = await _streams(target, streams, stream_body)
            cell.rps16.append(s16.rps)
            cell.cpu16.append(s16.cpu_per_request)
            cell.p50_1.append(s1.pct(0.5))
            cell.p99_16.append(s16.pct(0.99))
            if st:
                cell.first.append(percentile(st, 0.5))
            else:
                cell.stream_failed = True
            cell.errors += s16.errors + s1.errors
            print(
                f"round {r + 1} {target.name}: {s16.rps:,.0f} req/s at c=16,"
                f" {s16.cpu_per_request * 1e6:,.0f} µs CPU/req, p50 c=1"
                f" {s1.pct(0.5) * 1e3:.2f} ms, p99 c=16 {s16.pct(0.99) * 1e3:.2f} ms,"
                f" first event {percentile(st, 0.5) * 1e3:.2f} ms,"
                f" errors {s16.errors + s1.errors} {s16.first_error or s1.first_error}",
                file=sys.stderr,
            )
    return cells, base


async def _streams(target: Peer, count: int, body: bytes) -> list[float]:
    """Time to the first whole event of ``count`` sequential streams (after 10 unmeasured);
    the peers re-chunk events, so only a 200 with events is asked of them."""
    request = target.request(body)
    conn = await target.connect()
    firsts: list[float] = []
    try:
        for i in range(10 + count):
            if conn.closed:
                conn = await target.connect()
            started = time.perf_counter()
            result = await conn.request(request)
            if result.status != 200 or b"data:" not in result.body or not result.first_event:
                print(f"{target.name}: stream answered {result.body[:200]!r}", file=sys.stderr)
                return []  # shown as failing; the other cells still count
            if i >= 10:
                firsts.append(result.first_event - started)
    finally:
        conn.close()
    return firsts


def table(cells: dict[str, Cells], base: Cells) -> str:
    def med(xs: list[float]) -> float:
        return statistics.median(xs) if xs else float("nan")

    ours = cells["this gateway, default deployment"]
    lines = [
        "| target | req/s at c=16 | x ours | CPU per request | added p50 at c=1 | added p99 at c=16"
        " | first streamed event added | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in cells.items():
        lines.append(
            f"| {name} | {med(c.rps16):,.0f} | {med(c.rps16) / med(ours.rps16):.2f}"
            f" | {med(c.cpu16) * 1e6:,.0f} µs | {(med(c.p50_1) - med(base.p50_1)) * 1e3:.2f} ms"
            f" | {(med(c.p99_16) - med(base.p99_16)) * 1e3:.2f} ms"
            f" | {_first(c, base)} | {c.errors} |"
        )
    lines.append(
        f"| the upstream itself | {med(base.rps16):,.0f} | | | p50 {med(base.p50_1) * 1e3:.2f} ms"
        f" | p99 {med(base.p99_16) * 1e3:.2f} ms | {med(base.first) * 1e3:.2f} ms | {base.errors} |"
    )
    return "\n".join(lines)


def _first(cell: Cells, base: Cells) -> str:
    if not cell.first:
        return "fails" if cell.stream_failed else "n/a"
    added = statistics.median(cell.first) - statistics.median(base.first)
    return f"{added * 1e3:.2f} ms" + (" (some rounds failed)" if cell.stream_failed else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache", type=Path, help="where the peers are installed (kept)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per c=16 cell")
    parser.add_argument("--streams", type=int, default=200, help="streams per target and round")
    args = parser.parse_args(argv)
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)

    def progress(text: str) -> None:
        print(text, end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gateway-peers-") as tmp:
        work = Path(tmp)
        litellm, portkey = install(args.cache or work / "peers", progress)
        procs = Processes(work)
        try:
            direct, peers = start_all(procs, work, litellm, portkey, where.gateway, where.others)
            time.sleep(1.0)
            cells, base = uvloop.run(
                measure(direct, peers, args.rounds, args.duration, args.streams)
            )
            procs.check_alive()
        except BenchError as exc:
            procs.print_failure(exc)
            return 1
        finally:
            procs.stop()
    print(
        f"\nOne process each, pinned to CPU {','.join(map(str, sorted(where.gateway)))}; load and"
        " upstream on the other; 1 KB chat request; medians of"
        f" {args.rounds} interleaved rounds ({args.duration:g} s at c=16, half that at c=1,"
        f" {args.streams} streams of 20 events).\n"
    )
    print(table(cells, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
