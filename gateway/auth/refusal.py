"""401s that tell the client how to authenticate (RFC 6750), whatever check refused them."""

from __future__ import annotations

from gateway import errors
from gateway.errors import GatewayError, Reason

__all__ = ["unauthorized"]

_REALM = 'Bearer realm="llm-gateway"'


def unauthorized(reason: Reason, detail: str | None = None) -> GatewayError:
    """A 401 with ``WWW-Authenticate``; ``detail`` stays in the logs, never in the response.

    RFC 6750 §3.1: a request without credentials gets the bare challenge, a bad credential
    ``error="invalid_token"``.
    """
    challenge = _REALM if reason is errors.AUTH_MISSING_KEY else f'{_REALM}, error="invalid_token"'
    return GatewayError(reason, detail=detail, headers={"www-authenticate": challenge})
