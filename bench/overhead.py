"""What the gateway adds to a request: one gateway worker on one core, against an instant upstream.

    python bench/overhead.py            # about 40 s: 5 s per cell
    python bench/overhead.py --quick    # about 10 s smoke run: 1 s per cell

One run starts, all on 127.0.0.1:

* an *instant upstream* (this file with ``--serve-upstream``): a raw asyncio Protocol on uvloop
  that answers ``POST /v1/chat/completions`` at once with a fixed chat completion, or with a
  chunked ``text/event-stream`` of 20 ``chat.completion.chunk`` events and ``[DONE]`` when the
  body has ``"stream": true``;
* the gateway (``python -m gateway ... serve``) with a throw-away config, policy and key;
* a load generator (this process): uvloop and raw keep-alive connections, parsing
  content-length and chunked responses itself, so its own cost stays small.

With two or more CPUs the gateway runs alone on one core; the upstream and the load generator
share the other. Each concurrency is run against the upstream directly and through the gateway;
the difference is what the gateway adds. A markdown table is printed for the README.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import http.client
import importlib.metadata
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import cast

import uvloop

HOST = "127.0.0.1"
GATEWAY_PATH = "/w/bench/v1/chat/completions"
DIRECT_PATH = "/v1/chat/completions"
MODEL = "bench-model"
STREAM_EVENTS = 20
STEAL_WARNING = 0.05  # above this share of a core taken by the hypervisor, say the host was busy
# (concurrency, quantile, the most the gateway may add in ms, label)
TARGETS = ((1, 0.5, 1.0, "p50"), (16, 0.99, 10.0, "p99"))
STACK = ("litestar", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson")


# --------------------------------------------------------------------------- instant upstream

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello there"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    },
    separators=(",", ":"),
).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stream_body() -> bytes:
    parts: list[bytes] = []
    for i in range(STREAM_EVENTS):
        delta = {"role": "assistant", "content": ""} if i == 0 else {"content": f"tok{i} "}
        last = i == STREAM_EVENTS - 1
        event = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
        }
        data = json.dumps(event, separators=(",", ":")).encode()
        parts.append(_chunk(b"data: " + data + b"\n\n"))
    parts.append(_chunk(b"data: [DONE]\n\n"))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


RESPONSE_JSON = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_COMPLETION), _COMPLETION)
)
RESPONSE_STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n" + _stream_body()
)
RESPONSE_404 = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


def _content_length(head: bytes) -> int:
    """The content-length of a lower-cased header block, 0 if it has none."""
    j = head.find(b"content-length:")
    if j < 0:
        return 0
    k = head.find(b"\r\n", j)
    return int(head[j + 15 : k if k >= 0 else len(head)])


class UpstreamProtocol(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with content-length bodies, parsed as little as possible."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buf += data
        while True:
            i = self._buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self._buf[:i].lower()
            end = i + 4 + _content_length(head)
            if len(self._buf) < end:
                return
            body = self._buf[i + 4 : end]
            self._buf = self._buf[end:]
            if not head.startswith(b"post /v1/chat/completions "):
                self._transport.write(RESPONSE_404)
            elif b'"stream":true' in body or b'"stream": true' in body:
                self._transport.write(RESPONSE_STREAM)
            else:
                self._transport.write(RESPONSE_JSON)


async def _serve_upstream(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        UpstreamProtocol, HOST, port, backlog=1024
    )
    async with server:
        await server.serve_forever()


# ----------------------------------------------------------------------------- load generator


@dataclass(slots=True)
class Result:
    status: int
    body: bytes
    first_event: float  # perf_counter when the first whole SSE event had arrived (0.0 if none)
    end: float  # perf_counter when the last byte had arrived


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER = range(5)


class ClientProtocol(asyncio.Protocol):
    """One keep-alive client connection; one request in flight; timestamps taken on arrival."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Result] | None = None
        self._buf = bytearray()
        self._state = _HEAD
        self._status = 0
        self._remaining = 0
        self._body = bytearray()
        self._first = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed mid-response"))

    def request(self, data: bytes) -> asyncio.Future[Result]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buf += data
        while self._step(now):
            pass

    def _step(self, now: float) -> bool:
        """Parse what the buffer allows; True while progress is made."""
        buf = self._buf
        if self._state == _HEAD:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                return False
            head = bytes(buf[:i]).lower()
            del buf[: i + 4]
            self._status = int(head[9:12])
            te = head.find(b"transfer-encoding:")
            if te >= 0 and b"chunked" in head[te:].split(b"\r\n", 1)[0]:
                self._state = _CHUNK_SIZE
            else:
                self._remaining = _content_length(head)
                self._state = _BODY
            return True
        if self._state == _BODY:
            if len(buf) < self._remaining:
                return False
            self._body += buf[: self._remaining]
            del buf[: self._remaining]
            self._finish(now)
            return True
        if self._state == _CHUNK_SIZE:
            i = buf.find(b"\r\n")
            if i < 0:
                return False
            size = int(bytes(buf[:i]).split(b";", 1)[0], 16)
            del buf[: i + 2]
            if size == 0:
                self._state = _TRAILER
            else:
                self._remaining = size + 2
                self._state = _CHUNK_DATA
            return True
        if self._state == _CHUNK_DATA:
            if len(buf) < self._remaining:
                return False
            self._body += buf[: self._remaining - 2]
            del buf[: self._remaining]
            if not self._first and b"\n\n" in self._body:
                self._first = now
            self._state = _CHUNK_SIZE
            return True
        # _TRAILER: trailer lines up to an empty one
        i = buf.find(b"\r\n")
        if i < 0:
            return False
        del buf[: i + 2]
        if i == 0:
            self._finish(now)
        return True

    def _finish(self, now: float) -> None:
        result = Result(self._status, bytes(self._body), self._first, now)
        self._state = _HEAD
        self._body = bytearray()
        self._first = 0.0
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(result)


