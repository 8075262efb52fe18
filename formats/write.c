/* SPDX-License-Identifier: MIT */
/*
 * Writing a repaired neutral conversation in each provider's request shape
 * (Anthropic Messages, OpenAI Chat Completions, OpenAI Responses, Gemini),
 * adding the provider's decorations (cache markers and the like), which are
 * never stored. The readers of those shapes are in requests.c and codex.c.
 */
#include "neutral.h"

/* ---- writing each provider's shape -------------------------------------------- */

#define OOM_IF(x) do { if (!(x)) return cmv_error__oom(); } while (0)

static int sanitize_id(cJSON *b, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key);
	if (!cJSON_IsString(v))
		return 0;
	for (char *p = v->valuestring; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			*p = '_';
	if (!*v->valuestring && !cJSON_SetValuestring(v, "_"))
		return cmv_error__oom();
	return 0;
}

/* The system prompts joined into out (empty when there are none). */
static int joined_system(cmv_buf *out, const cJSON *system)
{
	int error = 0;

	cmv_buf_clear(out);
	for (const cJSON *s = system->child; s && !error; s = s->next) {
		if (out->size && (error = cmv_buf_puts(out, "\n\n")) < 0)
			break;
		error = cmv_buf_puts(out, s->valuestring);
	}
	return error;
}

static cJSON *cache_marker(void)
{
	cJSON *cc = cJSON_CreateObject();
	if (cc && !cJSON_AddStringToObject(cc, "type", "ephemeral")) {
		cJSON_Delete(cc);
		return NULL;
	}
	return cc;
}

/* Add v (taken; NULL when making it ran out of memory) to o as k. */
static int add_owned(cJSON *o, const char *k, cJSON *v)
{
	if (!v || !cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		return cmv_error__oom();
	}
	return 0;
}

static char *json_text(const cJSON *v)
{
	return cJSON_PrintUnformatted(v);
}

static int add_owned_string(cJSON *o, const char *k, char *s)
{
	cJSON *v = s ? cJSON_CreateString(s) : NULL;
	cJSON_free(s);
	return add_owned(o, k, v);
}

int cmv_formats__write_anthropic(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags)
{
	bool deco = !(flags & CMV_RENDER_NO_DECORATIONS);
	if (system->child) {
		cJSON *sys = cJSON_AddArrayToObject(body, "system");
		OOM_IF(sys);
		for (const cJSON *s = system->child; s; s = s->next) {
			if (!cmv_formats__has_text(s->valuestring))
				continue;
			cJSON *tb = cmv_formats__text_block(s->valuestring);
			OOM_IF(tb && cJSON_AddItemToArray(sys, tb));
		}
		if (deco && sys->child && add_owned(sys->child->prev, "cache_control", cache_marker()) < 0)
			return cmv_error__oom();
		if (!sys->child)
			cJSON_DeleteItemFromObjectCaseSensitive(body, "system");
	}
	for (cJSON *m = msgs->child; m; m = m->next) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = content->child; b; b = b->next) {
			/* stored markers are the source's; ours are added below */
			cJSON_DeleteItemFromObjectCaseSensitive(b, "cache_control");
			cJSON_DeleteItemFromObjectCaseSensitive(b, "custom");
			if (!strcmp(cmv_formats__btype(b), "tool_use")) {
				OOM_IF(sanitize_id(b, "id") == 0);
			} else if (!strcmp(cmv_formats__btype(b), "tool_result")) {
				OOM_IF(sanitize_id(b, "tool_use_id") == 0);
				cJSON *rc = cJSON_GetObjectItemCaseSensitive(b, "content");
				for (cJSON *x = cJSON_IsArray(rc) ? rc->child : NULL, *next; x; x = next) {
					next = x->next;
					cJSON_DeleteItemFromObjectCaseSensitive(x, "cache_control");
					if (strcmp(cmv_formats__btype(x), "text") && strcmp(cmv_formats__btype(x), "image") && strcmp(cmv_formats__btype(x), "document"))
						cJSON_Delete(cJSON_DetachItemViaPointer(rc, x));
					else if (!strcmp(cmv_formats__btype(x), "text") && !cmv_formats__has_text(cmv_formats__cj_str(x, "text")))
						cJSON_Delete(cJSON_DetachItemViaPointer(rc, x));
				}
			}
		}
	}
	if (deco && msgs->child) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(msgs->child->prev, "content"), *target = NULL;
		for (cJSON *b = content->child; b; b = b->next)
			if (strcmp(cmv_formats__btype(b), "thinking") && strcmp(cmv_formats__btype(b), "redacted_thinking"))
				target = b;
		if (target && add_owned(target, "cache_control", cache_marker()) < 0)
			return cmv_error__oom();
	}
	return add_owned(body, "messages", cJSON_Duplicate(msgs, 1));
}

