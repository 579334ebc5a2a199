"""The official SDKs' clients as the tests build them, and one TLS context for the tests' HTTP
clients.

Every client the SDKs (through httpx2) and httpx build reads the system's CA certificates into
a TLS context of its own: 20 ms of CPU, for clients that only ever speak plain HTTP to local
test servers. The suite built some 4,000 (the load tests build a client per request), over a
minute of its CPU. These share one context, the one ``verify=True`` builds; each client is still
a new one, with connections of its own.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai

__all__ = ["TLS", "anthropic_client", "openai_client"]

TLS = httpx2.create_ssl_context()


def openai_client(**options: Any) -> openai.OpenAI:
    """``openai.OpenAI(**options)``, on the shared TLS context."""
    return openai.OpenAI(http_client=openai.DefaultHttpxClient(verify=TLS), **options)


def anthropic_client(**options: Any) -> anthropic.Anthropic:
    """``anthropic.Anthropic(**options)``, on the shared TLS context."""
    return anthropic.Anthropic(http_client=anthropic.DefaultHttpxClient(verify=TLS), **options)
