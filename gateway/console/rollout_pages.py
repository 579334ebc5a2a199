"""The rollout page: per workflow its live version, candidate (canary share and key), pause
(who, when, why) and aborted canary (when, which signal, the figures), read from the rollout
service's ``status()`` exactly as ``GET /admin/rollout`` reads it.

Admins also get pause (reason required) and resume forms; those call the same service the
admin API calls, so the audit record of who and why is written the same way.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.handlers import HTTPRouteHandler

from gateway.auth.principal import Principal
from gateway.console.html import esc, form, table, when
from gateway.console.ui import Req, Ui, Who, admin, auditor, redirect
from gateway.policy.registry import PolicyRegistry
from gateway.rollout.routes import MAX_REASON
from gateway.rollout.service import Rollout
from gateway.stores.redis import StoreError

__all__ = ["rollout_handlers"]

_HEADERS = ["workflow", "live version", "candidate", "paused", "canary aborted", ""]


def _short(version: str | None) -> str:
    return f'<code title="{esc(version)}">{esc((version or "")[:19])}</code>'


def _candidate(row: dict[str, Any]) -> str:
    candidate = row.get("candidate")
    if candidate is None:
        return '<span class="muted">none</span>'
    share = f"{candidate['effective_percent']:g}% of {candidate['percent']:g}%"
    key = f" by {esc(candidate['key'])}" if candidate.get("key") else ""
    return f"{_short(candidate['version'])} {share}{key}"


def _paused(row: dict[str, Any]) -> str:
    parts = []
    if (pause := row.get("paused")) is not None:
        parts.append(
            f'<span class="bad">paused</span> by {esc(pause.get("by") or "unknown")} '
            f"{when(pause.get('at'))}: {esc(pause.get('reason'))}"
        )
    if row.get("mode_paused"):
        parts.append('<span class="bad">mode: paused</span> in the policy file')
    return "<br>".join(parts) or "no"


def _aborted(row: dict[str, Any]) -> str:
    aborted = (row.get("candidate") or {}).get("aborted")
    if aborted is None:
        return "no"
    requests = aborted.get("requests") or {}
    return (
        f'<span class="bad">aborted</span> {when(aborted.get("at"))}: '
        f"{esc(aborted.get('signal'))} {esc(aborted.get('candidate'))} against live "
        f"{esc(aborted.get('live'))} (limit {esc(aborted.get('limit'))}, z {esc(aborted.get('z'))}"
        f", {esc(requests.get('candidate'))} candidate and {esc(requests.get('live'))} live "
        "requests)"
    )


def _actions(row: dict[str, Any], csrf: str) -> str:
    hidden = f'<input type="hidden" name="workflow" value="{esc(row["workflow"])}">'
    if row.get("paused") is not None:
        return form("rollout-resume", csrf, "Resume", hidden, "inline resume")
    reason = (
        f'<input name="reason" required maxlength="{MAX_REASON}" placeholder="why" '
        'aria-label="reason">'
    )
    return form("rollout-pause", csrf, "Pause", hidden + reason, "inline pause")


def rollout_body(rows: list[dict[str, Any]], csrf: str, may_act: bool) -> str:
    cells = [
        [esc(r["workflow"]), _short(r["live_version"]), _candidate(r), _paused(r), _aborted(r),
         _actions(r, csrf) if may_act else ""]
        for r in rows
    ]  # fmt: skip
    return table(_HEADERS, cells, "rollout")


def rollout_handlers(ui: Ui, rollout: Rollout, registry: PolicyRegistry) -> list[HTTPRouteHandler]:
    def show(who: Who, error: str = "", status: int = 200) -> Response[bytes]:
        shown = f'<p class="error">{esc(error)}</p>' if error else ""
        body = rollout_body(rollout.status(), who[0].csrf, who[1].admin)
        return ui.page("Rollout", shown + body, who, status)

    def actor(who: Who) -> Principal:
        return Principal(who[0].subject, who[0].roles, method="key")

    @get("/rollout")
    async def page(request: Req) -> Response[bytes]:
        who = await ui.guard(request, auditor)
        if isinstance(who, Response):
            return who
        return show(who)

    @post("/rollout-pause", status_code=303)
    async def pause(request: Req) -> Response[bytes]:
        fields = await ui.form_of(request)
        who = await ui.guard(request, admin, fields)
        if isinstance(who, Response):
            return who
        workflow = fields.get("workflow", "")
        reason = " ".join(fields.get("reason", "").split())
        if workflow not in registry.all():
            return show(who, "No such workflow.", 404)
        if not reason or len(reason) > MAX_REASON:
            return show(who, f"A reason is required (1-{MAX_REASON} characters).", 400)
        try:
            await rollout.pause(workflow, reason, actor(who))
        except StoreError:
            return show(who, "The rollout store is unavailable: nothing was paused.", 503)
        return redirect("rollout")

    @post("/rollout-resume", status_code=303)
    async def resume(request: Req) -> Response[bytes]:
        fields = await ui.form_of(request)
        who = await ui.guard(request, admin, fields)
        if isinstance(who, Response):
            return who
        workflow = fields.get("workflow", "")
        if workflow not in registry.all():
            return show(who, "No such workflow.", 404)
        try:
            await rollout.resume(workflow, actor(who))
        except StoreError:
            return show(who, "The rollout store is unavailable: nothing was resumed.", 503)
        return redirect("rollout")

    return [page, pause, resume]