int cmv_formats__write_openai_chat(cJSON *body, cJSON *msgs, const cJSON *system, cmv_buf *scratch)
{
	cJSON *out = cJSON_AddArrayToObject(body, "messages");
	int error;
	OOM_IF(out);
	if ((error = joined_system(scratch, system)) < 0)
		return error;
	if (scratch->size) {
		cJSON *m = cJSON_CreateObject();
		OOM_IF(m && cJSON_AddItemToArray(out, m));
		OOM_IF(cJSON_AddStringToObject(m, "role", "system") && cJSON_AddStringToObject(m, "content", scratch->ptr));
	}
	for (const cJSON *m = msgs->child; m; m = m->next) {
		const cJSON *content = cmv_formats__cj_get(m, "content");
		if (!strcmp(cmv_formats__cj_str(m, "role"), "assistant")) {
			cJSON *o = cJSON_CreateObject(), *calls = NULL;
			OOM_IF(o && cJSON_AddItemToArray(out, o) && cJSON_AddStringToObject(o, "role", "assistant"));
			cmv_buf_clear(scratch);
			for (const cJSON *b = content->child; b && !error; b = b->next) {
				if (!strcmp(cmv_formats__btype(b), "text")) {
					if (!scratch->size || (error = cmv_buf_puts(scratch, "\n\n")) == 0)
						error = cmv_buf_puts(scratch, cmv_formats__cj_str(b, "text"));
				} else if (!strcmp(cmv_formats__btype(b), "tool_use")) {
					cJSON *tc = cJSON_CreateObject(), *fn;
					if (!tc || (!calls && !(calls = cJSON_CreateArray()))) {
						cJSON_Delete(tc);
						error = cmv_error__oom();
					} else if (!cJSON_AddItemToArray(calls, tc) || !cJSON_AddStringToObject(tc, "id", cmv_formats__cj_str(b, "id")) ||
						   !cJSON_AddStringToObject(tc, "type", "function") ||
						   !(fn = cJSON_AddObjectToObject(tc, "function")) ||
						   !cJSON_AddStringToObject(fn, "name", cmv_formats__cj_str(b, "name"))) {
						error = cmv_error__oom();
					} else {
						error = add_owned_string(fn, "arguments", json_text(cmv_formats__cj_get(b, "input")));
					}
				}
			}
			if (!error && !(scratch->size ? cJSON_AddStringToObject(o, "content", scratch->ptr)
						      : cJSON_AddNullToObject(o, "content")))
				error = cmv_error__oom();
			if (!error && calls)
				error = add_owned(o, "tool_calls", calls);
			else
				cJSON_Delete(calls);
			if (error)
				return error;
			continue;
		}
		/* results first, as tool messages; then the rest as one user message */
		cJSON *parts = cJSON_CreateArray();
		OOM_IF(parts);
		for (const cJSON *b = content->child; b; b = b->next) {
			if (!strcmp(cmv_formats__btype(b), "tool_result")) {
				cJSON *o = cJSON_CreateObject();
				if (!o || !cJSON_AddItemToArray(out, o) || cmv__result_text(scratch, cmv_formats__cj_get(b, "content")) < 0 ||
				    !cJSON_AddStringToObject(o, "role", "tool") ||
				    !cJSON_AddStringToObject(o, "tool_call_id", cmv_formats__cj_str(b, "tool_use_id")) ||
				    !cJSON_AddStringToObject(o, "content", scratch->size ? scratch->ptr : "(empty)")) {
					cJSON_Delete(parts);
					return cmv_error__oom();
				}
			} else if (!strcmp(cmv_formats__btype(b), "text")) {
				cJSON *p = cJSON_CreateObject();
				if (!p || !cJSON_AddItemToArray(parts, p) || !cJSON_AddStringToObject(p, "type", "text") ||
				    !cJSON_AddStringToObject(p, "text", cmv_formats__cj_str(b, "text"))) {
					cJSON_Delete(parts);
					return cmv_error__oom();
				}
			} else if (!strcmp(cmv_formats__btype(b), "image")) {
				const cJSON *src = cmv_formats__cj_get(b, "source");
				cJSON *p = cJSON_CreateObject(), *iu;
				cmv_buf_clear(scratch);
				if (!p || !cJSON_AddItemToArray(parts, p) ||
				    cmv_buf_printf(scratch, "data:%s;base64,%s",
						   cmv_formats__cj_str(src, "media_type") ? cmv_formats__cj_str(src, "media_type") : "image/png",
						   cmv_formats__cj_str(src, "data") ? cmv_formats__cj_str(src, "data") : "") < 0 ||
				    !cJSON_AddStringToObject(p, "type", "image_url") ||
				    !(iu = cJSON_AddObjectToObject(p, "image_url")) || !cJSON_AddStringToObject(iu, "url", scratch->ptr)) {
					cJSON_Delete(parts);
					return cmv_error__oom();
				}
			}
		}
		if (parts->child) {
			cJSON *o = cJSON_CreateObject();
			if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "role", "user")) {
				cJSON_Delete(parts);
				return cmv_error__oom();
			}
			if (!parts->child->next && cmv_formats__cj_str(parts->child, "text")) {
				bool ok = cJSON_AddStringToObject(o, "content", cmv_formats__cj_str(parts->child, "text")) != NULL;
				cJSON_Delete(parts);
				OOM_IF(ok);
			} else if ((error = add_owned(o, "content", parts)) < 0) {
				return error;
			}
		} else {
			cJSON_Delete(parts);
		}
	}
	return 0;
}

