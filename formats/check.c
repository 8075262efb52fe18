/* SPDX-License-Identifier: MIT */
/*
 * The providers' structural rules, checked on a request body (the
 * reference is formats.md §7-11, which quotes each provider's rejection).
 * The checker knows nothing of how the body was made: it is run on every
 * rendering in the tests, on hand-made bad bodies, and by
 * `cmv export --check`.
 */
#include "neutral.h"

typedef struct {
	cmv_buf *out;
	int n;
} report;

#ifdef __GNUC__
__attribute__((format(printf, 2, 3)))
#endif
static void problem(report *r, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (r->out) {
		cmv_buf_puts(r->out, line);
		cmv_buf_puts(r->out, "\n");
	}
	r->n++;
}

static const char *type_of(const cJSON *b)
{
	const char *t = cmv_formats__cj_str(b, "type");
	return t ? t : "";
}

static bool blank(const char *s)
{
	for (; s && *s; s++)
		if (!strchr(" \t\r\n", *s))
			return false;
	return true;
}

static bool in_list(const cJSON *list, const char *s)
{
	for (const cJSON *x = list ? list->child : NULL; x; x = x->next)
		if (cJSON_IsString(x) && s && !strcmp(x->valuestring, s))
			return true;
	return false;
}

static bool valid_tool_id(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static void check_anthropic(report *r, const cJSON *body)
{
	const cJSON *msgs = cmv_formats__cj_get(body, "messages");
	cJSON *pending = cJSON_CreateArray(); /* ids the previous message called */
	const char *prev_role = NULL;
	int i = 0;

	if (!cJSON_IsArray(msgs) || !msgs->child) {
		problem(r, "messages: missing or empty");
		cJSON_Delete(pending);
		return;
	}
	if (!cJSON_IsNumber(cmv_formats__cj_get(body, "max_tokens")))
		problem(r, "max_tokens: missing");
	for (const cJSON *m = msgs->child; m; m = m->next, i++) {
		const char *role = cmv_formats__cj_str(m, "role");
		const cJSON *content = cmv_formats__cj_get(m, "content");
		cJSON *calls = cJSON_CreateArray();
		bool asst = role && !strcmp(role, "assistant"), seen_other = false;

		if (!role || (strcmp(role, "user") && strcmp(role, "assistant")))
			problem(r, "messages[%d]: role must be user or assistant", i);
		else if (i == 0 && asst)
			problem(r, "messages[0]: the first message must be a user message");
		else if (prev_role && !strcmp(prev_role, role))
			problem(r, "messages[%d]: two %s messages in a row", i, role);
		prev_role = role;
		if (cJSON_IsString(content)) {
			if (blank(content->valuestring))
				problem(r, "messages[%d]: empty content", i);
		} else if (!cJSON_IsArray(content) || !content->child) {
			problem(r, "messages[%d]: empty content", i);
		}
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
			const char *t = type_of(b);
			if (!strcmp(t, "text")) {
				if (blank(cmv_formats__cj_str(b, "text")))
					problem(r, "messages[%d]: an empty text block", i);
				seen_other = true;
			} else if (!strcmp(t, "tool_use")) {
				if (!asst)
					problem(r, "messages[%d]: tool_use in a user message", i);
				if (!valid_tool_id(cmv_formats__cj_str(b, "id")))
					problem(r, "messages[%d]: tool_use id '%s' does not match ^[a-zA-Z0-9_-]+$", i,
						cmv_formats__cj_str(b, "id") ? cmv_formats__cj_str(b, "id") : "");
				if (!cJSON_IsObject(cmv_formats__cj_get(b, "input")))
					problem(r, "messages[%d]: tool_use input must be an object", i);
				if (in_list(calls, cmv_formats__cj_str(b, "id")))
					problem(r, "messages[%d]: tool_use id %s used twice", i, cmv_formats__cj_str(b, "id"));
				else
					cJSON_AddItemToArray(calls, cJSON_CreateString(cmv_formats__cj_str(b, "id") ? cmv_formats__cj_str(b, "id") : ""));
			} else if (!strcmp(t, "tool_result")) {
				const char *id = cmv_formats__cj_str(b, "tool_use_id");
				if (asst)
					problem(r, "messages[%d]: tool_result in an assistant message", i);
				else if (!in_list(pending, id))
					problem(r, "messages[%d]: unexpected tool_use_id %s in tool_result: no tool_use for it in the previous message", i, id ? id : "(none)");
				if (seen_other)
					problem(r, "messages[%d]: tool_result after other content (results come first)", i);
				for (cJSON *x = pending->child; x; x = x->next)
					if (id && !strcmp(x->valuestring, id)) {
						cJSON_Delete(cJSON_DetachItemViaPointer(pending, x));
						break;
					}
			} else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking")) {
				if (!asst)
					problem(r, "messages[%d]: %s in a user message", i, t);
				else if (!strcmp(t, "thinking") && blank(cmv_formats__cj_str(b, "signature")))
					problem(r, "messages[%d]: a thinking block without its signature cannot be replayed", i);
			} else {
				seen_other = true;
			}
		}
		for (const cJSON *x = pending->child; x; x = x->next)
			problem(r, "messages[%d]: tool_use ids were found without tool_result blocks immediately after: %s",
				i - 1, x->valuestring);
		cJSON_Delete(pending);
		pending = calls;
	}
	for (const cJSON *x = pending->child; x; x = x->next)
		problem(r, "messages[%d]: tool_use %s is the last message's and has no tool_result", i - 1, x->valuestring);
	cJSON_Delete(pending);
}

