// SPDX-License-Identifier: MIT
// The official SDKs streaming through a switched cmv proxy session (docs/proxy.md, "Switching"):
// each SDK's own stream helper assembles what the other provider's upstream answered.
// Usage: node proxy_switch_sdk.mjs CLIENTS_NODE_MODULES PROXY_URL PHASE
// PHASE: a1 a2 (Anthropic SDK; a2 after a switch to gpt-4o), c1 c2 (OpenAI chat; c2 on Claude),
// r1 r2 (OpenAI responses; r2 on Claude).
import { createRequire } from "node:module";
const [mods, base, phase] = process.argv.slice(2);
const require = createRequire(mods + "/");
const Anthropic = require("@anthropic-ai/sdk").default ?? require("@anthropic-ai/sdk");
const OpenAI = require("openai").default ?? require("openai");
let failed = 0;
const check = (c, what) => { console.log((c ? "ok: " : "FAIL: ") + phase + ": " + what); if (!c) failed++; };

if (phase === "a1" || phase === "a2") {
	const a = new Anthropic({ apiKey: "sk-test-sdk", baseURL: base });
	const messages = [{ role: "user", content: "Look something up." }];
	if (phase === "a2")
		messages.push({ role: "assistant", content: [{ type: "text", text: "Claude first." }] },
			{ role: "user", content: "Now look up x." });
	const stream = a.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 100,
		metadata: { user_id: "user_sdk_session_sdk-switch-a" },
		tools: [{ name: "lookup", description: "Look up.", input_schema: { type: "object", properties: { q: { type: "string" } } } }],
		messages });
	const kinds = [];
	let jsonParts = 0;
	stream.on("inputJson", () => jsonParts++);
	for await (const ev of stream) kinds.push(ev.type);
	const msg = await stream.finalMessage();
	check(kinds[0] === "message_start" && kinds.at(-2) === "message_delta" && kinds.at(-1) === "message_stop",
		`events in the Messages API's order (${kinds.join(",")})`);
	check(msg.usage && msg.usage.input_tokens > 0 && msg.usage.output_tokens === 10, `usage (${JSON.stringify(msg.usage)})`);
	if (phase === "a1") {
		check(msg.content[0]?.text === "Claude first." && msg.stop_reason === "end_turn", "Claude's answer");
	} else {
		const tu = msg.content.filter((b) => b.type === "tool_use");
		check(tu.length === 1 && tu[0].name === "lookup" && tu[0].input?.q === "x" && tu[0].id === "call_scripted_1" &&
			jsonParts > 0 && msg.stop_reason === "tool_use",
			`gpt-4o's streamed call assembled by the SDK into one tool_use (${JSON.stringify(msg.content)}, ${msg.stop_reason})`);
	}
} else if (phase === "c1" || phase === "c2") {
	const o = new OpenAI({ apiKey: "sk-test-sdk", baseURL: base + "/v1" });
	const messages = [{ role: "user", content: "Look something up." }];
	if (phase === "c2")
		messages.push({ role: "assistant", content: "Chat first." }, { role: "user", content: "Now look up y." });
	const stream = o.chat.completions.stream({ model: "gpt-4o", stream_options: { include_usage: true },
		prompt_cache_key: "sdk-switch-chat",
		tools: [{ type: "function", function: { name: "lookup", description: "Look up.", parameters: { type: "object", properties: { q: { type: "string" } } } } }],
		messages });
	let chunks = 0, usage = null;
	for await (const c of stream) { chunks++; if (c.usage) usage = c.usage; }
	const done = await stream.finalChatCompletion();
	const ch = done.choices[0];
	check(chunks > 1 && usage && usage.prompt_tokens > 0 && usage.completion_tokens === 10, `chunks and the usage chunk (${chunks}, ${JSON.stringify(usage)})`);
	if (phase === "c1") {
		check(ch.message.content === "Chat first." && ch.finish_reason === "stop", "gpt-4o's answer");
	} else {
		const tc = ch.message.tool_calls ?? [];
		check(tc.length === 1 && tc[0].function.name === "lookup" && JSON.parse(tc[0].function.arguments).q === "y" &&
			tc[0].id.startsWith("toolu_") && ch.finish_reason === "tool_calls",
			`Claude's call assembled by the SDK into one tool call (${JSON.stringify(ch.message)}, ${ch.finish_reason})`);
	}
} else {
	const o = new OpenAI({ apiKey: "sk-test-sdk", baseURL: base + "/v1" });
	const input = [{ role: "user", content: "Look something up." }];
	if (phase === "r2")
		input.push({ role: "assistant", content: "Responses first." }, { role: "user", content: "Now look up z." });
	const stream = o.responses.stream({ model: "gpt-5", prompt_cache_key: "sdk-switch-resp", store: false,
		tools: [{ type: "function", name: "lookup", description: "Look up.", strict: false, parameters: { type: "object", properties: { q: { type: "string" } } } }],
		input });
	const kinds = [];
	for await (const ev of stream) kinds.push(ev.type);
	const done = await stream.finalResponse();
	check(kinds[0] === "response.created" && kinds.at(-1) === "response.completed", `events in order (${kinds.join(",")})`);
	check(done.usage && done.usage.input_tokens > 0 && done.usage.output_tokens === 10, `usage (${JSON.stringify(done.usage)})`);
	if (phase === "r1") {
		check(done.output_text === "Responses first.", "gpt-5's answer");
	} else {
		const fc = done.output.filter((i) => i.type === "function_call");
		check(fc.length === 1 && fc[0].name === "lookup" && JSON.parse(fc[0].arguments).q === "z" && fc[0].call_id.startsWith("toolu_") &&
			kinds.includes("response.function_call_arguments.done"),
			`Claude's call assembled by the SDK into one function_call (${JSON.stringify(done.output)})`);
	}
}
process.exit(failed ? 1 : 0);
