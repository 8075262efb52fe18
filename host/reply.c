/* SPDX-License-Identifier: MIT */
/*
 * Messages and replies in: a provider's messages, its response body, or its
 * stream of server-sent events, turned into the neutral messages the store
 * keeps (cmv's JSONL shape: Anthropic's blocks).
 *
 * Invariants
 *  1. One reply, one assistant node: its text, thinking and tool calls as
 *     blocks, in the order the provider gave them.
 *  2. A stream adds up to the body the same call returns unstreamed; the
 *     body, not the events, is what is appended (one code path for both).
 *  3. A tool call keeps the provider's id (Gemini has none: "call_NAME_k"
 *     for the k-th call of NAME in its content, which the k-th
 *     functionResponse of NAME in the next content answers).
 */
#include <stdio.h>
#include "host_priv.h"
#include "formats/formats_int.h"

#define STREAM_MAX ((size_t)256 << 20)

/* ---- neutral blocks --------------------------------------------------------- */

static cJSON *text_block(const char *type, const char *field, const char *text)
{
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "type", type);
	cJSON_AddStringToObject(b, field, text);
	return b;
}

/* A tool call: the input is the arguments parsed (a string that is not JSON stays a string under "arguments"). */
static cJSON *tool_use(const char *id, const char *name, const cJSON *input, const char *arguments)
{
	cJSON *b = cJSON_CreateObject(), *in = NULL;
	cJSON_AddStringToObject(b, "type", "tool_use");
	cJSON_AddStringToObject(b, "id", id && *id ? id : "call_0");
	cJSON_AddStringToObject(b, "name", name && *name ? name : "unknown");
	if (input)
		in = cJSON_Duplicate(input, 1);
	else if (arguments && *arguments && !(in = cJSON_Parse(arguments))) {
		in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, "arguments", arguments);
	}
	if (!in)
		in = cJSON_CreateObject();
	cJSON_AddItemToObject(b, "input", in);
	return b;
}

static cJSON *tool_result(const char *id, const cJSON *content, const char *text, bool is_error)
{
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "type", "tool_result");
	cJSON_AddStringToObject(b, "tool_use_id", id && *id ? id : "call_0");
	if (content && !cJSON_IsString(content)) {
		char *t = cJSON_PrintUnformatted(content);
		cJSON_AddStringToObject(b, "content", t ? t : "");
		cJSON_free(t);
	} else {
		cJSON_AddStringToObject(b, "content", content ? content->valuestring : text ? text : "");
	}
	if (is_error)
		cJSON_AddTrueToObject(b, "is_error");
	return b;
}

/* An image from a URL: a data URL becomes base64 bytes, another stays a URL source. */
static cJSON *image_block(const char *url, const char *media, const char *data)
{
	cJSON *b = cJSON_CreateObject(), *src = cJSON_AddObjectToObject(b, "source");
	cJSON_AddStringToObject(b, "type", "image");
	if (!data && url && !strncmp(url, "data:", 5) && strstr(url, ";base64,")) {
		const char *semi = strstr(url, ";base64,");
		char mt[128];
		snprintf(mt, sizeof(mt), "%.*s", (int)(semi - url - 5), url + 5);
		cJSON_AddStringToObject(src, "type", "base64");
		cJSON_AddStringToObject(src, "media_type", mt);
		cJSON_AddStringToObject(src, "data", semi + 8);
	} else if (data) {
		cJSON_AddStringToObject(src, "type", "base64");
		cJSON_AddStringToObject(src, "media_type", media ? media : "image/png");
		cJSON_AddStringToObject(src, "data", data);
	} else {
		cJSON_AddStringToObject(src, "type", "url");
		cJSON_AddStringToObject(src, "url", url ? url : "");
	}
	return b;
}

/* The message to add blocks of `role` to: the last one when it has that role, else a new one. */
static cJSON *message_for(cJSON *msgs, const char *role)
{
	cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
	if (last && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "role")), role))
		return cJSON_GetObjectItemCaseSensitive(last, "content");
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "role", role);
	cJSON *c = cJSON_AddArrayToObject(m, "content");
	cJSON_AddItemToArray(msgs, m);
	return c;
}

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/*
 * A stream's block or call index: a whole number below STREAM_INDEX_MAX, else
 * -1. The stream is the provider's (or whatever answers in its place): a
 * missing index reads as NaN, and a huge one would have the assembler grow an
 * array to it.
 */
#define STREAM_INDEX_MAX 4096
static int stream_index(const cJSON *v)
{
	double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
	return d >= 0 && d < STREAM_INDEX_MAX && d == (double)(int)d ? (int)d : -1;
}

/* Text content as OpenAI gives it: a string, or parts of text and images. */
static void openai_content(cJSON *content, const cJSON *c)
{
	if (cJSON_IsString(c)) {
		if (*c->valuestring)
			cJSON_AddItemToArray(content, text_block("text", "text", c->valuestring));
		return;
	}
	for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next) {
		const char *type = str(p, "type");
		const char *t = str(p, "text");
		if (t)
			cJSON_AddItemToArray(content, text_block("text", "text", t));
		else if (type && (!strcmp(type, "image_url") || !strcmp(type, "input_image"))) {
			const cJSON *iu = get(p, "image_url");
			cJSON_AddItemToArray(content, image_block(cJSON_IsString(iu) ? iu->valuestring : str(iu, "url"), NULL, NULL));
		}
	}
}

