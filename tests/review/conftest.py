"""Review fixtures: the review store on SQLite and on the real PostgreSQL, a webhook receiver
(a local HTTP server that records every delivery and can be told to fail), and a gateway whose
policies hold, flag and gate tools."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gateway.review.db import PostgresDb, SqliteDb
from gateway.review.store import ReviewStore
from tests.audit.conftest import PG_URL, drop_schema
from tests.conftest import UPSTREAM_KEYS, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import TLS
from tests.support.server import GatewayServer, new_key, write_yaml

HOOK_SECRET = "hook-secret-for-tests"
FALLBACK = "A person will look at this request."


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], ReviewStore]]:
    """Opens review stores on one database (SQLite file, or a PostgreSQL schema of the
    test's own): a second one opened is the store after a gateway restart."""
    opened: list[ReviewStore] = []
    name = f"review_test_{uuid.uuid4().hex[:12]}"

    def make() -> ReviewStore:
        if request.param == "sqlite":
            store = ReviewStore(SqliteDb(tmp_path / "reviews.db"))
        else:
            store = ReviewStore(PostgresDb(PG_URL, name))
        opened.append(store)
        return store

    try:
        yield make
    finally:
        for store in opened:
            await store.close()
        if request.param == "postgres":
            await drop_schema(name)


@dataclass
class Hook:
    """What the receiver was sent: (headers, raw body) per delivery; ``fail`` answers 500 to
    that many deliveries first."""

    url: str = ""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail: int = 0
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.got) >= n, timeout)
        return list(self.got)

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.got]


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.arrived:
                if state.fail > 0:
                    state.fail -= 1
                    status = 500
                else:
                    status = 204
                state.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                state.arrived.notify_all()
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()


def review_policies(hook_url: str) -> dict[str, dict[str, object]]:
    base = {"owner": "tests@example.com"}
    access = {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]}
    blocked = {"entities": {"EMAIL_ADDRESS": "block", "PHONE_NUMBER": "mask"}}
    return {
        "held": {
            **base, "workflow": "held", "access": access, "data": blocked,
            "retention": {"content": "masked"},
            "fallback": {"on": ["blocked"], "message": FALLBACK},
            "review": {"on": ["blocked"], "mode": "hold", "assign_to": ["reviewer", "root"],
                       "sla_minutes": 5, "webhook": hook_url,
                       "webhook_secret_env": "REVIEW_HOOK_SECRET"},
        },
        "tooling": {
            **base, "workflow": "tooling",
            "access": {**access, "tools": ["refund_payment", "lookup_order"]},
            "fallback": {"on": ["upstream_error"], "message": FALLBACK},
            "review": {"on": ["tool:refund_payment"], "mode": "hold"},
        },
        "flagged": {
            **base, "workflow": "flagged", "access": access, "data": blocked,
            "fallback": {"on": ["blocked"], "message": FALLBACK, "review": True},
        },
        # Reveal is granted per workflow: "tokens" to the role reveal (vera holds it),
        # "tokens_b" to the subject rita; nobody else, the console's admin included.
        "tokens": {
            **base, "workflow": "tokens", "access": access,
            "data": {"entities": {"EMAIL_ADDRESS": "tokenize", "PHONE_NUMBER": "block"}},
            "fallback": {"on": ["blocked"], "message": FALLBACK},
            "review": {"on": ["blocked", "tool:refund_payment"], "mode": "hold",
                       "reveal": ["reveal"]},
        },
        "tokens_b": {
            **base, "workflow": "tokens_b", "access": access,
            "data": {"entities": {"EMAIL_ADDRESS": "tokenize", "PHONE_NUMBER": "block"}},
            "fallback": {"on": ["blocked"], "message": FALLBACK},
            "review": {"on": ["blocked"], "mode": "hold", "reveal": ["rita"]},
        },
    }  # fmt: skip


@dataclass
class ReviewGateway:
    url: str
    root: Path
    analyst: str  # alice: roles analyst
    other_analyst: str  # bob: roles analyst
    reviewer: str  # rita: roles reviewer
    other_reviewer: str  # remy: roles reviewer
    admin: str  # root: roles admin
    auditor: str  # audrey: roles auditor
    revealer: str  # vera: roles reviewer and reveal (granted reveal by the tokens workflow)
    server: GatewayServer

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {key}"}, timeout=15, verify=TLS
        )


def start_review_gateway(
    root: Path,
    upstream: FakeUpstream,
    hook: Hook,
    extra: dict[str, object] | None = None,
    policies: dict[str, dict[str, object]] | None = None,
) -> ReviewGateway:
    path, env, made = write_review_gateway(root, upstream, hook, extra, policies)
    server = GatewayServer(path, env).start()
    return ReviewGateway(server.url, root, server=server, **made)


def write_review_gateway(
    root: Path,
    upstream: FakeUpstream,
    hook: Hook,
    extra: dict[str, object] | None = None,
    policies: dict[str, dict[str, object]] | None = None,
) -> tuple[Path, dict[str, str], dict[str, str]]:
    """gateway.yaml, the policies and the keys under ``root`` (the keys made once): the
    config's path, the environment to serve it with, and the keys by name."""
    config = {**gateway_config(upstream), "audit": {"purge_interval_s": 0},
              "review": {"webhook_backoff_s": 0.05}, **(extra or {})}  # fmt: skip
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in {**review_policies(hook.url), **(policies or {})}.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    keys = root / "keys.yaml"
    made = {
        name: new_key(keys, subject, roles)
        for name, subject, roles in [
            ("analyst", "alice", ["analyst"]), ("other_analyst", "bob", ["analyst"]),
            ("reviewer", "rita", ["reviewer"]), ("other_reviewer", "remy", ["reviewer"]),
            ("admin", "root", ["admin"]), ("auditor", "audrey", ["auditor"]),
            ("revealer", "vera", ["reviewer", "reveal"]),
        ]
    } if not keys.exists() else _reuse(root)  # fmt: skip
    (root / "keys.json").write_text(json.dumps(made))
    env = {**UPSTREAM_KEYS, "REVIEW_HOOK_SECRET": HOOK_SECRET}
    return path, env, made


def _reuse(root: Path) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((root / "keys.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def review_gw(
    upstream: FakeUpstream, hook: Hook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReviewGateway]:
    gw = start_review_gateway(tmp_path_factory.mktemp("reviews"), upstream, hook)
    try:
        yield gw
    finally:
        gw.server.stop()
