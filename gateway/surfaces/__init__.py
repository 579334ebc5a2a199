"""The wire APIs clients speak, one module each, registered in ``SURFACES``.

A surface (``base.Surface``) owns everything about its API's wire: it parses a body into the
NormalizedRequest (every text slot it knows named, every other string leaf handed to
``normalized.json_leaves``), renders errors (its one status -> error type table serves the
gateway's errors and translated upstream ones), lists models, reads each answer once (text,
usage, logprobs, tool calls; whole or streamed), writes answers (the fallback message, the
mock), and turns the knobs the steps ask for (output ceiling, usage in streams, logprobs,
no-store). ``answers_text`` says whether its answers are text (False for vectors and counts:
no fallback message stands in for them). No step knows an API's name: it asks
``surface_of(request)``.

Adding a wire API: write one module here (a package like ``openai_responses/``) whose
``SURFACE`` implements ``Surface`` (``base.TextSurface`` takes the package's request, answer
and stream functions once; ``base.ErrorsOf`` borrows another API's error shapes;
``base.NoTextAnswers`` answers for vectors and counts), and add it to ``SURFACES`` below.
Inspection is total (``surfaces.total``): its ``parse`` ends with ``every_leaf(request,
NONTEXT)`` (its own list of non-text paths, each with its reason), its answer walk with
``answer_leaves(answer, ANSWER_NONTEXT)``, and its stream rewrite passes every event's
non-delta fields through ``inspect_leaves``. The app routes ``POST /v1{path}`` (and
``/w/{workflow}/v1{path}``) to it, and its ``endpoint`` becomes a value of the policies'
``access.endpoints`` and of the models' ``endpoints`` in ``gateway.yaml``. Only the provider
edge (``gateway/upstream``, ``gateway/translate``) then learns whether and how each provider
speaks it (a path in the provider's table, a translator, the mock's answers). Routes that are
not a POST of a request body (``GET /v1/models/{id}``, ``/v1/responses/{id}``) are the app's
own.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.normalized import NormalizedRequest
from gateway.surfaces import (
    anthropic_count_tokens,
    anthropic_messages,
    openai_chat,
    openai_embeddings,
    openai_responses,
)
from gateway.surfaces.base import Answer, Choice, StreamReader, Surface

__all__ = [
    "ANTHROPIC",
    "CHAT_ENDPOINTS",
    "COUNT_TOKENS",
    "EMBEDDINGS",
    "OPENAI",
    "RESPONSES",
    "SURFACES",
    "Answer",
    "Choice",
    "StreamReader",
    "Surface",
    "surface_for",
    "surface_of",
]

OPENAI: Surface = openai_chat.SURFACE
ANTHROPIC: Surface = anthropic_messages.SURFACE
RESPONSES: Surface = openai_responses.SURFACE
EMBEDDINGS: Surface = openai_embeddings.SURFACE
COUNT_TOKENS: Surface = anthropic_count_tokens.SURFACE

# The registry: every wire API by its name. The first is the default for routes no API owns.
SURFACES: Mapping[str, Surface] = {
    s.api: s for s in (OPENAI, ANTHROPIC, RESPONSES, EMBEDDINGS, COUNT_TOKENS)
}
# The endpoints a model serves when its configuration names none: the chat-style ones (a
# model serves embeddings only where ``gateway.yaml`` says so).
CHAT_ENDPOINTS = tuple(dict.fromkeys(s.endpoint for s in SURFACES.values() if s is not EMBEDDINGS))


def surface_of(request: NormalizedRequest | str) -> Surface:
    """The surface a request was parsed by (or an API's, by name)."""
    return SURFACES[request if isinstance(request, str) else request.api]


def surface_for(path: str, headers: Mapping[str, str]) -> Surface:
    """The shapes a client at ``path`` reads: the API whose route it is, else the one whose
    SDK header it sent, else the default (for ``/v1/models`` and unknown routes)."""
    for surface in SURFACES.values():
        if path.endswith(surface.path):
            return surface
    for surface in SURFACES.values():
        if surface.sdk_header is not None and surface.sdk_header in headers:
            return surface
    return next(iter(SURFACES.values()))