static int chat_message(cJSON *msgs, const cJSON *m, int i)
{
	const char *role = str(m, "role");
	cJSON *content;

	if (!role)
		return cmv_error__set(CMV_EINVALID, "message %d has no \"role\"", i);
	if (!strcmp(role, "tool")) {
		const cJSON *c = get(m, "content");
		cJSON *joined = NULL;
		if (cJSON_IsArray(c)) {
			/* parts of text: their text, as a tool result's content */
			cmv_buf t = CMV_BUF_INIT(CMV_BUF_CONTENT);
			for (const cJSON *p = c->child; p; p = p->next)
				if (str(p, "text"))
					cmv_buf_puts(&t, str(p, "text"));
			joined = cJSON_CreateString(t.ptr);
			cmv_buf_dispose(&t);
		}
		content = message_for(msgs, "user");
		cJSON_AddItemToArray(content, tool_result(str(m, "tool_call_id"), joined ? joined : c, "", false));
		cJSON_Delete(joined);
		return 0;
	}
	if (!strcmp(role, "developer"))
		role = "system";
	if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
		return cmv_error__set(CMV_EINVALID, "message %d: unknown role '%s'", i, role);
	content = message_for(msgs, role);
	if (str(m, "reasoning_content") && *str(m, "reasoning_content"))
		cJSON_AddItemToArray(content, text_block("thinking", "thinking", str(m, "reasoning_content")));
	openai_content(content, get(m, "content"));
	const cJSON *calls = get(m, "tool_calls");
	for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next) {
		const cJSON *fn = get(c, "function");
		cJSON_AddItemToArray(content, tool_use(str(c, "id"), str(fn, "name"), NULL, str(fn, "arguments")));
	}
	return 0;
}

/*
 * A Responses output item kept whole, with no neutral block: a tool search
 * (Codex's deferred tools: its output is definitions the calls after it
 * name) and a web search. Only kinds known to be small: the pager has no
 * stub for such an item, so an image generation's base64 result, a
 * computer call's screenshot or a code interpreter's output would go whole
 * into every request until its turn left; those are not carried (as before
 * the tool search was), docs/proxy.md.
 */
static bool is_openai_item(const char *type)
{
	return !strcmp(type, "tool_search_call") || !strcmp(type, "tool_search_output") ||
	       !strcmp(type, "web_search_call");
}

/* An item kept whole: its numbers as the client wrote them (cJSON alone would print some as other doubles). */
static cJSON *openai_item(const cJSON *it)
{
	cJSON *b = cJSON_CreateObject(), *d = cJSON_Duplicate(it, 1);
	if (d)
		cmv_formats__exact_numbers(d);
	cJSON_AddStringToObject(b, "type", "openai_item");
	cJSON_AddItemToObject(b, "item", d);
	return b;
}

static int responses_item(cJSON *msgs, const cJSON *it, int i)
{
	const char *type = str(it, "type");
	cJSON *content;

	if (!type || !strcmp(type, "message")) {
		const char *role = str(it, "role");
		if (!role)
			return cmv_error__set(CMV_EINVALID, "item %d has no \"type\" or \"role\"", i);
		if (!strcmp(role, "developer") || !strcmp(role, "system")) {
			/*
			 * Kept whole, in its place, as an import of Codex's rollout
			 * keeps it (formats/codex.c): the Responses API gets it back
			 * where the client put it (Codex 0.171.0 sends all its
			 * instructions so, data/client-requests/codex.json), other
			 * providers as a system prompt, and the pager never pages
			 * it out (formats/neutral.h, "openai_item").
			 */
			cJSON_AddItemToArray(message_for(msgs, "user"), openai_item(it));
			return 0;
		}
		content = message_for(msgs, role);
		openai_content(content, get(it, "content"));
	} else if (!strcmp(type, "function_call")) {
		content = message_for(msgs, "assistant");
		cJSON_AddItemToArray(content, tool_use(str(it, "call_id"), str(it, "name"), NULL, str(it, "arguments")));
	} else if (!strcmp(type, "custom_tool_call")) {
		/* a custom (freeform) tool's input is text: kept as {"input": TEXT}, as Codex's reader keeps it */
		cJSON *in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, "input", str(it, "input") ? str(it, "input") : "");
		content = message_for(msgs, "assistant");
		cJSON *b = tool_use(str(it, "call_id"), str(it, "name"), in, NULL);
		/* written back as a custom_tool_call, and its output as a custom_tool_call_output (formats/write.c) */
		cJSON_AddTrueToObject(b, "custom");
		cJSON_AddItemToArray(content, b);
		cJSON_Delete(in);
	} else if (!strcmp(type, "local_shell_call")) {
		/* as the Responses reader keeps it (formats/codex.c): a call of "local_shell" on its action */
		content = message_for(msgs, "assistant");
		cJSON_AddItemToArray(content, tool_use(str(it, "call_id"), "local_shell", get(it, "action"), NULL));
	} else if (!strcmp(type, "function_call_output") || !strcmp(type, "custom_tool_call_output") ||
		   !strcmp(type, "local_shell_call_output")) {
		/* the API's shape for a local shell's output names the call by "id" */
		content = message_for(msgs, "user");
		cJSON_AddItemToArray(content, tool_result(str(it, "call_id") ? str(it, "call_id") : str(it, "id"), get(it, "output"), "",
							  false));
	} else if (!strcmp(type, "reasoning")) {
		/* a summary is the model's, readable; the encrypted content replays on OpenAI alone (dropped elsewhere) */
		const cJSON *sum = get(it, "summary");
		cmv_buf t = CMV_BUF_INIT(CMV_BUF_CONTENT);
		for (const cJSON *s = cJSON_IsArray(sum) ? sum->child : NULL; s; s = s->next)
			if (str(s, "text"))
				cmv_buf_printf(&t, "%s%s", t.size ? "\n" : "", str(s, "text"));
		if (t.size)
			cJSON_AddItemToArray(message_for(msgs, "assistant"), text_block("thinking", "thinking", t.ptr));
		cmv_buf_dispose(&t);
	} else if (is_openai_item(type)) {
		/*
		 * An item of the model cmv does not model (Codex's tool search, a
		 * web search, a shell call, ...): kept whole, in its place, and sent
		 * back as it came to the Responses API only (formats/neutral.h,
		 * "openai_item"). A client sends it back in its next request; the
		 * proxy matches it to this reply, so this copy is what goes upstream.
		 */
		size_t n = strlen(type);
		cJSON *b = openai_item(it);
		/* an output the client ran answers the call, as a tool result does (a reply's is the model's still) */
		cJSON_AddItemToArray(message_for(msgs, n > 7 && !strcmp(type + n - 7, "_output") ? "user" : "assistant"), b);
	}
	return 0;
}

