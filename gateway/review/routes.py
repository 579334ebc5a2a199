"""The review queue over HTTP: the app's poll, and the reviewers' JSON API.

``GET /w/{workflow}/v1/reviews/{id}``: the outcome for the app, with the credentials of the
request that opened it (another subject gets 404). ``/admin/reviews``: the queue, oldest
first, for the console's ``admin`` and ``reviewer`` roles (one guard covers every route).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from litestar import Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler

from gateway import errors
from gateway.auth import Authenticator
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.review.service import Reviews, Verdict
from gateway.review.store import Item, StoreUnavailable

__all__ = ["app_review_route", "item_summary", "review_router"]

_MAX_NOTE = 4000
_MAX_TEXT = 64_000


def _json(data: object, status: int = 200) -> Response[bytes]:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def app_review_route(authenticator: Authenticator, reviews: Reviews) -> HTTPRouteHandler:
    @get(["/w/{workflow:str}/v1/reviews/{review_id:str}", "/v1/reviews/{review_id:str}"])
    async def poll(request: Request[Any, Any, Any]) -> Response[bytes]:
        review_id = str(request.path_params["review_id"])
        workflow = request.path_params.get("workflow") or request.headers.get("x-workflow")
        ctx = request.state.ctx = RequestContext("reviews", workflow)
        principal = ctx.principal = await authenticator.authenticate(request.headers)
        if not workflow:
            raise GatewayError(errors.POLICY_MISSING_WORKFLOW)
        return _json(await reviews.for_app(review_id, str(workflow), principal))

    return poll


def item_summary(item: Item, now: float, *, full: bool = False) -> dict[str, Any]:
    """An item as reviewers read it: never the answer the app gets, only its masked view."""
    out: dict[str, Any] = {
        "id": item.id, "workflow": item.workflow, "request_id": item.request_id,
        "created": item.created, "age_s": round(now - item.created, 3), "kind": item.kind,
        "trigger": item.trigger, "reason": item.reason, "subject": item.subject,
        "state": item.state, "claimed_by": item.claimed_by if item.claimed(now) else None,
        "claimed_until": item.claimed_until if item.claimed(now) else None,
        "sla_at": item.sla_at, "overdue": item.overdue(now), "assign_to": item.assign_to,
        "verdict": item.verdict, "decided_by": item.decided_by, "decided_at": item.decided_at,
        "policy_version": item.policy_version,
    }  # fmt: skip
    if full:
        out["request"] = item.request
        out["answer_shown"] = item.shown
        out["note"] = item.note
        out["deliveries"] = [
            {"attempt": d.attempt, "at": d.at, "status": d.status, "error": d.error}
            for d in item.deliveries
        ]
    return out


def review_router(authenticator: Authenticator, reviews: Reviews, roles: frozenset[str]) -> Router:
    """``/admin/reviews``: any of ``roles`` (the console's admin and reviewer) opens it."""

    async def require_reviewer(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        ctx = connection.state.ctx = RequestContext("review", None)
        principal = ctx.principal = await authenticator.authenticate(connection.headers)
        if principal.roles.isdisjoint(roles):
            raise GatewayError(errors.ACCESS_CONSOLE_ROLE)

    def reviewer(request: Request[Any, Any, Any]) -> Principal:
        principal = request.state.ctx.principal
        assert isinstance(principal, Principal)
        return principal

    @get("/")
    async def queue(request: Request[Any, Any, Any]) -> Response[bytes]:
        params = request.query_params
        state = params.get("state", "pending")
        try:
            limit = max(1, min(int(params.get("limit", 100)), 1000))
            after = _after(params.get("after"))
        except ValueError:
            raise GatewayError(
                errors.REQUEST_INVALID, "limit: an integer; after: a cursor."
            ) from None
        try:
            items = await reviews.store.list(
                state=None if state == "all" else state,
                workflow=params.get("workflow"),
                after=after,
                limit=limit,
            )
        except StoreUnavailable as exc:
            raise GatewayError(errors.REVIEW_STORE_UNAVAILABLE, detail=str(exc)) from None
        now = time.time()
        more = len(items) == limit
        cursor = f"{items[-1].created!r}:{items[-1].id}" if more else None
        return _json({"items": [item_summary(i, now) for i in items], "next": cursor})

    @get("/{review_id:str}")
    async def one(request: Request[Any, Any, Any]) -> Response[bytes]:
        review_id = request.path_params["review_id"]
        return _json(item_summary(await reviews.get(review_id), time.time(), full=True))

    @post("/{review_id:str}/claim", status_code=200)
    async def claim(request: Request[Any, Any, Any]) -> Response[bytes]:
        review_id = request.path_params["review_id"]
        item = await reviews.claim(review_id, reviewer(request))
        return _json(item_summary(item, time.time(), full=True))

    @post("/{review_id:str}/decide", status_code=200)
    async def decide(request: Request[Any, Any, Any]) -> Response[bytes]:
        review_id = request.path_params["review_id"]
        verdict, note, text = _decision(await request.body())
        item = await reviews.decide(review_id, reviewer(request), verdict, note, text)
        return _json(item_summary(item, time.time(), full=True))

    @post("/{review_id:str}/reveal", status_code=200)
    async def reveal(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The item with its tokenized values shown: only to a reviewer the item's workflow
        grants ``review.reveal``; each reveal, and each refusal, recorded (who, and why)."""
        review_id = request.path_params["review_id"]
        data = _object(await request.body())
        why = data.get("why")
        if not isinstance(why, str):
            raise GatewayError(errors.REQUEST_INVALID, "why: say why the values are needed.")
        item = await reviews.reveal(review_id, reviewer(request), why)
        return _json(item_summary(item, time.time(), full=True))

    return Router(
        "/admin/reviews",
        route_handlers=[queue, one, claim, decide, reveal],
        guards=[require_reviewer],
    )


def _after(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    created, _, id_ = cursor.partition(":")
    if not id_:
        raise ValueError(cursor)
    return float(created), id_


def decision_of(
    verdict: object, note: object, text: object
) -> tuple[Verdict, str | None, str | None]:
    """A decision as a form or JSON gives it, checked."""
    if verdict not in ("approve", "reject", "edit"):
        raise GatewayError(errors.REQUEST_INVALID, "verdict: approve, reject or edit.")
    if note is not None and (not isinstance(note, str) or len(note) > _MAX_NOTE):
        raise GatewayError(errors.REQUEST_INVALID, f"note: a string of at most {_MAX_NOTE}.")
    if text is not None and (not isinstance(text, str) or len(text) > _MAX_TEXT):
        raise GatewayError(errors.REQUEST_INVALID, f"text: a string of at most {_MAX_TEXT}.")
    return verdict, note or None, text or None


def _object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(errors.REQUEST_INVALID_JSON) from None
    if not isinstance(data, dict):
        raise GatewayError(errors.REQUEST_INVALID, "Send a JSON object.")
    return data


def _decision(raw: bytes) -> tuple[Verdict, str | None, str | None]:
    data = _object(raw)
    return decision_of(data.get("verdict"), data.get("note"), data.get("text"))