static cJSON *responses_message(cJSON *out, const char *role)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "type", "message") ||
	    !cJSON_AddStringToObject(o, "role", role))
		return NULL;
	return cJSON_AddArrayToObject(o, "content");
}

int cmv_formats__write_openai_responses(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags, cmv_buf *scratch)
{
	cJSON *out, *custom_ids = cJSON_CreateObject();
	bool any_reasoning = false;
	int error = cmv_error__oom();

	OOM_IF(custom_ids);
	if (joined_system(scratch, system) < 0 ||
	    (scratch->size && !cJSON_AddStringToObject(body, "instructions", scratch->ptr)))
		goto done;
	if (!(out = cJSON_AddArrayToObject(body, "input")))
		goto done;
	for (const cJSON *m = msgs->child; m; m = m->next) {
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		cJSON *parts = NULL; /* the open message item's content */
		const cJSON *pending = NULL; /* a reasoning item waits for the item it produced */
		for (const cJSON *b = cmv_formats__cj_get(m, "content")->child; b; b = b->next) {
			const char *t = cmv_formats__btype(b);
			cJSON *o;
			if (!strcmp(t, "reasoning")) {
				pending = b;
				continue;
			}
			if (pending) {
				cJSON *r = cJSON_Duplicate(pending, 1);
				if (!r || !cJSON_AddItemToArray(out, r)) {
					cJSON_Delete(r);
					goto done;
				}
				any_reasoning = true;
				pending = NULL;
				parts = NULL;
			}
			if (!strcmp(t, "text") || !strcmp(t, "image")) {
				if (!parts && !(parts = responses_message(out, asst ? "assistant" : "user")))
					goto done;
				if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(parts, o))
					goto done;
				if (!strcmp(t, "text")) {
					if (!cJSON_AddStringToObject(o, "type", asst ? "output_text" : "input_text") ||
					    !cJSON_AddStringToObject(o, "text", cmv_formats__cj_str(b, "text")))
						goto done;
				} else {
					const cJSON *src = cmv_formats__cj_get(b, "source");
					cmv_buf_clear(scratch);
					if (cmv_buf_printf(scratch, "data:%s;base64,%s",
							   cmv_formats__cj_str(src, "media_type") ? cmv_formats__cj_str(src, "media_type") : "image/png",
							   cmv_formats__cj_str(src, "data") ? cmv_formats__cj_str(src, "data") : "") < 0 ||
					    !cJSON_AddStringToObject(o, "type", "input_image") ||
					    !cJSON_AddStringToObject(o, "image_url", scratch->ptr))
						goto done;
				}
				continue;
			}
			parts = NULL;
			if (!strcmp(t, "openai_item")) {
				cJSON *it = cJSON_Duplicate(cmv_formats__cj_get(b, "item"), 1);
				if (!it || cmv_formats__exact_numbers(it) < 0 || !cJSON_AddItemToArray(out, it)) {
					cJSON_Delete(it);
					goto done;
				}
				continue;
			}
			if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(out, o))
				goto done;
			if (!strcmp(t, "tool_use")) {
				bool custom = cJSON_IsTrue(cmv_formats__cj_get(b, "custom"));
				const cJSON *in = cmv_formats__cj_get(b, "input");
				if (!cJSON_AddStringToObject(o, "type", custom ? "custom_tool_call" : "function_call") ||
				    !cJSON_AddStringToObject(o, "call_id", cmv_formats__cj_str(b, "id")) ||
				    !cJSON_AddStringToObject(o, "name", cmv_formats__cj_str(b, "name")))
					goto done;
				if (custom) {
					if (!cJSON_AddStringToObject(o, "input", cmv_formats__cj_str(in, "input") ? cmv_formats__cj_str(in, "input") : "") ||
					    !cJSON_AddTrueToObject(custom_ids, cmv_formats__cj_str(b, "id")))
						goto done;
				} else if (add_owned_string(o, "arguments", json_text(in)) < 0) {
					goto done;
				}
			} else if (!strcmp(t, "tool_result")) {
				bool custom = cmv_formats__cj_get(custom_ids, cmv_formats__cj_str(b, "tool_use_id")) != NULL;
				if (cmv__result_text(scratch, cmv_formats__cj_get(b, "content")) < 0 ||
				    !cJSON_AddStringToObject(o, "type", custom ? "custom_tool_call_output" : "function_call_output") ||
				    !cJSON_AddStringToObject(o, "call_id", cmv_formats__cj_str(b, "tool_use_id")) ||
				    !cJSON_AddStringToObject(o, "output", scratch->size ? scratch->ptr : ""))
					goto done;
			}
		}
		/* a reasoning item with nothing after it is dropped (the API refuses it alone) */
	}
	if (any_reasoning && !(flags & CMV_RENDER_NO_DECORATIONS)) {
		cJSON *inc = cJSON_AddArrayToObject(body, "include");
		if (!inc || !cJSON_AddItemToArray(inc, cJSON_CreateString("reasoning.encrypted_content")) ||
		    !cJSON_AddFalseToObject(body, "store"))
			goto done;
	}
	error = 0;