/*
 * Gemini's id for the call (or response) `fc` of a content: its own when it
 * has one, else "call_NAME_k" for the k-th part of that name in the content
 * (from 1). Gemini answers the calls of a content in order, so the k-th
 * functionResponse of NAME answers the k-th functionCall of NAME: two calls
 * of one tool in a message are two ids. The name is kept to the characters
 * every provider takes in an id; the suffix keeps "x" 2nd ("call_x_2") apart
 * from "x_2" 1st ("call_x_2_1").
 */
static const char *gemini_id(char *id, size_t cap, const cJSON *parts, const cJSON *part, const char *kind,
			     const cJSON *fc)
{
	const char *name = str(fc, "name") ? str(fc, "name") : "", *own = str(fc, "id");
	size_t k = 0, n;
	if (own && *own)
		return own;
	for (const cJSON *q = parts->child; q; q = q->next) {
		const char *qn = str(get(q, kind), "name");
		if (get(q, kind) && !strcmp(qn ? qn : "", name))
			k++;
		if (q == part)
			break;
	}
	n = (size_t)snprintf(id, cap, "call_%.200s", *name ? name : "0");
	for (char *c = id + 5; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
			*c = '_';
	snprintf(id + n, cap - n, "_%zu", k);
	return id;
}

static int gemini_content(cJSON *msgs, const cJSON *c, int i)
{
	const char *role = str(c, "role");
	const cJSON *parts = get(c, "parts");
	if (!cJSON_IsArray(parts))
		return cmv_error__set(CMV_EINVALID, "content %d has no \"parts\" array", i);
	for (const cJSON *p = parts->child; p; p = p->next) {
		const cJSON *fc = get(p, "functionCall"), *fr = get(p, "functionResponse"), *inl = get(p, "inlineData");
		char id[300];
		if (fc) {
			cJSON_AddItemToArray(message_for(msgs, "assistant"),
					     tool_use(gemini_id(id, sizeof(id), parts, p, "functionCall", fc), str(fc, "name"),
						      get(fc, "args"), NULL));
		} else if (fr) {
			cJSON_AddItemToArray(message_for(msgs, "user"),
					     tool_result(gemini_id(id, sizeof(id), parts, p, "functionResponse", fr),
							 get(fr, "response"), "", false));
		} else {
			const char *r = role && !strcmp(role, "model") ? "assistant" : role && !strcmp(role, "system") ? "system" : "user";
			if (inl)
				cJSON_AddItemToArray(message_for(msgs, r), image_block(NULL, str(inl, "mimeType"), str(inl, "data")));
			else if (str(p, "text"))
				cJSON_AddItemToArray(message_for(msgs, r),
						     text_block(cJSON_IsTrue(get(p, "thought")) ? "thinking" : "text",
								cJSON_IsTrue(get(p, "thought")) ? "thinking" : "text", str(p, "text")));
		}
	}
	return 0;
}

/* Messages of `format` (one, or an array) as neutral messages. */
static int to_neutral(cJSON **out, const char *format, const cJSON *in)
{
	cJSON *msgs = cJSON_CreateArray();
	const cJSON *one = in;
	int error = 0, i = 0;

	*out = NULL;
	if (!msgs)
		return cmv_error__oom();
	if (!cJSON_IsArray(in) && !cJSON_IsObject(in)) {
		cJSON_Delete(msgs);
		return cmv_error__set(CMV_EINVALID, "expected a message or an array of messages");
	}
	for (const cJSON *m = cJSON_IsArray(in) ? in->child : one; m && !error; m = cJSON_IsArray(in) ? m->next : NULL, i++) {
		if (!cJSON_IsObject(m))
			error = cmv_error__set(CMV_EINVALID, "message %d is not an object", i);
		else if (!strcmp(format, "anthropic") || !strcmp(format, "cmv")) {
			cJSON *d = cJSON_Duplicate(m, 1);
			const cJSON *c = get(d, "content");
			if (!str(d, "role") || (!cJSON_IsString(c) && !cJSON_IsArray(c)))
				error = cmv_error__set(CMV_EINVALID, "message %d needs \"role\" and \"content\"", i);
			cJSON_AddItemToArray(msgs, d);
		} else if (!strcmp(format, "openai-chat") || !strcmp(format, "openai"))
			error = chat_message(msgs, m, i);
		else if (!strcmp(format, "openai-responses"))
			error = responses_item(msgs, m, i);
		else if (!strcmp(format, "gemini"))
			error = gemini_content(msgs, m, i);
		else
			error = cmv_error__set(CMV_EINVALID,
					       "unknown message format '%s' (anthropic, openai-chat, openai-responses, gemini, cmv)",
					       format);
	}
	if (error < 0)
		cJSON_Delete(msgs);
	else
		*out = msgs;
	return error;
}

int cmv_host__append_neutral(cmv_id *head, cmv_repo *repo, const char *branch, const cJSON *msgs)
{
	size_t n = (size_t)cJSON_GetArraySize(msgs), i = 0;
	cmv__parsed_message **parsed = cmv__calloc(n + 1, sizeof(*parsed));
	cmv_message *list = cmv__calloc(n + 1, sizeof(*list));
	int error = 0;

	if (!parsed || !list) {
		error = cmv_error__oom();
		goto done;
	}
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		char *text = cJSON_PrintUnformatted(m);
		if (!text) {
			error = cmv_error__oom();
			break;
		}
		if ((error = cmv__message_parse(&parsed[i], text, strlen(text))) < 0)
			cmv_error__prefix("message %zu: ", i);
		else
			list[i] = *cmv__parsed_message_get(parsed[i]);
		cJSON_free(text);
	}
	if (!error && n)
		error = cmv_append(head, repo, branch, list, n, CMV_APPEND_CREATE);
	else if (!error && head)
		error = cmv_resolve(head, repo, branch);
done:
	for (size_t k = 0; parsed && k < n; k++)
		cmv__parsed_message_free(parsed[k]);
	free(parsed);
	free(list);
	return error;
}

