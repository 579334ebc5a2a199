"""URL: with a scheme, www., or a bare domain under a common TLD; not file names, not e-mail."""

from __future__ import annotations

import pytest

from tests.boundary.conftest import Detect


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "see https://intranet.acme-corp.com/tickets/4821?tab=history.",
            ["https://intranet.acme-corp.com/tickets/4821?tab=history"],
        ),
        (
            "(http://grafana.internal.example.com:3000/d/abc)",
            ["http://grafana.internal.example.com:3000/d/abc"],
        ),
        ("old wiki: www.example-shop.de/account", ["www.example-shop.de/account"]),
        ("the site acme-widgets.com is down", ["acme-widgets.com"]),
        ("image registry.example.com/checkout:1.8.2", ["registry.example.com/checkout"]),
        # look-alikes
        ("mail jo@shop.example.co.uk", []),
        ("files main.py README.md config.yaml package.json run.sh index.html", []),
        ("app.module.ts data.tar.gz", []),
        ("version 2.14.3", []),
        ("obj.method() and self.items", []),
    ],
)
def test_url(detect: Detect, text: str, expected: list[str]) -> None:
    assert detect("URL", text) == expected
