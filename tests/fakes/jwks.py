"""A local identity provider's JWKS endpoint: real HTTP, scriptable keys, delay and outage.

Serves ``GET /jwks.json`` from its own thread and event loop and counts every request, so
tests can assert exactly how often the gateway fetched.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import orjson
from aiohttp import web


class JwksServer:
    def __init__(self, keys: list[dict[str, Any]] | None = None) -> None:
        self._keys = list(keys or [])
        self._lock = threading.Lock()
        self.hits: list[str] = []  # the path of every request received
        self.delay = 0.0
        self.status = 200
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}/jwks.json"

    def set_keys(self, keys: list[dict[str, Any]]) -> None:
        with self._lock:
            self._keys = list(keys)

    @property
    def fetches(self) -> int:
        with self._lock:
            return sum(1 for p in self.hits if p == "/jwks.json")

    def start(self) -> JwksServer:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-jwks", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._runner = None

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        # The same port on every start, so a restarted provider is found at the same URL.
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()

    async def _handle(self, request: web.Request) -> web.Response:
        with self._lock:
            self.hits.append(request.path)
            keys, delay, status = list(self._keys), self.delay, self.status
        if delay:
            await asyncio.sleep(delay)
        if request.path != "/jwks.json":
            return web.Response(status=404)
        return web.Response(
            body=orjson.dumps({"keys": keys}), status=status, content_type="application/json"
        )
