/* SPDX-License-Identifier: MIT */
/*
 * Provider request bodies as sessions: Anthropic Messages ("messages"),
 * OpenAI Chat Completions ("messages"), Gemini generateContent
 * ("contents"); the Responses API's items are in codex.c. Each message is a
 * record; the rest of the body (model, system prompt, tools, settings) is
 * the header and trailer records, read back when rendering for the
 * system prompt.
 */
#include "neutral.h"

/* ---- Anthropic ---------------------------------------------------------------- */

static int anthropic_block(record_build *rb, jspan el, const cJSON *cel)
{
	const char *type = cmv_formats__cj_str(cel, "type");
	jspan v;

	if (!type)
		type = "unknown";
	if (!strcmp(type, "text") || !strcmp(type, "thinking") || !strcmp(type, "redacted_thinking")) {
		const char *field = !strcmp(type, "text") ? "text" : !strcmp(type, "thinking") ? "thinking" : "data";
		if (cmv_formats__jscan_member(&v, el, field) == 1 && *v.p == '"')
			return cmv_formats__record_add_block(rb, v, cmv_formats__cj_str(cel, "type"), NULL, NULL, NULL, 0);
	} else if (!strcmp(type, "tool_use")) {
		if (cmv_formats__jscan_member(&v, el, "input") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_use", cmv_formats__cj_str(cel, "id"), cmv_formats__cj_str(cel, "name"),
						"application/json", 0);
	} else if (!strcmp(type, "tool_result")) {
		if (cmv_formats__jscan_member(&v, el, "content") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_result", cmv_formats__cj_str(cel, "tool_use_id"), NULL,
						*v.p == '"' ? NULL : "application/vnd.cmv.blocks+json",
						cJSON_IsTrue(cmv_formats__cj_get(cel, "is_error")) ? CMV_BLOCK_ERROR : 0);
	} else if (!strcmp(type, "image")) {
		jspan src;
		if (cmv_formats__jscan_member(&src, el, "source") == 1 && *src.p == '{' && cmv_formats__jscan_member(&v, src, "data") == 1 &&
		    *v.p == '"')
			return cmv_formats__record_add_block(rb, v, "image", NULL, NULL, "application/vnd.cmv.base64", 0);
	}
	/* Anything else: the whole block, raw. */
	return cmv_formats__record_add_block(rb, el, cmv_formats__cj_str(cel, "type") ? cmv_formats__cj_str(cel, "type") : "unknown", NULL, NULL,
				"application/vnd.cmv.block+json", 0);
}

int cmv_formats__cut_anthropic_content(record_build *rb, jspan v, const cJSON *content)
{
	int error = 0;

	if (*v.p == '"')
		return cmv_formats__record_add_block(rb, v, "text", NULL, NULL, NULL, 0);
	if (*v.p == '[') {
		const char *cur = NULL;
		const cJSON *cel = content ? content->child : NULL;
		jspan el;
		while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
			error = *el.p == '{' ? anthropic_block(rb, el, cel) : 0;
			cel = cel->next;
		}
	}
	return error;
}

static int anthropic_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			    cmv_kind *kind)
{
	const char *r = cmv_formats__cj_str(j, "role");
	jspan v;

	(void)si;
	*kind = CMV_KIND_MESSAGE;
	*role = r && !strcmp(r, "assistant") ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER;
	if (cmv_formats__jscan_member(&v, rec, "content") == 1)
		return cmv_formats__cut_anthropic_content(rb, v, cmv_formats__cj_get(j, "content"));
	return 0;
}

const session_driver cmv__driver_anthropic = { "anthropic", "anthropic", "messages", anthropic_record };

int cmv_formats__anthropic_message_neutral(conv *c, const cJSON *msg, const char *group)
{
	const char *role = cmv_formats__cj_str(msg, "role");
	const cJSON *body = cmv_formats__cj_get(msg, "content");
	cJSON *content;

	if (!role || (strcmp(role, "user") && strcmp(role, "assistant")))
		return 0;
	content = group ? cmv_formats__conv_msg_join(c, role, group) : cmv_formats__conv_msg(c, role, NULL);
	if (cJSON_IsString(body))
		cmv_formats__nb_text(c, content, body->valuestring);
	for (const cJSON *b = cJSON_IsArray(body) ? body->child : NULL; b; b = b->next)
		if (cJSON_IsObject(b))
			cmv_formats__nb_copy(c, content, b);
	return 0;
}

