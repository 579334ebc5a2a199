"""OpenAI-compatible upstreams (OpenAI, Azure-style proxies, vLLM, ...): Chat Completions,
the Responses API and embeddings, each at its own path."""

from __future__ import annotations

import orjson

from gateway.config import UpstreamConfig
from gateway.normalized import Api, NormalizedRequest
from gateway.surfaces import EMBEDDINGS, OPENAI, RESPONSES
from gateway.upstream.http import HttpUpstream
from gateway.upstream.provider import Timeouts, UpstreamFailure, UpstreamResponse

__all__ = ["OpenAIProvider"]

# The path each API this provider speaks is posted to, under its base URL.
_PATHS = {
    OPENAI.api: "/chat/completions",
    RESPONSES.api: "/responses",
    EMBEDDINGS.api: "/embeddings",
}


class OpenAIProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        max_connections: int,
        bounds: UpstreamConfig | None = None,
    ) -> None:
        self.name = name
        self._api_key = api_key
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = HttpUpstream(base_url, headers, max_connections, bounds)

    def speaks(self, api: Api) -> bool:
        return api in _PATHS

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        if not self._api_key:
            raise UpstreamFailure("config", f"provider '{self.name}' has no API key set")
        # A shallow copy: only the model name changes; every other field goes as it came.
        body = orjson.dumps({**request.body, "model": upstream_model})
        return await self._http.post(_PATHS[request.api], body, request.stream, timeouts, {})

    async def stored(self, method: str, path: str, timeouts: Timeouts) -> UpstreamResponse:
        if not self._api_key:
            raise UpstreamFailure("config", f"provider '{self.name}' has no API key set")
        return await self._http.post(path, None, False, timeouts, {}, method=method)

    async def aclose(self) -> None:
        await self._http.aclose()
