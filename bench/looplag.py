"""``gateway serve`` with a monitor of how long the event loop is held, and by what.

    python bench/looplag.py OUT.jsonl serve --config gateway.yaml ...

bench/hostile.py ``--holds`` runs the gateway this way. A thread asks the loop to run a
callback every millisecond; when one waits longer than ``HOLD_S``, the loop was held: the
thread samples the loop thread's stack (``sys._current_frames``; the interpreter hands the
thread the GIL at its next switch, 5 ms at most, so C code such as a JSON parse is seen
when it returns, in its caller) every millisecond until the callback runs, and writes one
line: the hold's wall and CPU time (the loop thread's own clock, so a loaded host does not
inflate it), the garbage collections inside it, and the sampled stacks (innermost gateway
frames). ``summarize`` groups the holds by kind: the innermost gateway function sampled most.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

HOLD_S = 0.005  # a callback waiting longer than this: the loop was held
_FRAMES = 4  # innermost gateway frames kept per sample


class Monitor(threading.Thread):
    def __init__(self, loop: asyncio.AbstractEventLoop, out: Path) -> None:
        super().__init__(name="looplag", daemon=True)
        self._loop = loop
        self._out = out.open("a", buffering=1)
        self._main = threading.main_thread().ident or 0
        self._clock = time.pthread_getcpuclockid(self._main)
        self._gcs: list[tuple[float, float, int]] = []  # (start, end, generation)
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gcs.append((self._gc_started, time.perf_counter(), int(info["generation"])))
            del self._gcs[:-200]

    def _stack(self) -> list[str]:
        frame = sys._current_frames().get(self._main)
        out: list[str] = []
        while frame is not None and len(out) < _FRAMES:
            name = frame.f_code.co_filename
            if "/gateway/" in name:
                out.append(f"{frame.f_code.co_qualname} ({name.rpartition('/gateway/')[2]})")
            frame = frame.f_back
        return out

    def run(self) -> None:
        while True:
            ran = threading.Event()
            asked = time.perf_counter()
            cpu = time.clock_gettime(self._clock)
            self._loop.call_soon_threadsafe(ran.set)
            samples: list[list[str]] = []
            while not ran.wait(0.001):
                if time.perf_counter() - asked > HOLD_S:
                    samples.append(self._stack())
            waited = time.perf_counter() - asked
            if waited > HOLD_S:
                ended = time.perf_counter()
                gcs = [(g, e - s) for s, e, g in list(self._gcs) if s >= asked and e <= ended]
                self._out.write(
                    json.dumps(
                        {
                            "wall_ms": round(waited * 1000, 2),
                            "cpu_ms": round((time.clock_gettime(self._clock) - cpu) * 1000, 2),
                            "gc_ms": round(sum(d for _, d in gcs) * 1000, 2),
                            "gc_gens": sorted({g for g, _ in gcs}),
                            "samples": samples,
                        }
                    )
                    + "\n"
                )
            time.sleep(0.001)


def summarize(path: Path, top: int = 12) -> str:
    """The holds of ``path`` grouped by kind: count, the longest and the median CPU time."""
    kinds: dict[str, list[float]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        hold = json.loads(line)
        if hold["gc_ms"] > hold["wall_ms"] / 2:
            kind = f"garbage collection (generation {max(hold['gc_gens'])})"
        else:
            inner = collections.Counter(s[0] for s in hold["samples"] if s)
            kind = inner.most_common(1)[0][0] if inner else "(no gateway frame sampled)"
        kinds[kind].append(hold["cpu_ms"])
    rows = sorted(kinds.items(), key=lambda kv: -max(kv[1]))[:top]
    lines = [f"{'loop held > 5 ms, by what (innermost frame)':<72} {'n':>5} {'max':>7} {'p50':>7}"]
    for kind, cpus in rows:
        cpus.sort()
        lines.append(f"{kind[:72]:<72} {len(cpus):5d} {cpus[-1]:7.1f} {cpus[len(cpus) // 2]:7.1f}")
    lines.append("(CPU ms of the loop thread during each hold)")
    return "\n".join(lines)


def main() -> int:
    out = Path(sys.argv[1])
    import uvicorn.server

    serve = uvicorn.server.Server.serve

    async def monitored(self: Any, sockets: Any = None) -> None:
        Monitor(asyncio.get_running_loop(), out).start()
        await serve(self, sockets)

    uvicorn.server.Server.serve = monitored  # type: ignore[method-assign]
    sys.argv = ["gateway", *sys.argv[2:]]
    from gateway.cli import main as gateway_main

    return gateway_main()


if __name__ == "__main__":
    sys.exit(main())