int cmv_append_json(cmv_id *head, cmv_repo *repo, const char *branch, const char *format, const char *json,
		    size_t len)
{
	int error, perr = 0;
	cJSON *in;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(json);
	if (!(in = cmv_formats__jscan_parse(json, len, &perr)))
		return perr ? perr : cmv_error__set(CMV_EINVALID, "the messages are not JSON");
	error = cmv_host__append_parsed(head, repo, branch, format, in);
	cJSON_Delete(in);
	return error;
}

int cmv_host__append_parsed(cmv_id *head, cmv_repo *repo, const char *branch, const char *format, const cJSON *in)
{
	cJSON *msgs = NULL;
	int error;
	if ((error = to_neutral(&msgs, format ? format : "cmv", in)) == 0)
		error = cmv_host__append_neutral(head, repo, branch, msgs);
	cJSON_Delete(msgs);
	return error;
}

/* ---- responses ------------------------------------------------------------------ */

void cmv_reply_dispose(cmv_reply *reply)
{
	if (!reply)
		return;
	cmv_buf_dispose(&reply->text);
	cmv_buf_dispose(&reply->tool_calls);
}

static uint64_t u64(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	/* past 1e18 the cast would be undefined, and no count is that large */
	return cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e18 ? (uint64_t)v->valuedouble : 0;
}

/* The provider's error, quoted: a host that passes an error response on learns why. */
static int error_response(const cJSON *body)
{
	const cJSON *e = get(body, "error");
	const char *msg = cJSON_IsString(e) ? e->valuestring : str(e, "message");
	if (!e || cJSON_IsNull(e))
		return 0;
	return cmv_error__set(CMV_EINVALID, "the response is an error: %s", msg ? msg : "(no message)");
}

/* The reply of a response body, as neutral messages, with its usage and stop reason. */
static int parse_response(cJSON **msgs, cmv_reply *r, const char *format, const cJSON *body)
{
	int error;
	cmv_usage *u = &r->usage;
	const char *stop = NULL;

	*msgs = NULL;
	if ((error = error_response(body)) < 0)
		return error;
	if (!strcmp(format, "anthropic")) {
		const cJSON *usage = get(body, "usage");
		cJSON *m = cJSON_CreateObject();
		if (!cJSON_IsArray(get(body, "content"))) {
			cJSON_Delete(m);
			return cmv_error__set(CMV_EINVALID, "not a Messages response: no \"content\" array");
		}
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddItemToObject(m, "content", cJSON_Duplicate(get(body, "content"), 1));
		*msgs = cJSON_CreateArray();
		cJSON_AddItemToArray(*msgs, m);
		if ((r->has_usage = cJSON_IsObject(usage))) {
			u->input_tokens = u64(usage, "input_tokens");
			u->output_tokens = u64(usage, "output_tokens");
			u->cache_read_tokens = u64(usage, "cache_read_input_tokens");
			u->cache_write_tokens = u64(usage, "cache_creation_input_tokens");
		}
		stop = str(body, "stop_reason");
	} else if (!strcmp(format, "openai-chat")) {
		const cJSON *ch = cJSON_GetArrayItem(get(body, "choices"), 0), *usage = get(body, "usage");
		if (!cJSON_IsObject(get(ch, "message")))
			return cmv_error__set(CMV_EINVALID, "not a Chat Completions response: no choices[0].message");
		cJSON *m = cJSON_Duplicate(get(ch, "message"), 1);
		cJSON_DeleteItemFromObjectCaseSensitive(m, "role"); /* a message may have none: replace would leak */
		cJSON_AddStringToObject(m, "role", "assistant");
		error = to_neutral(msgs, "openai-chat", m);
		cJSON_Delete(m);
		if (error < 0)
			return error;
		if ((r->has_usage = cJSON_IsObject(usage))) {
			uint64_t cached = u64(get(usage, "prompt_tokens_details"), "cached_tokens");
			u->input_tokens = u64(usage, "prompt_tokens") - (cached < u64(usage, "prompt_tokens") ? cached : 0);
			u->cache_read_tokens = cached;
			u->output_tokens = u64(usage, "completion_tokens");
		}
		stop = str(ch, "finish_reason");
	} else if (!strcmp(format, "openai-responses")) {
		const cJSON *usage = get(body, "usage");
		if (!cJSON_IsArray(get(body, "output")))
			return cmv_error__set(CMV_EINVALID, "not a Responses response: no \"output\" array");
		if ((error = to_neutral(msgs, "openai-responses", get(body, "output"))) < 0)
			return error;
		if ((r->has_usage = cJSON_IsObject(usage))) {
			uint64_t cached = u64(get(usage, "input_tokens_details"), "cached_tokens");
			u->input_tokens = u64(usage, "input_tokens") - (cached < u64(usage, "input_tokens") ? cached : 0);
			u->cache_read_tokens = cached;
			u->output_tokens = u64(usage, "output_tokens");
		}
		stop = str(body, "status");
	} else if (!strcmp(format, "gemini")) {
		const cJSON *cand = cJSON_GetArrayItem(get(body, "candidates"), 0), *usage = get(body, "usageMetadata");
		if (!cJSON_IsObject(get(cand, "content")))
			return cmv_error__set(CMV_EINVALID, "not a generateContent response: no candidates[0].content");
		cJSON *c = cJSON_Duplicate(get(cand, "content"), 1);
		cJSON_DeleteItemFromObjectCaseSensitive(c, "role");
		cJSON_AddStringToObject(c, "role", "model");
		error = to_neutral(msgs, "gemini", c);
		cJSON_Delete(c);
		if (error < 0)
			return error;
		if ((r->has_usage = cJSON_IsObject(usage))) {
			uint64_t cached = u64(usage, "cachedContentTokenCount");
			u->input_tokens = u64(usage, "promptTokenCount") - (cached < u64(usage, "promptTokenCount") ? cached : 0);
			u->cache_read_tokens = cached;
			u->output_tokens = u64(usage, "candidatesTokenCount") + u64(usage, "thoughtsTokenCount");
		}
		stop = str(cand, "finishReason");
	} else {
		return cmv_error__set(CMV_EINVALID,
				      "unknown response format '%s' (anthropic, openai-chat, openai-responses, gemini)", format);
	}
	snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", stop ? stop : "");
	/* one reply, one assistant node: whatever the provider split, it said it in one turn */
	cJSON *one = cJSON_CreateObject(), *all = cJSON_AddArrayToObject(one, "content");
	cJSON_AddStringToObject(one, "role", "assistant");
	for (cJSON *m = (*msgs)->child; m; m = m->next)
		for (cJSON *b = get(m, "content") ? get(m, "content")->child : NULL; b; b = b->next)
			cJSON_AddItemToArray(all, cJSON_Duplicate(b, 1));
	if (!cJSON_GetArraySize(all))
		cJSON_AddItemToArray(all, text_block("text", "text", ""));
	cJSON_Delete(*msgs);
	*msgs = cJSON_CreateArray();
	cJSON_AddItemToArray(*msgs, one);
	return 0;
}

