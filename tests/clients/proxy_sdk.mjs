// SPDX-License-Identifier: MIT
// The official SDKs streaming through cmv proxy (docs/proxy.md): event order and usage.
// Usage: node proxy_sdk.mjs CLIENTS_NODE_MODULES PROXY_URL
import { createRequire } from "node:module";
const [mods, base] = process.argv.slice(2);
const require = createRequire(mods + "/");
const Anthropic = require("@anthropic-ai/sdk").default ?? require("@anthropic-ai/sdk");
const OpenAI = require("openai").default ?? require("openai");
let failed = 0;
const check = (c, what) => { console.log((c ? "ok: " : "FAIL: ") + what); if (!c) failed++; };

const a = new Anthropic({ apiKey: "sk-test-sdk", baseURL: base });
const stream = a.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 100, metadata: { user_id: "user_sdk_session_sdk-anthropic-1" },
	tools: [{ name: "Bash", description: "Run a command.", input_schema: { type: "object", properties: { command: { type: "string" } } } }],
	messages: [{ role: "user", content: "hi" }] });
const kinds = [];
for await (const ev of stream) kinds.push(ev.type);
const msg = await stream.finalMessage();
check(kinds[0] === "message_start" && kinds.at(-1) === "message_stop", `Anthropic SDK: events in order (${kinds.join(",")})`);
check(msg.usage && msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, "Anthropic SDK: usage in the final message");
check(!msg.content.some((b) => b.name === "cmv_recall"), "Anthropic SDK: no recall call reaches the client");

const o = new OpenAI({ apiKey: "sk-test-sdk", baseURL: base + "/v1" });
const chat = await o.chat.completions.create({ model: "gpt-4o", stream: true, stream_options: { include_usage: true },
	prompt_cache_key: "sdk-chat-1",
	tools: [{ type: "function", function: { name: "lookup", description: "Look up.", parameters: { type: "object", properties: {} } } }],
	messages: [{ role: "user", content: "hi" }] });
let finish = null, usage = null, n = 0;
for await (const c of chat) { n++; if (c.choices?.[0]?.finish_reason) finish = c.choices[0].finish_reason; if (c.usage) usage = c.usage; }
check(n > 1 && finish, `OpenAI SDK chat: chunks and a finish (${n}, ${finish})`);
check(usage && usage.prompt_tokens > 0, "OpenAI SDK chat: usage chunk");

const rs = await o.responses.create({ model: "gpt-5", stream: true, prompt_cache_key: "sdk-responses-1",
	input: [{ role: "user", content: "hi" }] });
const rk = [];
let ru = null;
for await (const ev of rs) { rk.push(ev.type); if (ev.type === "response.completed") ru = ev.response.usage; }
check(rk[0] === "response.created" && rk.at(-1) === "response.completed", `OpenAI SDK responses: events in order (${rk.length})`);
check(ru && ru.input_tokens > 0, "OpenAI SDK responses: usage");
process.exit(failed ? 1 : 0);
