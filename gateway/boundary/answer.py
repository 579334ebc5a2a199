"""A complete answer inspected for its caller: output findings handled, tokens restored.

The answer comes read (``surfaces.Answer``): its text slots are the surface's; this step only
inspects and rewrites them.
"""

from __future__ import annotations

from gateway import errors
from gateway.boundary.step import Inspection
from gateway.errors import GatewayError
from gateway.normalized import Api
from gateway.surfaces import Answer, surface_of
from gateway.surfaces.base import shape_error

__all__ = ["inspect_answer", "inspect_read"]


async def inspect_read(inspection: Inspection, answer: Answer) -> bytes:
    """``answer`` as the caller may see it; raises GatewayError for a blocked entity or an
    answer whose text the surface could not read in full."""
    if answer.unreadable is not None:
        raise shape_error(answer.unreadable)
    texts = answer.texts
    originals = [slot.text for slot in texts]
    found = await inspection.find(originals) if inspection.rules.source.scan_output else None
    rewritten = await inspection.answer_texts(originals, found)
    inspection.check_answer()
    inspection.finish_answer()
    signed = [slot for slot in texts if slot.signed]
    if signed and inspection.rules.source.thinking == "refuse" and not inspection.rules.shadow:
        raise GatewayError(errors.BOUNDARY_THINKING, "This workflow does not relay thinking.")
    for slot, old, new in zip(texts, originals, rewritten, strict=True):
        if slot.signed:  # a signed block goes back as written (tokens in it stay tokens)
            if new != old:
                raise GatewayError(errors.BOUNDARY_BLOCKED_OUTPUT, detail="in a thinking block")
            continue
        new = await inspection.restore(new)
        if new != old:
            slot.replace(new)
            answer.changed = True
    if answer.changed:  # what restates the text token by token would spell the old one
        for holder, key in answer.restated:
            holder[key] = None
    return answer.body()


async def inspect_answer(inspection: Inspection, api: Api, body: bytes) -> bytes:
    """``inspect_read`` for a caller holding only the bytes (``policy explain``)."""
    return await inspect_read(inspection, surface_of(api).read_answer(body))
