/* SPDX-License-Identifier: MIT */
/*
 * Rendering a branch as a provider request body.
 *
 * 1. Read: walk the branch from the root; rebuild each record from its
 *    template and let its format read it into the neutral conversation
 *    (neutral.h). Records with no template (cmv JSONL, appended nodes) are
 *    read from their blocks. A compaction resets what came before.
 * 2. Repair, for every provider alike: drop what the target cannot replay,
 *    move each tool result to the message right after its call (results
 *    first), answer calls that never got a result with an error result,
 *    keep results with no call as text, merge same-role neighbours, drop
 *    empty messages.
 * 3. Write the provider's shape, adding its decorations (never stored).
 */
#include "neutral.h"

/* ---- the neutral conversation --------------------------------------------- */

cJSON *conv_msg(conv *c, const char *role, const char *group)
{
	cJSON *m = cJSON_CreateObject(), *content;

	if (!m || !cJSON_AddStringToObject(m, "role", role) || !(content = cJSON_AddArrayToObject(m, "content")) ||
	    (group && !cJSON_AddStringToObject(m, "group", group)) ||
	    (c->node && !cJSON_AddStringToObject(m, "node", c->node)) || !cJSON_AddItemToArray(c->messages, m)) {
		cJSON_Delete(m);
		c->oom = true;
		return NULL;
	}
	return content;
}

static bool only_results(const cJSON *m)
{
	const cJSON *content = cj_get(m, "content");
	if (!content || !content->child)
		return false;
	for (const cJSON *b = content->child; b; b = b->next)
		if (!cj_str(b, "type") || strcmp(cj_str(b, "type"), "tool_result"))
			return false;
	return true;
}

cJSON *conv_msg_join(conv *c, const char *role, const char *group)
{
	/*
	 * A message spread over several records (Claude Code writes a block a
	 * line, with the results of parallel calls in between) is joined back
	 * by its group; otherwise only to a last message of the same role.
	 */
	for (cJSON *m = c->messages->child ? c->messages->child->prev : NULL; m; m = m == c->messages->child ? NULL : m->prev) {
		const char *r = cj_str(m, "role"), *g = cj_str(m, "group");
		if (r && !strcmp(r, role) && (!group || !*group ? !g || !*g : g && !strcmp(g, group)))
			return cJSON_GetObjectItemCaseSensitive(m, "content");
		if (!group || !*group || !r || strcmp(r, "user") || !only_results(m))
			break;
	}
	return conv_msg(c, role, group);
}

void conv_system(conv *c, const char *text)
{
	cJSON *s = cJSON_CreateString(text);
	if (!s || !cJSON_AddItemToArray(c->system, s)) {
		cJSON_Delete(s);
		c->oom = true;
	}
}

void conv_reset(conv *c)
{
	while (!c->keep_all && c->messages->child)
		cJSON_DeleteItemFromArray(c->messages, 0);
	c->resets++;
}

static cJSON *new_block(conv *c, cJSON *content, const char *type)
{
	cJSON *b;
	if (!content)
		return NULL;
	if (!(b = cJSON_CreateObject()) || !cJSON_AddStringToObject(b, "type", type) || !cJSON_AddItemToArray(content, b)) {
		cJSON_Delete(b);
		c->oom = true;
		return NULL;
	}
	return b;
}

static void add_str(conv *c, cJSON *o, const char *k, const char *v)
{
	if (o && !cJSON_AddStringToObject(o, k, v ? v : ""))
		c->oom = true;
}

static void add_dup(conv *c, cJSON *o, const char *k, const cJSON *v)
{
	cJSON *d;
	if (!o)
		return;
	if (!(d = cJSON_Duplicate(v, 1)) || !cJSON_AddItemToObject(o, k, d)) {
		cJSON_Delete(d);
		c->oom = true;
	}
}

void nb_text(conv *c, cJSON *content, const char *text)
{
	add_str(c, new_block(c, content, "text"), "text", text);
}

void nb_copy(conv *c, cJSON *content, const cJSON *block)
{
	cJSON *d;
	if (!content)
		return;
	if (!(d = cJSON_Duplicate(block, 1)) || !cJSON_AddItemToArray(content, d)) {
		cJSON_Delete(d);
		c->oom = true;
	}
}

void nb_tool_use(conv *c, cJSON *content, const char *id, const char *name, const cJSON *input,
		 const char *args_json, bool custom)
{
	cJSON *b = new_block(c, content, "tool_use");
	add_str(c, b, "id", id);
	add_str(c, b, "name", name);
	if (input && cJSON_IsObject(input)) {
		add_dup(c, b, "input", input);
	} else {
		cJSON *parsed = args_json ? cJSON_Parse(args_json) : NULL;
		if (!cJSON_IsObject(parsed)) {
			/* not an object: keep the text whole, under one key */
			cJSON_Delete(parsed);
			parsed = cJSON_CreateObject();
			if (parsed && input && !cJSON_IsObject(input))
				add_dup(c, parsed, "input", input);
			else if (parsed)
				add_str(c, parsed, "input", args_json);
		}
		if (!parsed || !b || !cJSON_AddItemToObject(b, "input", parsed)) {
			cJSON_Delete(parsed);
			c->oom = true; /* a NULL block means an allocation already failed */
		}
	}
	if (custom && b && !cJSON_AddTrueToObject(b, "custom"))
		c->oom = true;
}

void nb_tool_result(conv *c, cJSON *content, const char *id, const cJSON *result, const char *text,
		    bool is_error)
{
	cJSON *b = new_block(c, content, "tool_result");
	add_str(c, b, "tool_use_id", id);
	if (result)
		add_dup(c, b, "content", result);
	else
		add_str(c, b, "content", text);
	if (is_error && b && !cJSON_AddTrueToObject(b, "is_error"))
		c->oom = true;
}

