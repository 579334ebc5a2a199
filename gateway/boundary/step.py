"""The boundary step: inspect a request's text slots before it leaves, and its answer after.

``Boundary`` is built once (vault, token key); ``inspect`` runs once per request and returns
the ``Inspection`` that carries the request's placeholders and tokens to its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gateway import errors
from gateway.boundary.actions import TOKEN_PATTERN, Rewriter, TokenMinter, restore_tokens
from gateway.boundary.batch import find_many
from gateway.boundary.findings import Finding
from gateway.boundary.pace import Pacer, rewrite_paced
from gateway.boundary.policy import BoundaryPolicy
from gateway.boundary.record import BoundaryRecord, by_action
from gateway.boundary.vault import Vault
from gateway.context import Decision, RequestContext
from gateway.errors import GatewayError
from gateway.normalized import NormalizedRequest
from gateway.policy.compile import CompiledPolicy
from gateway.steps import Step
from gateway.stores import StoreError
from gateway.surfaces.total import every_leaf, nontext, prompt_order

__all__ = ["Boundary", "Inspection", "counted", "detection_failed"]

log = logging.getLogger("gateway.boundary")


def counted(counts: dict[str, int]) -> str:
    """``CREDIT_CARD x2, US_SSN x1``: what a refusal may say (types and counts, no values)."""
    return ", ".join(f"{entity} x{n}" for entity, n in sorted(counts.items()))


class Inspection:
    """One request's boundary state: its rewriter (placeholders, minted tokens) and record."""

    def __init__(
        self,
        ctx: RequestContext,
        rules: BoundaryPolicy,
        rewriter: Rewriter,
        vault: Vault,
        workflow: str,
        subject: str,
        pacer: Pacer | None = None,
    ) -> None:
        """``pacer``: the request's scan clock and budget, which the answer's scan shares."""
        self.ctx = ctx
        self._pacer = pacer or Pacer()
        self.rules = rules
        self.rewriter = rewriter
        self._vault = vault
        self._workflow = workflow
        self._subject = subject
        self._known = dict(rewriter.minted)
        self._request_counts = dict(rewriter.counts)  # the request's: the answer adds to them
        self._would_block = False

    @property
    def record(self) -> BoundaryRecord:
        assert self.ctx.boundary is not None
        return self.ctx.boundary

    async def find(self, texts: Sequence[str]) -> list[list[Finding]] | None:
        """Findings per text; None when detection failed and the policy lets it pass."""
        self._pacer.resume(errors.BOUNDARY_ANSWER_TOO_COSTLY)
        return await _find(self.ctx, self.rules, texts, Step.INSPECT_ANSWER, self._pacer)

    def answer_text(self, text: str, findings: list[Finding], start: int, end: int) -> str:
        """``text[start:end]`` for the caller; in shadow mode only counted, never changed."""
        out = self.rewriter.answer_text(text, findings, start, end)
        return text[start:end] if self.rules.shadow else out

    async def answer_texts(
        self, texts: Sequence[str], found: Sequence[list[Finding]] | None
    ) -> list[str]:
        """Each of a complete answer's texts for the caller (``answer_text``), rewritten in
        units that share the loop and count against the request's budget."""
        if not found or not any(found):  # nothing to rewrite: the scan was counted already
            return list(texts)
        out = [
            await rewrite_paced(self.answer_text, text, findings, self._pacer) if findings else text
            for text, findings in zip(texts, found, strict=True)
        ]
        self._pacer.finish()
        return out

    def check_answer(self) -> None:
        """Refuse once the answer holds a blocked entity (shadow: note it); record counts."""
        before = self._request_counts
        if self.rewriter.counts == before:  # nothing found in the answer (counts only grow)
            return
        answered = {
            key: n - before.get(key, 0)
            for key, n in self.rewriter.counts.items()
            if n > before.get(key, 0)
        }
        self.record.answer = by_action(answered)
        self.record.rules |= self.rewriter.rules
        blocked = {e: n for (a, e), n in answered.items() if a == "block"}
        if not blocked:
            return
        if not self.rules.shadow:
            raise GatewayError(
                errors.BOUNDARY_BLOCKED_OUTPUT,
                f"The answer contained data this workflow may not return: {counted(blocked)}.",
            )
        if not self._would_block:
            self._would_block = True
            self.ctx.decisions.append(
                Decision(Step.INSPECT_ANSWER, "allow", errors.BOUNDARY_WOULD_BLOCK.code)
            )

    def finish_answer(self) -> None:
        """Record that the answer was masked or redacted (in shadow: would have been)."""
        answer = self.record.answer
        if not (answer.get("mask") or answer.get("redact")):
            return
        if any(d.code == errors.BOUNDARY_WOULD_BLOCK.code for d in self.ctx.decisions):
            return  # the stronger verdict stays the one the header shows
        if self.rules.shadow:
            self.ctx.decisions.append(
                Decision(Step.INSPECT_ANSWER, "allow", errors.BOUNDARY_WOULD_MASK.code)
            )
        else:
            self.ctx.decisions.append(
                Decision(Step.INSPECT_ANSWER, "transform", errors.BOUNDARY_MASKED.code)
            )

    async def restore(self, text: str) -> str:
        """Tokens this caller was given in this workflow, replaced by their values."""
        if "#" not in text:
            return text
        unknown = [m.group(0) for m in TOKEN_PATTERN.finditer(text)]
        unknown = [t for t in dict.fromkeys(unknown) if t not in self._known]
        if unknown:
            try:
                self._known.update(await self._vault.get(self._workflow, self._subject, unknown))
            except StoreError as exc:
                raise GatewayError(errors.BOUNDARY_VAULT, detail=str(exc)) from exc
        return restore_tokens(text, self._known)


