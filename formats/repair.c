/* SPDX-License-Identifier: MIT */
/*
 * Repairing a neutral conversation for a target, for every provider alike:
 * drop what the target cannot replay, move each tool result to the message
 * right after its call (results first), answer calls that never got a
 * result with an error result, keep results with no call as text, merge
 * same-role neighbours, drop empty messages. Invariant: what comes out
 * passes the target's checker (check.c) whatever came in.
 */
#include "neutral.h"

/* ---- repair ------------------------------------------------------------------- */

const char *cmv_formats__btype(const cJSON *b)
{
	const char *t = cmv_formats__cj_str(b, "type");
	return t ? t : "";
}

bool cmv_formats__has_text(const char *s)
{
	for (; s && *s; s++)
		if (!strchr(" \t\r\n", *s))
			return true;
	return false;
}

/* Whether a block can go to this target in a message of this role. */
/*
 * A call's input as every provider takes it, an object: {} for a record
 * that had none, a value of another kind kept under "input" (as the readers
 * keep free text, cmv_formats__nb_tool_use). Found by the import fuzz target: a Claude
 * Code line whose tool_use lost its "input" member.
 */
static int object_input(cJSON *b)
{
	cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input"), *o;

	if (cJSON_IsObject(in))
		return 0;
	if (!(o = cJSON_CreateObject()))
		return cmv_error__oom();
	if (in) {
		cJSON *v = cJSON_DetachItemViaPointer(b, in);
		if (!cJSON_AddItemToObject(o, "input", v)) {
			cJSON_Delete(v);
			cJSON_Delete(o);
			return cmv_error__oom();
		}
	}
	if (!cJSON_AddItemToObject(b, "input", o)) {
		cJSON_Delete(o);
		return cmv_error__oom();
	}
	return 0;
}

static bool keep_block(cmv_render_target t, const cJSON *b, bool asst, cmv_render_stats *st)
{
	const char *type = cmv_formats__btype(b);

	if (!strcmp(type, "text"))
		return cmv_formats__has_text(cmv_formats__cj_str(b, "text"));
	if (!strcmp(type, "tool_use"))
		return asst;
	if (!strcmp(type, "tool_result"))
		return !asst;
	if (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking") || !strcmp(type, "reasoning")) {
		bool ok = false;
		if (t == CMV_RENDER_ANTHROPIC && asst && !strcmp(type, "thinking"))
			ok = cmv_formats__has_text(cmv_formats__cj_str(b, "signature"));
		else if (t == CMV_RENDER_ANTHROPIC && asst && !strcmp(type, "redacted_thinking"))
			ok = cmv_formats__has_text(cmv_formats__cj_str(b, "data"));
		else if (t == CMV_RENDER_OPENAI_RESPONSES && asst && !strcmp(type, "reasoning"))
			/* stateless replay needs the encrypted content; the samples' is redacted upstream */
			ok = cmv_formats__has_text(cmv_formats__cj_str(b, "encrypted_content")) && strcmp(cmv_formats__cj_str(b, "encrypted_content"), "REDACTED");
		st->dropped_thinking += !ok;
		return ok;
	}
	if (!strcmp(type, "image") && !asst)
		return true;
	if (!strcmp(type, "openai_item") && t == CMV_RENDER_OPENAI_RESPONSES)
		return true;
	st->dropped_other++;
	return false;
}

/*
 * The stub of a signed thinking block another provider cannot take, or
 * *out NULL: it names the blob of the thinking text (its id is the hash of
 * the text, as the store wrote it), so the other model recalls it through
 * cmv_recall. A block with no text (the signature alone) has nothing to
 * recall and is dropped.
 */
static int thinking_stub(cJSON **out, const cJSON *b, cmv_buf *scratch)
{
	const char *text = cmv_formats__cj_str(b, "thinking");
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id id;
	int error;

	*out = NULL;
	if (strcmp(cmv_formats__btype(b), "thinking") || !cmv_formats__has_text(cmv_formats__cj_str(b, "signature")) ||
	    !cmv_formats__has_text(text))
		return 0;
	cmv_id_hash(&id, text, strlen(text));
	cmv_id_tostr(hex, sizeof(hex), &id);
	cmv_buf_clear(scratch);
	if ((error = cmv_buf_printf(scratch, "[thinking signed for another provider, %zu chars; recall %.7s]", strlen(text),
				    hex)) < 0)
		return error;
	return (*out = cmv_formats__text_block(scratch->ptr)) ? 0 : cmv_error__oom();
}