void nb_reasoning(conv *c, cJSON *content, const cJSON *item)
{
	cJSON *b = new_block(c, content, "reasoning");
	if (cj_str(item, "id"))
		add_str(c, b, "id", cj_str(item, "id"));
	if (cJSON_IsArray(cj_get(item, "summary")))
		add_dup(c, b, "summary", cj_get(item, "summary"));
	else if (b && !cJSON_AddArrayToObject(b, "summary"))
		c->oom = true;
	if (cj_str(item, "encrypted_content"))
		add_str(c, b, "encrypted_content", cj_str(item, "encrypted_content"));
}

void nb_image_b64(conv *c, cJSON *content, const char *media_type, const char *data)
{
	cJSON *b = new_block(c, content, "image"), *src = b ? cJSON_AddObjectToObject(b, "source") : NULL;
	if (b && !src)
		c->oom = true;
	add_str(c, src, "type", "base64");
	add_str(c, src, "media_type", media_type);
	add_str(c, src, "data", data);
}

/* ---- reading a branch ------------------------------------------------------- */

static neutral_fn reader_for(const char *format)
{
	static const struct {
		const char *name;
		neutral_fn fn;
	} readers[] = {
		{ "claude-code", cmv__cc_neutral },
		{ "codex", cmv__codex_neutral },
		{ "copilot-cli", cmv__copilot_neutral },
		{ "gemini-cli", cmv__gemini_cli_neutral },
		{ "swe-agent", cmv__swe_agent_neutral },
		{ "openhands", cmv__openhands_neutral },
		{ "anthropic", cmv__anthropic_neutral },
		{ "openai-chat", cmv__openai_chat_neutral },
		{ "openai-responses", cmv__openai_responses_neutral },
		{ "gemini", cmv__gemini_neutral },
	};
	for (size_t i = 0; i < sizeof(readers) / sizeof(*readers); i++)
		if (!strcmp(readers[i].name, format))
			return readers[i].fn;
	return NULL;
}

/* A node with no template (cmv JSONL, an appended message): read its blocks. */
static int node_neutral(conv *c, cmv_repo *repo, const cmv_node *n, cmv_buf *blob)
{
	cJSON *content = NULL;
	int error;

	if (n->kind == CMV_KIND_EVENT)
		return 0;
	if (n->role == CMV_ROLE_SYSTEM) {
		for (size_t i = 0; i < n->n_blocks; i++)
			if (!strcmp(n->blocks[i].type, "text")) {
				if ((error = cmv_blob_read(blob, repo, &n->blocks[i].blob)) < 0)
					return error;
				conv_system(c, blob->ptr);
			}
		return 0;
	}
	bool asst = n->role == CMV_ROLE_ASSISTANT;
	content = asst ? conv_msg_join(c, "assistant", NULL) : n->role == CMV_ROLE_TOOL ? conv_msg_join(c, "user", NULL)
								      : conv_msg(c, "user", NULL);
	for (size_t i = 0; i < n->n_blocks && content; i++) {
		const cmv_block *b = &n->blocks[i];
		if ((error = cmv_blob_read(blob, repo, &b->blob)) < 0)
			return error;
		if (!strcmp(b->type, "text")) {
			nb_text(c, content, blob->ptr);
		} else if (!strcmp(b->type, "tool_use")) {
			nb_tool_use(c, content, b->tool_id, b->tool_name, NULL, blob->ptr,
				    b->media_type && !strcmp(b->media_type, "text/plain"));
		} else if (!strcmp(b->type, "tool_result")) {
			cJSON *blocks = b->media_type && strstr(b->media_type, "json") ? cJSON_Parse(blob->ptr) : NULL;
			nb_tool_result(c, content, b->tool_id, cJSON_IsArray(blocks) ? blocks : NULL,
				       cJSON_IsArray(blocks) ? NULL : blob->ptr, b->flags & CMV_BLOCK_ERROR);
			cJSON_Delete(blocks);
		} else if (!strcmp(b->type, "image") && b->media_type && !strncmp(b->media_type, "image/", 6)) {
			nb_image_b64(c, content, b->media_type, blob->ptr);
		}
		/* thinking without a signature cannot be replayed; other types are not model content */
	}
	return c->oom ? CMV_ENOMEM : 0;
}

/* What reading records keeps between them: buffers, and a JSON document's header waiting for its trailer. */
typedef struct {
	cmv_buf rec, blob, header;
	const char *header_format;
	bool strict; /* a record that is not JSON alone is an error (a range read cannot see its document) */
} load_state;

#define LOAD_STATE_INIT { CMV_BUF_INIT(SESSION_MAX_BYTES), CMV_BUF_INIT(CMV_BUF_CONTENT), \
			  CMV_BUF_INIT(SESSION_MAX_BYTES), NULL, false }

static void load_state_dispose(load_state *ls)
{
	cmv_buf_dispose(&ls->rec);
	cmv_buf_dispose(&ls->blob);
	cmv_buf_dispose(&ls->header);
}

static int load_node(conv *c, cmv_render_stats *st, load_state *ls, cmv_repo *repo, const cmv_node *n)
{
	char hex[CMV_ID_HEXSZ + 1];
	const char *format;
	int error;

	cmv_id_tostr(hex, sizeof(hex), &n->id);
	c->node = hex;
	st->records++;
	error = session_record_bytes(&ls->rec, &format, repo, n, false);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = node_neutral(c, repo, n, &ls->blob);
		c->node = NULL;
		return error < 0 ? error : 0;
	}
	if (error < 0)
		goto out;
	cJSON *j = cJSON_ParseWithLength(ls->rec.ptr, ls->rec.size);
	if (!j) {
		if (ls->strict) {
			error = cmv_error__set(CMV_ENOTFOUND, "record %s is part of a document", hex);
			goto out;
		}
		/*
		 * Not JSON alone: the header or the trailer of a JSON
		 * document (or a line a lenient import kept). Header and
		 * trailer together are the body without its records.
		 */
		if (ls->header_format && !strcmp(ls->header_format, format)) {
			if ((error = cmv_buf_put(&ls->header, ls->rec.ptr, ls->rec.size)) < 0)
				goto out;
			cJSON *doc = cJSON_ParseWithLength(ls->header.ptr, ls->header.size);
			if (doc)
				cmv__skeleton_neutral(c, format, doc);
			cJSON_Delete(doc);
			ls->header_format = NULL;
		} else if (n->kind == CMV_KIND_EVENT && n->n_blocks == 0) {
			if ((error = cmv_buf_set(&ls->header, ls->rec.ptr, ls->rec.size)) < 0)
				goto out;
			ls->header_format = format;
		}
		goto out;
	}
	neutral_fn fn = reader_for(format);
	if (fn)
		error = fn(c, j);
	cJSON_Delete(j);
	if (!error && c->oom)
		error = cmv_error__oom();
