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

void cmv_render_options_init(cmv_render_options *opts)
{
	static const cmv_render_options init = CMV_RENDER_OPTIONS_INIT;
	*opts = init;
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
	cJSON *content = NULL, *meta = NULL;
	int error;

	if (n->kind == CMV_KIND_EVENT)
		return 0;
	if (n->role == CMV_ROLE_SYSTEM) {
		for (size_t i = 0; i < n->n_blocks; i++)
			if (!strcmp(n->blocks[i].type, "text")) {
				if ((error = cmv_blob_read(blob, repo, &n->blocks[i].blob)) < 0)
					return error;
				cmv_formats__conv_system(c, blob->ptr);
			}
		return 0;
	}
	bool asst = n->role == CMV_ROLE_ASSISTANT;
	content = asst ? cmv_formats__conv_msg_join(c, "assistant", NULL) : n->role == CMV_ROLE_TOOL ? cmv_formats__conv_msg_join(c, "user", NULL)
								      : cmv_formats__conv_msg(c, "user", NULL);
	for (size_t i = 0; i < n->n_blocks && content; i++) {
		const cmv_block *b = &n->blocks[i];
		if ((error = cmv_blob_read(blob, repo, &b->blob)) < 0) {
			cJSON_Delete(meta);
			return error;
		}
		if (!strcmp(b->type, "text")) {
			cmv_formats__nb_text(c, content, blob->ptr);
		} else if (!strcmp(b->type, "tool_use")) {
			/* a custom (freeform) tool's call: its input text, or {"input": TEXT} marked "custom" (host/reply.c) */
			char idx[32];
			snprintf(idx, sizeof(idx), "%zu", i);
			if (!meta && n->meta && n->meta_len)
				meta = cJSON_ParseWithLength(n->meta, n->meta_len);
			bool custom = (b->media_type && !strcmp(b->media_type, "text/plain")) ||
				      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
					      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "blocks"), idx),
					      "custom"));
			cmv_formats__nb_tool_use(c, content, b->tool_id, b->tool_name, NULL, blob->ptr, custom);
		} else if (!strcmp(b->type, "tool_result")) {
			cJSON *blocks = NULL;
			if (b->media_type && strstr(b->media_type, "json") &&
			    !(blocks = cmv_formats__jscan_parse(blob->ptr, blob->size, &error)) && error < 0) {
				cJSON_Delete(meta);
				return error;
			}
			cmv_formats__nb_tool_result(c, content, b->tool_id, cJSON_IsArray(blocks) ? blocks : NULL,
				       cJSON_IsArray(blocks) ? NULL : blob->ptr, b->flags & CMV_BLOCK_ERROR);
			cJSON_Delete(blocks);
		} else if (!strcmp(b->type, "image") && b->media_type && !strncmp(b->media_type, "image/", 6)) {
			cmv_formats__nb_image_b64(c, content, b->media_type, blob->ptr);
		} else if (!strcmp(b->type, "thinking") && asst) {
			/*
			 * Signed thinking (a host's or the proxy's reply keeps the
			 * signature in the node's meta, as cmv JSONL does) is
			 * replayed to its provider; the others drop or stub it
			 * (repair.c). Without a signature it cannot be replayed.
			 */
			char idx[32];
			snprintf(idx, sizeof(idx), "%zu", i);
			if (!meta && n->meta && n->meta_len)
				meta = cJSON_ParseWithLength(n->meta, n->meta_len);
			const char *sig = cmv_formats__cj_str(
				cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "blocks"), idx), "signature");
			cJSON *tb = sig && *sig ? cJSON_CreateObject() : NULL;
			if (tb && cJSON_AddStringToObject(tb, "type", "thinking") && cJSON_AddStringToObject(tb, "thinking", blob->ptr) &&
			    cJSON_AddStringToObject(tb, "signature", sig))
				cmv_formats__nb_copy(c, content, tb);
			else if (sig && *sig)
				c->oom = true;
			cJSON_Delete(tb);
		} else if (!strcmp(b->type, "openai_item")) {
			/* a Responses item kept whole (host/reply.c): the block as stored, sent as it is (neutral.h) */
			cJSON *ob = cmv_formats__jscan_parse(blob->ptr, blob->size, &error);
			if (error < 0) {
				cJSON_Delete(meta);
				return error;
			}
			/* a client's developer item (the proxy's): in place for the Responses API, else a system prompt, as an import's */
			if (cmv_formats__is_instruction_item(ob))
				cmv_formats__nb_instruction(c, content, cmv_formats__cj_get(ob, "item"));
			else if (cJSON_IsObject(cmv_formats__cj_get(ob, "item")))
				cmv_formats__nb_copy(c, content, ob);
			cJSON_Delete(ob);
		}
		/* other types are not model content */
	}
	cJSON_Delete(meta);
	return c->oom ? cmv_error__oom() : 0;
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
	error = cmv_formats__session_record_bytes(&ls->rec, &format, repo, n, false);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = node_neutral(c, repo, n, &ls->blob);
		c->node = NULL;
		return error < 0 ? error : 0;
	}
	if (error < 0)
		goto out;
	cJSON *j = cmv_formats__jscan_parse(ls->rec.ptr, ls->rec.size, &error);
	if (error < 0)
		goto out;
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
	snprintf(cv->raw_first_role, sizeof(cv->raw_first_role), "%s", first ? cmv_formats__cj_str(first, "role") : "");
	int error = cmv_formats__repair(&cv->msgs, &cv->c, target, &cv->st);
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
	cv->c.stub_thinking = flags & CMV_RENDER_STUB_THINKING;
	cv->c.stub_cleared = flags & CMV__RENDER_STUB_CLEARED;
	cv->c.developer_in_place = target == CMV_RENDER_OPENAI_RESPONSES;
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
		return cmv_error__oom();
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
	cv->c.stub_thinking = flags & CMV_RENDER_STUB_THINKING;
	cv->c.stub_cleared = flags & CMV__RENDER_STUB_CLEARED;
	cv->c.developer_in_place = target == CMV_RENDER_OPENAI_RESPONSES;
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
	c->stub_cleared = flags & CMV__RENDER_STUB_CLEARED;
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
		cJSON *m = cmv_formats__new_message("user"), *tb = cmv_formats__text_block(lead);
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
		if (!strcmp(cmv_formats__btype(b), "image")) {
			const char *mt = cmv_formats__cj_str(cmv_formats__cj_get(b, "source"), "media_type");
			snprintf(line, sizeof(line), "[an image%s%s was here; this model takes no image input]", mt ? ", " : "",
				 mt ? mt : "");
			cJSON *tb = cmv_formats__text_block(line);
			if (!tb)
				return cmv_error__oom();
			cJSON_ReplaceItemViaPointer(arr, b, tb);
			b = tb;
		} else if (!strcmp(cmv_formats__btype(b), "tool_result") && images_as_text(cJSON_GetObjectItemCaseSensitive(b, "content")) < 0) {
			return cmv_error__oom();
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
			bool use = !strcmp(cmv_formats__btype(b), "tool_use"), res = !strcmp(cmv_formats__btype(b), "tool_result"), out;
			const char *iid = cmv_formats__item_call_id(b, &out);
			if (!use && !res && !iid)
				continue;
			cmv_buf_clear(&line);
			if (iid) {
				/* an item only the Responses API takes (Codex's tool search), whole */
				const cJSON *item = cmv_formats__cj_get(b, "item");
				char *js = cJSON_PrintUnformatted(item);
				error = js ? (out ? cmv_buf_printf(&line, "[tool result for %s]\n%s", iid, js)
						  : cmv_buf_printf(&line, "[tool call %s, id %s]\n%s", cmv_formats__cj_str(item, "type"), iid, js))
					   : cmv_error__oom();
				cJSON_free(js);
			} else if (use) {
				char *in = cJSON_PrintUnformatted(cmv_formats__cj_get(b, "input"));
				error = cmv_buf_printf(&line, "[tool call %s, id %s]\n%s", cmv_formats__cj_str(b, "name") ? cmv_formats__cj_str(b, "name") : "?",
						       cmv_formats__cj_str(b, "id") ? cmv_formats__cj_str(b, "id") : "?", in ? in : "{}");
				cJSON_free(in);
			} else {
				if ((error = cmv__result_text(&text, cmv_formats__cj_get(b, "content"))) == 0)
					error = cmv_buf_printf(&line, "[tool result for %s%s]\n%s",
							       cmv_formats__cj_str(b, "tool_use_id") ? cmv_formats__cj_str(b, "tool_use_id") : "?",
							       cJSON_IsTrue(cmv_formats__cj_get(b, "is_error")) ? ", an error" : "",
							       text.size ? text.ptr : "");
			}
			cJSON *tb = error ? NULL : cmv_formats__text_block(line.ptr);
			if (!tb) {
				error = cmv_error__oom();
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
		error = cmv_formats__write_anthropic(body, msgs, cv->c.system, opts->flags);
	} else if (target == CMV_RENDER_OPENAI_CHAT) {
		error = cmv_formats__write_openai_chat(body, msgs, cv->c.system, &scratch);
	} else if (target == CMV_RENDER_OPENAI_RESPONSES) {
		error = cmv_formats__write_openai_responses(body, msgs, cv->c.system, opts->flags, &scratch);
	} else {
		error = cmv_formats__write_gemini(body, msgs, cv->c.system, opts->flags);
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

static int render_filled(cmv_buf *out, cmv_render_stats *stats, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
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

int cmv_render(cmv_buf *out, cmv_render_stats *stats, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
	       const cmv_render_options *opts)
{
	int error = render_filled(out, stats, repo, tip, target, opts);
	if (stats)
		stats->version = CMV_RENDER_STATS_VERSION;
	return error;
}

