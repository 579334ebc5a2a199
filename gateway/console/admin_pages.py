"""The admin's pages: gateway keys (list, create with the key shown once, revoke) and the live
limits (counters and budget use, as ``GET /admin/limits`` reads them).

Keys live in ``auth.api_keys_file``, edited under its lock exactly as ``gateway keys`` does;
the running gateway rereads the file within a second.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from litestar import Response, get, post
from litestar.handlers import HTTPRouteHandler

from gateway import errors
from gateway.auth.keys import create_key, read_keys, revoke_key
from gateway.console.html import esc, form, table
from gateway.console.ui import Req, Ui, admin, redirect
from gateway.limits.report import usage_rows
from gateway.limits.step import Limits
from gateway.limits.store import StoreError
from gateway.policy.registry import PolicyRegistry
from gateway.yamlsource import ConfigError

__all__ = ["admin_handlers"]

_NAME = "^[A-Za-z0-9_.@:-]{1,128}$"
_VALID = re.compile(_NAME)


def _keys_body(path: Path, csrf: str, created: str = "") -> str:
    now = datetime.now(UTC)
    rows = []
    for key in read_keys(path):
        status = key.status(now)
        revoke = ""
        if status == "active":
            hidden = f'<input type="hidden" name="key_id" value="{esc(key.id)}">'
            revoke = form("keys-revoke", csrf, "Revoke", hidden, "inline revoke")
        rows.append([
            esc(key.id), esc(key.subject), esc(", ".join(key.roles)), esc(key.team),
            esc(key.created_at), esc(key.expires_at), esc(status), revoke,
        ])  # fmt: skip
    shown = ""
    if created:
        shown = (
            '<div class="error"><p>The new key, shown this once (only its hash is kept):</p>'
            f'<pre class="new-key">{esc(created)}</pre></div>'
        )
    fields = (
        f'<label>subject<input name="subject" required pattern="{_NAME}"></label>'
        '<label>roles (comma-separated)<input name="roles" required></label>'
        f'<label>team<input name="team" pattern="{_NAME}"></label>'
        '<label>expires in days<input name="days" type="number" min="1" max="3650"></label>'
    )
    headers = ["id", "subject", "roles", "team", "created", "expires", "status", ""]
    return (
        shown
        + table(headers, rows, "keys")
        + "<h2>New key</h2>"
        + form("keys-create", csrf, "Create key", fields, "filters create")
    )


def _burn(row: dict[str, object]) -> str:
    """How much of the limit is gone (spent and reserved), as a bar: a budget's burn-down."""
    limit, used = row.get("limit"), row.get("used")
    reserved = row.get("reserved") or 0.0
    if not isinstance(limit, int | float) or not isinstance(used, int | float) or limit <= 0:
        return ""
    assert isinstance(reserved, int | float)
    gone = min(1.0, (used + reserved) / limit)
    css = "bad" if gone >= 0.9 else "ok"
    return (
        f'<meter class="{css}" min="0" max="1" low="0.7" high="0.9" value="{gone:.3f}"></meter> '
        f"{gone:.0%}"
    )


def admin_handlers(
    ui: Ui, keys_file: Path, limits: Limits | None, registry: PolicyRegistry
) -> list[HTTPRouteHandler]:
    @get("/keys")
    async def keys(request: Req) -> Response[bytes]:
        who = await ui.guard(request, admin)
        if isinstance(who, Response):
            return who
        return ui.page("Keys", _keys_body(keys_file, who[0].csrf), who)

    @post("/keys-create", status_code=200)
    async def create(request: Req) -> Response[bytes]:
        fields = await ui.form_of(request)
        who = await ui.guard(request, admin, fields)
        if isinstance(who, Response):
            return who
        subject = fields.get("subject", "").strip()
        roles = [r.strip() for r in fields.get("roles", "").split(",") if r.strip()]
        team = fields.get("team", "").strip() or None
        days = fields.get("days", "").strip()
        names = [subject, *roles, *([team] if team else [])]
        if not roles or not all(_VALID.match(n) for n in names) or (days and not days.isdigit()):
            return ui.page(
                "Keys", "<p>subject and roles are required; days a number.</p>", who, 400
            )
        expires = datetime.now(UTC) + timedelta(days=int(days)) if days else None
        try:
            key, made = create_key(keys_file, subject, roles, team, expires)
        except (ConfigError, OSError) as exc:
            return ui.page(
                "Keys", f"<p>The keys file could not be written: {esc(exc)}</p>", who, 500
            )
        await ui.sessions.record(
            who[0], errors.CONSOLE_KEY_CREATED, action="key_create", key=made.id,
            key_subject=subject, key_roles=roles, key_team=team,
            expires=expires.isoformat(timespec="seconds") if expires else None,
        )  # fmt: skip
        return ui.page("Keys", _keys_body(keys_file, who[0].csrf, created=key), who)

    @post("/keys-revoke", status_code=303)
    async def revoke(request: Req) -> Response[bytes]:
        fields = await ui.form_of(request)
        who = await ui.guard(request, admin, fields)
        if isinstance(who, Response):
            return who
        try:
            revoked = revoke_key(keys_file, fields.get("key_id", ""))
        except KeyError:
            return ui.page("Keys", "<p>No such key.</p>", who, 404)
        await ui.sessions.record(
            who[0], errors.CONSOLE_KEY_REVOKED, action="key_revoke", key=revoked.id,
            key_subject=revoked.subject,
        )  # fmt: skip
        return redirect("keys")

    @get("/limits")
    async def limits_page(request: Req) -> Response[bytes]:
        who = await ui.guard(request, admin)
        if isinstance(who, Response):
            return who
        if limits is None:
            return ui.page("Limits", "<p>No limits are kept.</p>", who)
        try:
            rows = await usage_rows(
                limits.store, limits.prefix, registry.all(), time.time(), None, None
            )
        except StoreError:
            return ui.page("Limits", "<p>The limits store is unavailable.</p>", who, 503)
        if not rows:
            return ui.page("Limits", '<p class="muted">No counter is in use.</p>', who)
        columns = list(dict.fromkeys(c for r in rows for c in r))
        cells = [[esc(r.get(c)) for c in columns] + [_burn(r)] for r in rows]
        body = table([*columns, "burn-down"], cells, "limits")
        return ui.page("Limits", body, who)

    return [keys, create, revoke, limits_page]
