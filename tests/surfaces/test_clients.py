"""Client software nobody here wrote, pointed at the gateway and run unchanged against the
mock: the openai SDK (async, structured outputs), LangChain (OpenAI plain and with the
Responses API, Anthropic), and the OpenAI Agents SDK with a function tool."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from tests.conftest import Gateway


class City(BaseModel):
    name: str
    population: int


def test_async_openai_sdk_on_every_new_endpoint(gateway: Gateway) -> None:
    import openai

    async def run() -> None:
        client = openai.AsyncOpenAI(
            base_url=gateway.openai_url("wire"), api_key=gateway.analyst_key, max_retries=0
        )
        response = await client.responses.create(model="mock-model", input="async hello")
        assert response.output_text == "[mock mock-1] async hello".replace("] ", "] You said: ")
        stream = await client.responses.create(model="mock-model", input="x", stream=True)
        kinds = [event.type async for event in stream]
        assert kinds[-1] == "response.completed"
        parsed = await client.responses.parse(model="mock-model", input="a city", text_format=City)
        assert parsed.output_parsed == City(name="mock", population=0)
        chat = await client.chat.completions.parse(
            model="mock-model",
            messages=[{"role": "user", "content": "a city"}],
            response_format=City,
        )
        assert chat.choices[0].message.parsed == City(name="mock", population=0)
        vectors = await client.embeddings.create(model="mock-embed", input=["a", "b"])
        assert len(vectors.data) == 2
        assert (await client.models.retrieve("mock-model")).id == "mock-model"
        await client.close()

    asyncio.run(run())


@pytest.mark.parametrize("responses_api", [False, True])
def test_langchain_openai(gateway: Gateway, responses_api: bool) -> None:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    llm = ChatOpenAI(
        model="mock-model",
        base_url=gateway.openai_url("wire"),
        api_key=gateway.analyst_key,  # type: ignore[arg-type]
        use_responses_api=responses_api,
        max_retries=0,
    )
    assert "hello chain" in llm.invoke("hello chain").text
    assert "streamed" in "".join(chunk.text for chunk in llm.stream("streamed"))
    structured = llm.with_structured_output(City).invoke("a city please")
    assert structured == City(name="mock", population=0)

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    message = llm.bind_tools([get_weather]).invoke("use get_weather for Paris")
    assert message.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    embedder = OpenAIEmbeddings(
        model="mock-embed",
        base_url=gateway.openai_url("wire"),
        api_key=gateway.analyst_key,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
    )
    assert len(embedder.embed_documents(["one", "two"])) == 2


def test_langchain_anthropic(gateway: Gateway) -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_core.messages import HumanMessage

    llm = ChatAnthropic(  # type: ignore[call-arg]
        model="mock-model",
        base_url=gateway.anthropic_url("wire"),
        api_key=gateway.analyst_key,  # type: ignore[arg-type]
        max_tokens=100_000,  # clamped to the workflow's ceiling
        max_retries=0,
    )
    assert "hello claude" in llm.invoke("hello claude").text
    assert llm.get_num_tokens_from_messages([HumanMessage("count me")]) > 0

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    message = llm.bind_tools([get_weather]).invoke("call get_weather")
    assert message.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]


def test_openai_agents_sdk_runs_a_tool_loop(gateway: Gateway) -> None:
    import openai
    from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)  # its exporter would post traces (and the key) past the gateway
    client = openai.AsyncOpenAI(
        base_url=gateway.openai_url("wire"), api_key=gateway.analyst_key, max_retries=0
    )
    set_default_openai_client(client, use_for_tracing=False)
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "sunny"

    agent = Agent(
        name="weather", instructions="Answer briefly.", model="mock-model", tools=[get_weather]
    )
    result = Runner.run_sync(agent, "Please call get_weather for Paris")
    assert calls == ["mock"]
    assert str(result.final_output).startswith("[mock mock-1]")
    typed = Agent(name="typed", model="mock-model", output_type=City)
    assert Runner.run_sync(typed, "a city").final_output == City(name="mock", population=0)


def test_litellm_sdk_as_a_client(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its own price list, not one fetched from GitHub on import (tests stay offline).
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    common = {"api_base": gateway.openai_url("wire"), "api_key": gateway.analyst_key}
    completion = litellm.completion(
        model="openai/mock-model", messages=[{"role": "user", "content": "hi litellm"}], **common
    )
    assert "hi litellm" in completion.choices[0].message.content  # type: ignore[union-attr]
    response = litellm.responses(model="openai/mock-model", input="hi responses", **common)
    assert "hi responses" in response.output[0].content[0].text  # type: ignore[union-attr]
    vectors = litellm.embedding(model="openai/mock-embed", input=["a"], **common)
    assert len(vectors.data) == 1
