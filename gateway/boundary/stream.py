"""A streamed answer inspected event by event: each text channel goes through a hold-back
window, tokens are restored, and a blocked entity ends the stream with an error event.

The surface walks its API's events and hands every text to the channels here; it relays only
the event shapes it knows: anything else ends the stream (fail closed).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator

from gateway import errors
from gateway.boundary.findings import Finding
from gateway.boundary.holdback import HoldBack
from gateway.boundary.step import Inspection, counted, detection_failed
from gateway.errors import GatewayError
from gateway.steps import Step
from gateway.surfaces import Surface

__all__ = ["inspect_stream"]

log = logging.getLogger("gateway.boundary")

Channel = tuple[int, str, int]  # (choice or block index, field, tool call index)


class _Guarded:
    """The policy's detector; a failure refuses, or with ``on_detector_error: allow`` turns
    detection off for the rest of the stream (tokens are still restored)."""

    def __init__(self, inspection: Inspection) -> None:
        self._inspection = inspection
        self._on = inspection.rules.source.scan_output

    @property
    def entities(self) -> frozenset[str]:
        return self._inspection.rules.detector.entities

    def find(self, text: str) -> list[Finding]:
        if not self._on:
            return []
        try:
            return self._inspection.rules.detector.find(text)
        # Third-party matching code: whatever fails, the answer must not pass uninspected
        # unless the policy says so.
        except Exception as exc:  # noqa: BLE001 - fail closed on any detector failure
            inspection = self._inspection
            detection_failed(
                inspection.ctx, inspection.rules, inspection.record, Step.INSPECT_ANSWER, exc
            )
            self._on = False
            return []


class _Channels:
    def __init__(self, inspection: Inspection) -> None:
        self._inspection = inspection
        self._guarded = _Guarded(inspection)
        self._window = inspection.rules.source.stream_window_chars
        self._open: dict[Channel, HoldBack] = {}

    def _get(self, channel: Channel) -> HoldBack:
        hold = self._open.get(channel)
        if hold is None:
            hold = self._open[channel] = HoldBack(
                self._guarded,
                self._inspection.answer_text,
                self._window,
                hold_secrets=not self._inspection.rules.shadow,  # shadow never ends a stream
            )
        return hold

    async def feed(self, channel: Channel, piece: str) -> str:
        out = self._get(channel).feed(piece)
        self._inspection.check_answer()
        return await self._inspection.restore(out)

    async def finish(self, index: int) -> list[tuple[Channel, str]]:
        """What each channel of ``index`` still held, in channel order."""
        done = sorted(c for c in self._open if c[0] == index)
        out = []
        for channel in done:
            rest = self._open.pop(channel).finish()
            self._inspection.check_answer()
            if rest:
                out.append((channel, await self._inspection.restore(rest)))
        return out

    def pending(self) -> list[int]:
        return sorted({c[0] for c in self._open if c[0] >= 0})

    async def signed(self, text: str | None) -> None:
        rules = self._inspection.rules
        if rules.shadow:
            return
        if text is None:
            if rules.source.thinking == "refuse":
                raise GatewayError(
                    errors.BOUNDARY_THINKING, "This workflow does not relay thinking."
                )
            return
        changing = [
            f
            for f in self._guarded.find(text)
            if rules.action(f.entity) in ("mask", "redact", "block")
        ]
        if changing:
            entities = Counter(f.entity for f in changing)
            raise GatewayError(
                errors.BOUNDARY_BLOCKED_OUTPUT,
                "The answer's thinking contained data this workflow may not return: "
                f"{counted(entities)}.",
            )


async def inspect_stream(
    inspection: Inspection, surface: Surface, events: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The events as the caller may see them; raises GatewayError to end the stream."""
    channels = _Channels(inspection)
    async for event in surface.rewrite_stream(channels, events):
        yield event
    inspection.finish_answer()
