// Node clients against a running gateway: GATEWAY_URL, GATEWAY_KEY, GATEWAY_WORKFLOW.
// Each check throws on a wrong answer; the process exits non-zero (tests/surfaces/test_node_clients.py).
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, streamText, generateObject, tool, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";

const { GATEWAY_URL, GATEWAY_KEY, GATEWAY_WORKFLOW } = process.env;
const base = `${GATEWAY_URL}/w/${GATEWAY_WORKFLOW}`;
const said = (text) => `[mock mock-1] You said: ${text}`;

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0 });
const chat = await openai.chat.completions.create({
  model: "mock-model", messages: [{ role: "user", content: "node chat" }],
});
assert.equal(chat.choices[0].message.content, said("node chat"));
const response = await openai.responses.create({ model: "mock-model", input: "node responses" });
assert.equal(response.output_text, said("node responses"));
const stream = openai.responses.stream({ model: "mock-model", input: "node stream" });
const final = await stream.finalResponse();
assert.equal(final.output_text, said("node stream"));
const vectors = await openai.embeddings.create({ model: "mock-embed", input: ["a", "b"] });
assert.equal(vectors.data.length, 2);
assert.equal(vectors.data[0].embedding.length, 1536);
assert.equal((await openai.models.retrieve("mock-model")).id, "mock-model");

const anthropic = new Anthropic({ baseURL: base, apiKey: GATEWAY_KEY, maxRetries: 0 });
const message = await anthropic.messages.create({
  model: "mock-model", max_tokens: 4096, messages: [{ role: "user", content: "node claude" }],
});
assert.equal(message.content[0].text, said("node claude"));
const streamed = await anthropic.messages
  .stream({ model: "mock-model", max_tokens: 64000, messages: [{ role: "user", content: "node s" }] })
  .finalMessage();
assert.equal(streamed.content[0].text, said("node s"));
const counted = await anthropic.messages.countTokens({
  model: "mock-model", messages: [{ role: "user", content: "count me" }],
});
assert.ok(counted.input_tokens > 0);
assert.equal((await anthropic.models.retrieve("mock-model")).id, "mock-model");

// The Vercel AI SDK: openai(model) speaks the Responses API, openai.chat(model) chat.
const aiOpenAI = createOpenAI({ baseURL: `${base}/v1`, apiKey: GATEWAY_KEY });
const viaResponses = await generateText({ model: aiOpenAI("mock-model"), prompt: "vercel r" });
assert.equal(viaResponses.text, said("vercel r"));
const viaChat = await generateText({ model: aiOpenAI.chat("mock-model"), prompt: "vercel c" });
assert.equal(viaChat.text, said("vercel c"));
const textStream = streamText({ model: aiOpenAI("mock-model"), prompt: "vercel stream" });
let streamedText = "";
for await (const piece of textStream.textStream) streamedText += piece;
assert.equal(streamedText, said("vercel stream"));
const city = z.object({ name: z.string(), population: z.number() });
for (const model of [aiOpenAI("mock-model"), aiOpenAI.chat("mock-model")]) {
  const { object } = await generateObject({ model, schema: city, prompt: "a city" });
  assert.deepEqual(object, { name: "mock", population: 0 });
}
const calls = [];
const loop = await generateText({
  model: aiOpenAI("mock-model"),
  prompt: "Please call get_weather for Paris",
  tools: {
    get_weather: tool({
      description: "The weather in a city.",
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => { calls.push(city); return "sunny"; },
    }),
  },
  stopWhen: stepCountIs(3),
});
assert.deepEqual(calls, ["mock"]);
assert.ok(loop.text.startsWith("[mock mock-1]"));
const aiAnthropic = createAnthropic({ baseURL: `${base}/v1`, apiKey: GATEWAY_KEY });
const viaMessages = await generateText({ model: aiAnthropic("mock-model"), prompt: "vercel a" });
assert.equal(viaMessages.text, said("vercel a"));
console.log("node clients: ok");