@dataclass(slots=True)
class Target:
    name: str
    port: int
    path: str
    key: str
    process: str  # the child process that answers

    def request(self, body: bytes) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nhost: {HOST}:{self.port}\r\n"
            f"content-type: application/json\r\nauthorization: Bearer {self.key}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def connect(self) -> ClientProtocol:
        _, protocol = await asyncio.get_running_loop().create_connection(
            ClientProtocol, HOST, self.port
        )
        return protocol


@dataclass(slots=True)
class Sample:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    elapsed: float = 0.0
    gateway_cpu: float = math.nan  # seconds the gateway process ran during the cell
    # Seconds its main thread (the event loop) was runnable but waited for a CPU: another
    # process had its core (or, for as long as they ran, the gateway's own other threads);
    # near 0 when the gateway is alone on its core.
    gateway_wait: float = math.nan
    steal: float = math.nan  # the largest share of a pinned core the hypervisor took, 0..1

    def error(self, what: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = what[:300]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def wait_share(self) -> float:
        """The share of the cell the gateway's event loop spent runnable on no CPU."""
        return self.gateway_wait / self.elapsed if self.elapsed else math.nan

    @property
    def cpu_per_request(self) -> float:
        done = len(self.latencies) + self.errors
        return self.gateway_cpu / done if done else math.nan


@dataclass(slots=True)
class Snapshot:
    process_cpu: float  # seconds on CPU of the watched process, NaN if unknown
    process_wait: float  # seconds its main thread waited on a run queue, NaN if unknown
    cores: dict[int, tuple[int, int]]  # cpu -> (steal ticks, all ticks)


class Probe:
    """CPU time and run-queue wait of the gateway and hypervisor steal of the pinned cores,
    from /proc (Linux)."""

    def __init__(self, pid: int | None, cpus: set[int]) -> None:
        self.pid = pid
        self.cpus = cpus

    def snapshot(self) -> Snapshot:
        return Snapshot(*self._process_times(), self._cores())

    def fill(self, sample: Sample, before: Snapshot) -> None:
        after = self.snapshot()
        sample.gateway_cpu = after.process_cpu - before.process_cpu
        sample.gateway_wait = after.process_wait - before.process_wait
        shares = [
            (after.cores[c][0] - before.cores[c][0])
            / max(1, after.cores[c][1] - before.cores[c][1])
            for c in after.cores
            if c in before.cores
        ]
        sample.steal = max(shares) if shares else math.nan

    def _process_times(self) -> tuple[float, float]:
        """Seconds on CPU of the process's threads, and waiting on a run queue of its main
        thread (the event loop's)."""
        if self.pid is None:
            return math.nan, math.nan
        ran = waited = 0
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                fields = (task / "schedstat").read_text().split()
                ran += int(fields[0])
                if task.name == str(self.pid):
                    waited = int(fields[1])
        except (OSError, ValueError, IndexError):
            return math.nan, math.nan
        return ran / 1e9, waited / 1e9

    def _cores(self) -> dict[int, tuple[int, int]]:
        cores: dict[int, tuple[int, int]] = {}
        try:
            lines = Path("/proc/stat").read_text().splitlines()
        except OSError:
            return cores
        for line in lines:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in self.cpus:
                ticks = [int(f) for f in fields[:8]]  # user .. steal; guest is inside user
                cores[int(name[3:])] = (ticks[7] if len(ticks) > 7 else 0, sum(ticks))
        return cores


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of ``values``; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def chat_body(stream: bool) -> bytes:
    prompt = ("Summarize the following customer note in one sentence. " * 20)[:1024]
    body: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def check_json(result: Result) -> str | None:
    """Why a non-streaming answer is wrong, or None."""
    if result.status != 200:
        return f"HTTP {result.status}: {result.body[:200]!r}"
    if b'"chat.completion"' not in result.body:
        return f"unexpected body: {result.body[:200]!r}"
    return None


def check_stream(result: Result) -> str | None:
    """Why a streaming answer is wrong, or None."""
    if result.status != 200:
        return f"HTTP {result.status}: {result.body[:200]!r}"
    events = result.body.count(b"data:")
    if events != STREAM_EVENTS + 1 or not result.body.rstrip().endswith(b"data: [DONE]"):
        return f"{events} events, ending {result.body[-80:]!r}"
    return None


async def _worker(
    target: Target,
    conns: list[ClientProtocol],
    slot: int,
    request: bytes,
    deadline: float,
    sample: Sample | None,
) -> None:
    while time.perf_counter() < deadline:
        conn = conns[slot]
        if conn.closed:
            conn = conns[slot] = await target.connect()
        t0 = time.perf_counter()
        try:
            result = await conn.request(request)
        except ConnectionError as exc:
            if sample is not None:
                sample.error(str(exc))
            continue
        problem = check_json(result)
        if sample is None:
            continue
        if problem is None:
            sample.latencies.append(result.end - t0)
        else:
            sample.error(problem)


async def run_load(
    target: Target,
    concurrency: int,
    warmup: float,
    duration: float,
    probe: Probe,
    body: bytes | None = None,
) -> Sample:
    """``concurrency`` closed-loop connections: a warm-up, then ``duration`` seconds measured."""
    request = target.request(body or chat_body(stream=False))
    conns = [await target.connect() for _ in range(concurrency)]
    sample = Sample()
    try:
        deadline = time.perf_counter() + warmup
        await asyncio.gather(
            *(_worker(target, conns, i, request, deadline, None) for i in range(concurrency))
        )
        before = probe.snapshot()
        t0 = time.perf_counter()
        await asyncio.gather(
            *(_worker(target, conns, i, request, t0 + duration, sample) for i in range(concurrency))
        )
        sample.elapsed = time.perf_counter() - t0
        probe.fill(sample, before)
    finally:
        for conn in conns:
            conn.close()
    return sample


@dataclass(slots=True)
class StreamSample:
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""


async def run_streams(
    target: Target, count: int, warmup: int, body: bytes | None = None
) -> StreamSample:
    """``count`` sequential streaming requests on one keep-alive connection."""
    request = target.request(body or chat_body(stream=True))
    conn = await target.connect()
    sample = StreamSample()
    try:
        for i in range(warmup + count):
            if conn.closed:
                conn = await target.connect()
            t0 = time.perf_counter()
            try:
                result = await conn.request(request)
            except ConnectionError as exc:
                problem: str | None = str(exc)
            else:
                problem = check_stream(result)
            if i < warmup:
                continue
            if problem is None:
                sample.first.append(result.first_event - t0)
                sample.last.append(result.end - t0)
            else:
                sample.errors += 1
                sample.first_error = sample.first_error or problem[:300]
    finally:
        conn.close()
    return sample


# ------------------------------------------------------------------------------ the benchmark


@dataclass(slots=True)
class Options:
    duration: float
    warmup: float
    streams: int
    concurrency: list[int]


@dataclass(slots=True)
class Placement:
    """Which CPUs each process may run on; empty sets mean no pinning."""

    gateway: set[int]
    others: set[int]

    @property
    def pinned(self) -> bool:
        return bool(self.gateway)


@dataclass(slots=True)
class Results:
    load: dict[tuple[str, int], Sample] = field(default_factory=dict)
    streams: dict[str, StreamSample] = field(default_factory=dict)
    cross_core_p50: float | None = None  # direct c=1 p50 with the upstream on the gateway's core
    ready_s: float = math.nan  # from launching `gateway serve` to its first 200 on /healthz
    rss_mib: float = math.nan  # the gateway's resident memory after the run


@contextlib.asynccontextmanager
async def _bounded(target: Target, seconds: float) -> AsyncIterator[None]:
    """A hung target fails the run instead of hanging it."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise BenchError(f"{target.process} stopped answering", target.process) from None


async def benchmark(
    direct: Target,
    gateway: Target,
    opts: Options,
    placement: Placement,
    upstream_pid: int,
    gateway_pid: int,
    progress: Callable[[str], None],
) -> Results:
    results = Results()
    cores = placement.gateway | placement.others or set(range(os.cpu_count() or 1))
    probes = {direct.name: Probe(None, cores), gateway.name: Probe(gateway_pid, cores)}
    for c in opts.concurrency:
        for target in (direct, gateway):
            progress(f"{target.name} c={c} ...")
            async with _bounded(target, opts.warmup + opts.duration + 30):
                sample = await run_load(target, c, opts.warmup, opts.duration, probes[target.name])
            results.load[target.name, c] = sample
            progress(
                f" {sample.rps:,.0f} req/s, p50 {sample.pct(0.5) * 1e3:.2f} ms,"
                f" p99 {sample.pct(0.99) * 1e3:.2f} ms, {sample.errors} errors\n"
            )
    for target in (direct, gateway):
        progress(f"{target.name} streams x{opts.streams} ...")
        async with _bounded(target, 30 + opts.streams * 0.1):
            results.streams[target.name] = s = await run_streams(target, opts.streams, 20)
        progress(f" first event p50 {percentile(s.first, 0.5) * 1e3:.2f} ms\n")
    if placement.pinned:
        # The same direct c=1 run with the upstream moved to the gateway's (now idle) core:
        # what a cross-core round trip costs on this machine.
        progress("direct c=1 with the upstream on the other core ...")
        os.sched_setaffinity(upstream_pid, placement.gateway)
        try:
            await asyncio.sleep(0.05)
            sample = await run_load(
                direct, 1, opts.warmup, min(opts.duration, 2.0), probes[direct.name]
            )
        finally:
            os.sched_setaffinity(upstream_pid, placement.others)
        results.cross_core_p50 = sample.pct(0.5)
        progress(f" p50 {sample.pct(0.5) * 1e3:.3f} ms\n")
    return results


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.2f} ms"


def report(results: Results, opts: Options, placement: Placement) -> str:
    versions = ", ".join(f"{name} {_version(name)}" for name in STACK)
    lines = [
        "## Gateway overhead (bench/overhead.py)",
        "",
        f"Python {platform.python_version()} ({platform.python_implementation()}),"
        f" {os.cpu_count()} CPUs, {platform.machine()}; stack: {versions}.",
        (
            f"One gateway worker pinned alone on CPU {_cpus(placement.gateway)}; the instant"
            f" upstream and the load generator share CPU {_cpus(placement.others)}."
            if placement.pinned
            else "Not pinned (fewer than two CPUs): every process shares the CPU."
        ),
        f"Non-streaming, 1 KB user prompt, keep-alive connections, {opts.warmup:g} s warm-up"
        f" then {opts.duration:g} s per cell; latency = request written to last byte read.",
        "",
        "| concurrency | direct req/s | gateway req/s | direct p50 | gateway p50 | added p50"
        " | direct p99 | gateway p99 | added p99 | gateway CPU/req | CPU steal | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    steals: list[float] = []
    for c in opts.concurrency:
        d, g = results.load["direct", c], results.load["gateway", c]
        steal = max(d.steal, g.steal)
        steals.append(steal)
        lines.append(
            f"| {c} | {d.rps:,.0f} | {g.rps:,.0f} | {_ms(d.pct(0.5))} | {_ms(g.pct(0.5))}"
            f" | **{_ms(g.pct(0.5) - d.pct(0.5))}** | {_ms(d.pct(0.99))} | {_ms(g.pct(0.99))}"
            f" | **{_ms(g.pct(0.99) - d.pct(0.99))}** | {_us(g.cpu_per_request)}"
            f" | {_pct(steal)} | {d.errors + g.errors} |"
        )
    lines += [
        "",
        "Gateway CPU/req: CPU time of the gateway process per request, from /proc (on a VM it"
        " includes stolen time; once the gateway is saturated it is about 1 / req/s)."
        " CPU steal: the largest share of a pinned core the hypervisor took during the cell.",
    ]
    worst = max((x for x in steals if not math.isnan(x)), default=0.0)
    if worst > STEAL_WARNING:
        lines += [
            "",
            f"**Warning: the host was busy** (up to {_pct(worst)} CPU steal in a cell): req/s"
            " and p99 are pessimistic; compare runs on a quiet host.",
        ]
    waits = [results.load["gateway", c].wait_share for c in opts.concurrency]
    waited = max((x for x in waits if not math.isnan(x)), default=0.0)
    if waited > STEAL_WARNING:
        lines += [
            "",
            f"**Warning: the gateway was not alone on its core**: its event loop waited for a"
            f" CPU up to {_pct(waited)} of a cell (run-queue time, from /proc), so other"
            " processes' time is in its latencies, its tail above all.",
        ]
    sd, sg = results.streams["direct"], results.streams["gateway"]
    lines += [
        "",
        f"Streaming, concurrency 1, {opts.streams} sequential requests ({STREAM_EVENTS}"
        " `chat.completion.chunk` events then `[DONE]`, sent at once by the upstream):",
        "",
        "| streaming | direct | gateway | added |",
        "|---|---:|---:|---:|",
    ]
    for label, attr in (("time to first event", "first"), ("time to last byte", "last")):
        for q in (0.5, 0.99):
            dv = percentile(getattr(sd, attr), q)
            gv = percentile(getattr(sg, attr), q)
            lines.append(f"| {label} p{q * 100:.0f} | {_ms(dv)} | {_ms(gv)} | {_ms(gv - dv)} |")
    lines.append(f"| errors | {sd.errors} | {sg.errors} | |")

    lines += [
        "",
        f"Start-up: ready (first 200 on /healthz) {results.ready_s:.2f} s after launch (bytecode"
        f" compiled, as make run has it); resident memory after the run {results.rss_mib:.0f} MiB.",
        "",
        "Targets:",
        "",
    ]
    for c, q, limit, what in TARGETS:
        if ("gateway", c) in results.load:
            added = results.load["gateway", c].pct(q) - results.load["direct", c].pct(q)
            verdict = "PASS" if added * 1e3 <= limit else "MISS"
            lines.append(
                f"- added {what} at concurrency {c} <= {limit:g} ms: {_ms(added)} **{verdict}**"
            )
        else:
            lines.append(f"- added {what} at concurrency {c} <= {limit:g} ms: not measured")

    if results.cross_core_p50 is not None and ("direct", 1) in results.load:
        same = results.load["direct", 1].pct(0.5)
        cross = results.cross_core_p50
        lines += [
            "",
            f"Note: cross-core wake-ups on this machine add latency at concurrency 1. The direct"
            f" baseline keeps client and upstream on one core (p50 {_ms(same)}); with the"
            f" upstream moved to the other core its p50 is {_ms(cross)}, so one cross-core round"
            f" trip costs about {_ms(cross - same)}. A request through the gateway makes two"
            f" (client to gateway, gateway to upstream): about {_ms(2 * (cross - same))} of the"
            " added p50 at concurrency 1 is wake-up latency, not gateway work.",
        ]
    return "\n".join(lines)


def _us(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e6:.0f} µs"


def _pct(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share * 100:.0f}%"


def _cpus(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------- process control


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _preexec(cpus: set[int]) -> Callable[[], None]:
    """Run in the child before exec: pin it, and have it killed if this process dies."""
    libc: ctypes.CDLL | None = None
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if libc is not None:
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return setup


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Processes:
    """The child processes, stopped on exit whatever happens."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self,
        name: str,
        argv: list[str],
        cpus: set[int],
        env: dict[str, str],
        cwd: Path | None = None,
    ) -> int:
        with open(self.work / f"{name}.stderr", "wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                preexec_fn=_preexec(cpus),
                start_new_session=True,  # Ctrl-C reaches only this process, which stops them
            )
        self.procs[name] = proc
        return proc.pid

    def stderr_tail(self, name: str) -> str:
        return _tail(self.work / f"{name}.stderr")

    def dead(self) -> str | None:
        """The name of a process that has exited, if any."""
        return next((n for n, p in self.procs.items() if p.poll() is not None), None)

    def print_failure(self, exc: BenchError) -> None:
        """``exc`` and the stderr tail of the process it names (of every one if none)."""
        print(f"benchmark failed: {exc}", file=sys.stderr)
        for name in [exc.process] if exc.process else list(self.procs):
            print(f"--- {name} ---\n{self.stderr_tail(name)}", file=sys.stderr)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}", name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class BenchError(Exception):
    def __init__(self, message: str, process: str | None = None) -> None:
        super().__init__(message)
        self.process = process


