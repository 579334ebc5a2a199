"""The console's HTML: one layout and a few helpers; every value goes through ``esc``.

Links and assets are relative (``static/console.css``, ``queue``): every page sits at the
console's top level, so the console works under any prefix a reverse proxy adds.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from gateway.console.session import Access

__all__ = ["esc", "form", "layout", "link", "table", "when"]

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    return f'<time data-epoch="{epoch:.3f}">{text} UTC</time>'


def link(page: str, text: str, **params: object) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f'<a href="{esc(page)}{"?" + esc(query) if query else ""}">{esc(text)}</a>'


def form(action: str, csrf: str, button: str, fields: str = "", css: str = "") -> str:
    return (
        f'<form method="post" action="{esc(action)}" class="{esc(css)}">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">{fields}'
        f'<button type="submit">{esc(button)}</button></form>'
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """``rows`` hold HTML already escaped by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def layout(title: str, body: str, access: Access | None, subject: str | None, csrf: str) -> str:
    nav = ""
    if access is not None:
        items = []
        if access.admin or access.reviewer:
            items.append(link("queue", "Review queue"))
        items.append(link("explorer", "Explorer"))
        if access.admin or access.auditor:
            items += [link("overview", "Overview"), link("policies", "Policies")]
            items.append(link("rollout", "Rollout"))
        if access.admin:
            items += [link("keys", "Keys"), link("limits", "Limits")]
        signed = f'<span class="who">{esc(subject)}</span>' + form("logout", csrf, "Sign out")
        nav = f'<nav>{" ".join(items)}<span class="spacer"></span>{signed}</nav>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · gateway console</title>"
        '<link rel="icon" href="static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="static/console.css">'
        '<script src="static/console.js" defer></script>'
        f"</head><body>{nav}<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
