"""What observing costs: the same gateway with observability off, with metrics on (and the
access log line), and with tracing sampled at 100 % and 1 %, measured in one run.

    python bench/observe.py            # about 60 s
    python bench/observe.py --quick    # about 15 s smoke run

The harness is bench/overhead.py's (instant upstream, the gateway pinned alone on one core,
a raw keep-alive load generator). Four gateways, one per cell, differ only in their
``observe`` section; they take turns under the same load, in interleaved rounds, so drift on
a shared host hits every cell alike. Spans go to a local OTLP sink that answers at once. The
observer's own work per finished request is also timed in process, without HTTP.

Targets (issue 18): metrics cost at most 5 % of throughput and at most 20 µs per request;
tracing at 1 % at most 5 % of throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import uvloop
from overhead import (
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

OFF = (
    "observe: {metrics: {enabled: false}, access_log: {enabled: false}, drift: {enabled: false}}\n"
)
METRICS = "observe: {metrics: {enabled: true}, access_log: {enabled: true}}\n"


def _tracing(ratio: float, port: int) -> str:
    return (
        "observe: {metrics: {enabled: true}, access_log: {enabled: true}, tracing: {enabled: true,"
        f' sample_ratio: {ratio}, endpoint: "http://127.0.0.1:{port}/v1/traces"}}}}\n'
    )


class _Sink(asyncio.Protocol):
    """An OTLP/HTTP collector that reads each request and answers 200 at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(rest) < length:
                return
            self.buf = rest[length:]
            self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n"
                         b"content-length: 0\r\n\r\n")  # fmt: skip