int cmv_reply_append(cmv_reply *reply, cmv_repo *repo, const char *branch, const char *format, const char *body,
		     size_t len, const cmv_model_handle *model)
{
	cmv_reply r;
	cJSON *in, *msgs = NULL, *calls = NULL;
	char *ctext = NULL;
	int error, perr = 0;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(format);
	CMV_ASSERT_ARG(body);
	memset(&r, 0, sizeof(r));
	r.version = CMV_REPLY_VERSION;
	r.cost = -1;
	cmv_buf_init(&r.text, CMV_BUF_CONTENT);
	cmv_buf_init(&r.tool_calls, CMV_BUF_CONTENT);
	if (reply)
		cmv_reply_dispose(reply);
	if (!(in = cmv_formats__jscan_parse(body, len, &perr)))
		return perr ? perr : cmv_error__set(CMV_EINVALID, "the %s response is not JSON", format);
	if ((error = parse_response(&msgs, &r, format, in)) < 0)
		goto done;
	calls = cJSON_CreateArray();
	for (const cJSON *b = get(msgs->child, "content")->child; b; b = b->next) {
		const char *type = str(b, "type");
		if (!type)
			continue; /* a block of no kind (a reply is untrusted): nothing to list */
		if (!strcmp(type, "text"))
			error = cmv_buf_puts(&r.text, str(b, "text"));
		else if (!strcmp(type, "tool_use")) {
			cJSON *c = cJSON_CreateObject();
			cJSON_AddStringToObject(c, "id", str(b, "id"));
			cJSON_AddStringToObject(c, "name", str(b, "name"));
			cJSON_AddItemToObject(c, "input", cJSON_Duplicate(get(b, "input"), 1));
			cJSON_AddItemToArray(calls, c);
			r.n_tool_calls++;
		}
	}
	if (!error && (!(ctext = cJSON_PrintUnformatted(calls)) || (error = cmv_buf_puts(&r.tool_calls, ctext)) < 0))
		error = error ? error : cmv_error__oom();
	/* the reply and its usage land together */
	if (error || (error = cmv_repo_txn_begin(repo)) < 0)
		goto done;
	/* what the request was made at: its bill anchors the next request that holds it (docs/tokenizers.md) */
	cmv_id before;
	cmv_render_target target;
	if (cmv_resolve(&before, repo, branch) < 0) {
		cmv_error_clear();
		cmv_id_clear(&before);
	}
	error = cmv_host__append_neutral(&r.head, repo, branch, msgs);
	if (!error && model && r.has_usage)
		error = cmv_usage_add(&r.cost, repo, branch, model, &r.usage);
	if (!error && model && r.has_usage && !cmv_id_is_none(&before)) {
		if (cmv_render_target_parse(&target, format) < 0)
			cmv_error_clear();
		else
			error = cmv_pager_billed(repo, branch, cmv_model_handle_profile(model), (int)target, &before,
						 r.usage.input_tokens + r.usage.cache_read_tokens + r.usage.cache_write_tokens);
	}
	if (error < 0)
		cmv_repo_txn_rollback(repo);
	else
		error = cmv_repo_txn_commit(repo);
done:
	if (error == 0 && reply) {
		unsigned int v = reply->version;
		*reply = r;
		reply->version = v ? v : CMV_REPLY_VERSION;
	} else {
		cmv_reply_dispose(&r);
	}
	cJSON_free(ctext);
	cJSON_Delete(calls);
	cJSON_Delete(msgs);
	cJSON_Delete(in);
	return error;
}