@contextlib.contextmanager
def checkout(ref: str, tree: Path) -> Iterator[Path]:
    """``ref`` of this checkout (the one bench/ is in) at ``tree``, a temporary git worktree
    removed on exit, to run a gateway from (``PYTHONPATH``, and the working directory)."""
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent), "worktree"]
    done = subprocess.run(
        [*git, "add", "--detach", str(tree), ref], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"git worktree add {ref} failed: {done.stderr.strip()}")
    try:
        yield tree
    finally:
        subprocess.run([*git, "remove", "--force", str(tree)], capture_output=True, check=False)


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (NaN if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return math.nan


def _wait_ready(
    procs: Processes, name: str, port: int, path: str | None, timeout: float, poll: float = 0.05
) -> None:
    """Until ``port`` accepts connections (and answers 200 on ``path`` if given)."""
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            if path is None:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not answer on port {port} within {timeout:g} s", name)
        time.sleep(poll)


def write_config(work: Path, upstream_port: int, policies: dict[str, str] | None = None) -> Path:
    """A gateway.yaml for the instant upstream, and one policy per name in ``policies``
    (default: ``bench``), each with the YAML given appended (a ``data:`` section, say)."""
    (work / "policies").mkdir()
    config = work / "gateway.yaml"
    config.write_text(
        "listen: {host: 127.0.0.1, port: 0}\n"
        "policies_dir: policies\n"
        "providers:\n"
        f'  up: {{type: openai, base_url: "http://{HOST}:{upstream_port}/v1",'
        " api_key_env: BENCH_UPSTREAM_KEY}\n"
        "models:\n"
        f"  {MODEL}: {{provider: up, upstream_model: {MODEL}}}\n"
        "auth: {api_keys_file: keys.yaml}\n"
    )
    for name, extra in (policies or {"bench": ""}).items():
        (work / "policies" / f"{name}.yaml").write_text(
            f"workflow: {name}\n"
            "owner: bench@example.com\n"
            f"access: {{roles: [bench], models: [{MODEL}]}}\n"
            "upstream: {timeout_s: 30, retries: 0}\n" + extra
        )
    return config


def compile_bytecode() -> None:
    """The gateway package's bytecode, as ``make run`` and the image's ``pip install`` have
    it: with ``PYTHONDONTWRITEBYTECODE`` set (as this project's sessions run) every launch
    would otherwise compile ~250 modules from source, ~0.25 s of the start-up measured."""
    gateway = Path(__file__).resolve().parent.parent / "gateway"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(gateway)], check=True)


