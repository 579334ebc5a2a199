"""The console's routes under ``console.prefix``: every page checks the session and its role,
every POST its CSRF token, and a refusal is a page (or a redirect to sign-in), never data.

| page | roles |
| --- | --- |
| queue, review, claim, decide | admin, reviewer |
| reveal | admin or reviewer, granted ``review.reveal`` by the item's workflow |
| explorer, record, explain | admin, reviewer, auditor |
| overview, policies, rollout | admin, auditor |
| keys, keys-create, keys-revoke, limits, rollout-pause, rollout-resume | admin |
"""

from __future__ import annotations

import time
from collections import Counter
from importlib import resources
from pathlib import Path

from litestar import Response, Router, get, post

from gateway.audit.chain import GENESIS, StoredRow
from gateway.audit.history import HistoryError, open_history
from gateway.audit.sink import AuditStore, SinkError
from gateway.audit.writer import AuditWriter
from gateway.auth import Authenticator
from gateway.auth.principal import Principal
from gateway.config import GatewayConfig
from gateway.console import audit_pages, queue_pages
from gateway.console.admin_pages import admin_handlers
from gateway.console.html import esc
from gateway.console.overview import overview
from gateway.console.policy_tests import PolicyTests
from gateway.console.rollout_pages import rollout_handlers
from gateway.console.rollups import Rollups
from gateway.console.session import Sessions
from gateway.console.settings import ConsoleConfig
from gateway.console.ui import Req, Ui, auditor, html, reader, redirect, reviewer
from gateway.errors import GatewayError
from gateway.limits.step import Limits
from gateway.observe.metrics import Metrics
from gateway.policy.registry import PolicyRegistry
from gateway.review.routes import decision_of
from gateway.review.service import Reviews
from gateway.review.store import Session, StoreUnavailable
from gateway.rollout.service import Rollout
from gateway.tools.cases import CasePrincipal, CaseRequest
from gateway.tools.explain import explain

__all__ = ["console_router"]

_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_PAGE = 100


