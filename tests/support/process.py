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
    port = free_port()
    proc = start_serve(config, log, *args, env=env, port=port)
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, log)
    return proc, url
