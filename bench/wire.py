"""The new endpoints beside chat completions: what the gateway adds to a Responses API call
(whole and streamed) and to a 100-document embeddings batch (1 KB each, masking on), each
against the same instant upstream directly and through the gateway, in one run.

    python bench/wire.py            # about 60 s
    python bench/wire.py --quick    # about 15 s smoke run

The harness is bench/overhead.py's (processes, core placement, closed-loop connections, the
gateway's CPU from /proc); this file adds an instant upstream that also answers
``/v1/responses`` and ``/v1/embeddings``, and one cell per endpoint at concurrency 1 and 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead as oh  # the harness, beside this file

MODEL, EMBED = oh.MODEL, "bench-embed"
DOCUMENT = ("Customer ann@example.com wrote about order 4417 and the delivery delay. " * 16)[:1024]


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_ITEM = {
    "id": "msg_b",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "hello there", "annotations": []}],
}
_RESPONSE = {
    "id": "resp_b",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": MODEL,
    "output": [_ITEM],
    "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
}


def _responses_stream() -> bytes:
    at = {"item_id": "msg_b", "output_index": 0, "content_index": 0}
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": {**_RESPONSE, "output": [], "usage": None}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**_ITEM, "content": []}},
        {"type": "response.content_part.added", **at, "part": {"type": "output_text", "text": ""}},
    ]
    pieces = [f"tok{i} " for i in range(oh.STREAM_EVENTS - 6)]
    events += [{"type": "response.output_text.delta", **at, "delta": p} for p in pieces]
    text = "".join(pieces)
    item = {**_ITEM, "content": [{"type": "output_text", "text": text, "annotations": []}]}
    events += [
        {"type": "response.output_text.done", **at, "text": text},
        {"type": "response.content_part.done", **at, "part": item["content"][0]},  # type: ignore[index]
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {**_RESPONSE, "output": [item]}},
    ]
    frames = [
        oh._chunk(b"event: %s\ndata: %s\n\n" % (str(e["type"]).encode(), _json(e))) for e in events
    ]
    return b"".join(frames) + b"0\r\n\r\n"


def _embeddings() -> bytes:
    vector = [0.01] * 1536
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(100)]
    usage = {"prompt_tokens": 25_600, "total_tokens": 25_600}
    return _json({"object": "list", "data": data, "model": EMBED, "usage": usage})


def _whole(body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % len(body) + body


RESPONSES_JSON = _whole(_json(_RESPONSE))
EMBEDDINGS_JSON = _whole(_embeddings())
RESPONSES_STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n" + _responses_stream()
)


class WireUpstream(oh.UpstreamProtocol):
    """overhead.py's instant upstream, answering the Responses API and embeddings too."""

    def data_received(self, data: bytes) -> None:
        transport = cast(asyncio.Transport, self._transport)
        self._buf += data
        while True:
            i = self._buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self._buf[:i].lower()
            end = i + 4 + oh._content_length(head)
            if len(self._buf) < end:
                return
            body, self._buf = self._buf[i + 4 : end], self._buf[end:]
            stream = b'"stream":true' in body
            if head.startswith(b"post /v1/responses "):
                transport.write(RESPONSES_STREAM if stream else RESPONSES_JSON)
            elif head.startswith(b"post /v1/embeddings "):
                transport.write(EMBEDDINGS_JSON)
            elif head.startswith(b"post /v1/chat/completions "):
                transport.write(oh.RESPONSE_STREAM if stream else oh.RESPONSE_JSON)
            else:
                transport.write(oh.RESPONSE_404)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(WireUpstream, oh.HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


# (cell, path, body, what a good answer holds)
def cells() -> list[tuple[str, str, bytes, bytes]]:
    prompt = ("Summarize the following customer note in one sentence. " * 20)[:1024]
    responses = {"model": MODEL, "input": prompt}  # the chat cell's prompt
    return [
        ("chat", "/chat/completions", oh.chat_body(False), b'"chat.completion"'),
        ("responses", "/responses", _json(responses), b'"response"'),
        ("responses stream", "/responses", _json({**responses, "stream": True}), b"completed"),
        ("embeddings 100x1KB", "/embeddings", _json({"model": EMBED, "input": [DOCUMENT] * 100}),
         b'"embedding"'),
    ]  # fmt: skip


async def _cell(
    target: oh.Target, body: bytes, good: bytes, concurrency: int, seconds: float, probe: oh.Probe
) -> oh.Sample:
    request = target.request(body)
    conns = [await target.connect() for _ in range(concurrency)]
    sample = oh.Sample()

    async def worker(slot: int, until: float, measured: bool) -> None:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            result = await conns[slot].request(request)
            if not measured:
                continue
            if result.status == 200 and good in result.body:
                sample.latencies.append(result.end - t0)
            else:
                sample.error(f"HTTP {result.status}: {result.body[:200]!r}")

    try:
        warm = time.perf_counter() + min(1.0, seconds / 2)
        await asyncio.gather(*(worker(i, warm, False) for i in range(concurrency)))
        before = probe.snapshot()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i, t0 + seconds, True) for i in range(concurrency)))
        sample.elapsed = time.perf_counter() - t0
        probe.fill(sample, before)
    finally:
        for conn in conns:
            conn.close()
    return sample