/* A result's content as plain text (for orphans, and providers that take only text). */
int cmv__result_text(cmv_buf *out, const cJSON *content)
{
	int error = 0;

	cmv_buf_clear(out);
	if (cJSON_IsString(content))
		return cmv_buf_puts(out, content->valuestring);
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		if (out->size && (error = cmv_buf_puts(out, "\n")) < 0)
			break;
		if (cmv_formats__cj_str(b, "text"))
			error = cmv_buf_puts(out, cmv_formats__cj_str(b, "text"));
		else if (!strcmp(cmv_formats__btype(b), "image"))
			error = cmv_buf_puts(out, "[image]");
	}
	return error;
}

typedef struct {
	char **ids;
	cJSON **results; /* detached, owned */
	size_t n, cap;
} result_map;

static ssize_t map_find(const result_map *m, const char *id)
{
	for (size_t i = m->n; i-- > 0;)
		if (!strcmp(m->ids[i], id))
			return (ssize_t)i;
	return -1;
}

static int map_add(result_map *m, const char *id)
{
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		char **a = cmv__realloc(m->ids, ncap * sizeof(*a));
		if (!a)
			return cmv_error__oom();
		m->ids = a;
		cJSON **r = cmv__realloc(m->results, ncap * sizeof(*r));
		if (!r)
			return cmv_error__oom();
		m->results = r;
		m->cap = ncap;
	}
	if (!(m->ids[m->n] = cmv__strdup(id)))
		return cmv_error__oom();
	m->results[m->n++] = NULL;
	return 0;
}

static void map_free(result_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->ids[i]);
		cJSON_Delete(m->results[i]);
	}
	free(m->ids);
	free(m->results);
}

