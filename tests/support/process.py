"""The gateway as a separate ``python -m gateway serve`` process on a free port, as an
operator runs it (workers, signals, exit codes)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.error import URLError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_serve(
    config: Path, log: Path, *args: str, env: Mapping[str, str], port: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``gateway serve`` (stderr to ``log``) without waiting for it."""
    port = port or free_port()
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "serve", "--port",
             str(port), "--log-level", "warning", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            env={**os.environ, **env}, start_new_session=True,
        )  # fmt: skip


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every worker it spawned (its own session, start_serve), so a
    failed test leaves no supervisor respawning workers behind it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    """Until ``url``/readyz answers 200; raise with the log's tail if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/readyz", timeout=1).read()
            return
        except (URLError, OSError):
            time.sleep(0.05)
    kill_group(proc)
    raise RuntimeError(f"gateway did not start: {log.read_text()[-2000:]}")


def serve(
    config: Path, log: Path, *args: str, env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """A started, ready gateway process and its base URL."""
    return serve_many(config, [log], *args, env=env)[0]


def serve_many(
    config: Path, logs: list[Path], *args: str, env: Mapping[str, str]
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """One ready gateway process per log, all started before any is waited for (a start is
    mostly imports: two take the time of one on two cores)."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for log in logs:
            port = free_port()
            started.append(
                (start_serve(config, log, *args, env=env, port=port), f"http://127.0.0.1:{port}")
            )
        for (proc, url), log in zip(started, logs, strict=True):
            wait_ready(proc, url, log)
    except BaseException:
        for proc, _ in started:
            kill_group(proc)
        raise
    return started
