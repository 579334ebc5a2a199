"""The HTTP server side alone: what serving a request costs before the gateway's own work.

    python bench/server.py                   # about a minute
    python bench/server.py --before main     # the gateway's server at a git ref beside this one
    python bench/server.py --rounds 5 --duration 3

Each server answers bench/overhead.py's 1 KB chat request at once, on one pinned core, while
the load generator (this process) runs on the other; they are measured in turn, in
interleaved rounds. The servers:

* ``floor``: bench/overhead.py's instant upstream, a raw asyncio protocol that answers canned
  bytes without parsing: the event loop and the system calls, nothing of HTTP;
* ``uvicorn``: uvicorn's own httptools protocol, as a plain ``uvicorn.run`` serves;
* ``gateway``: the server `gateway serve` runs (gateway/cli/serve.py's settings), this checkout;
* ``gateway@REF`` with ``--before REF``: the same at a git ref.

Behind the three ASGI servers, one trivial app shaped like the model routes
(gateway/model_routes.py): it reads the body, then sends the gateway's response headers and
the upstream's answer, whole or as its 21 events. Printed: the server's CPU per request at
each concurrency and per stream (best of the rounds), and the first event's p50.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from overhead import (
    _COMPLETION,
    DIRECT_PATH,
    HOST,
    BenchError,
    Probe,
    Processes,
    Sample,
    Target,
    _free_port,
    _stream_body,
    _wait_ready,
    chat_body,
    checkout,
    placement,
    run_load,
    run_streams,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_HEADERS = [
    (b"x-request-id", b"8f0c2a6e4b1d4f3a9c7e5d2b1a0f9e8d"),
    (b"x-gateway-decision", b"allow"),
    (b"x-gateway-policy-version", b"3f2a9c1b7e4d"),
]


def _events() -> list[bytes]:
    """The upstream's stream, as the events the relay hands on."""
    body, events = _stream_body(), []
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n:
            events.append(rest[:n])
        body = rest[n + 2 :]
    return events


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if b'"stream":true' in body:
        head = [*_HEADERS, (b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for event in _EVENTS:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    head = [
        *_HEADERS,
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(_COMPLETION)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": _COMPLETION, "more_body": False})


_EVENTS = _events()


def _serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "uvicorn":
        options: dict[str, Any] = dict(
            host=HOST, port=port, loop="uvloop", http="httptools", access_log=False,
            log_config=None, log_level="warning",
        )  # fmt: skip
    else:
        from gateway.cli import serve
        from gateway.config import ServerConfig

        options = serve._options(HOST, port, "warning", ServerConfig())
    uvicorn.run(_app, **options)


async def _stream_cpu(target: Target, probe: Probe, count: int) -> tuple[float, float]:
    """CPU per stream and the first event's p50, ``count`` streams one after the other."""
    before = probe.snapshot()
    sample = await run_streams(target, count, 0)
    cpu = Sample()
    probe.fill(cpu, before)
    if sample.errors:
        raise BenchError(f"{target.name} streams: {sample.first_error}")
    first = sorted(sample.first)[len(sample.first) // 2]
    return cpu.gateway_cpu / count, first


async def _compare(
    servers: dict[str, tuple[Target, int]],
    cpus: set[int],
    concurrency: list[int],
    rounds: int,
    seconds: float,
) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]], float]:
    """CPU per request by server and cell, first events by server, and the largest share of
    the pinned core the hypervisor took in any cell."""
    steal = 0.0
    cpu: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    first: dict[str, list[float]] = collections.defaultdict(list)
    body = chat_body(stream=False)
    names = list(servers)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            target, pid = servers[name]
            probe = Probe(pid, cpus)
            for c in concurrency:
                sample = await run_load(target, c, 0.3, seconds, probe, body)
                if sample.errors:
                    raise BenchError(f"{name} c={c}: {sample.first_error}")
                if not math.isnan(sample.steal):
                    steal = max(steal, sample.steal)
                cpu[name, f"c={c}"].append(sample.cpu_per_request)
            await run_streams(target, 50, 0)  # warm-up
            per_stream, p50 = await _stream_cpu(target, probe, 500)
            cpu[name, "stream"].append(per_stream)
            first[name].append(p50)
            print(
                f"round {r + 1} {name}: "
                + ", ".join(f"{k} {min(v) * 1e6:.1f} µs" for (n, k), v in cpu.items() if n == name)
                + f", first event {p50 * 1e3:.3f} ms",
                file=sys.stderr,
            )
    return cpu, first, steal


def _table(
    cpu: dict[tuple[str, str], list[float]], first: dict[str, list[float]], names: list[str]
) -> str:
    cells = [k for n, k in cpu if n == names[0]]
    lines = [
        "| server | " + " | ".join(f"CPU/req {k}" for k in cells) + " | first event p50 |",
        "|---|" + "---:|" * (len(cells) + 1),
    ]
    for name in names:
        row = " | ".join(f"{min(cpu[name, k]) * 1e6:.1f} µs" for k in cells)
        p50 = sorted(first[name])[len(first[name]) // 2]
        lines.append(f"| {name} | {row} | {p50 * 1e3:.3f} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", help="also the gateway's server at this git ref")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (1,16)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per cell (2)")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return 0
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (
        tempfile.TemporaryDirectory(prefix="gateway-server-") as tmp,
        contextlib.ExitStack() as trees,
    ):
        procs = Processes(Path(tmp))
        try:
            kinds: list[tuple[str, list[str], Path]] = [
                ("floor", [str(HERE / "overhead.py"), "--serve-upstream"], ROOT),
                ("uvicorn", [str(HERE / "server.py"), "--serve", "uvicorn"], ROOT),
            ]
            if args.before:
                tree = trees.enter_context(checkout(args.before, Path(tmp) / "before"))
                script = [str(HERE / "server.py"), "--serve", "gateway"]
                kinds.append((f"gateway@{args.before}", script, tree))
            kinds.append(("gateway", [str(HERE / "server.py"), "--serve", "gateway"], ROOT))
            servers: dict[str, tuple[Target, int]] = {}
            for name, argv_, source in kinds:
                port = _free_port()
                pid = procs.start(
                    name,
                    [sys.executable, *argv_, str(port)],
                    where.gateway,
                    {**env, "PYTHONPATH": str(source)},
                    cwd=source,
                )
                _wait_ready(procs, name, port, None, 30)
                servers[name] = (Target(name, port, DIRECT_PATH, "x", name), pid)
            time.sleep(0.5)
            cpu, first, steal = uvloop.run(
                _compare(servers, where.gateway, concurrency, args.rounds, args.duration)
            )
            procs.check_alive()
        except BenchError as exc:
            procs.print_failure(exc)
            return 1
        finally:
            procs.stop()  # before the worktree it runs from is removed
    print(f"load average {os.getloadavg()[0]:.2f}, CPU steal at most {steal:.0%}\n")
    print(_table(cpu, first, list(servers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