async def _serve_sink(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def in_process(rounds: int) -> float:
    """CPU µs the observer takes for one request (no HTTP): its hook at every step the request
    leaves, as ``RequestContext.enter`` calls it, then metrics, drift and the access log line
    at a level that is off when it finishes, with its share of the sampler's work once a
    second (moving the counts into prometheus-client, adding the drift samples to their
    windows)."""
    from gateway.config import ModelConfig
    from gateway.context import RequestContext
    from gateway.observe.config import DriftConfig
    from gateway.observe.drift import Drift
    from gateway.observe.labels import Labels
    from gateway.observe.logs import AccessLog
    from gateway.observe.metrics import Metrics
    from gateway.observe.observer import Observer
    from gateway.policy.compile import compile_policy
    from gateway.policy.models import Policy
    from gateway.policy.registry import PolicyRegistry
    from gateway.steps import Step

    # the steps of a request bench/overhead.py sends, in order (access twice)
    names = "gateway authenticate resolve_policy access read_request access limits boundary"
    steps = [Step(name) for name in f"{names} forward relay audit".split()]
    models = {"m": ModelConfig(provider="p", upstream_model="m", usd_per_mtok_in=1.0)}
    doc = {
        "workflow": "bench",
        "owner": "b@example.com",
        "access": {"roles": ["b"], "models": ["m"]},
    }
    policy = compile_policy(Policy.model_validate(doc), "bench.yaml")
    labels = Labels(PolicyRegistry({"bench": policy}), models)
    metrics = Metrics()
    drift = Drift(DriftConfig(), labels, metrics)
    observer = Observer(labels, metrics, AccessLog(labels), models, drift=drift)
    contexts = []
    for _ in range(rounds):  # made first: only the observer is timed
        ctx = RequestContext("chat", "bench")
        ctx.policy = policy
        ctx.timings = [(s, 0.0001) for s in steps]
        ctx.model_used, ctx.tokens_in, ctx.tokens_out, ctx.upstream_s = "m", 10, 2, 0.001
        contexts.append(ctx)
    gc.collect()
    gc.freeze()  # as the gateway does after start-up: the contexts made above are not scanned
    left = observer.left
    per_second = 2000  # about the requests bench/overhead.py's gateway serves in a second
    t0 = time.process_time()  # CPU time: a busy shared host inflates wall time
    for start in range(0, rounds, per_second):
        for ctx in contexts[start : start + per_second]:
            for step, took in ctx.timings:
                left(ctx, step, took)
        metrics.flush()
        drift.export()
    spent = time.process_time() - t0
    gc.unfreeze()
    return spent / rounds * 1e6


def in_pipeline(rounds: int, sink_port: int) -> dict[str, float]:
    """CPU µs per request of the real pipeline in process (mock provider, no HTTP, no audit
    sink), observability off and on: everything observing adds on the request path (the
    hook's calls, the observer, fingerprints), without the noise of a shared host's HTTP."""
    from gateway.audit.trail import AuditTrail
    from gateway.auth import Authenticator, KeyStore
    from gateway.auth.keys import create_key
    from gateway.config import GatewayConfig
    from gateway.context import RequestContext
    from gateway.observe.service import build_observe
    from gateway.pipeline import Call
    from gateway.policy.compile import compile_policy
    from gateway.policy.models import Policy
    from gateway.policy.registry import PolicyRegistry
    from gateway.services import build_pipeline
    from gateway.surfaces import OPENAI
    from gateway.upstream import build_providers

    body = json.dumps(
        {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "hello " * 150}]}
    ).encode()  # fmt: skip

    async def read_body() -> bytes:
        return body

    async def cell(observe_section: dict[str, object]) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            key = create_key(Path(tmp) / "keys.yaml", "bench", ["b"])[0]
            config = GatewayConfig.model_validate(
                {
                    "providers": {"demo": {"type": "mock"}},
                    "models": {"m": {"provider": "demo", "upstream_model": "m1"}},
                    "observe": observe_section,
                    "base_dir": tmp,
                }
            )
            doc = {"workflow": "bench", "owner": "b@example.com",
                   "access": {"roles": ["b"], "models": ["m"]}}  # fmt: skip
            registry = PolicyRegistry({"bench": compile_policy(Policy.model_validate(doc), "b")})
            auth = Authenticator(KeyStore(Path(tmp) / "keys.yaml"))
            observe = build_observe(config, registry, auth, {})
            providers = build_providers(config, {})
            trail = AuditTrail(None)
            pipeline = build_pipeline(
                config, {}, registry, auth, providers, trail, None, None, observe
            )
            headers = {"authorization": f"Bearer {key}"}
            call = Call(OPENAI, "bench", headers, read_body)

            async def one() -> None:
                ctx = observe.begin(RequestContext("chat", "bench"), "POST", "/w/{w}/v1/x", None)
                reply = await pipeline.complete(ctx, call)
                assert reply.status == 200, reply.body
                await trail.finish(ctx, reply.status)

            for _ in range(200):
                await one()
            gc.collect()
            gc.freeze()
            t0 = time.process_time()
            for _ in range(rounds):
                await one()
            spent = time.process_time() - t0
            gc.unfreeze()
            await pipeline.aclose()
            return spent / rounds * 1e6

    metrics = {"metrics": {"enabled": True}, "access_log": {"enabled": True}}
    sink = f"http://127.0.0.1:{sink_port}/v1/traces"
    cells: dict[str, dict[str, object]] = {
        "off": {"metrics": {"enabled": False}, "access_log": {"enabled": False}},
        "metrics": metrics,
        "tracing 1%": {
            **metrics,
            "tracing": {"enabled": True, "sample_ratio": 0.01, "endpoint": sink},
        },
    }
    logging.getLogger("gateway.access").setLevel(logging.ERROR)  # the new-fingerprint events
    results: dict[str, list[float]] = {name: [] for name in cells}
    for _ in range(3):  # interleaved: drift on a shared host hits every cell
        for name, section in cells.items():
            results[name].append(asyncio.run(cell(section)))
    return {name: min(values) for name, values in results.items()}


def _merge(samples: list[Sample]) -> Sample:
    out = Sample()
    out.gateway_cpu = 0.0
    for s in samples:
        out.latencies += s.latencies
        out.errors += s.errors
        out.first_error = out.first_error or s.first_error
        out.elapsed += s.elapsed
        out.gateway_cpu += s.gateway_cpu
    if out.errors:
        raise BenchError(f"{out.errors} errors, first: {out.first_error}")
    return out


