"""The review queue's service: what the request path hands it (a refusal, an answer calling a
tool), what reviewers do (claim, decide), and what the app reads back (poll, webhook).

Every change of state is made in the store first (one conditional update: two reviewers never
both win), then recorded in the audit chain as its own record, then sent to the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import orjson

from gateway import errors
from gateway.audit.writer import AuditWriter
from gateway.auth.principal import Principal
from gateway.boundary.actions import TOKEN_PATTERN, restore_tokens
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError, Reason
from gateway.fallback.answer import message_body, message_events
from gateway.fallback.triggers import trigger_of
from gateway.review.actions import action_record
from gateway.review.spec import ReviewConfig, ReviewPolicy, effective_review
from gateway.review.store import Delivery, Item, Kind, ReviewStore, StoreUnavailable
from gateway.review.stream import assemble, event_data
from gateway.review.tools import called_tools
from gateway.review.view import Masker, answer_body
from gateway.review.webhook import Webhooks
from gateway.steps import Step
from gateway.stores import StoreError
from gateway.surfaces import surface_of
from gateway.surfaces.base import SHAPE_ERRORS, shape_error
from gateway.upstream.provider import UpstreamResponse

if TYPE_CHECKING:
    from gateway.boundary.step import Boundary
    from gateway.policy.registry import PolicyRegistry

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
        self.webhooks = Webhooks(config, env, store, self._attempted)
        self.resend: Resend | None = None  # set by app.py once the pipeline exists
        self.resending: set[str] = set()  # request ids of approved requests being sent on
        self._boundary: Boundary | None = None
        self._policies: PolicyRegistry | None = None
        self._sweeping: asyncio.Task[None] | None = None

    def connect(self, boundary: Boundary, policies: PolicyRegistry) -> None:
        """The boundary's vault and token key (tokens in what reviewers see, and reveals),
        and the loaded policies (a reveal's reason is masked under its workflow's)."""
        self._boundary, self._policies = boundary, policies

    def start(self) -> None:
        """Resume the webhook deliveries a stop or a crash left due (gateway/review/webhook.py)."""
        self._sweeping = asyncio.create_task(self.webhooks.run(), name="review-webhook-sweep")

    async def aclose(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            await asyncio.gather(self._sweeping, return_exceptions=True)
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
        masker = self._masker(ctx.policy)
        request = await masker.request(ctx.request)
        if not await self._keep_tokens(ctx, masker):
            request = await Masker(ctx.policy).request(ctx.request)
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
        masker = self._masker(ctx.policy)
        request = await masker.request(ctx.request)
        shown = (await masker.texts([text]))[0]
        if not await self._keep_tokens(ctx, masker):
            plain = Masker(ctx.policy)
            request, shown = await plain.request(ctx.request), (await plain.texts([text]))[0]
        item = await self._open(
            ctx, review, kind, f"tool:{called[0]}", errors.REVIEW_HELD.code,
            request=request, answer=text if kind == "answer" else None, shown=shown,
        )  # fmt: skip
        if item is None or kind == "flag":
            return None
        message = ctx.policy.source.fallback.message
        assert message is not None  # validated: hold needs the fallback message
        return HeldAnswer(item.id, message_body(ctx.request, message))

    def holds_streams(self, ctx: RequestContext) -> bool:
        """Whether this request's stream must be read whole first: its workflow holds tools."""
        review = self._review_of(ctx)
        return review is not None and bool(review.tools) and ctx.request is not None

    async def answered_stream(
        self, ctx: RequestContext, response: UpstreamResponse
    ) -> tuple[UpstreamResponse, dict[str, str]]:
        """A whole stream (``response.events`` replays it) that calls a held tool: queued as
        the whole answer it adds up to, the client answered with the fallback message as a
        stream, status 202. Otherwise the same events, unchanged."""
        assert response.events is not None
        review = self._review_of(ctx)
        if review is None or not review.tools:
            return response, {}
        events = [event async for event in response.events]
        again = UpstreamResponse(response.status, response.content_type, events=_replay(events))
        if not any(b"tool" in e for e in events):
            return again, {}
        assert ctx.request is not None
        try:
            data = event_data(events)
            if not called_tools(data) & review.tools:  # the names come whole, in one event
                return again, {}
            whole = assemble(ctx.request.api, data)
        except _UNASSEMBLED as exc:
            raise shape_error(f"a stream that does not add up ({type(exc).__name__})") from exc
        held = await self.answered(ctx, orjson.dumps(whole))
        if held is None:
            return again, {}
        assert ctx.policy is not None
        message = ctx.policy.source.fallback.message
        assert message is not None  # validated: hold needs the fallback message
        surface = surface_of(ctx.request)
        # The fallback message's events carry the tokens the held answer cost, so the relay,
        # which notes usage from what it sends, settles what was spent.
        answer_id = surface.answer_id(f"review-{secrets.token_hex(8)}")
        used_in, used_out = ctx.tokens_in or 0, ctx.tokens_out or 0
        sent = surface.answer_events(
            ctx.request, answer_id, ctx.request.model, [message], used_in, used_out
        )
        return UpstreamResponse(202, "text/event-stream", events=_replay(sent)), held.headers

    def _masker(self, policy: Any) -> Masker:
        return Masker(policy, self._boundary.minter if self._boundary else None)

    async def _keep_tokens(self, ctx: RequestContext, masker: Masker) -> bool:
        """The tokens a reviewer's copy holds, kept in the vault as the boundary keeps the
        caller's (same workflow, subject and lifetime); False if the vault failed."""
        if not masker.minted or self._boundary is None:
            return True
        assert ctx.policy is not None
        assert ctx.policy.data is not None
        assert ctx.principal is not None
        try:
            await self._boundary.vault.put(
                ctx.policy.name, ctx.principal.subject, masker.minted,
                ctx.policy.data.source.token_ttl_s,
            )  # fmt: skip
        except StoreError as exc:
            log.error("request %s: review tokens not kept: %s", ctx.request_id, exc)
            return False
        return True

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
        lease = self.webhooks.lease() if item.webhook else None  # due with the decision
        done = self.store.decide(
            id_, reviewer.subject, _VERDICTS[verdict], note, result, status, time.time(), lease
        )
        if not await self._guarded(done):
            raise GatewayError(errors.REVIEW_CONFLICT)
        await self._record(
            action_record(item, reviewer, reason, "decide", verdict=_VERDICTS[verdict], note=note)
        )
        decided = await self.get(id_)
        self.webhooks.send(decided, lease)
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

    def may_reveal(self, item: Item, reviewer: Principal) -> bool:
        """Whether the item's workflow, as its policy is loaded now, grants ``reviewer``
        ``review.reveal`` (by subject or role), and the reviewer may work the item."""
        return self._granted(item, reviewer) and self.may_claim(item, reviewer)

    def _granted(self, item: Item, reviewer: Principal) -> bool:
        policy = self._policies.all().get(item.workflow) if self._policies else None
        review = effective_review(policy.source) if policy is not None else None
        return review is not None and review.grants_reveal(reviewer.subject, reviewer.roles)

    async def reveal(self, id_: str, reviewer: Principal, why: str) -> Item:
        """The item with its tokens replaced by their values, for a reviewer its workflow's
        live policy grants ``review.reveal`` and who may work it; recorded in the audit chain
        first (who, and why, masked under the workflow's policy), and refused if it cannot be.
        A refusal is recorded too. The values are read from the vault, never stored with the
        item; a token past its lifetime stays a token."""
        why = why.strip()
        if not why or len(why) > _MAX_WHY:
            raise GatewayError(errors.REQUEST_INVALID, f"why: 1 to {_MAX_WHY} characters.")
        item = await self.get(id_)
        policy = self._policies.all().get(item.workflow) if self._policies else None
        said = (await Masker(policy).texts([why]))[0] if policy is not None else _UNMASKED
        if not self.may_reveal(item, reviewer):
            refusal = (
                errors.REVIEW_NOT_ASSIGNED
                if self._granted(item, reviewer)
                else errors.REVIEW_REVEAL_DENIED
            )
            await self._record(action_record(item, reviewer, refusal, "reveal", why=said))
            raise GatewayError(refusal)
        tokens = list(dict.fromkeys(
            m.group(0)
            for text in (orjson.dumps(item.request).decode(), item.shown or "")
            for m in TOKEN_PATTERN.finditer(text)
        ))  # fmt: skip
        values: dict[str, str] = {}
        if tokens and self._boundary is not None:
            try:
                values = await self._boundary.vault.get(item.workflow, item.subject, tokens)
            except StoreError as exc:
                raise GatewayError(errors.BOUNDARY_VAULT, detail=str(exc)) from None
        record = action_record(
            item, reviewer, errors.REVIEW_REVEALED, "reveal", why=said,
            tokens=len(tokens), revealed=len(values),
            entities=sorted({t[1 : t.index("#")] for t in values}),
        )  # fmt: skip
        if self._writer is None or not await self._writer.put(record):
            raise GatewayError(errors.AUDIT_UNAVAILABLE, detail="a reveal must be recorded")
        shown = restore_tokens(item.shown, values) if item.shown else item.shown
        request = orjson.loads(restore_tokens(orjson.dumps(item.request).decode(), values))
        return replace(item, request=request, shown=shown)

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
_MAX_WHY = 500
_UNASSEMBLED: tuple[type[Exception], ...] = (orjson.JSONDecodeError, *SHAPE_ERRORS)
# A reveal whose workflow is no longer loaded: its reason cannot be masked, so it is not kept.
_UNMASKED = "[not recorded: the workflow's policy is no longer loaded to mask it]"


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event
