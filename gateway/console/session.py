"""Console sessions: sign-in with a gateway key or a JWT the gateway accepts, a server-side
session (the review store's ``sessions`` table, so every instance and worker knows it and
sign-out ends it everywhere), a cookie that carries only its random id, and a CSRF token per
session that every state-changing request must echo.

Every sign-in, refused sign-in and sign-out is an audit record (endpoint ``console``) on the
hash chain, so ``gateway audit verify`` covers who opened the console, when, with which
roles; never the credential. Refusals are also counted in ``gateway_console_sign_ins``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from litestar import Request
from prometheus_client import Counter

from gateway import errors
from gateway.audit.record import event_record
from gateway.audit.writer import AuditWriter
from gateway.auth import Authenticator
from gateway.auth.principal import Principal
from gateway.console.settings import ConsoleConfig
from gateway.errors import GatewayError, Reason
from gateway.observe.metrics import Metrics
from gateway.review.store import ReviewStore, Session

__all__ = ["COOKIE", "Access", "Sessions"]

COOKIE = "gw_console"

log = logging.getLogger("gateway.console")


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
    def __init__(
        self,
        config: ConsoleConfig,
        authenticator: Authenticator,
        store: ReviewStore,
        writer: AuditWriter | None = None,
        metrics: Metrics | None = None,
    ):
        self._config = config
        self._auth = authenticator
        self._store = store
        self._writer = writer
        self._counted = (
            Counter(
                "gateway_console_sign_ins",
                "Console sign-ins by outcome (ok, refused).",
                ("outcome",),
                registry=metrics.registry,
            )
            if metrics is not None
            else None
        )

    def access(self, roles: frozenset[str]) -> Access:
        r = self._config.roles
        return Access(r.admin in roles, r.reviewer in roles, r.auditor in roles)

    def console_roles(self, roles: frozenset[str]) -> list[str]:
        r = self._config.roles
        return [name for name in (r.admin, r.reviewer, r.auditor) if name in roles]

    async def sign_in(self, credential: str) -> Session | None:
        """A new session for a credential that holds a console role; None otherwise (the
        reason stays inside: every failure reads the same, the audit record names it)."""
        try:
            principal = await self._auth.authenticate({"authorization": f"Bearer {credential}"})
        except GatewayError as exc:
            await self._refused(None, exc.reason.code)
            return None
        if not self.access(principal.roles).any:
            await self._refused(principal, errors.ACCESS_CONSOLE_ROLE.code)
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
        self._count("ok")
        await self._record(
            principal, errors.CONSOLE_SIGNED_IN, action="sign_in", outcome="ok",
            console_roles=self.console_roles(principal.roles), session=_ref(session),
            expires=round(expires, 3),
        )  # fmt: skip
        return session

    async def current(self, request: Request[Any, Any, Any]) -> Session | None:
        sid = request.cookies.get(COOKIE)
        if not sid or len(sid) > 128:
            return None
        return await self._store.session(sid, time.time())

    async def sign_out(self, session: Session) -> None:
        await self._store.end_session(session.id)
        await self._record(
            Principal(session.subject, session.roles), errors.CONSOLE_SIGNED_OUT,
            action="sign_out", outcome="ok", console_roles=self.console_roles(session.roles),
            session=_ref(session),
        )  # fmt: skip

    async def _refused(self, principal: Principal | None, cause: str) -> None:
        self._count("refused")
        await self._record(
            principal, errors.CONSOLE_SIGN_IN_REFUSED, action="sign_in", outcome="refused",
            cause=cause,
        )  # fmt: skip

    def _count(self, outcome: str) -> None:
        if self._counted is not None:
            self._counted.labels(outcome).inc()

    async def record(self, session: Session, reason: Reason, **console: Any) -> None:
        """An admin's action in the console (a key created or revoked), by ``session``'s
        subject, on the audit chain like its sign-in."""
        await self._record(Principal(session.subject, session.roles), reason, **console)

    async def _record(self, actor: Principal | None, reason: Reason, **console: Any) -> None:
        """Appended to the audit chain as a review action is; a failure is logged (the
        action itself does not depend on it)."""
        if self._writer is None:
            return
        record = event_record("console", str(console["action"]), None, None, actor, reason,
                              console=console)  # fmt: skip
        if console["action"] != "sign_in":  # the session's, not a credential's
            record = replace(record, key_id=None, auth_method=None)
        if not await self._writer.put(record):
            log.error("console %s not recorded in the audit trail", console["action"])

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


def _ref(session: Session) -> str:
    """Names a session in the audit trail without its id (the cookie's secret)."""
    return hashlib.sha256(session.id.encode()).hexdigest()[:16]
