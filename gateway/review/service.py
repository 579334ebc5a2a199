"""The review queue's service: what the request path hands it (a refusal, an answer calling a
tool), what reviewers do (claim, decide), and what the app reads back (poll, webhook).

Every change of state is made in the store first (one conditional update: two reviewers never
both win), then recorded in the audit chain as its own record, then sent to the webhook.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway import errors
from gateway.audit.writer import AuditWriter
from gateway.auth.principal import Principal
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError, Reason
from gateway.fallback.answer import message_body, message_events
from gateway.fallback.triggers import trigger_of
from gateway.review.actions import action_record
from gateway.review.spec import ReviewConfig, ReviewPolicy, effective_review
from gateway.review.store import Delivery, Item, Kind, ReviewStore, StoreUnavailable
from gateway.review.tools import called_tools
from gateway.review.view import answer_body, masked_request, masked_texts
from gateway.review.webhook import Webhooks
from gateway.steps import Step

__all__ = ["Held", "Resend", "Reviews", "Verdict"]

log = logging.getLogger("gateway.review")

Verdict = Literal["approve", "reject", "edit"]
# Sends an approved request on under the workflow's policy: (status, body) of its answer.
Resend = Callable[[Item], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True, slots=True)
class Held:
    """The client's answer while a reviewer decides: the fallback message (SSE events for a
    stream), with status 202 and the review id."""

    id: str
    body: bytes | list[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"x-gateway-review-id": self.id, "x-gateway-review-status": "pending"}


@dataclass(frozen=True, slots=True)
class HeldAnswer(Held):
    body: bytes


class Reviews:
    def __init__(
        self,
        store: ReviewStore,
        writer: AuditWriter | None,
        config: ReviewConfig,
        env: Mapping[str, str],
        admin_role: str,
    ) -> None:
        self.store = store
        self._writer = writer
        self._claim_s = config.claim_minutes * 60
        self._admin_role = admin_role
        self.webhooks = Webhooks(config, env, self._attempted)
        self.resend: Resend | None = None  # set by app.py once the pipeline exists
        self.resending: set[str] = set()  # request ids of approved requests being sent on

    async def aclose(self) -> None:
        await self.webhooks.aclose()
        await self.store.close()

    # -- the request path -------------------------------------------------------------

    async def refused(self, ctx: RequestContext, exc: GatewayError) -> Held | None:
        """Queue a refusal the policy's ``review.on`` names; a Held answer under ``hold``."""
        review = self._review_of(ctx)
        trigger = trigger_of(exc.reason.code)
        if review is None or trigger is None or trigger not in review.on:
            return None
        assert ctx.policy is not None
        assert ctx.request is not None
        kind: Kind = "request" if review.mode == "hold" else "flag"
        request = await masked_request(ctx.policy, ctx.request)
        item = await self._open(ctx, review, kind, trigger, exc.reason.code, request=request)
        if item is None or kind == "flag":
            return None
        return Held(item.id, self._message(ctx))

    async def answered(self, ctx: RequestContext, body: bytes) -> HeldAnswer | None:
        """Queue a whole answer that calls a tool ``review.on`` names (``tool:NAME``)."""
        review = self._review_of(ctx)
        if review is None or not review.tools or b"tool" not in body:
            return None
        called = sorted(called_tools(orjson.loads(body)) & review.tools)
        if not called:
            return None
        assert ctx.policy is not None
        assert ctx.request is not None
        kind: Kind = "answer" if review.mode == "hold" else "flag"
        text = body.decode()
        request = await masked_request(ctx.policy, ctx.request)
        shown = (await masked_texts(ctx.policy, [text]))[0]
        item = await self._open(
            ctx, review, kind, f"tool:{called[0]}", errors.REVIEW_HELD.code,
            request=request, answer=text if kind == "answer" else None, shown=shown,
        )  # fmt: skip
        if item is None or kind == "flag":
            return None
        message = ctx.policy.source.fallback.message
        assert message is not None  # validated: hold needs the fallback message
        return HeldAnswer(item.id, message_body(ctx.request, message))

    def _review_of(self, ctx: RequestContext) -> ReviewPolicy | None:
        if ctx.policy is None or ctx.request is None or ctx.principal is None:
            return None
        if ctx.request_id in self.resending:  # approved already: never held twice
            return None
        return effective_review(ctx.policy.source)

    def _message(self, ctx: RequestContext) -> bytes | list[bytes]:
        assert ctx.policy is not None
        assert ctx.request is not None
        text = ctx.policy.source.fallback.message
        assert text is not None  # validated: hold needs the fallback message
        if ctx.request.stream:
            return message_events(ctx.request, text)
        return message_body(ctx.request, text)

    async def _open(
        self,
        ctx: RequestContext,
        review: ReviewPolicy,
        kind: Kind,
        trigger: str,
        reason: str,
        **content: Any,
    ) -> Item | None:
        policy, request, principal = ctx.policy, ctx.request, ctx.principal
        assert policy is not None
        assert request is not None
        assert principal is not None
        now = time.time()
        item = Item(
            id=f"rv_{secrets.token_urlsafe(12)}", workflow=policy.name,
            request_id=ctx.request_id, created=now, kind=kind, trigger=trigger, reason=reason,
            subject=principal.subject, roles=sorted(principal.roles), team=principal.team,
            api=request.api, model=request.model, policy_version=policy.version,
            assign_to=list(review.assign_to), sla_at=now + review.sla_minutes * 60,
            webhook=review.webhook, webhook_secret_env=review.webhook_secret_env,
            message=policy.source.fallback.message, **content,
        )  # fmt: skip
        try:
            await self.store.add(item)
        except StoreUnavailable as exc:
            # The answer still goes out as it would have; the refusal or message stands.
            log.error("request %s: review not queued: %s", ctx.request_id, exc)
            return None
        ctx.review = True
        ctx.review_id = item.id
        held = kind != "flag"
        if policy.source.review is None:
            return item  # fallback.review: true has noted ``fallback.review`` as it always did
        code = errors.REVIEW_HELD if held else errors.REVIEW_FLAGGED
        ctx.decisions.append(Decision(Step.FALLBACK, "transform" if held else "allow", code.code))
        return item

    # -- reviewers --------------------------------------------------------------------

    async def get(self, id_: str) -> Item:
        try:
            item = await self.store.get(id_)
        except StoreUnavailable as exc:
            raise GatewayError(errors.REVIEW_STORE_UNAVAILABLE, detail=str(exc)) from None
        if item is None:
            raise GatewayError(errors.REVIEW_NOT_FOUND)
        return item

    def may_claim(self, item: Item, reviewer: Principal) -> bool:
        if not item.assign_to or self._admin_role in reviewer.roles:
            return True
        return reviewer.subject in item.assign_to or not reviewer.roles.isdisjoint(item.assign_to)

    async def claim(self, id_: str, reviewer: Principal) -> Item:
        item = await self.get(id_)
        if not self.may_claim(item, reviewer):
            raise GatewayError(errors.REVIEW_NOT_ASSIGNED)
        now = time.time()
        if not await self._guarded(
            self.store.claim(id_, reviewer.subject, now + self._claim_s, now)
        ):
            raise GatewayError(errors.REVIEW_CONFLICT)
        await self._record(action_record(item, reviewer, errors.REVIEW_CLAIMED, "claim"))
        return await self.get(id_)

    async def decide(
        self, id_: str, reviewer: Principal, verdict: Verdict, note: str | None, text: str | None
    ) -> Item:
        """Approve (send the request on, or release the held answer), reject with a note, or
        edit (``text`` becomes the answer). The reviewer must hold a live claim."""
        item = await self.get(id_)
        now = time.time()
        if not (item.claimed(now) and item.claimed_by == reviewer.subject):
            raise GatewayError(errors.REVIEW_CONFLICT)
        result, status, reason = await self._outcome(item, verdict, note, text)
        done = self.store.decide(
            id_, reviewer.subject, _VERDICTS[verdict], note, result, status, time.time()
        )
        if not await self._guarded(done):
            raise GatewayError(errors.REVIEW_CONFLICT)
        await self._record(
            action_record(item, reviewer, reason, "decide", verdict=_VERDICTS[verdict], note=note)
        )
        decided = await self.get(id_)
        self.webhooks.send(decided)
        return decided

    async def _outcome(
        self, item: Item, verdict: Verdict, note: str | None, text: str | None
    ) -> tuple[str | None, int | None, Reason]:
        if verdict == "reject":
            message = item.message or "The request was not approved."
            said = f"{message}\n\nReviewer's note: {note}" if note else message
            return answer_body(item.api, item.model, said), 200, errors.REVIEW_REJECTED
        if verdict == "edit":
            if not text:
                raise GatewayError(errors.REQUEST_INVALID, "edit needs the answer's text.")
            return answer_body(item.api, item.model, text), 200, errors.REVIEW_EDITED
        if item.kind == "answer":
            return item.answer, 200, errors.REVIEW_APPROVED
        if item.kind == "request" and self.resend is not None:
            status, body = await self.resend(item)
            return body.decode(), status, errors.REVIEW_APPROVED
        return None, None, errors.REVIEW_APPROVED  # a flag: the app already has its answer

    async def _guarded(self, change: Awaitable[bool]) -> bool:
        try:
            return await change
        except StoreUnavailable as exc:
            raise GatewayError(errors.REVIEW_STORE_UNAVAILABLE, detail=str(exc)) from None

    async def _record(self, record: Any) -> None:
        if self._writer is not None and not await self._writer.put(record):
            log.error("review action not recorded in the audit trail: %s", record.request_id)

    async def _attempted(self, item: Item, delivery: Delivery) -> None:
        try:
            await self.store.delivered(item.id, delivery)
        except StoreUnavailable as exc:
            log.error("review %s: delivery attempt not stored: %s", item.id, exc)
        ok = delivery.status is not None and 200 <= delivery.status < 300
        reason = errors.REVIEW_DELIVERED if ok else errors.REVIEW_UNDELIVERED
        await self._record(
            action_record(
                item, None, reason, "deliver", attempt=delivery.attempt,
                http_status=delivery.status, error=delivery.error,
            )
        )  # fmt: skip

    # -- the app ----------------------------------------------------------------------

    async def for_app(self, id_: str, workflow: str, caller: Principal) -> dict[str, Any]:
        """The outcome as the app that made the request reads it; anyone else: not found."""
        item = await self.get(id_)
        if item.workflow != workflow or item.subject != caller.subject:
            raise GatewayError(errors.REVIEW_NOT_FOUND)
        return {
            "id": item.id,
            "object": "gateway.review",
            "workflow": item.workflow,
            "request_id": item.request_id,
            "status": item.state,
            "verdict": item.verdict,
            "note": item.note,
            "decided_at": item.decided_at,
            "answer_status": item.result_status,
            "answer": orjson.loads(item.result) if item.result else None,
        }


_VERDICTS: dict[str, str] = {"approve": "approved", "reject": "rejected", "edit": "edited"}