out:
	c->node = NULL;
	return error < 0 ? error : 0;
}

static int load_conversation(conv *c, cmv_render_stats *st, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	load_state ls = LOAD_STATE_INIT;
	int error;

	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, walk)) == 0)
		if ((error = load_node(c, st, &ls, repo, n)) < 0)
			break;
	if (error == CMV_ITEROVER)
		error = 0;
	cmv_walk_free(walk);
	load_state_dispose(&ls);
	return error;
}

/* ---- repair ------------------------------------------------------------------- */

static const char *btype(const cJSON *b)
{
	const char *t = cj_str(b, "type");
	return t ? t : "";
}

static bool has_text(const char *s)
{
	for (; s && *s; s++)
		if (!strchr(" \t\r\n", *s))
			return true;
	return false;
}

/* Whether a block can go to this target in a message of this role. */
static bool keep_block(cmv_render_target t, const cJSON *b, bool asst, cmv_render_stats *st)
{
	const char *type = btype(b);

	if (!strcmp(type, "text"))
		return has_text(cj_str(b, "text"));
	if (!strcmp(type, "tool_use"))
		return asst;
	if (!strcmp(type, "tool_result"))
		return !asst;
	if (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking") || !strcmp(type, "reasoning")) {
		bool ok = false;
		if (t == CMV_RENDER_ANTHROPIC && asst && !strcmp(type, "thinking"))
			ok = has_text(cj_str(b, "signature"));
		else if (t == CMV_RENDER_ANTHROPIC && asst && !strcmp(type, "redacted_thinking"))
			ok = has_text(cj_str(b, "data"));
		else if (t == CMV_RENDER_OPENAI_RESPONSES && asst && !strcmp(type, "reasoning"))
			/* stateless replay needs the encrypted content; the samples' is redacted upstream */
			ok = has_text(cj_str(b, "encrypted_content")) && strcmp(cj_str(b, "encrypted_content"), "REDACTED");
		st->dropped_thinking += !ok;
		return ok;
	}
	if (!strcmp(type, "image") && !asst)
		return true;
	st->dropped_other++;
	return false;
}

/* A result's content as plain text (for orphans, and providers that take only text). */
void cmv__result_text(cmv_buf *out, const cJSON *content)
{
	cmv_buf_clear(out);
	if (cJSON_IsString(content)) {
		cmv_buf_puts(out, content->valuestring);
		return;
	}
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		if (out->size)
			cmv_buf_puts(out, "\n");
		if (cj_str(b, "text"))
			cmv_buf_puts(out, cj_str(b, "text"));
		else if (!strcmp(btype(b), "image"))
			cmv_buf_puts(out, "[image]");
	}
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
			return CMV_ENOMEM;
		m->ids = a;
		cJSON **r = cmv__realloc(m->results, ncap * sizeof(*r));
		if (!r)
			return CMV_ENOMEM;
		m->results = r;
		m->cap = ncap;
	}
	if (!(m->ids[m->n] = cmv__strdup(id)))
		return CMV_ENOMEM;
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

static cJSON *text_block(const char *text)
{
	cJSON *b = cJSON_CreateObject();
	if (b && (!cJSON_AddStringToObject(b, "type", "text") || !cJSON_AddStringToObject(b, "text", text))) {
		cJSON_Delete(b);
		return NULL;
	}
	return b;
}