int cmv__anthropic_neutral(conv *c, const cJSON *rec)
{
	return cmv_formats__anthropic_message_neutral(c, rec, NULL);
}

/* ---- OpenAI Chat Completions (and SWE-agent's history) ------------------------- */

int cmv_formats__cut_chat_message(record_build *rb, jspan msg, const cJSON *j, cmv_role *role, cmv_kind *kind)
{
	const char *r = cmv_formats__cj_str(j, "role");
	const cJSON *ids = cmv_formats__cj_get(j, "tool_call_ids");
	const char *tool_id = cmv_formats__cj_str(j, "tool_call_id");
	jspan v;
	int error = 0;

	*kind = CMV_KIND_MESSAGE;
	*role = !r ? CMV_ROLE_USER : !strcmp(r, "assistant") ? CMV_ROLE_ASSISTANT : !strcmp(r, "tool") ? CMV_ROLE_TOOL
		: !strcmp(r, "user") ? CMV_ROLE_USER : CMV_ROLE_SYSTEM;
	if (!tool_id && cJSON_IsArray(ids) && cJSON_IsString(ids->child))
		tool_id = ids->child->valuestring; /* SWE-agent */
	if (cmv_formats__jscan_member(&v, msg, "content") == 1) {
		const char *type = *role == CMV_ROLE_TOOL ? "tool_result" : "text";
		if (*v.p == '"') {
			error = cmv_formats__record_add_block(rb, v, type, *role == CMV_ROLE_TOOL ? tool_id : NULL, NULL, NULL, 0);
		} else if (*v.p == '[') {
			const char *cur = NULL;
			const cJSON *cel = cmv_formats__cj_get(j, "content") ? cmv_formats__cj_get(j, "content")->child : NULL;
			jspan el;
			while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
				const char *t = cmv_formats__cj_str(cel, "type");
				if (*el.p == '{' && cmv_formats__cj_str(cel, "text"))
					error = cmv_formats__record_add_string(rb, el, "text", type,
								  *role == CMV_ROLE_TOOL ? tool_id : NULL, NULL);
				else if (*el.p == '{' && t && !strcmp(t, "image_url"))
					error = cmv_formats__record_add_block(rb, el, "image_url", NULL, NULL,
								 "application/vnd.cmv.block+json", 0);
				cel = cel->next;
			}
		}
	}
	const cJSON *calls = cmv_formats__cj_get(j, "tool_calls"), *cel = calls ? calls->child : NULL;
	const char *cur = NULL;
	jspan el, fn;
	if (!error && cmv_formats__jscan_member(&v, msg, "tool_calls") == 1 && *v.p == '[')
		while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
			const cJSON *f = cmv_formats__cj_get(cel, "function");
			if (*el.p == '{' && cmv_formats__jscan_member(&fn, el, "function") == 1 && *fn.p == '{')
				error = cmv_formats__record_add_raw(rb, fn, "arguments", "tool_use", cmv_formats__cj_str(cel, "id"), cmv_formats__cj_str(f, "name"),
						       NULL);
			cel = cel->next;
		}
	return error;
}

static int chat_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
		       cmv_kind *kind)
{
	(void)si;
	return cmv_formats__cut_chat_message(rb, rec, j, role, kind);
}

const session_driver cmv__driver_openai_chat = { "openai-chat", "chat", "messages", chat_record };

static void chat_parts_neutral(conv *c, cJSON *content, const cJSON *parts)
{
	if (cJSON_IsString(parts)) {
		cmv_formats__nb_text(c, content, parts->valuestring);
		return;
	}
	for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p; p = p->next) {
		const cJSON *iu = cmv_formats__cj_get(p, "image_url");
		const char *url = cmv_formats__cj_str(iu, "url");
		if (cmv_formats__cj_str(p, "text")) {
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(p, "text"));
		} else if (url && !strncmp(url, "data:", 5) && strstr(url, ";base64,")) {
			char mt[128];
			size_t n = (size_t)(strchr(url, ';') - url - 5);
			snprintf(mt, sizeof(mt), "%.*s", (int)(n < sizeof(mt) ? n : sizeof(mt) - 1), url + 5);
			cmv_formats__nb_image_b64(c, content, mt, strstr(url, ";base64,") + 8);
		}
	}
}

