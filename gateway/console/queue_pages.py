"""The review queue's pages: the list (oldest first, age, SLA) and one item with its
decisions. Reviewers see only the masked request and answer (gateway/review/view.py)."""

from __future__ import annotations

import json
import time

from gateway.boundary.actions import TOKEN_PATTERN
from gateway.console.html import esc, form, link, table, when
from gateway.review.store import Item

__all__ = ["item_page", "queue_page"]


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return (
        f"{minutes // 60}h {minutes % 60:02d}m"
        if minutes >= 60
        else f"{minutes}m {int(seconds % 60):02d}s"
    )


def queue_page(
    items: list[Item], csrf: str, state: str, workflow: str | None, next_: str | None
) -> str:
    now = time.time()
    rows = []
    for item in items:
        status = esc(item.state)
        if item.claimed(now):
            status = f"claimed by {esc(item.claimed_by)}"
        elif item.overdue(now):
            status = '<span class="overdue">overdue</span>'
        claim = ""
        if item.state == "pending" and not item.claimed(now):
            claim = form(
                "claim",
                csrf,
                "Claim",
                f'<input type="hidden" name="id" value="{esc(item.id)}">',
                "inline",
            )
        rows.append(
            [
                link("review", item.id, id=item.id),
                esc(item.workflow),
                esc(item.kind),
                esc(item.trigger),
                esc(item.subject),
                when(item.created),
                esc(_age(now - item.created)),
                status,
                claim,
            ]
        )
    filters = (
        '<form method="get" action="queue" class="filters">'
        f'<label>workflow<input name="workflow" value="{esc(workflow or "")}"></label>'
        '<label>state<select name="state">'
        + "".join(
            f'<option value="{s}"{" selected" if s == state else ""}>{s}</option>'
            for s in ("pending", "approved", "rejected", "all")
        )
        + '</select></label><button type="submit">Filter</button></form>'
    )
    more = (
        f"<p>{link('queue', 'Next page', state=state, workflow=workflow, after=next_)}</p>"
        if next_
        else ""
    )
    if not rows:
        return filters + '<p class="muted">Nothing waits for review.</p>'
    headers = ["item", "workflow", "kind", "trigger", "requested by", "queued", "age", "status", ""]
    return filters + table(headers, rows, "queue") + more


def item_page(
    item: Item, csrf: str, subject: str, *, may_reveal: bool = False, revealed: bool = False
) -> str:
    """``may_reveal``: the item's workflow grants the viewer ``review.reveal`` (a form to
    reveal, with a reason);
    ``revealed``: ``item`` comes from a reveal, its tokens replaced by their values."""
    now = time.time()
    facts = [
        ("workflow", esc(item.workflow)),
        ("kind", esc(item.kind)),
        ("trigger", esc(item.trigger)),
        ("reason", esc(item.reason)),
        ("requested by", esc(item.subject)),
        ("request id", link("explorer", item.request_id, request=item.request_id)),
        ("policy version", esc(item.policy_version)),
        ("queued", when(item.created)),
        ("SLA", when(item.sla_at) + (_OVERDUE if item.overdue(now) else "")),
        ("state", esc(item.state)),
        ("claimed by", esc(item.claimed_by) if item.claimed(now) else _NOBODY),
        ("decision", esc(f"{item.verdict} by {item.decided_by}") if item.verdict else ""),
        ("decided", when(item.decided_at)),
        ("note", esc(item.note)),
    ]
    body = table(["", ""], [[esc(k), v] for k, v in facts], "facts")
    seen = "revealed" if revealed else "masked"
    if revealed:
        body += (
            '<p class="revealed">Tokenized values shown: this reveal is recorded in the audit '
            "trail. Nothing of it is kept; reload the page to mask them again.</p>"
        )
    request = json.dumps(item.request, indent=2, ensure_ascii=False) if item.request else ""
    body += f'<h2>Request ({seen})</h2><pre class="request">{esc(request or "(none kept)")}</pre>'
    if item.shown is not None:
        body += f'<h2>Answer ({seen})</h2><pre class="answer">{esc(_pretty(item.shown))}</pre>'
    hidden = f'<input type="hidden" name="id" value="{esc(item.id)}">'
    if item.state == "pending" and item.claimed(now) and item.claimed_by == subject:
        forms = [
            form("decide", csrf, label, hidden + _verdict(verdict) + extra, verdict)
            for verdict, label, extra in _DECISIONS
        ]
        body += '<h2>Decide</h2><div class="decide">' + "".join(forms) + "</div>"
    elif item.state == "pending" and not item.claimed(now):
        body += form("claim", csrf, "Claim", hidden, "claim")
    if may_reveal and not revealed and TOKEN_PATTERN.search(request + (item.shown or "")):
        why = '<label>Why you need the values<textarea name="why" required></textarea></label>'
        body += form("reveal", csrf, "Reveal tokenized values", hidden + why, "reveal")
    if item.deliveries:
        rows = [[esc(d.attempt), when(d.at), esc(d.status), esc(d.error)] for d in item.deliveries]
        body += "<h2>Webhook deliveries</h2>" + table(["attempt", "at", "status", "error"], rows)
    return body


_OVERDUE = ' <span class="overdue">overdue</span>'
_NOBODY = '<span class="muted">nobody</span>'
_DECISIONS = (
    ("approve", "Approve", "<p>Send the request on under the policy, or release the answer.</p>"),
    (
        "reject",
        "Reject",
        '<label>Note to the app<textarea name="note" required></textarea></label>',
    ),
    (
        "edit",
        "Edit and approve",
        '<label>The answer<textarea name="text" required></textarea></label>',
    ),
)


def _verdict(value: str) -> str:
    return f'<input type="hidden" name="verdict" value="{value}">'


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
