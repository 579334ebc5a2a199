"""Start-up: from launching ``gateway serve`` to its first 200 on /healthz, a ref beside this
checkout, launches interleaved (issue 22: ready <= 1 s after launch, without NER).

    python bench/startup.py --before main                 # 10 launches of each, make run's
    python bench/startup.py --before main --deployment bench --runs 20
    python bench/startup.py --before main --bytecode source   # no .pyc: every module compiled

``--deployment make-run`` serves the repository's gateway.yaml and policies (the in-process
mock provider), as ``make run`` does; ``bench`` serves bench/overhead.py's config against its
instant upstream. Each side runs from a copy of its ``gateway`` package (``--bytecode
compiled``: compiled first, as ``make run`` and the image's ``pip install`` do; ``source``:
no bytecode, with ``PYTHONDONTWRITEBYTECODE=1``, as this host's sessions ran it). The gateway
is pinned to one core as bench/overhead.py pins it. Printed per side: wall time to ready, the
process's CPU time (user + system, /proc) at that point, and the first request's latency
beside the second's (what start-up work deferred to the first request would show).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from overhead import (
    GATEWAY_PATH,
    HOST,
    BenchError,
    Processes,
    _free_port,
    _gateway_cli,
    _wait_ready,
    chat_body,
    checkout,
    create_key,
    placement,
    write_config,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROLES = "sales-agent,support-agent,engineer,ops"  # the Makefile's
DEMO_PATH = "/w/lead_triage/v1/chat/completions"
DEMO_BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'


class Side(NamedTuple):
    source: Path  # the folder holding its gateway package
    config: Path
    path: str
    body: bytes
    key: str


class Launch(NamedTuple):
    ready: float  # s from launch to the first 200 on /healthz
    cpu: float  # s of CPU the process had used by then
    first: float  # s the first request took
    second: float


def _package(tree: Path, into: Path, compiled: bool) -> Path:
    """A copy of ``tree``'s gateway package (without bytecode) in ``into``, compiled if asked."""
    shutil.copytree(
        tree / "gateway", into / "gateway", ignore=shutil.ignore_patterns("__pycache__")
    )
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(into)], check=True)
    return into


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(port: int, path: str, body: bytes, key: str) -> float:
    """Seconds one POST took (it must answer 200)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    try:
        started = time.perf_counter()
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        took = time.perf_counter() - started
    finally:
        conn.close()
    if response.status != 200:
        raise BenchError(f"{path} answered {response.status}")
    return took


def _deployment(
    kind: str, tree: Path, folder: Path, env: dict[str, str], procs: Processes
) -> tuple[Path, str, bytes, str]:
    """(gateway.yaml, request path, body, key) in one side's own folder."""
    if kind == "make-run":  # the tree's own gateway.yaml and policies
        shutil.copy(tree / "gateway.yaml", folder / "gateway.yaml")
        shutil.copytree(tree / "policies", folder / "policies")
        config = folder / "gateway.yaml"
        argv = [*_gateway_cli(config), "keys", "create", "--subject", "demo", "--roles", DEMO_ROLES]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        return config, DEMO_PATH, DEMO_BODY, done.stdout.split()[0]
    port = _free_port()
    upstream = [
        sys.executable,
        str(Path(__file__).with_name("overhead.py")),
        "--serve-upstream",
        str(port),
    ]
    procs.start(f"upstream-{folder.name}", upstream, set(), env)
    _wait_ready(procs, f"upstream-{folder.name}", port, None, 10)
    config = write_config(folder, port)
    return config, GATEWAY_PATH, chat_body(False), create_key(config, env)


def launch(side: Side, env: dict[str, str], cpus: set[int]) -> Launch:
    """One launch of ``side``: until ready, then two requests."""
    port = _free_port()
    argv = [*_gateway_cli(side.config), "serve", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp))
        try:
            started = time.perf_counter()
            pid = procs.start(
                "gateway", argv, cpus, {**env, "PYTHONPATH": str(side.source)}, cwd=side.source
            )
            _wait_ready(procs, "gateway", port, "/healthz", 30, poll=0.005)
            ready = time.perf_counter() - started
            cpu = _cpu_s(pid)
            first = _request(port, side.path, side.body, side.key)
            second = _request(port, side.path, side.body, side.key)
        except BenchError as exc:
            procs.print_failure(exc)
            raise
        finally:
            procs.stop()
    return Launch(ready, cpu, first, second)


def _summary(name: str, rows: list[Launch]) -> str:
    def cell(values: list[float], scale: float, unit: str) -> str:
        values = sorted(v * scale for v in values)
        return f"{statistics.median(values):.3g} {unit} [{values[0]:.3g}-{values[-1]:.3g}]"

    ready, cpu, first, second = (list(column) for column in zip(*rows, strict=True))
    return (
        f"{name:>8}: ready {cell(ready, 1, 's')}, CPU {cell(cpu, 1, 's')}, "
        f"first request {cell(first, 1000, 'ms')}, second {cell(second, 1000, 'ms')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", help="a git ref to launch beside this checkout")
    parser.add_argument("--runs", type=int, default=10, help="launches of each side (default 10)")
    parser.add_argument("--deployment", choices=("make-run", "bench"), default="make-run")
    parser.add_argument("--bytecode", choices=("compiled", "source"), default="compiled")
    opts = parser.parse_args()
    compiled = opts.bytecode == "compiled"
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "x", "GATEWAY_VAULT_KEY": "ab" * 32}
    if not compiled:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cpus = placement().gateway
    rows: dict[str, list[Launch]] = {}
    with tempfile.TemporaryDirectory(prefix="gateway-startup-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        helpers = Processes(work)
        stack.callback(helpers.stop)
        trees = {"after": ROOT}
        if opts.before:
            trees = {"before": stack.enter_context(checkout(opts.before, work / "tree")), **trees}
        sides = {}
        for name, tree in trees.items():
            (folder := work / name).mkdir()
            source = _package(tree, folder / "src", compiled)
            side_env = {**env, "PYTHONPATH": str(source)}
            sides[name] = Side(
                source, *_deployment(opts.deployment, tree, folder, side_env, helpers)
            )
            rows[name] = []
        for run in range(opts.runs):
            for name in list(sides) if run % 2 == 0 else list(reversed(sides)):
                rows[name].append(launch(sides[name], env, cpus))
            print(f"\r{run + 1}/{opts.runs}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    print(
        f"{opts.deployment} deployment, {opts.bytecode} bytecode, {opts.runs} launches each, "
        "interleaved; median [min-max]:"
    )
    for name, got in rows.items():
        print(_summary(name, got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
