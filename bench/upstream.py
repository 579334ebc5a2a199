"""The upstream HTTP client alone: gateway/upstream/wire.py beside aiohttp, in one run.

    python bench/upstream.py            # about 30 s
    python bench/upstream.py --requests 5000 --rounds 5

Both post bench/overhead.py's 1 KB chat request to its instant upstream (on the other core)
and read the answer whole, ``--requests`` times at concurrency 1 and 16, in interleaved
rounds: aiohttp's ClientSession as the gateway used it before (one pooled session, the
policy's timeouts per request, the body read within its bound) and ``HttpUpstream`` over
the client that replaced it. Printed: CPU per request of this process, user and kernel time
apart (the best round of each), the kernel share being where most of the difference is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop
from overhead import HOST, _free_port, chat_body, placement

from gateway.upstream.http import HttpUpstream
from gateway.upstream.provider import Timeouts

HERE = Path(__file__).resolve().parent
HEADERS = {"content-type": "application/json", "accept": "application/json"}

Post = Callable[[], Awaitable[bytes]]


def _aiohttp(base: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
        skip_auto_headers=("User-Agent",),
        auto_decompress=True,
    )
    timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=30.0)
    body = chat_body(stream=False)
    loop = asyncio.get_running_loop()

    async def post() -> bytes:
        async with asyncio.timeout_at(loop.time() + 30):
            response = await session.request(
                "POST", base + "/chat/completions", data=body, headers=HEADERS, timeout=timeout
            )
            try:
                data = bytearray()
                while chunk := await response.content.readany():
                    data += chunk
            finally:
                response.release()
        return bytes(data)

    return post, session.close


def _wire(base: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    upstream = HttpUpstream(base, HEADERS, 100)
    body = chat_body(stream=False)
    loop = asyncio.get_running_loop()

    async def post() -> bytes:
        timeouts = Timeouts(5.0, 30.0, loop.time() + 30)
        answer = await upstream.post("/chat/completions", body, False, timeouts, {})
        return answer.body or b""

    return post, upstream.aclose


async def _cell(post: Post, requests: int, concurrency: int) -> tuple[float, float]:
    """User and kernel CPU seconds per request of this process."""

    async def worker(n: int) -> None:
        for _ in range(n):
            if b"chat.completion" not in await post():
                raise RuntimeError("unexpected answer")

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # warm the pool
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    done = requests // concurrency * concurrency
    return (after.ru_utime - before.ru_utime) / done, (after.ru_stime - before.ru_stime) / done


Cells = dict[tuple[str, int], list[tuple[float, float]]]


async def _run(port: int, requests: int, rounds: int) -> Cells:
    base = f"http://{HOST}:{port}/v1"
    clients = {"aiohttp ClientSession": _aiohttp(base), "wire (HttpUpstream)": _wire(base)}
    cells: Cells = {}
    try:
        for r in range(rounds):
            for c in (1, 16):
                names = list(clients) if r % 2 == 0 else list(reversed(clients))
                for name in names:
                    user, kernel = await _cell(clients[name][0], requests, c)
                    cells.setdefault((name, c), []).append((user, kernel))
                    print(
                        f"round {r + 1} {name} c={c}: {(user + kernel) * 1e6:.0f} µs"
                        f" ({user * 1e6:.0f} user, {kernel * 1e6:.0f} kernel)",
                        file=sys.stderr,
                    )
    finally:
        for _, close in clients.values():
            await close()
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="per cell (3000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    where = placement()
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "overhead.py"), "--serve-upstream", str(port)],
        preexec_fn=(lambda: os.sched_setaffinity(0, where.others)) if where.pinned else None,
    )
    try:
        if where.pinned:
            os.sched_setaffinity(0, where.gateway)  # this process is the client: alone
        time.sleep(1.0)
        cells = uvloop.run(_run(port, args.requests, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait()
    print(
        "\n| client | c | CPU per request (best round) | user | kernel |\n|---|---:|---:|---:|---:|"
    )
    for (name, c), samples in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        user, kernel = min(samples, key=sum)
        print(
            f"| {name} | {c} | {(user + kernel) * 1e6:.0f} µs | {user * 1e6:.0f} µs"
            f" | {kernel * 1e6:.0f} µs |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
