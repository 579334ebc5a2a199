"""``gateway serve``: run the gateway with uvicorn's server on uvloop and the gateway's own
HTTP/1.1 protocol on httptools (gateway/protocol.py), each chosen by measurement.

``--workers N`` serves one port with N processes: the supervisor (gateway/cli/supervisor.py,
uvicorn's with a socket per worker) binds the port once per worker with ``SO_REUSEPORT``, the
kernel spreads the connections over them, and it restarts a worker that dies. Each worker
builds its own app from the same ``gateway.yaml`` (``worker_app``); what that means for
limits, the vault and the audit trail is in gateway/workers.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar
from uvicorn.config import STARTUP_FAILURE

from gateway.app import create_app
from gateway.boundary.service import workers_key
from gateway.cli.common import config_path, load_or_exit
from gateway.cli.supervisor import Supervisor
from gateway.config import GatewayConfig, ServerConfig, load_config
from gateway.observe.logs import configure_logging
from gateway.protocol import protocol_for
from gateway.workers import parse_workers
from gateway.yamlsource import ConfigError

__all__ = ["register", "worker_app"]

# How the supervisor tells each (spawned) worker what to build; not a setting.
_WORKER_ENV = "GATEWAY_SERVE_WORKER"
# How long the supervisor waits for a worker to answer its health ping. A new worker answers
# only once its interpreter has started and unpickled its part (spawn); uvicorn's default,
# 5 s, killed every worker of a loaded 2-core host before it answered, restarting them for
# ever. Not much longer either: a ping sent to a worker that then exits (its app could not
# be built) waits out the whole bound before the supervisor sees the exit. The ping is
# answered by a thread of its own, so the bound never finds a busy event loop.
_WORKER_HEALTHCHECK_S = 20


def _workers(value: str) -> int:
    try:
        return parse_workers(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}': a number of at least 1, or auto") from None


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("serve", help="serve the gateway")
    p.add_argument("--host", help="override listen.host")
    p.add_argument("--port", type=int, help="override listen.port")
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes serving the port: a number, or auto for one per CPU (default 1). "
        "More than one without stores.redis_url is refused if a policy uses limits or tokenize",
    )
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or one JSON object each (default: observe.access_log.format)",
    )
    p.set_defaults(handler=run)


def _options(host: str, port: int, level: str, server: ServerConfig) -> dict[str, Any]:
    """uvicorn's settings; ``http``: the gateway's own protocol, with the head and body bounded
    (protocol.py); no access log of uvicorn's (the gateway writes its own,
    gateway/observe/logs.py), and uvicorn's lines go through the format configured here. No
    proxy-headers middleware: it rewrites the scope's client and scheme from
    ``X-Forwarded-*``, which nothing of the gateway reads (the console reads
    ``x-forwarded-proto`` itself), and it was one more ASGI layer on every request
    (docs/performance.md)."""
    return dict(
        host=host, port=port, loop="uvloop", http=protocol_for(server), access_log=False,
        log_config=None, log_level=level, server_header=False, proxy_headers=False,
    )  # fmt: skip


def _log_format(args: argparse.Namespace, config: GatewayConfig) -> str:
    return args.log_format or config.observe.access_log.format


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format or "text")
    config = load_or_exit(args)
    if _log_format(args, config) != (args.log_format or "text"):
        configure_logging(args.log_level, _log_format(args, config))
    host = args.host or config.listen.host
    port = args.port if args.port is not None else config.listen.port
    if args.workers > 1:
        return _supervise(args, host, port, config)
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    uvicorn.run(app, **_options(host, port, args.log_level, config.server))
    return 0


def _supervise(args: argparse.Namespace, host: str, port: int, config: GatewayConfig) -> int:
    """Run ``args.workers`` workers until SIGTERM/SIGINT; 2 if they could not start."""
    os.environ.update(workers_key(config, os.environ))  # one placeholder key for all workers
    os.environ[_WORKER_ENV] = json.dumps(
        {"config": str(config_path(args).resolve()), "workers": args.workers,
         "log_level": args.log_level, "log_format": _log_format(args, config)}
    )  # fmt: skip
    served = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        workers=args.workers,
        timeout_worker_healthcheck=_WORKER_HEALTHCHECK_S,
        **_options(host, port, args.log_level, config.server),
    )
    supervisor = Supervisor(served)
    with _shared_metrics(config):
        supervisor.run()
    # A worker whose app could not be built exits STARTUP_FAILURE (worker_app) and the
    # supervisor stops: every worker would fail the same way.
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 2 if failed else 0


@contextlib.contextmanager
def _shared_metrics(config: GatewayConfig) -> Iterator[None]:
    """A scrape reaches one worker; with ``PROMETHEUS_MULTIPROC_DIR`` each worker writes its
    values there and any scrape adds them all up (gateway/observe/metrics.py). Unless the
    operator named a folder, the workers get an empty one of this run's own, removed at exit:
    without it every scrape counted one worker's requests, whichever took the connection."""
    if not config.observe.metrics.enabled or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # the spawned workers' environment
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(folder, ignore_errors=True)


def worker_app() -> Litestar:
    """The app of one worker process, built in that process from what the supervisor said."""
    spec = json.loads(os.environ[_WORKER_ENV])
    configure_logging(spec["log_level"], spec["log_format"])
    try:
        return create_app(load_config(Path(spec["config"])), workers=spec["workers"])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