/* ---- streams of server-sent events ------------------------------------------------ */

struct cmv_reply_stream {
	char format[24];
	cmv_buf line;     /* a line not yet ended */
	cmv_buf data;     /* the data lines of the event being read */
	cJSON *body;      /* the response as it adds up */
	cJSON *partial;   /* per content block or tool call: the arguments' text so far (an array of strings) */
	bool done;        /* a whole response came (Responses' response.completed) */
	/*
	 * The text members deltas were last appended to, each with the room its
	 * string has: a reply of one-character deltas costs a copy per doubling,
	 * not a copy of all the text so far per delta. Each slot's item is alive
	 * in body or partial: stream_forget() runs before anything that could
	 * free one (the body replaced, message_delta's members).
	 */
	struct {
		cJSON *item;
		size_t len, cap; /* bytes of text; bytes of room, the NUL's included */
	} grow[8];
	unsigned int grow_next;
};

static void stream_forget(cmv_reply_stream *s)
{
	memset(s->grow, 0, sizeof(s->grow));
}

int cmv_reply_stream_new(cmv_reply_stream **out, const char *format)
{
	cmv_reply_stream *s;
	CMV_ASSERT_ARG(out);
	*out = NULL;
	if (!format || (strcmp(format, "anthropic") && strcmp(format, "openai-chat") && strcmp(format, "openai-responses") &&
			strcmp(format, "gemini")))
		return cmv_error__set(CMV_EINVALID,
				      "no stream format '%s' (anthropic, openai-chat, openai-responses, gemini)",
				      format ? format : "");
	if (!(s = cmv__calloc(1, sizeof(*s))))
		return cmv_error__oom();
	snprintf(s->format, sizeof(s->format), "%s", format);
	cmv_buf_init(&s->line, STREAM_MAX);
	cmv_buf_init(&s->data, STREAM_MAX);
	s->body = cJSON_CreateObject();
	s->partial = cJSON_CreateObject();
	if (!s->body || !s->partial) {
		cmv_reply_stream_free(s);
		return cmv_error__oom();
	}
	*out = s;
	return 0;
}

void cmv_reply_stream_free(cmv_reply_stream *s)
{
	if (!s)
		return;
	cmv_buf_dispose(&s->line);
	cmv_buf_dispose(&s->data);
	cJSON_Delete(s->body);
	cJSON_Delete(s->partial);
	free(s);
}

/*
 * Append to the text member `k` of `o` (made when missing, or replacing a
 * member that is not a string). Amortized linear: the string grows in place,
 * by doubling, through cJSON's own allocator (the tree frees it).
 */
static void append_str(cmv_reply_stream *s, cJSON *o, const char *k, const char *more)
{
	cJSON *it = get(o, k);
	size_t b = strlen(more), i;

	if (!cJSON_IsString(it) || !it->valuestring || (it->type & cJSON_IsReference)) {
		cJSON *n = cJSON_CreateString(more);
		if (!n)
			return;
		if (it)
			cJSON_ReplaceItemInObjectCaseSensitive(o, k, n);
		else
			cJSON_AddItemToObject(o, k, n);
		return;
	}
	for (i = 0; i < CMV_ARRAY_SIZE(s->grow) && s->grow[i].item != it; i++)
		;
	if (i == CMV_ARRAY_SIZE(s->grow)) {
		/* adopted: its string was sized to fit, so the first append below copies it once */
		i = s->grow_next++ % CMV_ARRAY_SIZE(s->grow);
		s->grow[i].item = it;
		s->grow[i].len = strlen(it->valuestring);
		s->grow[i].cap = s->grow[i].len + 1;
	}
	if (s->grow[i].len + b + 1 > s->grow[i].cap) {
		/* no overflow: a stream's lines are held under STREAM_MAX, so is what they add up to here */
		size_t cap = 2 * (s->grow[i].len + b + 1);
		char *t = cJSON_malloc(cap < 64 ? 64 : cap);
		if (!t) {
			s->grow[i].item = NULL;
			return;
		}
		memcpy(t, it->valuestring, s->grow[i].len);
		cJSON_free(it->valuestring);
		it->valuestring = t;
		s->grow[i].cap = cap < 64 ? 64 : cap;
	}
	memcpy(it->valuestring + s->grow[i].len, more, b + 1);
	s->grow[i].len += b;
}

static void merge_usage(cJSON *body, const char *k, const cJSON *u)
{
	if (!cJSON_IsObject(u))
		return;
	cJSON *have = get(body, k);
	if (!have)
		have = cJSON_AddObjectToObject(body, k);
	for (const cJSON *c = u->child; c; c = c->next) {
		if (cJSON_IsNull(c))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(have, c->string);
		cJSON_AddItemToObject(have, c->string, cJSON_Duplicate(c, 1));
	}
}