int cmv_formats__chat_message_neutral(conv *c, const cJSON *msg)
{
	const char *role = cmv_formats__cj_str(msg, "role");
	const cJSON *body = cmv_formats__cj_get(msg, "content"), *calls = cmv_formats__cj_get(msg, "tool_calls");

	if (!role)
		return 0;
	if (!strcmp(role, "system") || !strcmp(role, "developer")) {
		if (cJSON_IsString(body))
			cmv_formats__conv_system(c, body->valuestring);
		for (const cJSON *p = cJSON_IsArray(body) ? body->child : NULL; p; p = p->next)
			if (cmv_formats__cj_str(p, "text"))
				cmv_formats__conv_system(c, cmv_formats__cj_str(p, "text"));
	} else if (!strcmp(role, "tool")) {
		const cJSON *ids = cmv_formats__cj_get(msg, "tool_call_ids");
		const char *id = cmv_formats__cj_str(msg, "tool_call_id");
		if (!id && cJSON_IsArray(ids) && cJSON_IsString(ids->child))
			id = ids->child->valuestring;
		cJSON *content = cmv_formats__conv_msg_join(c, "user", NULL);
		if (cJSON_IsString(body)) {
			cmv_formats__nb_tool_result(c, content, id, body, NULL, false);
		} else {
			cJSON *blocks = cJSON_CreateArray();
			if (!blocks)
				c->oom = true;
			else
				chat_parts_neutral(c, blocks, body);
			cmv_formats__nb_tool_result(c, content, id, blocks, NULL, false);
			cJSON_Delete(blocks);
		}
	} else {
		bool asst = !strcmp(role, "assistant");
		/* consecutive tool results are one user message; a new prompt is a new message */
		cJSON *content = asst ? cmv_formats__conv_msg_join(c, "assistant", NULL) : cmv_formats__conv_msg(c, "user", NULL);
		chat_parts_neutral(c, content, body);
		for (const cJSON *tc = calls ? calls->child : NULL; tc; tc = tc->next) {
			const cJSON *f = cmv_formats__cj_get(tc, "function");
			cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(tc, "id"), cmv_formats__cj_str(f, "name"), NULL,
				    cmv_formats__cj_str(f, "arguments") ? cmv_formats__cj_str(f, "arguments") : "{}", false);
		}
	}
	return 0;
}

int cmv__openai_chat_neutral(conv *c, const cJSON *rec)
{
	return cmv_formats__chat_message_neutral(c, rec);
}

/* ---- Gemini generateContent ----------------------------------------------------- */

static int gemini_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			 cmv_kind *kind)
{
	const char *r = cmv_formats__cj_str(j, "role");
	const cJSON *parts = cmv_formats__cj_get(j, "parts"), *cel = parts ? parts->child : NULL;
	const char *cur = NULL;
	jspan v, el, inner;
	int error = 0;

	(void)si;
	*kind = CMV_KIND_MESSAGE;
	*role = r && !strcmp(r, "model") ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER;
	if (cmv_formats__jscan_member(&v, rec, "parts") != 1 || *v.p != '[')
		return 0;
	while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
		const cJSON *fc = cmv_formats__cj_get(cel, "functionCall"), *fr = cmv_formats__cj_get(cel, "functionResponse");
		if (*el.p != '{') {
		} else if (cmv_formats__cj_str(cel, "text")) {
			error = cmv_formats__record_add_string(rb, el, "text", cJSON_IsTrue(cmv_formats__cj_get(cel, "thought")) ? "thinking" : "text",
						  NULL, NULL);
		} else if (fc && cmv_formats__jscan_member(&inner, el, "functionCall") == 1 && *inner.p == '{') {
			error = cmv_formats__record_add_raw(rb, inner, "args", "tool_use", cmv_formats__cj_str(fc, "id"), cmv_formats__cj_str(fc, "name"), NULL);
		} else if (fr && cmv_formats__jscan_member(&inner, el, "functionResponse") == 1 && *inner.p == '{') {
			*role = CMV_ROLE_TOOL;
			error = cmv_formats__record_add_raw(rb, inner, "response", "tool_result",
					       cmv_formats__cj_str(fr, "id") ? cmv_formats__cj_str(fr, "id") : cmv_formats__cj_str(fr, "name"), cmv_formats__cj_str(fr, "name"), NULL);
		} else if (cmv_formats__jscan_member(&inner, el, "inlineData") == 1 && *inner.p == '{') {
			error = cmv_formats__record_add_string(rb, inner, "data", "image", NULL, NULL);
		}
		cel = cel->next;
	}
	return error;
}