cJSON *cmv_formats__text_block(const char *text)
{
	cJSON *b = cJSON_CreateObject();
	if (b && (!cJSON_AddStringToObject(b, "type", "text") || !cJSON_AddStringToObject(b, "text", text))) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

cJSON *cmv_formats__new_message(const char *role)
{
	cJSON *m = cJSON_CreateObject();
	if (m && (!cJSON_AddStringToObject(m, "role", role) || !cJSON_AddArrayToObject(m, "content"))) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* An output item whose call is not before it: what it said stays, as text. */
static int orphan_item(cJSON *content, cJSON *b, const char *id, cmv_render_stats *st)
{
	cmv_buf line = CMV_BUF_INIT(SESSION_MAX_BYTES);
	char *json = cJSON_PrintUnformatted(cmv_formats__cj_get(b, "item"));
	cJSON *tb = NULL;
	int error = 0;

	if (!json || cmv_buf_printf(&line, "[tool result for %s]\n%s", id, json) < 0 || !(tb = cmv_formats__text_block(line.ptr)))
		error = cmv_error__oom();
	else
		cJSON_ReplaceItemViaPointer(content, b, tb);
	cJSON_free(json);
	cmv_buf_dispose(&line);
	st->orphan_results++;
	return error;
}

/* Append message m (taken) to out, merging it into a last message of the same role. */
static int push_message(cJSON *out, cJSON *m)
{
	cJSON *last = out->child ? out->child->prev : NULL;
	if (last && !strcmp(cmv_formats__cj_str(last, "role"), cmv_formats__cj_str(m, "role"))) {
		cJSON *dst = cJSON_GetObjectItemCaseSensitive(last, "content"), *src = cJSON_GetObjectItemCaseSensitive(m, "content");
		while (src->child) {
			cJSON *b = cJSON_DetachItemViaPointer(src, src->child);
			cJSON_AddItemToArray(dst, b);
		}
		cJSON_Delete(m);
		return 0;
	}
	/* "node" stays until the end of the repair, which moves it to the conversation's list */
	cJSON_DeleteItemFromObjectCaseSensitive(m, "group");
	return cJSON_AddItemToArray(out, m) ? 0 : CMV_ENOMEM;
}

/* The repaired message list (see the top of this file); takes c->messages apart. */
int cmv_formats__repair(cJSON **out_msgs, conv *c, cmv_render_target t, cmv_render_stats *st)
{
	result_map calls = { 0 }, items = { 0 };
	cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
	cJSON *out = cJSON_CreateArray(), *aliases = cJSON_CreateObject();
	size_t renamed = 0;
	int error = 0;

	if (!out || !aliases) {
		cJSON_Delete(out);
		cJSON_Delete(aliases);
		return cmv_error__oom();
	}
	/* 1. filter blocks, and take each first result of a known call out of its message */
	for (cJSON *m = c->messages->child; m && !error; m = m->next) {
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = content->child, *next; b && !error; b = next) {
			next = b->next;
			if (!keep_block(t, b, asst, st)) {
				cJSON *stub = NULL;
				if (c->stub_thinking && (error = thinking_stub(&stub, b, &text)) < 0)
					break;
				if (stub)
					cJSON_ReplaceItemViaPointer(content, b, stub);
				else
					cJSON_Delete(cJSON_DetachItemViaPointer(content, b));
				continue;
			}
			bool item_out;
			const char *iid = cmv_formats__item_call_id(b, &item_out);
			if (iid) {
				/* Codex's tool search: paired by call_id as calls and results are */
				if (!item_out) {
					error = map_find(&items, iid) < 0 ? map_add(&items, iid) : 0;
				} else {
					ssize_t k = map_find(&items, iid);
					if (k >= 0 && !items.results[k])
						items.results[k] = cJSON_DetachItemViaPointer(content, b);
					else
						error = orphan_item(content, b, iid, st);
				}
				continue;
			}
			bool is_use = !strcmp(cmv_formats__btype(b), "tool_use");
			if (is_use && (error = object_input(b)) < 0)
				break;
			if (is_use && !cmv_formats__has_text(cmv_formats__cj_str(b, "id"))) {
				/* a call with no id (a damaged record) gets one: nothing can answer it, so repair will */
				char fresh[64];
				snprintf(fresh, sizeof(fresh), "cmv_call_%zu", ++renamed);
				cJSON_DeleteItemFromObjectCaseSensitive(b, "id");
				if (!cJSON_AddStringToObject(b, "id", fresh)) {
					error = cmv_error__oom();
					break;
				}
			}
			const char *id = cmv_formats__cj_str(b, is_use ? "id" : "tool_use_id");
			if (id && (is_use || !strcmp(cmv_formats__btype(b), "tool_result"))) {
				/*
				 * An id used by an earlier call (replayed runs reuse
				 * them) gets a fresh one, and so does the result that
				 * follows it: providers want ids unique.
				 */
				const char *alias = cmv_formats__cj_str(aliases, id);
				if (is_use && map_find(&calls, id) >= 0) {
					char fresh[512];
					snprintf(fresh, sizeof(fresh), "%.480s_%zu", id, ++renamed);
					st->renamed_calls++;
					cJSON_DeleteItemFromObjectCaseSensitive(aliases, id);
					if (!cJSON_AddStringToObject(aliases, id, fresh) ||
					    !cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(b, "id"), fresh))
						error = cmv_error__oom();
				} else if (!is_use && alias) {
					if (!cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(b, "tool_use_id"), alias))
						error = cmv_error__oom();
				}
				id = cmv_formats__cj_str(b, is_use ? "id" : "tool_use_id");
			}
			if (is_use) {
				error = map_find(&calls, id ? id : "") < 0 ? map_add(&calls, id ? id : "") : 0;
			} else if (!strcmp(cmv_formats__btype(b), "tool_result")) {
				ssize_t k = map_find(&calls, id ? id : "");
				if (k >= 0 && !calls.results[k]) {
					calls.results[k] = cJSON_DetachItemViaPointer(content, b);
				} else {
					/* no call before it (or answered already): keep what it said, as text */
					cmv_buf line = CMV_BUF_INIT(SESSION_MAX_BYTES);
					cJSON *tb = NULL;
					if (cmv__result_text(&text, cmv_formats__cj_get(b, "content")) < 0 ||
					    cmv_buf_printf(&line, "[tool result for %s]\n%s", id ? id : "?",
							   text.size ? text.ptr : "") < 0 ||
					    !(tb = cmv_formats__text_block(line.ptr)))
						error = cmv_error__oom();
					else
						cJSON_ReplaceItemViaPointer(content, b, tb);
					cmv_buf_dispose(&line);
					st->orphan_results++;
				}
			}
		}
	}
	/* 2. rebuild: each assistant message is answered by the next message, results first */
	while (!error && c->messages->child) {
		cJSON *m = cJSON_DetachItemViaPointer(c->messages, c->messages->child);
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		bool asst = !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		if (!content->child) {
			cJSON_Delete(m);
			continue;
		}
		cJSON *answer = NULL;
		if (asst) {
			for (cJSON *b = content->child, *next; b && !error; b = next) {
				bool item_out;
				const char *iid = cmv_formats__item_call_id(b, &item_out);
				next = b->next;
				if (iid && !item_out) {
					ssize_t k = map_find(&items, iid);
					cJSON *r = k >= 0 ? items.results[k] : NULL;
					if (k >= 0)
						items.results[k] = NULL;
					if (!r) {
						/* no output to invent for it: the call goes */
						cJSON_Delete(cJSON_DetachItemViaPointer(content, b));
						st->dropped_other++;
						continue;
					}
					if (!answer && !(answer = cmv_formats__new_message("user"))) {
						cJSON_Delete(r);
						error = cmv_error__oom();
						break;
					}
					cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(answer, "content"), r);
					continue;
				}
				if (strcmp(cmv_formats__btype(b), "tool_use"))
					continue;
				const char *id = cmv_formats__cj_str(b, "id") ? cmv_formats__cj_str(b, "id") : "";
				ssize_t k = map_find(&calls, id);
				cJSON *r = k >= 0 ? calls.results[k] : NULL;
				if (k >= 0)
					calls.results[k] = NULL;
				if (!r) {
					/* never answered (interrupted, aborted, cut by a compaction) */
					r = cJSON_CreateObject();
					if (!r || !cJSON_AddStringToObject(r, "type", "tool_result") ||
					    !cJSON_AddStringToObject(r, "tool_use_id", id) ||
					    !cJSON_AddStringToObject(r, "content", CMV_NO_RESULT_TEXT) ||
					    !cJSON_AddTrueToObject(r, "is_error")) {
						cJSON_Delete(r);
						error = cmv_error__oom();
						break;
					}
					st->answered_calls++;
				}
				if (!answer && !(answer = cmv_formats__new_message("user"))) {
					cJSON_Delete(r);
					error = cmv_error__oom();
					break;
				}
				cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(answer, "content"), r);
			}
		}
		if (!error)
			error = push_message(out, m);
		else
			cJSON_Delete(m);
		if (answer) {
			if (!error)
				error = push_message(out, answer);
			else
				cJSON_Delete(answer);
		}
	}
	/* 3. Anthropic and Gemini want a user message first */
	if (!error && out->child && strcmp(cmv_formats__cj_str(out->child, "role"), "user") &&
	    (t == CMV_RENDER_ANTHROPIC || t == CMV_RENDER_GEMINI)) {
		cJSON *m = cmv_formats__new_message("user"), *tb = cmv_formats__text_block("(continued)");
		if (!m || !tb) {
			cJSON_Delete(m);
			cJSON_Delete(tb);
			error = cmv_error__oom();
		} else {
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(m, "content"), tb);
			cJSON_InsertItemInArray(out, 0, m);
		}
	}
	map_free(&calls);
	map_free(&items);
	cJSON_Delete(aliases);
	cmv_buf_dispose(&text);
	if (error) {
		cJSON_Delete(out);
		return error == CMV_ENOMEM ? cmv_error__oom() : error;
	}
	*out_msgs = out;
	return 0;
}

