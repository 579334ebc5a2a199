"""Console fixtures: a gateway with review policies (and the PII corpus' masking and holding
policies), signed-in HTTP clients, and a reverse proxy that serves it all under ``/gw/``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.boundary.corpus import NER_MODEL
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, ReviewGateway, hook, start_review_gateway
from tests.support.clients import TLS

__all__ = ["hook"]  # the webhook receiver fixture, shared with tests/review

ENTITIES = {
    "PHONE_NUMBER": "mask", "SECRET": "redact", "EMAIL_ADDRESS": "tokenize", "IBAN_CODE": "mask",
    "PERSON": "mask", "CREDIT_CARD": "mask", "IP_ADDRESS": "mask", "LOCATION": "mask",
    "URL": "mask", "US_SSN": "redact",
}  # fmt: skip


def _pii(name: str, action: str | None, **extra: object) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "upstream": {"timeout_s": 5, "retries": 0},
        "data": {"entities": {e: action or a for e, a in ENTITIES.items()}},
        "retention": {"content": "masked"},
        **extra,
    }


PII_POLICIES = {
    "pii_masked": _pii("pii_masked", None),
    "pii_held": _pii(
        "pii_held", "block",
        fallback={"on": ["blocked"], "message": "Held for review."},
        review={"on": ["blocked"], "mode": "hold"},
    ),
}  # fmt: skip
LIMITED = {
    "workflow": "limited", "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    "limits": {"rate": [{"per": "user", "requests_per_minute": 40}]},
}  # fmt: skip


@pytest.fixture(scope="module")
def console_gw(
    upstream: FakeUpstream, hook: Hook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReviewGateway]:
    gw = start_review_gateway(
        tmp_path_factory.mktemp("console"), upstream, hook,
        extra={"nlp": {"engine": "spacy", "model": NER_MODEL}}, policies={**PII_POLICIES, "limited": LIMITED},
    )  # fmt: skip
    try:
        yield gw
    finally:
        gw.server.stop()


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """A signed-in console user over plain HTTP: a cookie jar and the page's CSRF token."""

    def __init__(self, base: str, credential: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30, follow_redirects=False, verify=TLS)
        signed = self.http.post("/console/login", data={"credential": credential})
        self.status = signed.status_code
        self.cookie = signed.headers.get("set-cookie", "")
        self.csrf = ""
        if signed.status_code == 303:
            page = self.http.get("/console/explorer")
            found = _CSRF.search(page.text)
            self.csrf = found.group(1) if found else ""

    def get(self, path: str) -> httpx.Response:
        return self.http.get(f"/console/{path}")

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        return self.http.post(
            f"/console/{path}", data={**data, **({"csrf": self.csrf} if csrf else {})}
        )

    def close(self) -> None:
        self.http.close()


class PrefixProxy:
    """A reverse proxy serving ``upstream`` under ``/gw``: strips the prefix on the way in and
    passes everything else (cookies, redirects, statuses) through unchanged."""

    def __init__(self, upstream: str) -> None:
        target = upstream

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if not self.path.startswith("/gw/"):
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                with httpx.Client(timeout=30, verify=TLS) as c:
                    r = c.request(
                        self.command, target + self.path[3:], headers=headers, content=body
                    )
                self.send_response(r.status_code)
                for k, v in r.headers.multi_items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/gw"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


from tests.review.conftest import make_store  # noqa: E402  the review store on both backends

__all__ += ["make_store"]