def console_router(
    config: ConsoleConfig,
    authenticator: Authenticator,
    reviews: Reviews,
    audit: AuditStore | None,
    registry: PolicyRegistry,
    keys_file: Path,
    limits: Limits | None,
    gateway: GatewayConfig,
    rollout: Rollout,
    writer: AuditWriter | None = None,
    metrics: Metrics | None = None,
) -> Router:
    sessions = Sessions(config, authenticator, reviews.store, writer, metrics)
    policy_tests = PolicyTests(gateway)
    history = open_history(gateway) if gateway.audit.enabled else None

    ui = Ui(sessions)
    rollups = Rollups(audit, reviews.store) if audit is not None else None
    page, guard, form_of = ui.page, ui.guard, ui.form_of

    @get("/", name="console-home")
    async def home(request: Req) -> Response[bytes]:
        # Relative links need the trailing slash; litestar's path has it stripped.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        if not raw.split(b"?")[0].endswith(b"/"):
            return redirect(config.prefix.rsplit("/", 1)[-1] + "/")
        session = await sessions.current(request)
        if session is None:
            return redirect("login")
        return redirect("queue" if reviewer(sessions.access(session.roles)) else "explorer")

    @get("/static/{name:str}")
    async def static(request: Req) -> Response[bytes]:
        name = request.path_params["name"]
        if name not in _STATIC:
            return html("not found", 404)
        data = resources.files("gateway.console").joinpath("static", name).read_bytes()
        return Response(
            data,
            media_type=_STATIC[name],
            headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
        )

    def login_form(error: str = "") -> str:
        shown = f'<p class="error">{esc(error)}</p>' if error else ""
        return (
            f'<div class="login">{shown}<form method="post" action="login">'
            '<label for="credential">Gateway key or JWT</label>'
            '<input id="credential" name="credential" type="password" autocomplete="off" required>'
            '<button type="submit">Sign in</button></form></div>'
        )

    @get("/login")
    async def login_page() -> Response[bytes]:
        return page("Sign in", login_form(), None)

    @post("/login", status_code=303)
    async def login(request: Req) -> Response[bytes]:
        credential = (await form_of(request)).get("credential", "").strip()
        session = await sessions.sign_in(credential) if 0 < len(credential) <= 16384 else None
        if session is None:
            return page(
                "Sign in",
                login_form("Those credentials do not open the console."),
                None,
                401,
            )
        max_age = max(1, int(session.expires - time.time()))
        landing = "queue" if reviewer(sessions.access(session.roles)) else "explorer"
        return redirect(landing, {"set-cookie": Sessions.cookie(request, session.id, max_age)})

    @post("/logout", status_code=303)
    async def logout(request: Req) -> Response[bytes]:
        who = await guard(request, reader, await form_of(request))
        if isinstance(who, Response):
            return who
        await sessions.sign_out(who[0])
        return redirect("login", {"set-cookie": Sessions.cookie(request, "", 0)})

    @get("/queue")
    async def queue(request: Req) -> Response[bytes]:
        who = await guard(request, reviewer)
        if isinstance(who, Response):
            return who
        params = request.query_params
        state = params.get("state", "pending")
        workflow = params.get("workflow") or None
        after = None
        if cursor := params.get("after"):
            created, _, id_ = cursor.partition(":")
            try:
                after = (float(created), id_)
            except ValueError:
                after = None
        items = await reviews.store.list(
            state=None if state == "all" else state,
            workflow=workflow,
            after=after,
            limit=_PAGE,
        )
        next_ = f"{items[-1].created!r}:{items[-1].id}" if len(items) == _PAGE else None
        return page(
            "Review queue",
            queue_pages.queue_page(items, who[0].csrf, state, workflow, next_),
            who,
        )

    @get("/review")
    async def review(request: Req) -> Response[bytes]:
        who = await guard(request, reviewer)
        if isinstance(who, Response):
            return who
        try:
            item = await reviews.get(request.query_params.get("id", ""))
        except GatewayError as exc:
            return page("Review", f"<p>{esc(exc.message)}</p>", who, exc.status)
        return page(
            f"Review {item.id}",
            queue_pages.item_page(
                item,
                who[0].csrf,
                who[0].subject,
                may_reveal=reviews.may_reveal(item, principal(who[0])),
            ),
            who,
        )

    @post("/reveal", status_code=200)
    async def reveal(request: Req) -> Response[bytes]:
        form = await form_of(request)
        who = await guard(request, reviewer, form)
        if isinstance(who, Response):
            return who
        try:
            item = await reviews.reveal(form.get("id", ""), principal(who[0]), form.get("why", ""))
        except GatewayError as exc:
            return page("Reveal refused", f"<p>{esc(exc.message)}</p>", who, exc.status)
        body = queue_pages.item_page(item, who[0].csrf, who[0].subject, revealed=True)
        return page(f"Review {item.id}", body, who)

    def principal(session: Session) -> Principal:
        return Principal(session.subject, session.roles, method="key")

    @post("/claim", status_code=303)
    async def claim(request: Req) -> Response[bytes]:
        form = await form_of(request)
        who = await guard(request, reviewer, form)
        if isinstance(who, Response):
            return who
        id_ = form.get("id", "")
        try:
            await reviews.claim(id_, principal(who[0]))
        except GatewayError as exc:
            return page("Claim refused", f"<p>{esc(exc.message)}</p>", who, exc.status)
        return redirect(f"review?id={esc(id_)}")

    @post("/decide", status_code=303)
    async def decide(request: Req) -> Response[bytes]:
        form = await form_of(request)
        who = await guard(request, reviewer, form)
        if isinstance(who, Response):
            return who
        id_ = form.get("id", "")
        try:
            verdict, note, text = decision_of(
                form.get("verdict"), form.get("note"), form.get("text")
            )
            await reviews.decide(id_, principal(who[0]), verdict, note, text)
        except GatewayError as exc:
            return page("Decision refused", f"<p>{esc(exc.message)}</p>", who, exc.status)
        return redirect(f"review?id={esc(id_)}")

    @get("/explorer")
    async def explorer(request: Req) -> Response[bytes]:
        who = await guard(request, reader)
        if isinstance(who, Response):
            return who
        if audit is None:
            return page("Explorer", "<p>The audit trail is off (audit.enabled: false).</p>", who)
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        try:
            query = audit_pages.query_of(params, _PAGE)
        except ValueError:
            return page(
                "Explorer",
                "<p>since/until: epoch seconds or ISO 8601; after: a seq.</p>",
                who,
                400,
            )
        try:
            rows = await audit.query(query)
        except SinkError:
            return page("Explorer", "<p>The audit store is unavailable.</p>", who, 503)
        if request_id := params.get("request"):
            found = (
                await audit.get(request_id)
                if request_id.isascii() and not request_id.isdigit()
                else None
            )
            rows = [found] if found else []
        return page("Explorer", audit_pages.explorer_page(rows, params, len(rows) == _PAGE), who)

    @get("/record")
    async def record(request: Req) -> Response[bytes]:
        who = await guard(request, reader)
        if isinstance(who, Response):
            return who
        seq = request.query_params.get("seq", "")
        if audit is None or not seq.isdigit():
            return page("Record", "<p>No such record.</p>", who, 404)
        row = await audit.get(seq)
        if row is None or row.body is None:
            return page("Record", "<p>No such record (or it was purged).</p>", who, 404)
        status = await _chain_status(audit, row)
        policy = registry.all().get(row.workflow or "")
        kept = None
        record_of = row.record()
        version = record_of.policy_version if record_of else None
        if version and (policy is None or policy.version != version) and row.workflow:
            try:  # a version no longer loaded: its text as the policy history kept it
                versions = await history.versions(row.workflow) if history else []
            except HistoryError:
                versions = []
            kept = next((v for v in versions if v.version == version), None)
        body = audit_pages.record_page(row, status, policy, kept)
        return page(f"Record {row.seq}", body, who)

    @get("/explain")
    async def explain_route(request: Req) -> Response[bytes]:
        """``policy explain`` on a record's masked content under the policy loaded now: the
        request as it left (values already masked), by the same caller, run offline."""
        who = await guard(request, reader)
        if isinstance(who, Response):
            return who
        seq = request.query_params.get("seq", "")
        row = await audit.get(seq) if audit is not None and seq.isdigit() else None
        record = row.record() if row is not None and row.body is not None else None
        users = [
            m["text"] for m in ((record.content or {}).get("request", []) if record else [])
            if m.get("role") == "user"
        ]  # fmt: skip
        if row is None or record is None or not users or record.workflow is None:
            return page("Explain", "<p>No masked content kept for that record.</p>", who, 404)
        policies = registry.all()
        if record.workflow not in policies:
            return page("Explain", "<p>That workflow is no longer loaded.</p>", who, 404)
        caller = CasePrincipal(
            subject=record.subject or "unknown", roles=tuple(record.roles), team=record.team
        )
        model = record.model_requested or policies[record.workflow].access.models[0]
        asked = CaseRequest(model=model, messages=[{"role": "user", "content": users[-1]}])
        explained = await explain(gateway, policies, record.workflow, caller, asked)
        return page(f"Explain record {row.seq}", audit_pages.explain_page(row.seq, explained), who)

    @get("/overview")
    async def overview_route(request: Req) -> Response[bytes]:
        who = await guard(request, auditor)
        if isinstance(who, Response):
            return who
        try:
            hours = min(max(float(request.query_params.get("hours", 24)), 0.01), 24 * 90)
        except ValueError:
            hours = 24.0
        if rollups is None:
            return page("Overview", "<p>The audit trail is off.</p>", who)
        try:
            stats, start, behind = await overview(
                rollups, reviews.store, registry.all(), hours, wait=False
            )
        except (SinkError, StoreUnavailable):
            return page("Overview", "<p>The audit or review store is unavailable.</p>", who, 503)
        return page("Overview", audit_pages.overview_page(stats, hours, start, behind), who)

    @get("/policies")
    async def policies(request: Req) -> Response[bytes]:
        who = await guard(request, auditor)
        if isinstance(who, Response):
            return who
        current = registry.current
        verdicts: dict[str, Counter[str]] = {}
        if rollups is not None and current.candidates:
            try:
                now = time.time()
                figures = (await rollups.period(now - 86_400, now, wait=False)).figures
            except (SinkError, StoreUnavailable):
                figures = {}  # the page still lists the policies; verdicts show as 0
            verdicts = {name: r.candidates for name, r in figures.items()}
        tests, running = await policy_tests.current(current.policies)
        body = audit_pages.policies_page(current, registry.last_error, verdicts, tests, running)
        body = '<p><a href="rollout">Rollout: canaries, pauses and aborts</a></p>' + body
        return page("Policies", body, who)

    handlers = [
        *admin_handlers(ui, keys_file, limits, registry),
        *rollout_handlers(ui, rollout, registry),
        home,
        static,
        login_page,
        login,
        logout,
        queue,
        review,
        claim,
        decide,
        reveal,
        explorer,
        record,
        explain_route,
        overview_route,
        policies,
    ]
    return Router(config.prefix, route_handlers=handlers)


async def _chain_status(audit: AuditStore, row: StoredRow) -> tuple[bool, str]:
    """This record's own hash, body and columns, and its links to its neighbours."""
    problem = audit.chain.problem_in(row)
    if problem is not None:
        return False, problem
    if row.seq == 1:
        linked = row.prev_hash == GENESIS
    elif (prev := await audit.get(str(row.seq - 1))) is not None:
        linked = prev.hash == row.prev_hash
    else:
        checkpoint = await audit.checkpoint()
        linked = checkpoint is not None and (checkpoint.seq, checkpoint.hash) == (
            row.seq - 1,
            row.prev_hash,
        )
    following = await audit.get(str(row.seq + 1))
    if not linked or (following is not None and following.prev_hash != row.hash):
        return False, "does not link to its neighbours: run gateway audit verify"
    return (
        True,
        "intact: its hash, body and columns match, linked to the records beside it",
    )