const session_driver cmv__driver_gemini = { "gemini", "gemini", "contents", gemini_record };

int cmv__gemini_neutral(conv *c, const cJSON *rec)
{
	const char *role = cmv_formats__cj_str(rec, "role");
	const cJSON *parts = cmv_formats__cj_get(rec, "parts");
	bool model = role && !strcmp(role, "model");
	cJSON *content = cmv_formats__conv_msg(c, model ? "assistant" : "user", NULL);
	size_t n = 0;
	char idbuf[64];

	for (const cJSON *p = parts ? parts->child : NULL; p; p = p->next) {
		const cJSON *fc = cmv_formats__cj_get(p, "functionCall"), *fr = cmv_formats__cj_get(p, "functionResponse"), *id = cmv_formats__cj_get(p, "inlineData");
		if (cmv_formats__cj_str(p, "text") && !cJSON_IsTrue(cmv_formats__cj_get(p, "thought"))) {
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(p, "text"));
		} else if (cJSON_IsObject(fc)) {
			/* ids are optional here: pair by position, as Gemini does */
			snprintf(idbuf, sizeof(idbuf), "call_%s_%zu", c->node ? c->node : "x", n++);
			cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(fc, "id") ? cmv_formats__cj_str(fc, "id") : idbuf, cmv_formats__cj_str(fc, "name"),
				    cmv_formats__cj_get(fc, "args"), "{}", false);
		} else if (cJSON_IsObject(fr)) {
			/* answer the calls of the last assistant message, in order */
			const char *rid = cmv_formats__cj_str(fr, "id");
			if (!rid) {
				int nmsg = cJSON_GetArraySize(c->messages);
				const cJSON *prev = nmsg >= 2 ? cJSON_GetArrayItem(c->messages, nmsg - 2) : NULL;
				size_t k = 0;
				for (const cJSON *b = prev ? cmv_formats__cj_get(prev, "content")->child : NULL; b && !rid; b = b->next)
					if (cmv_formats__cj_str(b, "type") && !strcmp(cmv_formats__cj_str(b, "type"), "tool_use") && k++ == n)
						rid = cmv_formats__cj_str(b, "id");
				n++;
			}
			{
				const cJSON *resp = cmv_formats__cj_get(fr, "response");
				char *s = resp ? cJSON_PrintUnformatted(resp) : NULL;
				const cJSON *out = cmv_formats__cj_get(resp, "output");
				if (cJSON_IsString(out) && cJSON_GetArraySize(resp) == 1)
					cmv_formats__nb_tool_result(c, content, rid ? rid : "", out, NULL, false);
				else
					cmv_formats__nb_tool_result(c, content, rid ? rid : "", NULL, s ? s : "", cmv_formats__cj_get(resp, "error") != NULL);
				cJSON_free(s);
			}
		} else if (cJSON_IsObject(id) && cmv_formats__cj_str(id, "data")) {
			cmv_formats__nb_image_b64(c, content, cmv_formats__cj_str(id, "mimeType") ? cmv_formats__cj_str(id, "mimeType") : "image/png",
				     cmv_formats__cj_str(id, "data"));
		}
	}
	return 0;
}

/* ---- the rest of a request body ------------------------------------------------- */

static void system_value(conv *c, const cJSON *v)
{
	if (cJSON_IsString(v))
		cmv_formats__conv_system(c, v->valuestring);
	for (const cJSON *p = cJSON_IsArray(v) ? v->child : NULL; p; p = p->next)
		if (cmv_formats__cj_str(p, "text"))
			cmv_formats__conv_system(c, cmv_formats__cj_str(p, "text"));
		else if (cJSON_IsString(p))
			cmv_formats__conv_system(c, p->valuestring);
	if (cJSON_IsObject(v))
		system_value(c, cmv_formats__cj_get(v, "parts"));
}

int cmv__skeleton_neutral(conv *c, const char *format, const cJSON *doc)
{
	if (!strcmp(format, "anthropic"))
		system_value(c, cmv_formats__cj_get(doc, "system"));
	else if (!strcmp(format, "openai-responses"))
		system_value(c, cmv_formats__cj_get(doc, "instructions"));
	else if (!strcmp(format, "gemini"))
		system_value(c, cmv_formats__cj_get(doc, "systemInstruction") ? cmv_formats__cj_get(doc, "systemInstruction")
								  : cmv_formats__cj_get(doc, "system_instruction"));
	return 0;
}