def write_config(work: Path, port: int) -> Path:
    config = oh.write_config(work, port, {"bench": "", "bench_mask": _MASKING})
    text = config.read_text().replace(
        "models:\n",
        f"models:\n  {EMBED}: {{provider: up, upstream_model: {EMBED}, endpoints: [embeddings]}}\n",
    )
    config.write_text(text)
    for name in ("bench", "bench_mask"):
        path = work / "policies" / f"{name}.yaml"
        path.write_text(
            path.read_text().replace(f"models: [{MODEL}]", f"models: [{MODEL}, {EMBED}]")
        )
    return config


_MASKING = "data: {entities: {EMAIL_ADDRESS: mask, CREDIT_CARD: block}, scan_output: false}\n"


def run(seconds: float, concurrency: tuple[int, ...]) -> int:
    where = oh.placement()
    if where.pinned:
        os.sched_setaffinity(0, where.others)
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "PYTHONUNBUFFERED": "1"}
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gateway-wire-") as tmp:
        work = Path(tmp)
        procs = oh.Processes(work)
        try:
            up, gw = oh._free_port(), oh._free_port()
            argv = [sys.executable, str(Path(__file__).resolve()), "--serve-upstream", str(up)]
            procs.start("upstream", argv, where.others, env)
            config = write_config(work, up)
            key = oh.create_key(config, env)
            serve = f"serve --port {gw} --log-level warning".split()
            gateway_pid = procs.start(
                "gateway", [*oh._gateway_cli(config), *serve], where.gateway, env
            )
            oh._wait_ready(procs, "upstream", up, None, 10)
            oh._wait_ready(procs, "gateway", gw, "/healthz", 30)
            cores = where.gateway | where.others or set(range(os.cpu_count() or 1))
            for name, path, body, good in cells():
                workflow = "bench_mask" if name.startswith("embeddings") else "bench"
                direct = oh.Target("direct", up, "/v1" + path, key, "upstream")
                through = oh.Target("gateway", gw, f"/w/{workflow}/v1{path}", key, "gateway")
                for c in concurrency:
                    d = uvloop.run(_cell(direct, body, good, c, seconds, oh.Probe(None, cores)))
                    g = uvloop.run(
                        _cell(through, body, good, c, seconds, oh.Probe(gateway_pid, cores))
                    )
                    if d.errors or g.errors:
                        raise oh.BenchError(f"{name}: {d.first_error or g.first_error}", "gateway")
                    added = g.pct(0.5) - d.pct(0.5)
                    rows.append(
                        f"| {name} | {c} | {d.pct(0.5) * 1e3:.2f} ms | {g.pct(0.5) * 1e3:.2f} ms"
                        f" | {added * 1e3:.2f} ms | {g.pct(0.99) * 1e3:.2f} ms"
                        f" | {g.cpu_per_request * 1e6:,.0f} µs | {g.rps:,.0f} |"
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
        except (oh.BenchError, OSError) as exc:
            print(f"benchmark failed: {exc}\n{procs.stderr_tail('gateway')}", file=sys.stderr)
            return 1
        finally:
            procs.stop()
    print(
        "| cell | concurrency | direct p50 | gateway p50 | added p50 | gateway p99"
        " | gateway CPU/request | gateway req/s |\n" + "| --- " * 8 + "|"
    )
    print("\n".join(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s cells")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        uvloop.run(_serve(args.serve_upstream))
        return 0
    return run(1.0 if args.quick else 5.0, (1, 8))


if __name__ == "__main__":
    sys.exit(main())