static void check_openai_chat(report *r, const cJSON *body)
{
	const cJSON *msgs = cmv_formats__cj_get(body, "messages");
	cJSON *pending = cJSON_CreateArray();
	int i = 0;

	if (!cJSON_IsArray(msgs) || !msgs->child) {
		problem(r, "messages: missing or empty");
		cJSON_Delete(pending);
		return;
	}
	for (const cJSON *m = msgs->child; m; m = m->next, i++) {
		const char *role = cmv_formats__cj_str(m, "role");
		const cJSON *content = cmv_formats__cj_get(m, "content"), *calls = cmv_formats__cj_get(m, "tool_calls");
		if (!role) {
			problem(r, "messages[%d]: no role", i);
			continue;
		}
		if (strcmp(role, "tool") && pending->child) {
			for (const cJSON *x = pending->child; x; x = x->next)
				problem(r, "messages[%d]: an assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id': %s has none",
					i, x->valuestring);
			cJSON_Delete(pending);
			pending = cJSON_CreateArray();
		}
		if (!strcmp(role, "tool")) {
			const char *id = cmv_formats__cj_str(m, "tool_call_id");
			bool found = false;
			for (cJSON *x = pending->child; x; x = x->next)
				if (id && !strcmp(x->valuestring, id)) {
					cJSON_Delete(cJSON_DetachItemViaPointer(pending, x));
					found = true;
					break;
				}
			if (!found)
				problem(r, "messages[%d]: tool message for %s, which the assistant message before did not call", i,
					id ? id : "(none)");
			if (!cJSON_IsString(content) && !cJSON_IsArray(content))
				problem(r, "messages[%d]: a tool message needs content", i);
		} else if (!strcmp(role, "assistant")) {
			bool has_calls = cJSON_IsArray(calls) && calls->child;
			if (!has_calls && (!cJSON_IsString(content) || blank(content->valuestring)) &&
			    !(cJSON_IsArray(content) && content->child))
				problem(r, "messages[%d]: an assistant message with neither content nor tool_calls", i);
			for (const cJSON *tc = has_calls ? calls->child : NULL; tc; tc = tc->next) {
				const cJSON *fn = cmv_formats__cj_get(tc, "function");
				const char *args = cmv_formats__cj_str(fn, "arguments");
				cJSON *parsed = args ? cJSON_Parse(args) : NULL;
				if (!cmv_formats__cj_str(tc, "id") || !cmv_formats__cj_str(fn, "name"))
					problem(r, "messages[%d]: a tool call without an id or a name", i);
				if (!cJSON_IsObject(parsed))
					problem(r, "messages[%d]: tool call %s: arguments must be a JSON object in a string", i,
						cmv_formats__cj_str(tc, "id") ? cmv_formats__cj_str(tc, "id") : "");
				cJSON_Delete(parsed);
				if (in_list(pending, cmv_formats__cj_str(tc, "id")))
					problem(r, "messages[%d]: tool call id %s used twice", i, cmv_formats__cj_str(tc, "id"));
				else if (cmv_formats__cj_str(tc, "id"))
					cJSON_AddItemToArray(pending, cJSON_CreateString(cmv_formats__cj_str(tc, "id")));
			}
		} else if (!strcmp(role, "user") || !strcmp(role, "system") || !strcmp(role, "developer")) {
			if (cJSON_IsString(content) ? blank(content->valuestring) : !(cJSON_IsArray(content) && content->child))
				problem(r, "messages[%d]: empty %s message", i, role);
		} else {
			problem(r, "messages[%d]: unknown role '%s'", i, role);
		}
	}
	for (const cJSON *x = pending->child; x; x = x->next)
		problem(r, "messages[%d]: tool call %s has no tool message after it", i - 1, x->valuestring);
	cJSON_Delete(pending);
}