async def measure(
    targets: list[tuple[Target, int]], cores: set[int], args: argparse.Namespace
) -> str:
    lines = []
    for c in args.concurrency:
        samples: dict[str, list[Sample]] = {t.name: [] for t, _ in targets}
        for _ in range(args.rounds):
            for target, pid in targets:
                samples[target.name].append(
                    await run_load(
                        target, c, args.warmup, args.duration / args.rounds, Probe(pid, cores)
                    )
                )
        merged = {n: _merge(v) for n, v in samples.items()}
        base = merged["off"]
        lines += [
            f"\nconcurrency {c}, non-streaming",
            "| cell | req/s | vs off | p50 | p99 | gateway CPU/req | added CPU/req |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, s in merged.items():
            lines.append(
                f"| {name} | {s.rps:,.0f} | {(s.rps / base.rps - 1) * 100:+.1f}%"
                f" | {percentile(s.latencies, 0.5) * 1e3:.2f} ms"
                f" | {percentile(s.latencies, 0.99) * 1e3:.2f} ms"
                f" | {s.cpu_per_request * 1e6:,.0f} µs"
                f" | {(s.cpu_per_request - base.cpu_per_request) * 1e6:+,.1f} µs |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per cell")
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", help="only these cells beside off: metrics,tracing 1%%,...")
    parser.add_argument("--serve-otlp", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_otlp is not None:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(_serve_sink(args.serve_otlp))
        return 0
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick:
        args.duration, args.rounds = 2.0, 2
    observer_us = in_process(2000 if args.quick else 20000)
    where = placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    here = Path(__file__).resolve()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        work = Path(tmp)
        procs = Processes(work)
        try:
            up_port, sink_port = _free_port(), _free_port()
            procs.start(
                "upstream",
                [sys.executable, str(here.with_name("overhead.py")), "--serve-upstream",
                 str(up_port)],
                where.others, env,
            )  # fmt: skip
            procs.start(
                "otlp", [sys.executable, str(here), "--serve-otlp", str(sink_port)],
                where.others, env,
            )  # fmt: skip
            cells = {
                "off": OFF,
                "metrics": METRICS,
                "metrics-no-drift": METRICS.replace("}}", "}, drift: {enabled: false}}"),
                "log-only": "observe: {metrics: {enabled: false}, access_log: {enabled: true}}\n",
                "tracing 100%": _tracing(1.0, sink_port),
                "tracing 1%": _tracing(0.01, sink_port),
            }
            if args.cells:
                cells = {n: cells[n] for n in ["off", *args.cells.split(",")] if n in cells}
            targets = []
            for i, (name, observe) in enumerate(cells.items()):
                cell = work / f"cell{i}"
                cell.mkdir()
                config = write_config(cell, up_port)
                config.write_text(config.read_text() + observe)
                key = create_key(config, env)
                port = _free_port()
                pid = procs.start(
                    f"gateway{i}",
                    [*_gateway_cli(config), *f"serve --port {port} --log-level warning".split()],
                    where.gateway,
                    env,
                )
                _wait_ready(procs, f"gateway{i}", port, "/healthz", 60)
                targets.append(
                    (Target(name, port, "/w/bench/v1/chat/completions", key, f"gateway{i}"), pid)
                )
            _wait_ready(procs, "upstream", up_port, None, 10)
            cores = where.gateway | where.others or set(range(os.cpu_count() or 1))
            pipeline_us = in_pipeline(1000 if args.quick else 5000, sink_port)
            table = uvloop.run(measure(targets, cores, args))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            for name in procs.procs:
                print(f"--- {name} ---\n{procs.stderr_tail(name)}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
    print("## Observability cost (bench/observe.py)")
    print(f"\nin process: the observer's work per finished request {observer_us:.1f} µs CPU")
    base = pipeline_us["off"]
    print(
        f"in process, the whole pipeline (mock provider, no HTTP): {base:.1f} µs CPU per"
        " request with observability off; "
        + ", ".join(f"{n} +{v - base:.1f} µs" for n, v in pipeline_us.items() if n != "off")
        + " (metrics: metrics, drift, fingerprints and the access log)"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
