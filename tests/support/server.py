"""The gateway as a real HTTP server (uvicorn in a thread, on a free port) for the tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn
import uvloop
import yaml

from gateway.app import create_app
from gateway.auth.keys import create_key
from gateway.config import load_config
from gateway.protocol import protocol_for


class GatewayServer:
    """Serves ``create_app(load_config(config))`` until ``stop``; ``url`` is its base URL."""

    def __init__(self, config: Path, env: Mapping[str, str]) -> None:
        loaded = load_config(config, dict(env))
        app = create_app(loaded, env)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                loop="none",
                http=protocol_for(loaded.server),  # as `gateway serve` runs
                log_level="warning",
                access_log=False,
                lifespan="on",
            )
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        uvloop.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> GatewayServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def write_yaml(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def new_key(keys_file: Path, subject: str, roles: list[str]) -> str:
    return create_key(keys_file, subject, roles)[0]