static int anthropic_event(cmv_reply_stream *s, const cJSON *e)
{
	const char *type = str(e, "type");
	char key[32];
	const cJSON *ix = get(e, "index");
	int index = ix ? stream_index(ix) : 0;
	cJSON *content = get(s->body, "content");

	if (index < 0)
		return cmv_error__set(CMV_EINVALID, "stream: a block index that is not a whole number from 0 to %d",
				      STREAM_INDEX_MAX - 1);
	snprintf(key, sizeof(key), "%d", index);
	if (!type)
		return 0;
	if (!strcmp(type, "message_start") && cJSON_IsObject(get(e, "message"))) {
		stream_forget(s);
		cJSON_Delete(s->body);
		s->body = cJSON_Duplicate(get(e, "message"), 1);
		if (!get(s->body, "content"))
			cJSON_AddArrayToObject(s->body, "content");
	} else if (!strcmp(type, "content_block_start") && content) {
		while (cJSON_GetArraySize(content) < index)
			cJSON_AddItemToArray(content, text_block("text", "text", ""));
		cJSON_AddItemToArray(content, cJSON_Duplicate(get(e, "content_block"), 1));
	} else if (!strcmp(type, "content_block_delta")) {
		cJSON *b = cJSON_GetArrayItem(content, index);
		const cJSON *d = get(e, "delta");
		const char *dt = str(d, "type");
		if (!b || !dt)
			return 0;
		if (!strcmp(dt, "text_delta"))
			append_str(s, b, "text", str(d, "text") ? str(d, "text") : "");
		else if (!strcmp(dt, "thinking_delta"))
			append_str(s, b, "thinking", str(d, "thinking") ? str(d, "thinking") : "");
		else if (!strcmp(dt, "signature_delta"))
			append_str(s, b, "signature", str(d, "signature") ? str(d, "signature") : "");
		else if (!strcmp(dt, "input_json_delta"))
			append_str(s, s->partial, key, str(d, "partial_json") ? str(d, "partial_json") : "");
	} else if (!strcmp(type, "content_block_stop")) {
		cJSON *b = cJSON_GetArrayItem(content, index);
		const char *j = str(s->partial, key);
		if (b && j && *j) {
			cJSON *in = cJSON_Parse(j);
			if (!in)
				return cmv_error__set(CMV_EINVALID, "stream: block %d's input is not JSON", index);
			cJSON_DeleteItemFromObjectCaseSensitive(b, "input"); /* a block may start with none: replace would leak */
			cJSON_AddItemToObject(b, "input", in);
		}
	} else if (!strcmp(type, "message_delta")) {
		const cJSON *d = get(e, "delta");
		stream_forget(s); /* a member it replaces may hold a slot's item ("content") */
		for (const cJSON *c = d ? d->child : NULL; c; c = c->next) {
			cJSON_DeleteItemFromObjectCaseSensitive(s->body, c->string);
			cJSON_AddItemToObject(s->body, c->string, cJSON_Duplicate(c, 1));
		}
		merge_usage(s->body, "usage", get(e, "usage"));
	} else if (!strcmp(type, "error")) {
		return error_response(e);
	}
	return 0;
}

static int chat_event(cmv_reply_stream *s, const cJSON *e)
{
	const cJSON *ch = cJSON_GetArrayItem(get(e, "choices"), 0), *d = get(ch, "delta");
	cJSON *choices = get(s->body, "choices"), *msg;
	int error;

	if ((error = error_response(e)) < 0)
		return error;
	if (!choices) {
		choices = cJSON_AddArrayToObject(s->body, "choices");
		cJSON *c0 = cJSON_CreateObject();
		cJSON_AddItemToArray(choices, c0);
		msg = cJSON_AddObjectToObject(c0, "message");
		cJSON_AddStringToObject(msg, "role", "assistant");
	}
	cJSON *c0 = cJSON_GetArrayItem(choices, 0);
	msg = get(c0, "message");
	if (str(e, "id") && !get(s->body, "id"))
		cJSON_AddStringToObject(s->body, "id", str(e, "id"));
	merge_usage(s->body, "usage", get(e, "usage"));
	if (str(ch, "finish_reason")) {
		cJSON_DeleteItemFromObjectCaseSensitive(c0, "finish_reason");
		cJSON_AddStringToObject(c0, "finish_reason", str(ch, "finish_reason"));
	}
	if (str(d, "content"))
		append_str(s, msg, "content", str(d, "content"));
	if (str(d, "reasoning_content"))
		append_str(s, msg, "reasoning_content", str(d, "reasoning_content"));
	const cJSON *tcs = get(d, "tool_calls");
	for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next) {
		int index = stream_index(get(tc, "index"));
		if (index < 0)
			return cmv_error__set(CMV_EINVALID, "stream: a tool call index that is not a whole number from 0 to %d",
					      STREAM_INDEX_MAX - 1);
		cJSON *calls = get(msg, "tool_calls");
		if (!calls)
			calls = cJSON_AddArrayToObject(msg, "tool_calls");
		while (cJSON_GetArraySize(calls) <= index) {
			cJSON *c = cJSON_CreateObject();
			cJSON_AddStringToObject(c, "type", "function");
			cJSON_AddObjectToObject(c, "function");
			cJSON_AddItemToArray(calls, c);
		}
		cJSON *call = cJSON_GetArrayItem(calls, index), *fn = get(call, "function");
		const cJSON *dfn = get(tc, "function");
		if (str(tc, "id") && !get(call, "id"))
			cJSON_AddStringToObject(call, "id", str(tc, "id"));
		if (str(dfn, "name"))
			append_str(s, fn, "name", str(dfn, "name"));
		if (str(dfn, "arguments"))
			append_str(s, fn, "arguments", str(dfn, "arguments"));
	}
	return 0;
}

