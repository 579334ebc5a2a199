"""The Anthropic Messages API, and its token counting."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.config import UpstreamConfig
from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import ANTHROPIC, COUNT_TOKENS
from gateway.upstream.http import HttpUpstream
from gateway.upstream.provider import Timeouts, UpstreamFailure, UpstreamResponse

__all__ = ["AnthropicProvider"]

_VERSION = "2023-06-01"
_PATHS = {ANTHROPIC.api: "/v1/messages", COUNT_TOKENS.api: "/v1/messages/count_tokens"}


class AnthropicProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        max_connections: int,
        bounds: UpstreamConfig | None = None,
        betas: list[str] | None = None,
    ) -> None:
        self.name = name
        self._betas = None if betas is None else frozenset(betas)
        self._api_key = api_key
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self._http = HttpUpstream(base_url, headers, max_connections, bounds)

    def speaks(self, api: Api) -> bool:
        return api in _PATHS

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        if not self._api_key:
            raise UpstreamFailure("config", f"provider '{self.name}' has no API key set")
        body = orjson.dumps({**request.body, "model": upstream_model})
        return await self._http.post(
            _PATHS[request.api],
            body,
            request.stream,
            timeouts,
            _version_headers(request.headers, self._betas),
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _version_headers(client: Mapping[str, str], allowed: frozenset[str] | None) -> dict[str, str]:
    """The API version and beta flags the client's SDK asked for: they change the wire format.
    With a provider's ``betas`` list, a flag not on it is dropped (that upstream rejects it)."""
    headers = {"anthropic-version": client.get("anthropic-version", _VERSION)}
    betas = [b.strip() for b in client.get("anthropic-beta", "").split(",") if b.strip()]
    if allowed is not None:
        betas = [b for b in betas if b in allowed]
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    return headers