async def _find(
    ctx: RequestContext, rules: BoundaryPolicy, texts: Sequence[str], step: Step, pacer: Pacer
) -> list[list[Finding]] | None:
    try:
        return await find_many(rules.detector, texts, pacer)
    except GatewayError:
        raise  # over the scan's budget: refused, never let through as a detector failure
    # Detection runs regexes, presidio recognizers and an NER model: whatever fails in
    # there, the data must not leave uninspected unless the policy says so.
    except Exception as exc:  # noqa: BLE001 - fail closed on any detector failure
        assert ctx.boundary is not None
        detection_failed(ctx, rules, ctx.boundary, step, exc)
        return None


def detection_failed(
    ctx: RequestContext, rules: BoundaryPolicy, record: BoundaryRecord, step: Step, exc: Exception
) -> None:
    """Refuse (``on_detector_error: block``) or record the failure and let the text pass.

    Only the exception's type is logged: a library's message may quote the text it read.
    """
    log.error("request %s: detection failed in %s: %s", ctx.request_id, step, type(exc).__name__)
    record.detector_error = True
    if rules.source.on_detector_error == "block" and not rules.shadow:
        raise GatewayError(errors.BOUNDARY_DETECTOR, detail=type(exc).__name__) from exc
    ctx.decisions.append(Decision(step, "allow", errors.BOUNDARY_DETECTOR.code))