static void check_openai_responses(report *r, const cJSON *body)
{
	const cJSON *input = cmv_formats__cj_get(body, "input");
	cJSON *calls = cJSON_CreateArray(), *answered = cJSON_CreateArray();
	int i = 0;

	if (!cJSON_IsArray(input) || !input->child) {
		problem(r, "input: missing or empty");
		goto done;
	}
	for (const cJSON *it = input->child; it; it = it->next, i++) {
		const char *t = cmv_formats__cj_str(it, "type");
		if (!t && cmv_formats__cj_str(it, "role"))
			t = "message";
		if (!t) {
			problem(r, "input[%d]: an item without a type", i);
			continue;
		}
		if (!strcmp(t, "message")) {
			const cJSON *content = cmv_formats__cj_get(it, "content");
			if (cJSON_IsString(content) ? blank(content->valuestring) : !(cJSON_IsArray(content) && content->child))
				problem(r, "input[%d]: empty message", i);
		} else if (!strcmp(t, "function_call") || !strcmp(t, "custom_tool_call") || !strcmp(t, "tool_search_call")) {
			const char *id = cmv_formats__cj_str(it, "call_id");
			if (!id)
				problem(r, "input[%d]: a call without a call_id", i);
			else if (in_list(calls, id))
				problem(r, "input[%d]: call_id %s used twice", i, id);
			else
				cJSON_AddItemToArray(calls, cJSON_CreateString(id));
			if (!strcmp(t, "function_call")) {
				cJSON *parsed = cmv_formats__cj_str(it, "arguments") ? cJSON_Parse(cmv_formats__cj_str(it, "arguments")) : NULL;
				if (!cJSON_IsObject(parsed))
					problem(r, "input[%d]: arguments must be a JSON object in a string", i);
				cJSON_Delete(parsed);
			}
		} else if (!strcmp(t, "function_call_output") || !strcmp(t, "custom_tool_call_output") || !strcmp(t, "tool_search_output")) {
			const char *id = cmv_formats__cj_str(it, "call_id");
			if (!in_list(calls, id))
				problem(r, "input[%d]: no call found for output with call_id %s", i, id ? id : "(none)");
			else if (in_list(answered, id))
				problem(r, "input[%d]: call_id %s answered twice", i, id);
			else
				cJSON_AddItemToArray(answered, cJSON_CreateString(id));
		} else if (!strcmp(t, "reasoning")) {
			const cJSON *next = it->next;
			const char *nt = next ? cmv_formats__cj_str(next, "type") : NULL;
			if (!next || (nt && !strcmp(nt, "reasoning")) ||
			    (nt && !strcmp(nt, "message") && cmv_formats__cj_str(next, "role") && strcmp(cmv_formats__cj_str(next, "role"), "assistant")))
				problem(r, "input[%d]: item %s of type reasoning was provided without its required following item", i,
					cmv_formats__cj_str(it, "id") ? cmv_formats__cj_str(it, "id") : "(no id)");
			if (blank(cmv_formats__cj_str(it, "encrypted_content")) && !cmv_formats__cj_str(it, "id"))
				problem(r, "input[%d]: a reasoning item with neither an id nor encrypted content", i);
		}
	}
	for (const cJSON *x = calls->child; x; x = x->next)
		if (!in_list(answered, x->valuestring))
			problem(r, "input: call %s has no output", x->valuestring);
done:
	cJSON_Delete(calls);
	cJSON_Delete(answered);
}

