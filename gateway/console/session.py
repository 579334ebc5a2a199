"""Console sessions: sign-in with a gateway key or a JWT the gateway accepts, a server-side
session (the review store's ``sessions`` table, so every instance and worker knows it and
sign-out ends it everywhere), a cookie that carries only its random id, and a CSRF token per
session that every state-changing request must echo.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request

from gateway.auth import Authenticator
from gateway.console.settings import ConsoleConfig
from gateway.errors import GatewayError
from gateway.review.store import ReviewStore, Session

__all__ = ["COOKIE", "Access", "Sessions"]

COOKIE = "gw_console"


@dataclass(frozen=True, slots=True)
class Access:
    """Which console roles a session holds."""

    admin: bool
    reviewer: bool
    auditor: bool

    @property
    def any(self) -> bool:
        return self.admin or self.reviewer or self.auditor


class Sessions:
    def __init__(self, config: ConsoleConfig, authenticator: Authenticator, store: ReviewStore):
        self._config = config
        self._auth = authenticator
        self._store = store

    def access(self, roles: frozenset[str]) -> Access:
        r = self._config.roles
        return Access(r.admin in roles, r.reviewer in roles, r.auditor in roles)

    async def sign_in(self, credential: str) -> Session | None:
        """A new session for a credential that holds a console role; None otherwise (the
        reason stays inside: every failure reads the same)."""
        try:
            principal = await self._auth.authenticate({"authorization": f"Bearer {credential}"})
        except GatewayError:
            return None
        if not self.access(principal.roles).any:
            return None
        expires = time.time() + self._config.session_minutes * 60
        if principal.expires_at is not None:  # a JWT's session ends with the token
            expires = min(expires, principal.expires_at)
        session = Session(
            secrets.token_urlsafe(32),
            principal.subject,
            principal.roles,
            secrets.token_urlsafe(32),
            expires,
        )
        await self._store.new_session(session)
        return session

    async def current(self, request: Request[Any, Any, Any]) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 128:
            return None
        return await self._store.session(sid, time.time())

    async def sign_out(self, session: Session) -> None:
        await self._store.end_session(session.id)

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())

    @staticmethod
    def cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> str:
        """No ``Path``: the browser scopes it to the console's folder as the client sees it,
        whatever prefix a reverse proxy adds."""
        secure = request.url.scheme == "https" or (
            request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
        )
        return f"{COOKIE}={value}; Max-Age={max_age}; HttpOnly; SameSite=Strict" + (
            "; Secure" if secure else ""
        )