done:
	cJSON_Delete(custom_ids);
	return error;
}

int cmv_formats__write_gemini(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags)
{
	bool deco = !(flags & CMV_RENDER_NO_DECORATIONS);
	cJSON *names = cJSON_CreateObject(), *contents;
	int error = cmv_error__oom();

	OOM_IF(names);
	if (system->child) {
		cJSON *si = cJSON_AddObjectToObject(body, "systemInstruction"), *parts;
		if (!si || !(parts = cJSON_AddArrayToObject(si, "parts")))
			goto done;
		for (const cJSON *s = system->child; s; s = s->next) {
			cJSON *p = cJSON_CreateObject();
			if (!p || !cJSON_AddItemToArray(parts, p) || !cJSON_AddStringToObject(p, "text", s->valuestring))
				goto done;
		}
	}
	if (!(contents = cJSON_AddArrayToObject(body, "contents")))
		goto done;
	for (const cJSON *m = msgs->child; m; m = m->next) {
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant"), first_call = true;
		cJSON *o = cJSON_CreateObject(), *parts;
		if (!o || !cJSON_AddItemToArray(contents, o) || !cJSON_AddStringToObject(o, "role", asst ? "model" : "user") ||
		    !(parts = cJSON_AddArrayToObject(o, "parts")))
			goto done;
		/* function responses first: the turn answers the calls before it, in order */
		for (int pass = 0; pass < 2; pass++)
			for (const cJSON *b = cmv_formats__cj_get(m, "content")->child; b; b = b->next) {
				const char *t = cmv_formats__btype(b);
				bool is_result = !strcmp(t, "tool_result");
				if ((pass == 0) != is_result)
					continue;
				cJSON *p = cJSON_CreateObject();
				if (!p || !cJSON_AddItemToArray(parts, p))
					goto done;
				if (!strcmp(t, "text")) {
					if (!cJSON_AddStringToObject(p, "text", cmv_formats__cj_str(b, "text")))
						goto done;
				} else if (!strcmp(t, "image")) {
					const cJSON *src = cmv_formats__cj_get(b, "source");
					cJSON *d = cJSON_AddObjectToObject(p, "inlineData");
					if (!d || !cJSON_AddStringToObject(d, "mimeType", cmv_formats__cj_str(src, "media_type") ? cmv_formats__cj_str(src, "media_type") : "image/png") ||
					    !cJSON_AddStringToObject(d, "data", cmv_formats__cj_str(src, "data") ? cmv_formats__cj_str(src, "data") : ""))
						goto done;
				} else if (!strcmp(t, "tool_use")) {
					cJSON *fc = cJSON_AddObjectToObject(p, "functionCall");
					if (!fc || !cJSON_AddStringToObject(fc, "id", cmv_formats__cj_str(b, "id")) ||
					    !cJSON_AddStringToObject(fc, "name", cmv_formats__cj_str(b, "name")) ||
					    add_owned(fc, "args", cJSON_Duplicate(cmv_formats__cj_get(b, "input"), 1)) < 0)
						goto done;
					if (!cmv_formats__cj_get(names, cmv_formats__cj_str(b, "id")) &&
					    !cJSON_AddStringToObject(names, cmv_formats__cj_str(b, "id"), cmv_formats__cj_str(b, "name")))
						goto done;
					/* Gemini 3 wants a signature on each step's first call; history from elsewhere has none */
					if (deco && first_call &&
					    !cJSON_AddStringToObject(p, "thoughtSignature", "skip_thought_signature_validator"))
						goto done;
					first_call = false;
				} else if (is_result) {
					const char *id = cmv_formats__cj_str(b, "tool_use_id");
					const char *name = cmv_formats__cj_str(names, id);
					cJSON *fr = cJSON_AddObjectToObject(p, "functionResponse"), *resp;
					cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
					bool ok = fr && cmv__result_text(&text, cmv_formats__cj_get(b, "content")) == 0 &&
						  cJSON_AddStringToObject(fr, "id", id) &&
						  cJSON_AddStringToObject(fr, "name", name ? name : "tool") &&
						  (resp = cJSON_AddObjectToObject(fr, "response")) &&
						  cJSON_AddStringToObject(resp, cJSON_IsTrue(cmv_formats__cj_get(b, "is_error")) ? "error" : "output",
									  text.size ? text.ptr : "");
					cmv_buf_dispose(&text);
					if (!ok)
						goto done;
				}
			}
	}
	error = 0;
done:
	cJSON_Delete(names);
	return error;
}