class Boundary:
    """The data-boundary service: one vault and one token key for the whole gateway."""

    def __init__(
        self, vault: Vault, minter: TokenMinter, scan_budget_s: float | None = None
    ) -> None:
        """``scan_budget_s``: CPU seconds one request's (or answer's) scan may take
        (``server.max_scan_cpu_s``); None: unbounded."""
        self._vault = vault
        self._minter = minter
        self._scan_budget_s = scan_budget_s

    @property
    def vault(self) -> Vault:
        """The review queue keeps the tokens of what it queues here (gateway/review/view.py)."""
        return self._vault

    @property
    def minter(self) -> TokenMinter:
        return self._minter

    async def inspect(
        self, ctx: RequestContext, request: NormalizedRequest, policy: CompiledPolicy
    ) -> Inspection | None:
        """Rewrite the request's text slots per policy, or refuse it; None: nothing to do."""
        rules = policy.data
        if rules is None:
            return None
        record = ctx.boundary = BoundaryRecord(shadow=rules.shadow)
        if not request.complete:  # a surface that did not list its non-text: inspect it all
            every_leaf(request, nontext())
        refusal = _media_refusal(request, rules) or _thinking_refusal(request, rules)
        if refusal is not None and not rules.shadow:
            raise refusal
        _uninspectable(ctx, request, rules, record)
        texts = [slot.text for slot in request.texts]
        pacer = Pacer(self._scan_budget_s)
        found = await _find(ctx, rules, texts, Step.BOUNDARY, pacer)
        keyed = rules.source.placeholders == "keyed"
        rewriter = Rewriter(rules.actions, policy.name, self._minter, keyed)
        subject = ctx.principal.subject if ctx.principal else ""
        if found is None:
            return Inspection(ctx, rules, rewriter, self._vault, policy.name, subject, pacer)
        rewritten = list(texts)
        hits = [i for i, f in enumerate(found) if f]
        # Numbered as the provider reads the prompt (one text needs no order).
        # Paced and counted as the scan is: 230,000 findings took 0.4 s to rewrite.
        for i in prompt_order(request) if len(hits) > 1 else hits:
            if found[i]:
                rewritten[i] = await rewrite_paced(rewriter.request_text, texts[i], found[i], pacer)
        if hits:  # the rewriting's last slice (the scan's was counted by ``_find``); counts
            pacer.finish()
            record.request = by_action(rewriter.counts)
            record.rules = set(rewriter.rules)
        blocked = rewriter.blocked()
        if rules.shadow:
            if rewriter.counts or refusal is not None:
                would = errors.BOUNDARY_WOULD_MASK
                if blocked or refusal is not None:
                    would = errors.BOUNDARY_WOULD_BLOCK
                ctx.decisions.append(Decision(Step.BOUNDARY, "allow", would.code))
            # Shadow: forwarded unchanged; the answer is inspected only to be recorded.
            if not rules.source.scan_output:
                return None
            return Inspection(ctx, rules, rewriter, self._vault, policy.name, subject, pacer)
        if not blocked and _exact(ctx, policy):  # a changed text would embed as another text
            blocked = {e: n for (action, e), n in rewriter.counts.items() if action != "allow"}
        if blocked:
            raise GatewayError(
                errors.BOUNDARY_BLOCKED,
                f"The request contains data this workflow may not send: {counted(blocked)}.",
            )
        changed = False
        for slot, old, new in zip(request.texts, texts, rewritten, strict=True):
            if new != old and slot.signed:
                raise GatewayError(errors.BOUNDARY_THINKING)
            if new != old:
                slot.replace(new)
                changed = True
        request.commit()
        if rewriter.minted:
            try:
                await self._vault.put(
                    policy.name, subject, rewriter.minted, rules.source.token_ttl_s
                )
            except StoreError as exc:
                raise GatewayError(errors.BOUNDARY_VAULT, detail=str(exc)) from exc
        if changed:
            ctx.decisions.append(Decision(Step.BOUNDARY, "transform", errors.BOUNDARY_MASKED.code))
        if not (rules.source.scan_output or rewriter.minted):
            return None
        return Inspection(ctx, rules, rewriter, self._vault, policy.name, subject, pacer)

    async def aclose(self) -> None:
        await self._vault.aclose()


def _exact(ctx: RequestContext, policy: CompiledPolicy) -> bool:
    """``embeddings.on_pii: block``: the embeddings endpoint takes its texts as written."""
    return ctx.endpoint == "embeddings" and policy.source.embeddings.on_pii == "block"


def _thinking_refusal(request: NormalizedRequest, rules: BoundaryPolicy) -> GatewayError | None:
    if rules.source.thinking == "refuse" and any(slot.signed for slot in request.texts):
        return GatewayError(errors.BOUNDARY_THINKING, "This workflow does not relay thinking.")
    return None


def _uninspectable(
    ctx: RequestContext, request: NormalizedRequest, rules: BoundaryPolicy, record: BoundaryRecord
) -> None:
    """Refuse what cannot be read as text (``on_uninspectable: block``), or note it."""
    if not request.uninspectable:
        return
    record.uninspectable = len(request.uninspectable)
    if rules.source.on_uninspectable == "block" and not rules.shadow:
        raise GatewayError(
            errors.BOUNDARY_UNINSPECTABLE,
            "The request contains data the gateway cannot inspect: "
            + ", ".join(sorted(set(request.uninspectable)))
            + ".",
        )
    code = errors.BOUNDARY_UNINSPECTABLE.code
    if rules.shadow and rules.source.on_uninspectable == "block":
        code = errors.BOUNDARY_WOULD_BLOCK.code
    ctx.decisions.append(Decision(Step.BOUNDARY, "allow", code))


def _media_refusal(request: NormalizedRequest, rules: BoundaryPolicy) -> GatewayError | None:
    """Why parts the gateway cannot read as text may not leave, if they may not."""
    if not request.media:
        return None
    unreadable = sorted({m for m in request.media if m != "image"})
    if unreadable:
        return GatewayError(
            errors.BOUNDARY_UNREADABLE,
            "The request contains content the gateway cannot inspect: "
            + ", ".join(unreadable)
            + ".",
        )
    if rules.source.images == "block":
        return GatewayError(errors.BOUNDARY_IMAGE)
    return None
