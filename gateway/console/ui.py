"""What every console page shares: the role checks, the session and CSRF guard, the layout
around a body, and redirects. A refusal is always a page or a redirect to sign-in, never data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response

from gateway.console.html import SECURITY_HEADERS, layout
from gateway.console.session import Access, Sessions
from gateway.review.store import Session, StoreUnavailable

__all__ = ["Need", "Req", "Ui", "Who", "admin", "auditor", "reader", "redirect", "reviewer"]

Req = Request[Any, Any, Any]
Need = Callable[[Access], bool]
Who = tuple[Session, Access]


def reviewer(a: Access) -> bool:
    return a.admin or a.reviewer


def reader(a: Access) -> bool:
    return a.any


def auditor(a: Access) -> bool:
    return a.admin or a.auditor


def admin(a: Access) -> bool:
    return a.admin


def html(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        text.encode(),
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def redirect(to: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        b"", status_code=303, headers={**SECURITY_HEADERS, "location": to, **(headers or {})}
    )


class Ui:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def page(self, title: str, body: str, who: Who | None, status: int = 200) -> Response[bytes]:
        session, access = who if who else (None, None)
        subject = session.subject if session else None
        return html(layout(title, body, access, subject, session.csrf if session else ""), status)

    async def guard(
        self, request: Req, need: Need, form: dict[str, str] | None = None
    ) -> Who | Response[bytes]:
        """The session and its roles, or the refusal to send: ``form`` (a POST's fields)
        must carry the session's CSRF token."""
        try:
            session = await self.sessions.current(request)
        except StoreUnavailable:
            return self.page("Unavailable", "<p>The console's store is unavailable.</p>", None, 503)
        if session is None:
            if form is not None:  # a POST: no redirect that a script could follow
                return self.page("Sign in", '<p><a href="login">Sign in</a> first.</p>', None, 401)
            return redirect("login")
        access = self.sessions.access(session.roles)
        if not need(access):
            return self.page("Not allowed", f"<p>{_ROLE}</p>", (session, access), 403)
        if form is not None and not self.sessions.csrf_ok(session, form.get("csrf")):
            return self.page("Refused", f"<p>{_CSRF}</p>", (session, access), 403)
        return session, access

    @staticmethod
    async def form_of(request: Req) -> dict[str, str]:
        data = await request.form()
        return {k: str(v) for k, v in data.items() if isinstance(v, str)}


_ROLE = "Your roles do not open this page."
_CSRF = "The form&#x27;s CSRF token is missing or wrong: reload the page."