static int responses_event(cmv_reply_stream *s, const cJSON *e)
{
	const char *type = str(e, "type");
	if (!type)
		return 0;
	if ((!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) &&
	    cJSON_IsObject(get(e, "response"))) {
		stream_forget(s);
		cJSON_Delete(s->body);
		s->body = cJSON_Duplicate(get(e, "response"), 1);
		s->done = true;
	} else if (!strcmp(type, "response.output_item.done") && !s->done) {
		cJSON *out = get(s->body, "output");
		if (!out)
			out = cJSON_AddArrayToObject(s->body, "output");
		cJSON_AddItemToArray(out, cJSON_Duplicate(get(e, "item"), 1));
	} else if (!strcmp(type, "response.failed") || !strcmp(type, "error")) {
		const cJSON *r = get(e, "response");
		int error = error_response(r ? r : e);
		return error < 0 ? error : cmv_error__set(CMV_EINVALID, "the response failed");
	}
	return 0;
}

static int gemini_event(cmv_reply_stream *s, const cJSON *e)
{
	const cJSON *cand = cJSON_GetArrayItem(get(e, "candidates"), 0);
	int error;

	if ((error = error_response(e)) < 0)
		return error;
	cJSON *cands = get(s->body, "candidates");
	if (!cands) {
		cands = cJSON_AddArrayToObject(s->body, "candidates");
		cJSON *c = cJSON_CreateObject(), *content = cJSON_AddObjectToObject(c, "content");
		cJSON_AddStringToObject(content, "role", "model");
		cJSON_AddArrayToObject(content, "parts");
		cJSON_AddItemToArray(cands, c);
	}
	cJSON *c0 = cJSON_GetArrayItem(cands, 0), *parts = get(get(c0, "content"), "parts");
	const cJSON *newp = get(get(cand, "content"), "parts");
	for (const cJSON *p = cJSON_IsArray(newp) ? newp->child : NULL; p; p = p->next) {
		cJSON *last = cJSON_GetArrayItem(parts, cJSON_GetArraySize(parts) - 1);
		/* text arrives in pieces: one part again, thoughts apart from the answer */
		if (str(p, "text") && last && str(last, "text") &&
		    cJSON_IsTrue(get(p, "thought")) == cJSON_IsTrue(get(last, "thought")))
			append_str(s, last, "text", str(p, "text"));
		else
			cJSON_AddItemToArray(parts, cJSON_Duplicate(p, 1));
	}
	if (str(cand, "finishReason")) {
		cJSON_DeleteItemFromObjectCaseSensitive(c0, "finishReason");
		cJSON_AddStringToObject(c0, "finishReason", str(cand, "finishReason"));
	}
	if (get(e, "usageMetadata")) {
		cJSON_DeleteItemFromObjectCaseSensitive(s->body, "usageMetadata");
		cJSON_AddItemToObject(s->body, "usageMetadata", cJSON_Duplicate(get(e, "usageMetadata"), 1));
	}
	return 0;
}

/* One event's data, whole. */
static int stream_event(cmv_reply_stream *s)
{
	cJSON *e;
	int error, perr = 0;

	if (!s->data.size || !strcmp(s->data.ptr, "[DONE]"))
		return 0;
	if (!(e = cmv_formats__jscan_parse(s->data.ptr, s->data.size, &perr)))
		return perr ? perr : cmv_error__set(CMV_EINVALID, "stream: an event's data is not JSON: %.80s", s->data.ptr);
	if (!strcmp(s->format, "anthropic"))
		error = anthropic_event(s, e);
	else if (!strcmp(s->format, "openai-chat"))
		error = chat_event(s, e);
	else if (!strcmp(s->format, "openai-responses"))
		error = responses_event(s, e);
	else
		error = gemini_event(s, e);
	cJSON_Delete(e);
	return error;
}

/* One line of the stream: a data line adds to the event, an empty line ends it, the rest is the event's name or a comment. */
static int stream_line(cmv_reply_stream *s, const char *l, size_t n)
{
	int error = 0;
	if (n && l[n - 1] == '\r')
		n--;
	if (!n) {
		error = stream_event(s);
		cmv_buf_clear(&s->data);
		return error;
	}
	if (n >= 5 && !memcmp(l, "data:", 5)) {
		size_t skip = n > 5 && l[5] == ' ' ? 6 : 5;
		if (s->data.size)
			error = cmv_buf_putc(&s->data, '\n');
		if (!error)
			error = cmv_buf_put(&s->data, l + skip, n - skip);
	}
	return error;
}

int cmv_reply_stream_feed(cmv_reply_stream *s, const char *chunk, size_t len)
{
	int error = 0;
	CMV_ASSERT_ARG(s);
	for (size_t i = 0; i < len && !error; i++) {
		const char *nl = memchr(chunk + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - chunk - i) : len - i;
		if (!nl)
			return cmv_buf_put(&s->line, chunk + i, n);
		if (s->line.size) {
			if ((error = cmv_buf_put(&s->line, chunk + i, n)) == 0)
				error = stream_line(s, s->line.ptr, s->line.size);
			cmv_buf_clear(&s->line);
		} else {
			error = stream_line(s, chunk + i, n);
		}
		i += n;
	}
	return error;
}

int cmv_reply_stream_body(cmv_buf *out, cmv_reply_stream *s)
{
	int error = 0;
	char *t;
	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(s);
	/* a last event with no blank line after it: the stream ended, so did the event */
	if (s->line.size) {
		error = stream_line(s, s->line.ptr, s->line.size);
		cmv_buf_clear(&s->line);
	}
	if (!error && s->data.size) {
		error = stream_event(s);
		cmv_buf_clear(&s->data);
	}
	if (error < 0)
		return error;
	if (!(t = cJSON_PrintUnformatted(s->body)))
		return cmv_error__oom();
	cmv_buf_clear(out);
	error = cmv_buf_puts(out, t);
	cJSON_free(t);
	return error;
}