static void check_gemini(report *r, const cJSON *body)
{
	const cJSON *contents = cmv_formats__cj_get(body, "contents");
	int i = 0, prev_calls = 0;
	const cJSON *prev_call_turn = NULL;

	if (!cJSON_IsArray(contents) || !contents->child) {
		problem(r, "contents: missing or empty");
		return;
	}
	for (const cJSON *c = contents->child; c; c = c->next, i++) {
		const char *role = cmv_formats__cj_str(c, "role");
		const cJSON *parts = cmv_formats__cj_get(c, "parts");
		int calls = 0, responses = 0;
		bool model = role && !strcmp(role, "model");
		if (!role || (strcmp(role, "user") && !model))
			problem(r, "contents[%d]: role must be user or model", i);
		if (i == 0 && model)
			problem(r, "contents[0]: the first turn must be a user turn");
		if (!cJSON_IsArray(parts) || !parts->child)
			problem(r, "contents[%d]: no parts", i);
		for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p; p = p->next) {
			const cJSON *fc = cmv_formats__cj_get(p, "functionCall"), *fr = cmv_formats__cj_get(p, "functionResponse");
			if (cJSON_IsObject(fc)) {
				calls++;
				if (!model)
					problem(r, "contents[%d]: functionCall in a user turn", i);
				if (!cmv_formats__cj_str(fc, "name"))
					problem(r, "contents[%d]: functionCall without a name", i);
				if (cmv_formats__cj_get(fc, "args") && !cJSON_IsObject(cmv_formats__cj_get(fc, "args")))
					problem(r, "contents[%d]: functionCall args must be an object", i);
			} else if (cJSON_IsObject(fr)) {
				if (model)
					problem(r, "contents[%d]: functionResponse in a model turn", i);
				if (!cJSON_IsObject(cmv_formats__cj_get(fr, "response")))
					problem(r, "contents[%d]: functionResponse response must be an object", i);
				/* positional pairing: the k-th response answers the k-th call, by name */
				const cJSON *call = NULL;
				int k = 0;
				for (const cJSON *q = prev_call_turn ? cmv_formats__cj_get(prev_call_turn, "parts")->child : NULL; q; q = q->next)
					if (cJSON_IsObject(cmv_formats__cj_get(q, "functionCall")) && k++ == responses)
						call = cmv_formats__cj_get(q, "functionCall");
				if (call && cmv_formats__cj_str(call, "name") && cmv_formats__cj_str(fr, "name") && strcmp(cmv_formats__cj_str(call, "name"), cmv_formats__cj_str(fr, "name")))
					problem(r, "contents[%d]: functionResponse %d is for %s, but the call in that place is %s", i,
						responses, cmv_formats__cj_str(fr, "name"), cmv_formats__cj_str(call, "name"));
				responses++;
			} else if (cmv_formats__cj_get(p, "text")) {
				if (!cmv_formats__cj_str(p, "text"))
					problem(r, "contents[%d]: text must be a string", i);
			}
		}
		if (responses && !prev_calls)
			problem(r, "contents[%d]: please ensure that function response turn comes immediately after a function call turn", i);
		else if (prev_calls && responses != prev_calls)
			problem(r, "contents[%d]: please ensure that the number of function response parts (%d) is equal to the number of function call parts of the function call turn (%d)",
				i, responses, prev_calls);
		prev_calls = calls;
		prev_call_turn = calls ? c : NULL;
	}
	if (prev_calls)
		problem(r, "contents[%d]: the last turn's function calls have no response", i - 1);
}

int cmv_check_request(cmv_buf *problems, cmv_render_target target, const char *json, size_t len)
{
	report r = { problems, 0 };
	cJSON *body;

	CMV_ASSERT_ARG(json);
	if (!(body = cJSON_ParseWithLength(json, len)) || !cJSON_IsObject(body)) {
		cJSON_Delete(body);
		return cmv_error__set(CMV_EINVALID, "the request body is not a JSON object");
	}
	switch (target) {
	case CMV_RENDER_ANTHROPIC:
		check_anthropic(&r, body);
		break;
	case CMV_RENDER_OPENAI_CHAT:
		check_openai_chat(&r, body);
		break;
	case CMV_RENDER_OPENAI_RESPONSES:
		check_openai_responses(&r, body);
		break;
	case CMV_RENDER_GEMINI:
		check_gemini(&r, body);
		break;
	default:
		cJSON_Delete(body);
		return cmv_error__set(CMV_EINVALID, "unknown render target %d", (int)target);
	}
	cJSON_Delete(body);
	return r.n;
}