def _gateway_cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "--config", str(config), *args]


def create_key(config: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        _gateway_cli(config, "keys", "create", "--subject", "bench", "--roles", "bench"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    key = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    if done.returncode != 0 or not key:
        raise BenchError(f"keys create failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return key


def placement() -> Placement:
    if not hasattr(os, "sched_getaffinity"):
        return Placement(set(), set())
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Placement(set(), set())
    return Placement({cpus[0]}, {cpus[1]})


def run(opts: Options) -> int:
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)  # the load generator
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}

    def progress(text: str) -> None:
        print(text, end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        procs = Processes(work)
        try:
            upstream_port, gateway_port = _free_port(), _free_port()
            upstream_pid = procs.start(
                "upstream",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--serve-upstream",
                    f"{upstream_port}",
                ],
                where.others,
                env,
            )
            config = write_config(work, upstream_port)
            key = create_key(config, env)
            _wait_ready(procs, "upstream", upstream_port, None, 10)
            compile_bytecode()
            launched = time.perf_counter()
            gateway_pid = procs.start(
                "gateway",
                [
                    *_gateway_cli(config),
                    *f"serve --port {gateway_port} --log-level warning".split(),
                ],
                where.gateway,
                env,
            )
            _wait_ready(procs, "gateway", gateway_port, "/healthz", 30, poll=0.01)
            ready_s = time.perf_counter() - launched
            direct = Target("direct", upstream_port, DIRECT_PATH, key, "upstream")
            gateway = Target("gateway", gateway_port, GATEWAY_PATH, key, "gateway")
            results = uvloop.run(
                benchmark(direct, gateway, opts, where, upstream_pid, gateway_pid, progress)
            )
            results.ready_s, results.rss_mib = ready_s, _rss_mib(gateway_pid)
            procs.check_alive()
        except (BenchError, OSError) as exc:
            process = exc.process if isinstance(exc, BenchError) else procs.dead()
            if process and not isinstance(exc, BenchError):
                exc = BenchError(f"{exc} ({process} exited with {procs.procs[process].returncode})")
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            for name in [process] if process else list(procs.procs):
                print(f"--- tail of {name} stderr ---\n{procs.stderr_tail(name)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop()

        print("\n" + report(results, opts, where))
        failures = [
            f"{name} c={c}: {s.errors} errors, first: {s.first_error}"
            for (name, c), s in results.load.items()
            if s.errors
        ] + [
            f"{name} streams: {s.errors} errors, first: {s.first_error}"
            for name, s in results.streams.items()
            if s.errors
        ]
        if failures:
            print("\nERRORS:\n" + "\n".join(failures), file=sys.stderr)
            tail = procs.stderr_tail("gateway")
            print(f"--- tail of gateway stderr ---\n{tail}", file=sys.stderr)
            return 1
    return 0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell (5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per cell")
    parser.add_argument("--streams", type=int, default=300, help="streaming requests per target")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated (1,16,64)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s cells, ~10 s")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream is not None:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(_serve_upstream(args.serve_upstream))
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    opts = Options(
        duration=1.0 if args.quick else args.duration,
        warmup=0.2 if args.quick else args.warmup,
        streams=100 if args.quick else args.streams,
        concurrency=[int(c) for c in args.concurrency.split(",") if c.strip()],
    )
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