static cJSON *new_message(const char *role)
{
	cJSON *m = cJSON_CreateObject();
	if (m && (!cJSON_AddStringToObject(m, "role", role) || !cJSON_AddArrayToObject(m, "content"))) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* Append message m (taken) to out, merging it into a last message of the same role. */
static int push_message(cJSON *out, cJSON *m)
{
	cJSON *last = out->child ? out->child->prev : NULL;
	if (last && !strcmp(cj_str(last, "role"), cj_str(m, "role"))) {
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
static int repair(cJSON **out_msgs, conv *c, cmv_render_target t, cmv_render_stats *st)
{
	result_map calls = { 0 };
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
		bool asst = !strcmp(cj_str(m, "role"), "assistant");
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = content->child, *next; b && !error; b = next) {
			next = b->next;
			if (!keep_block(t, b, asst, st)) {
				cJSON_Delete(cJSON_DetachItemViaPointer(content, b));
				continue;
			}
			bool is_use = !strcmp(btype(b), "tool_use");
			const char *id = cj_str(b, is_use ? "id" : "tool_use_id");
			if (id && (is_use || !strcmp(btype(b), "tool_result"))) {
				/*
				 * An id used by an earlier call (replayed runs reuse
				 * them) gets a fresh one, and so does the result that
				 * follows it: providers want ids unique.
				 */
				const char *alias = cj_str(aliases, id);
				if (is_use && map_find(&calls, id) >= 0) {
					char fresh[512];
					snprintf(fresh, sizeof(fresh), "%.480s_%zu", id, ++renamed);
					st->renamed_calls++;
					cJSON_DeleteItemFromObjectCaseSensitive(aliases, id);
					if (!cJSON_AddStringToObject(aliases, id, fresh) ||
					    !cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(b, "id"), fresh))
						error = CMV_ENOMEM;
				} else if (!is_use && alias) {
					if (!cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(b, "tool_use_id"), alias))
						error = CMV_ENOMEM;
				}
				id = cj_str(b, is_use ? "id" : "tool_use_id");
			}
			if (is_use) {
				error = map_find(&calls, id ? id : "") < 0 ? map_add(&calls, id ? id : "") : 0;
			} else if (!strcmp(btype(b), "tool_result")) {
				ssize_t k = map_find(&calls, id ? id : "");
				if (k >= 0 && !calls.results[k]) {
					calls.results[k] = cJSON_DetachItemViaPointer(content, b);
				} else {
					/* no call before it (or answered already): keep what it said, as text */
					cmv_buf line = CMV_BUF_INIT(SESSION_MAX_BYTES);
					cJSON *tb = NULL;
					cmv__result_text(&text, cj_get(b, "content"));
					if (cmv_buf_printf(&line, "[tool result for %s]\n%s", id ? id : "?",
							   text.size ? text.ptr : "") < 0 ||
					    !(tb = text_block(line.ptr)))
						error = CMV_ENOMEM;
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
		bool asst = !strcmp(cj_str(m, "role"), "assistant");
		if (!content->child) {
			cJSON_Delete(m);
			continue;
		}
		cJSON *answer = NULL;
		if (asst) {
			for (cJSON *b = content->child; b && !error; b = b->next) {
				if (strcmp(btype(b), "tool_use"))
					continue;
				const char *id = cj_str(b, "id") ? cj_str(b, "id") : "";
				ssize_t k = map_find(&calls, id);
				cJSON *r = k >= 0 ? calls.results[k] : NULL;
				if (k >= 0)
					calls.results[k] = NULL;
				if (!r) {
					/* never answered (interrupted, aborted, cut by a compaction) */
					r = cJSON_CreateObject();
					if (!r || !cJSON_AddStringToObject(r, "type", "tool_result") ||
					    !cJSON_AddStringToObject(r, "tool_use_id", id) ||
					    !cJSON_AddStringToObject(r, "content", "[cmv: no result was recorded for this call]") ||
					    !cJSON_AddTrueToObject(r, "is_error")) {
						cJSON_Delete(r);
						error = CMV_ENOMEM;
						break;
					}
					st->answered_calls++;
				}
				if (!answer && !(answer = new_message("user"))) {
					cJSON_Delete(r);
					error = CMV_ENOMEM;
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
	if (!error && out->child && strcmp(cj_str(out->child, "role"), "user") &&
	    (t == CMV_RENDER_ANTHROPIC || t == CMV_RENDER_GEMINI)) {
		cJSON *m = new_message("user"), *tb = text_block("(continued)");
		if (!m || !tb) {
			cJSON_Delete(m);
			cJSON_Delete(tb);
			error = CMV_ENOMEM;
		} else {
			cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(m, "content"), tb);
			cJSON_InsertItemInArray(out, 0, m);
		}
	}
	map_free(&calls);
	cJSON_Delete(aliases);
	cmv_buf_dispose(&text);
	if (error) {
		cJSON_Delete(out);
		return error == CMV_ENOMEM ? cmv_error__oom() : error;
	}
	*out_msgs = out;
	return 0;
}

/* ---- writing each provider's shape -------------------------------------------- */

#define OOM_IF(x) do { if (!(x)) return CMV_ENOMEM; } while (0)

static void sanitize_id(cJSON *b, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key);
	if (!cJSON_IsString(v))
		return;
	for (char *p = v->valuestring; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			*p = '_';
	if (!*v->valuestring)
		cJSON_SetValuestring(v, "_");
}

static const char *joined_system(cmv_buf *out, const cJSON *system)
{
	cmv_buf_clear(out);
	for (const cJSON *s = system->child; s; s = s->next) {
		if (out->size)
			cmv_buf_puts(out, "\n\n");
		cmv_buf_puts(out, s->valuestring);
	}
	return out->size ? out->ptr : NULL;
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

static int write_anthropic(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags)
{
	bool deco = !(flags & CMV_RENDER_NO_DECORATIONS);
	if (system->child) {
		cJSON *sys = cJSON_AddArrayToObject(body, "system");
		OOM_IF(sys);
		for (const cJSON *s = system->child; s; s = s->next) {
			if (!has_text(s->valuestring))
				continue;
			cJSON *tb = text_block(s->valuestring);
			OOM_IF(tb && cJSON_AddItemToArray(sys, tb));
		}
		if (deco && sys->child)
			OOM_IF(cJSON_AddItemToObject(sys->child->prev, "cache_control", cache_marker()));
		if (!sys->child)
			cJSON_DeleteItemFromObjectCaseSensitive(body, "system");
	}
	for (cJSON *m = msgs->child; m; m = m->next) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = content->child; b; b = b->next) {
			/* stored markers are the source's; ours are added below */
			cJSON_DeleteItemFromObjectCaseSensitive(b, "cache_control");
			cJSON_DeleteItemFromObjectCaseSensitive(b, "custom");
			if (!strcmp(btype(b), "tool_use")) {
				sanitize_id(b, "id");
			} else if (!strcmp(btype(b), "tool_result")) {
				sanitize_id(b, "tool_use_id");
				cJSON *rc = cJSON_GetObjectItemCaseSensitive(b, "content");
				for (cJSON *x = cJSON_IsArray(rc) ? rc->child : NULL, *next; x; x = next) {
					next = x->next;
					cJSON_DeleteItemFromObjectCaseSensitive(x, "cache_control");
					if (strcmp(btype(x), "text") && strcmp(btype(x), "image") && strcmp(btype(x), "document"))
						cJSON_Delete(cJSON_DetachItemViaPointer(rc, x));
					else if (!strcmp(btype(x), "text") && !has_text(cj_str(x, "text")))
						cJSON_Delete(cJSON_DetachItemViaPointer(rc, x));
				}
			}
		}
	}
	if (deco && msgs->child) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(msgs->child->prev, "content"), *target = NULL;
		for (cJSON *b = content->child; b; b = b->next)
			if (strcmp(btype(b), "thinking") && strcmp(btype(b), "redacted_thinking"))
				target = b;
		if (target)
			OOM_IF(cJSON_AddItemToObject(target, "cache_control", cache_marker()));
	}
	OOM_IF(cJSON_AddItemToObject(body, "messages", cJSON_Duplicate(msgs, 1)));
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
	if (!v || !cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		return CMV_ENOMEM;
	}
	return 0;
}

static int write_openai_chat(cJSON *body, cJSON *msgs, const cJSON *system, cmv_buf *scratch)
{
	cJSON *out = cJSON_AddArrayToObject(body, "messages");
	OOM_IF(out);
	if (joined_system(scratch, system)) {
		cJSON *m = cJSON_CreateObject();
		OOM_IF(m && cJSON_AddItemToArray(out, m));
		OOM_IF(cJSON_AddStringToObject(m, "role", "system") && cJSON_AddStringToObject(m, "content", scratch->ptr));
	}
	for (const cJSON *m = msgs->child; m; m = m->next) {
		const cJSON *content = cj_get(m, "content");
		if (!strcmp(cj_str(m, "role"), "assistant")) {
			cJSON *o = cJSON_CreateObject(), *calls = NULL;
			OOM_IF(o && cJSON_AddItemToArray(out, o) && cJSON_AddStringToObject(o, "role", "assistant"));
			cmv_buf_clear(scratch);
			for (const cJSON *b = content->child; b; b = b->next) {
				if (!strcmp(btype(b), "text")) {
					if (scratch->size)
						cmv_buf_puts(scratch, "\n\n");
					cmv_buf_puts(scratch, cj_str(b, "text"));
				} else if (!strcmp(btype(b), "tool_use")) {
					cJSON *tc = cJSON_CreateObject(), *fn;
					if (!calls)
						OOM_IF(calls = cJSON_CreateArray());
					OOM_IF(tc && cJSON_AddItemToArray(calls, tc));
					OOM_IF(cJSON_AddStringToObject(tc, "id", cj_str(b, "id")) &&
					       cJSON_AddStringToObject(tc, "type", "function") &&
					       (fn = cJSON_AddObjectToObject(tc, "function")) &&
					       cJSON_AddStringToObject(fn, "name", cj_str(b, "name")));
					if (add_owned_string(fn, "arguments", json_text(cj_get(b, "input"))) < 0)
						return CMV_ENOMEM;
				}
			}
			if (scratch->size)
				OOM_IF(cJSON_AddStringToObject(o, "content", scratch->ptr));
			else
				OOM_IF(cJSON_AddNullToObject(o, "content"));
			if (calls)
				OOM_IF(cJSON_AddItemToObject(o, "tool_calls", calls));
			continue;
		}
		/* results first, as tool messages; then the rest as one user message */
		cJSON *parts = cJSON_CreateArray();
		OOM_IF(parts);
		for (const cJSON *b = content->child; b; b = b->next) {
			if (!strcmp(btype(b), "tool_result")) {
				cJSON *o = cJSON_CreateObject();
				cmv__result_text(scratch, cj_get(b, "content"));
				if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "role", "tool") ||
				    !cJSON_AddStringToObject(o, "tool_call_id", cj_str(b, "tool_use_id")) ||
				    !cJSON_AddStringToObject(o, "content", scratch->size ? scratch->ptr : "(empty)")) {
					cJSON_Delete(parts);
					return CMV_ENOMEM;
				}
			} else if (!strcmp(btype(b), "text")) {
				cJSON *p = cJSON_CreateObject();
				if (!p || !cJSON_AddItemToArray(parts, p) || !cJSON_AddStringToObject(p, "type", "text") ||
				    !cJSON_AddStringToObject(p, "text", cj_str(b, "text"))) {
					cJSON_Delete(parts);
					return CMV_ENOMEM;
				}
			} else if (!strcmp(btype(b), "image")) {
				const cJSON *src = cj_get(b, "source");
				cJSON *p = cJSON_CreateObject(), *iu;
				cmv_buf_clear(scratch);
				cmv_buf_printf(scratch, "data:%s;base64,%s", cj_str(src, "media_type") ? cj_str(src, "media_type") : "image/png",
					       cj_str(src, "data") ? cj_str(src, "data") : "");
				if (!p || !cJSON_AddItemToArray(parts, p) || !cJSON_AddStringToObject(p, "type", "image_url") ||
				    !(iu = cJSON_AddObjectToObject(p, "image_url")) || !cJSON_AddStringToObject(iu, "url", scratch->ptr)) {
					cJSON_Delete(parts);
					return CMV_ENOMEM;
				}
			}
		}
		if (parts->child) {
			cJSON *o = cJSON_CreateObject();
			if (!o || !cJSON_AddItemToArray(out, o) || !cJSON_AddStringToObject(o, "role", "user")) {
				cJSON_Delete(parts);
				return CMV_ENOMEM;
			}
			if (!parts->child->next && cj_str(parts->child, "text")) {
				OOM_IF(cJSON_AddStringToObject(o, "content", cj_str(parts->child, "text")));
				cJSON_Delete(parts);
			} else {
				OOM_IF(cJSON_AddItemToObject(o, "content", parts));
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

static int write_openai_responses(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags, cmv_buf *scratch)
{
	cJSON *out, *custom_ids = cJSON_CreateObject();
	bool any_reasoning = false;
	int error = CMV_ENOMEM;

	OOM_IF(custom_ids);
	if (joined_system(scratch, system) && !cJSON_AddStringToObject(body, "instructions", scratch->ptr))
		goto done;
	if (!(out = cJSON_AddArrayToObject(body, "input")))
		goto done;
	for (const cJSON *m = msgs->child; m; m = m->next) {
		bool asst = !strcmp(cj_str(m, "role"), "assistant");
		cJSON *parts = NULL; /* the open message item's content */
		const cJSON *pending = NULL; /* a reasoning item waits for the item it produced */
		for (const cJSON *b = cj_get(m, "content")->child; b; b = b->next) {
			const char *t = btype(b);
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
					    !cJSON_AddStringToObject(o, "text", cj_str(b, "text")))
						goto done;
				} else {
					const cJSON *src = cj_get(b, "source");
					cmv_buf_clear(scratch);
					cmv_buf_printf(scratch, "data:%s;base64,%s",
						       cj_str(src, "media_type") ? cj_str(src, "media_type") : "image/png",
						       cj_str(src, "data") ? cj_str(src, "data") : "");
					if (!cJSON_AddStringToObject(o, "type", "input_image") ||
					    !cJSON_AddStringToObject(o, "image_url", scratch->ptr))
						goto done;
				}
				continue;
			}
			parts = NULL;
			if (!(o = cJSON_CreateObject()) || !cJSON_AddItemToArray(out, o))
				goto done;
			if (!strcmp(t, "tool_use")) {
				bool custom = cJSON_IsTrue(cj_get(b, "custom"));
				const cJSON *in = cj_get(b, "input");
				if (!cJSON_AddStringToObject(o, "type", custom ? "custom_tool_call" : "function_call") ||
				    !cJSON_AddStringToObject(o, "call_id", cj_str(b, "id")) ||
				    !cJSON_AddStringToObject(o, "name", cj_str(b, "name")))
					goto done;
				if (custom) {
					if (!cJSON_AddStringToObject(o, "input", cj_str(in, "input") ? cj_str(in, "input") : "") ||
					    !cJSON_AddTrueToObject(custom_ids, cj_str(b, "id")))
						goto done;
				} else if (add_owned_string(o, "arguments", json_text(in)) < 0) {
					goto done;
				}
			} else if (!strcmp(t, "tool_result")) {
				bool custom = cj_get(custom_ids, cj_str(b, "tool_use_id")) != NULL;
				cmv__result_text(scratch, cj_get(b, "content"));
				if (!cJSON_AddStringToObject(o, "type", custom ? "custom_tool_call_output" : "function_call_output") ||
				    !cJSON_AddStringToObject(o, "call_id", cj_str(b, "tool_use_id")) ||
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

static int write_gemini(cJSON *body, cJSON *msgs, const cJSON *system, unsigned flags)
{
	bool deco = !(flags & CMV_RENDER_NO_DECORATIONS);
	cJSON *names = cJSON_CreateObject(), *contents;
	int error = CMV_ENOMEM;

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
		bool asst = !strcmp(cj_str(m, "role"), "assistant"), first_call = true;
		cJSON *o = cJSON_CreateObject(), *parts;
		if (!o || !cJSON_AddItemToArray(contents, o) || !cJSON_AddStringToObject(o, "role", asst ? "model" : "user") ||
		    !(parts = cJSON_AddArrayToObject(o, "parts")))
			goto done;
		/* function responses first: the turn answers the calls before it, in order */
		for (int pass = 0; pass < 2; pass++)
			for (const cJSON *b = cj_get(m, "content")->child; b; b = b->next) {
				const char *t = btype(b);
				bool is_result = !strcmp(t, "tool_result");
				if ((pass == 0) != is_result)
					continue;
				cJSON *p = cJSON_CreateObject();
				if (!p || !cJSON_AddItemToArray(parts, p))
					goto done;
				if (!strcmp(t, "text")) {
					if (!cJSON_AddStringToObject(p, "text", cj_str(b, "text")))
						goto done;
				} else if (!strcmp(t, "image")) {
					const cJSON *src = cj_get(b, "source");
					cJSON *d = cJSON_AddObjectToObject(p, "inlineData");
					if (!d || !cJSON_AddStringToObject(d, "mimeType", cj_str(src, "media_type") ? cj_str(src, "media_type") : "image/png") ||
					    !cJSON_AddStringToObject(d, "data", cj_str(src, "data") ? cj_str(src, "data") : ""))
						goto done;
				} else if (!strcmp(t, "tool_use")) {
					cJSON *fc = cJSON_AddObjectToObject(p, "functionCall");
					if (!fc || !cJSON_AddStringToObject(fc, "id", cj_str(b, "id")) ||
					    !cJSON_AddStringToObject(fc, "name", cj_str(b, "name")) ||
					    !cJSON_AddItemToObject(fc, "args", cJSON_Duplicate(cj_get(b, "input"), 1)))
						goto done;
					if (!cj_get(names, cj_str(b, "id")) &&
					    !cJSON_AddStringToObject(names, cj_str(b, "id"), cj_str(b, "name")))
						goto done;
					/* Gemini 3 wants a signature on each step's first call; history from elsewhere has none */
					if (deco && first_call &&
					    !cJSON_AddStringToObject(p, "thoughtSignature", "skip_thought_signature_validator"))
						goto done;
					first_call = false;
				} else if (is_result) {
					const char *id = cj_str(b, "tool_use_id");
					const char *name = cj_str(names, id);
					cJSON *fr = cJSON_AddObjectToObject(p, "functionResponse"), *resp;
					cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
					cmv__result_text(&text, cj_get(b, "content"));
					bool ok = fr && cJSON_AddStringToObject(fr, "id", id) &&
						  cJSON_AddStringToObject(fr, "name", name ? name : "tool") &&
						  (resp = cJSON_AddObjectToObject(fr, "response")) &&
						  cJSON_AddStringToObject(resp, cJSON_IsTrue(cj_get(b, "is_error")) ? "error" : "output",
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

/* ---- the entry points ------------------------------------------------------------ */

static const char *const target_names[] = { NULL, "anthropic", "openai-chat", "openai-responses", "gemini" };

const char *cmv_render_target_name(cmv_render_target target)
{
	return target >= CMV_RENDER_ANTHROPIC && target <= CMV_RENDER_GEMINI ? target_names[target] : "unknown";
}

int cmv_render_target_parse(cmv_render_target *out, const char *name)
{
	for (int t = CMV_RENDER_ANTHROPIC; t <= CMV_RENDER_GEMINI; t++)
		if (name && !strcmp(name, target_names[t])) {
			*out = (cmv_render_target)t;
			return 0;
		}
	return cmv_error__set(CMV_EINVALID, "unknown provider format '%s' (anthropic, openai-chat, openai-responses, gemini)",
			      name ? name : "");
}

/*
 * Repair, noting first the role of the first message as the records said
 * it (repair takes them over), and after it the record each message began
 * at.
 */
static int repair_noting_records(cmv__conversation *cv, cmv_render_target target)
{
	const cJSON *first = cJSON_GetArrayItem(cv->c.messages, 0);
	snprintf(cv->raw_first_role, sizeof(cv->raw_first_role), "%s", first ? cj_str(first, "role") : "");
	int error = repair(&cv->msgs, &cv->c, target, &cv->st);
	if (error < 0)
		return error;
	if (!(cv->nodes = cJSON_CreateArray()))
		return cmv_error__oom();
	for (cJSON *m = cv->msgs->child; m; m = m->next) {
		cJSON *n = cJSON_DetachItemFromObjectCaseSensitive(m, "node");
		if (!n && !(n = cJSON_CreateNull()))
			return cmv_error__oom();
		cJSON_AddItemToArray(cv->nodes, n);
	}
	return 0;
}

int cmv__conversation_load(cmv__conversation *cv, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
			   unsigned int flags)
{
	int error;

	memset(cv, 0, sizeof(*cv));
	cv->target = target;
	if (target < CMV_RENDER_ANTHROPIC || target > CMV_RENDER_GEMINI)
		return cmv_error__set(CMV_EINVALID, "unknown render target %d", (int)target);
	cv->c.keep_all = flags & CMV_RENDER_FULL_HISTORY;
	if (!(cv->c.system = cJSON_CreateArray()) || !(cv->c.messages = cJSON_CreateArray())) {
		cmv__conversation_dispose(cv);
		return cmv_error__oom();
	}
	if ((error = load_conversation(&cv->c, &cv->st, repo, tip)) < 0 ||
	    (error = repair_noting_records(cv, target)) < 0) {
		cmv__conversation_dispose(cv);
		return error;
	}
	cv->st.compactions = cv->c.resets;
	cv->st.messages = (size_t)cJSON_GetArraySize(cv->msgs);
	return 0;
}

int cmv__conversation_load_since(cmv__conversation *cv, cmv_repo *repo, const cmv_id *first, const cmv_id *tip,
				 cmv_render_target target, unsigned int flags, size_t max_records)
{
	cmv_node **nodes = NULL;
	size_t n = 0;
	load_state ls = LOAD_STATE_INIT;
	cmv_id cur = *tip;
	int error = 0;

	memset(cv, 0, sizeof(*cv));
	cv->target = target;
	if (target < CMV_RENDER_ANTHROPIC || target > CMV_RENDER_GEMINI)
		return cmv_error__set(CMV_EINVALID, "unknown render target %d", (int)target);
	if (!(nodes = cmv__calloc(max_records + 1, sizeof(*nodes))))
		return CMV_ENOMEM;
	/* up from the tip to the first: an ancestor within reach, or this is no range */
	for (bool reached = false; !reached;) {
		if (n == max_records || cmv_id_is_none(&cur)) {
			error = cmv_error__set(CMV_ENOTFOUND, "the first record is not within %zu of the tip", max_records);
			goto out;
		}
		if ((error = cmv_node_read(&nodes[n], repo, &cur)) < 0)
			goto out;
		reached = cmv_id_equal(&cur, first);
		cur = nodes[n++]->parent;
	}
	cv->c.keep_all = flags & CMV_RENDER_FULL_HISTORY;
	if (!(cv->c.system = cJSON_CreateArray()) || !(cv->c.messages = cJSON_CreateArray())) {
		error = cmv_error__oom();
		goto out;
	}
	ls.strict = true;
	while (n > 0 && !error) {
		error = load_node(&cv->c, &cv->st, &ls, repo, nodes[n - 1]);
		cmv_node_free(nodes[--n]);
		nodes[n] = NULL;
	}
	if (!error && (cv->c.resets || cJSON_GetArraySize(cv->c.system)))
		error = cmv_error__set(CMV_ENOTFOUND, "the records reset the conversation or add a system prompt");
	if (!error)
		error = repair_noting_records(cv, target);
	if (!error)
		cv->st.messages = (size_t)cJSON_GetArraySize(cv->msgs);
out:
	for (size_t i = 0; i < n; i++)
		cmv_node_free(nodes[i]);
	free(nodes);
	load_state_dispose(&ls);
	if (error < 0)
		cmv__conversation_dispose(cv);
	return error;
}

int cmv__conv_load_raw(conv *c, cmv_render_stats *st, cmv_repo *repo, const cmv_id *tip, unsigned int flags)
{
	int error;

	memset(c, 0, sizeof(*c));
	memset(st, 0, sizeof(*st));
	c->keep_all = flags & CMV_RENDER_FULL_HISTORY;
	if (!(c->system = cJSON_CreateArray()) || !(c->messages = cJSON_CreateArray())) {
		cmv__conv_dispose(c);
		return cmv_error__oom();
	}
	if ((error = load_conversation(c, st, repo, tip)) < 0)
		cmv__conv_dispose(c);
	return error;
}

void cmv__conv_dispose(conv *c)
{
	cJSON_Delete(c->system);
	cJSON_Delete(c->messages);
	memset(c, 0, sizeof(*c));
}

int cmv__conversation_from_raw(cmv__conversation *cv, const conv *raw, size_t from, const char *lead,
			       cmv_render_target target)
{
	int error;
	size_t i = 0;

	memset(cv, 0, sizeof(*cv));
	cv->target = target;
	if (!(cv->c.system = cJSON_Duplicate(raw->system, 1)) || !(cv->c.messages = cJSON_CreateArray()))
		goto oom;
	if (lead) {
		cJSON *m = new_message("user"), *tb = text_block(lead);
		if (!m || !tb) {
			cJSON_Delete(m);
			cJSON_Delete(tb);
			goto oom;
		}
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(m, "content"), tb);
		cJSON_AddItemToArray(cv->c.messages, m);
	}
	for (const cJSON *m = raw->messages->child; m; m = m->next, i++)
		if (i >= from && !cJSON_AddItemToArray(cv->c.messages, cJSON_Duplicate(m, 1)))
			goto oom;
	if ((error = repair_noting_records(cv, target)) < 0) {
		cmv__conversation_dispose(cv);
		return error;
	}
	cv->st.messages = (size_t)cJSON_GetArraySize(cv->msgs);
	return 0;
oom:
	cmv__conversation_dispose(cv);
	return cmv_error__oom();
}

/* An image block as a line of text, in a message or inside a result's content. */
static int images_as_text(cJSON *arr)
{
	char line[160];
	for (cJSON *b = cJSON_IsArray(arr) ? arr->child : NULL; b; b = b->next) {
		if (!strcmp(btype(b), "image")) {
			const char *mt = cj_str(cj_get(b, "source"), "media_type");
			snprintf(line, sizeof(line), "[an image%s%s was here; this model takes no image input]", mt ? ", " : "",
				 mt ? mt : "");
			cJSON *tb = text_block(line);
			if (!tb)
				return CMV_ENOMEM;
			cJSON_ReplaceItemViaPointer(arr, b, tb);
			b = tb;
		} else if (!strcmp(btype(b), "tool_result") && images_as_text(cJSON_GetObjectItemCaseSensitive(b, "content")) < 0) {
			return CMV_ENOMEM;
		}
	}
	return 0;
}

/*
 * For a model without native tool calling: each call and each result
 * becomes text in its message, so the request stays valid and nothing of
 * what was said is lost.
 */
static int tools_as_text(cJSON *msgs)
{
	cmv_buf line = CMV_BUF_INIT(SESSION_MAX_BYTES), text = CMV_BUF_INIT(SESSION_MAX_BYTES);
	int error = 0;

	for (cJSON *m = msgs->child; m && !error; m = m->next) {
		cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
			bool use = !strcmp(btype(b), "tool_use"), res = !strcmp(btype(b), "tool_result");
			if (!use && !res)
				continue;
			cmv_buf_clear(&line);
			if (use) {
				char *in = cJSON_PrintUnformatted(cj_get(b, "input"));
				error = cmv_buf_printf(&line, "[tool call %s, id %s]\n%s", cj_str(b, "name") ? cj_str(b, "name") : "?",
						       cj_str(b, "id") ? cj_str(b, "id") : "?", in ? in : "{}");
				cJSON_free(in);
			} else {
				cmv__result_text(&text, cj_get(b, "content"));
				error = cmv_buf_printf(&line, "[tool result for %s%s]\n%s",
						       cj_str(b, "tool_use_id") ? cj_str(b, "tool_use_id") : "?",
						       cJSON_IsTrue(cj_get(b, "is_error")) ? ", an error" : "",
						       text.size ? text.ptr : "");
			}
			cJSON *tb = error ? NULL : text_block(line.ptr);
			if (!tb) {
				error = CMV_ENOMEM;
				break;
			}
			cJSON_ReplaceItemViaPointer(content, b, tb);
			b = tb;
		}
	}
	cmv_buf_dispose(&line);
	cmv_buf_dispose(&text);
	return error;
}

void cmv__conversation_dispose(cmv__conversation *cv)
{
	cJSON_Delete(cv->msgs);
	cJSON_Delete(cv->nodes);
	cJSON_Delete(cv->c.system);
	cJSON_Delete(cv->c.messages);
	memset(cv, 0, sizeof(*cv));
}

int cmv__conversation_write(cmv_buf *out, const cmv__conversation *cv, const cmv_render_options *opts)
{
	cmv_render_options defaults = CMV_RENDER_OPTIONS_INIT;
	cmv_buf scratch = CMV_BUF_INIT(SESSION_MAX_BYTES);
	cmv_render_target target = cv->target;
	cJSON *body = NULL, *msgs = NULL;
	char *text = NULL;
	int error;

	if (!opts)
		opts = &defaults;
	if (!cJSON_GetArraySize(cv->msgs))
		return cmv_error__set(CMV_EINVALID, "nothing to render: the conversation has no messages");
	/* the writers take the messages apart: they get a copy, the caller keeps its own */
	if (!(msgs = cJSON_Duplicate(cv->msgs, 1)) || !(body = cJSON_CreateObject()) ||
	    (opts->model && !cJSON_AddStringToObject(body, "model", opts->model)) ||
	    ((opts->flags & CMV_RENDER_TOOLS_AS_TEXT) && tools_as_text(msgs) < 0)) {
		error = cmv_error__oom();
		goto done;
	}
	for (cJSON *m = (opts->flags & CMV_RENDER_NO_IMAGES) ? msgs->child : NULL; m; m = m->next) {
		if (images_as_text(cJSON_GetObjectItemCaseSensitive(m, "content")) < 0) {
			error = cmv_error__oom();
			goto done;
		}
	}
	if (target == CMV_RENDER_ANTHROPIC) {
		if (!cJSON_AddNumberToObject(body, "max_tokens", opts->max_tokens ? opts->max_tokens : 4096)) {
			error = cmv_error__oom();
			goto done;
		}
		error = write_anthropic(body, msgs, cv->c.system, opts->flags);
	} else if (target == CMV_RENDER_OPENAI_CHAT) {
		error = write_openai_chat(body, msgs, cv->c.system, &scratch);
	} else if (target == CMV_RENDER_OPENAI_RESPONSES) {
		error = write_openai_responses(body, msgs, cv->c.system, opts->flags, &scratch);
	} else {
		error = write_gemini(body, msgs, cv->c.system, opts->flags);
	}
	if (error < 0) {
		error = cmv_error__oom();
		goto done;
	}
	if (!(text = (opts->flags & CMV_RENDER_PRETTY) ? cJSON_Print(body) : cJSON_PrintUnformatted(body))) {
		error = cmv_error__oom();
		goto done;
	}
	cmv_buf_clear(out);
	if ((error = cmv_buf_puts(out, text)) < 0 || (error = cmv_buf_puts(out, "\n")) < 0)
		goto done;
done:
	cJSON_free(text);
	cJSON_Delete(body);
	cJSON_Delete(msgs);
	cmv_buf_dispose(&scratch);
	return error;
}

int cmv_render(cmv_buf *out, cmv_render_stats *stats, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
	       const cmv_render_options *opts)
{
	cmv__conversation cv;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	if ((error = cmv__conversation_load(&cv, repo, tip, target, opts ? opts->flags : 0)) < 0)
		return error;
	if ((error = cmv__conversation_write(out, &cv, opts)) == 0 && stats)
		*stats = cv.st;
	cmv__conversation_dispose(&cv);
	return error;
}
