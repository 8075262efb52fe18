/* SPDX-License-Identifier: MIT */
/*
 * Counting stored conversations in a model's tokens, through the store's
 * token cache. Raw tokenizer counts are cached (they do not depend on the
 * model); the model's factor and overheads are applied on top, per block,
 * so two models that share a tokenizer share the cache.
 */
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/count.h>
#include <cmv/formats.h>
#include "formats/formats_int.h"
#include "pager_priv.h"
#include "tok/tok_int.h"

/*
 * Texts this long are counted through the store's token cache (keyed by the
 * xxh128 of the bytes, as a blob's id is): a new process, a CLI call after
 * an append, does not tokenize the whole history again.
 */
#define CACHED_TEXT_BYTES 1024

/*
 * Count text raw in tok and keep the count in the store's token cache under
 * id, the xxh128 of the bytes (a blob's id): *out when counted, and *kept,
 * what the cache said (a read-only store cannot keep it).
 */
static int count_and_keep(uint64_t *out, int *kept, cmv_repo *repo, cmv_tok *tok, const cmv_id *id, const char *s,
			  size_t len)
{
	size_t n;
	int error;
	if ((error = cmv_tok_count(&n, tok, s, len)) < 0)
		return error;
	*out = n;
	*kept = cmv_tokcache_put(repo, id, cmv_tok_name(tok), n);
	return 0;
}

int cmv_count_blob(uint64_t *out, cmv_repo *repo, cmv_tok *tok, const cmv_id *blob)
{
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error, kept;

	CMV_ASSERT_ARG(out);
	if ((error = cmv_tokcache_get(out, repo, blob, cmv_tok_name(tok))) != CMV_ENOTFOUND)
		return error;
	if ((error = cmv_blob_read(&data, repo, blob)) == 0 &&
	    (error = count_and_keep(out, &kept, repo, tok, blob, data.ptr ? data.ptr : "", data.size)) == 0)
		error = kept;
	cmv_buf_dispose(&data);
	return error;
}

/*
 * The one way pager/ counts a text: a short one, or one with no store, is
 * counted (tok's memo remembers it); a long one is looked for in the memo,
 * then in the store's token cache, and else counted and kept there, as a
 * blob's count is, so that the next process finds it.
 */
int cmv_pager__count_text(uint64_t *out, cmv_repo *repo, const cmv_model *model, cmv_tok *tok, const char *s,
			  size_t len)
{
	size_t n = 0;
	uint64_t raw;
	cmv_id id;
	int error, kept;

	if (len < CACHED_TEXT_BYTES || !repo) {
		if ((error = cmv_model_count(&n, NULL, model, tok, s, len)) < 0)
			return error;
		*out = n;
		return 0;
	}
	if (cmv__tok_memo_get(tok, s, len, &n)) {
		*out = cmv_model_scale(model, n);
		return 0;
	}
	cmv_id_hash(&id, s, len);
	if (cmv_tokcache_get(&raw, repo, &id, cmv_tok_name(tok)) == 0) {
		cmv__tok_memo_put(tok, s, len, (size_t)raw);
		*out = cmv_model_scale(model, raw);
		return 0;
	}
	cmv_error_clear();
	if ((error = count_and_keep(&raw, &kept, repo, tok, &id, s, len)) < 0)
		return error;
	/* a read-only store cannot keep it: that only costs the next call the count */
	if (kept < 0)
		cmv_error_clear();
	*out = cmv_model_scale(model, raw);
	return 0;
}

static bool is(const char *type, const char *want)
{
	return type && !strcmp(type, want);
}

/* Block types a provider accepts; anything else is a source format's own (never sent). */
static bool is_sent(const char *type)
{
	static const char *const sent[] = { "text", "image", "document", "tool_use", "tool_result",
					    "thinking", "redacted_thinking", "server_tool_use",
					    "web_search_tool_result" };
	for (size_t i = 0; type && i < CMV_ARRAY_SIZE(sent); i++)
		if (!strcmp(type, sent[i]))
			return true;
	return false;
}

static int count_conversation_filled(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip,
			   const cmv_model *model, cmv_tok *tok)
{
	cmv_walk *walk = NULL;
	const cmv_node *node;
	uint64_t raw;
	size_t name_tokens;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	memset(out, 0, sizeof(*out));
	if (strcmp(cmv_tok_name(tok), model->tokenizer))
		return cmv_error__set(CMV_EINVALID, "model '%s' counts with %s, not %s", model->id,
				      model->tokenizer, cmv_tok_name(tok));
	out->exact = model->exact;
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&node, walk)) == 0) {
		bool event = node->kind == CMV_KIND_EVENT;
		if (!event) {
			out->messages++;
			out->overhead += model->per_message;
		}
		for (size_t i = 0; i < node->n_blocks; i++) {
			const cmv_block *b = &node->blocks[i];
			uint64_t *slot, n;
			bool unsent = event || (node->kind != CMV_KIND_SUMMARY && !is_sent(b->type));
			if (is(b->type, "image")) {
				if (!event) {
					out->images += model->image_tokens;
					out->blocks++;
				}
				continue;
			}
			if ((error = cmv_count_blob(&raw, repo, tok, &b->blob)) < 0)
				goto out;
			n = cmv_model_scale(model, raw);
			if (unsent) {
				out->unsent += n;
				continue;
			}
			out->blocks++;
			out->overhead += model->per_block;
			if (is(b->type, "text") || node->kind == CMV_KIND_SUMMARY)
				slot = &out->text;
			else if (is(b->type, "tool_use")) {
				slot = &out->tool_calls;
				if (b->tool_name &&
				    (error = cmv_tok_count(&name_tokens, tok, b->tool_name, strlen(b->tool_name))) < 0)
					goto out;
				if (b->tool_name)
					n += cmv_model_scale(model, name_tokens);
			} else if (is(b->type, "tool_result"))
				slot = &out->tool_results;
			else if (is(b->type, "thinking") || is(b->type, "redacted_thinking"))
				slot = &out->thinking;
			else
				slot = &out->other;
			*slot += n;
		}
	}
	if (error == CMV_ITEROVER)
		error = 0;
	if (out->messages)
		out->overhead += model->per_request;
	out->total = out->text + out->tool_calls + out->tool_results + out->thinking + out->images +
		     out->other + out->overhead;
out:
	cmv_walk_free(walk);
	return error;
}

int cmv_count_conversation(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip,
			   const cmv_model *model, cmv_tok *tok)
{
	int error = count_conversation_filled(out, repo, tip, model, tok);
	if (out)
		out->version = CMV_TOKEN_STATS_VERSION;
	return error;
}

/* ---- counting a rendered request ------------------------------------------ */

/*
 * OpenAI's framing of a function call and of its output, beyond the
 * profile's per_message (each is an item, or a message of its own, in what
 * the model reads) and per_block (the name, the arguments, the output text).
 * Measured on the billed prompt growth of Codex rollouts
 * (tests/tok/openai_overhead.py, docs/tokenizers.md): a call and its output
 * cost 22 tokens beyond their text when a reply makes one call, 54 for two
 * parallel calls, 16 more for each further one; with a Responses profile's
 * 4 per item and 3 per text this charges 14 for a call and 13 for its
 * output, 27 a pair, which no pair seen exceeds. Call ids and JSON syntax are
 * not billed; arguments are billed as their raw JSON text.
 */
#define OPENAI_CALL_FRAMING 4
#define OPENAI_OUTPUT_FRAMING 6

typedef struct {
	cmv_token_stats *st;
	const cmv_model *model;
	cmv_tok *tok;
	int error;
} req_count;

static void add_text(req_count *rc, uint64_t *slot, const char *s, size_t len)
{
	uint64_t n;
	if (rc->error || !s)
		return;
	/* a request has no store: counted, never kept */
	if ((rc->error = cmv_pager__count_text(&n, NULL, rc->model, rc->tok, s, len)) < 0)
		return;
	*slot += n;
	rc->st->blocks++;
	rc->st->overhead += rc->model->per_block;
}

static void add_str(req_count *rc, uint64_t *slot, const cJSON *v)
{
	if (cJSON_IsString(v))
		add_text(rc, slot, v->valuestring, strlen(v->valuestring));
}

/* A JSON value sent as it is (tool arguments): counted as its compact text. */
static void add_json(req_count *rc, uint64_t *slot, const cJSON *v)
{
	char *s;
	if (!v || rc->error)
		return;
	if (cJSON_IsString(v)) {
		add_str(rc, slot, v);
		return;
	}
	if (!(s = cJSON_PrintUnformatted(v))) {
		rc->error = cmv_error__oom();
		return;
	}
	add_text(rc, slot, s, strlen(s));
	cJSON_free(s);
}

static void add_image(req_count *rc)
{
	rc->st->images += rc->model->image_tokens;
	rc->st->blocks++;
	rc->st->overhead += rc->model->per_block;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jget(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/*
 * A thinking block stored as empty text and a signature (Claude Code's
 * sessions from late 2026 keep no thinking text) is billed whole within a
 * tool loop all the same. The signature encrypts the thinking, so its size
 * grows with it: such a block is charged, in the tokenizer's raw tokens
 * (which the model's factor then scales, as any text),
 *     ceil(THINKING_TOKENS_PER_KB / 1000 * (signature bytes - THINKING_SIGNATURE_BASE)),
 * at least 0. Fitted by tests/tok/thinking_fit.py on the thinking blocks of
 * older sessions that carry both text and signature, one session held out
 * (docs/tokenizers.md has the figures); the script reads these two lines.
 */
#define THINKING_SIGNATURE_BASE 200
#define THINKING_TOKENS_PER_KB 138

/* A signed thinking block whose text is empty: charged by its signature (above). */
static void add_signed_thinking(req_count *rc, const char *signature)
{
	size_t len = strlen(signature);
	uint64_t raw = len > THINKING_SIGNATURE_BASE
			       ? ((uint64_t)(len - THINKING_SIGNATURE_BASE) * THINKING_TOKENS_PER_KB + 999) / 1000
			       : 0;
	rc->st->thinking += cmv_model_scale(rc->model, raw);
	rc->st->blocks++;
	rc->st->overhead += rc->model->per_block;
}

/* Anthropic content: a string or blocks (tool results nest blocks). */
static void count_anthropic(req_count *rc, const cJSON *content, uint64_t *text_slot)
{
	cmv_token_stats *st = rc->st;
	if (cJSON_IsString(content)) {
		add_str(rc, text_slot, content);
		return;
	}
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !rc->error; b = b->next) {
		const char *t = jstr(b, "type");
		if (!t)
			continue;
		if (!strcmp(t, "text"))
			add_str(rc, text_slot, jget(b, "text"));
		else if (!strcmp(t, "image") || !strcmp(t, "document"))
			add_image(rc);
		else if (!strcmp(t, "tool_use")) {
			add_str(rc, &st->tool_calls, jget(b, "name"));
			add_json(rc, &st->tool_calls, jget(b, "input"));
		} else if (!strcmp(t, "tool_result"))
			count_anthropic(rc, jget(b, "content"), &st->tool_results);
		else if (!strcmp(t, "thinking") && cJSON_IsString(jget(b, "thinking")) &&
			 !*jstr(b, "thinking") && jstr(b, "signature") && *jstr(b, "signature"))
			add_signed_thinking(rc, jstr(b, "signature"));
		else if (!strcmp(t, "thinking"))
			add_str(rc, &st->thinking, jget(b, "thinking"));
		else if (!strcmp(t, "redacted_thinking"))
			add_str(rc, &st->thinking, jget(b, "data"));
		else
			add_json(rc, &st->other, b);
	}
}

/* OpenAI Chat content: a string or parts. */
static void count_chat_content(req_count *rc, const cJSON *content, uint64_t *slot)
{
	if (cJSON_IsString(content)) {
		add_str(rc, slot, content);
		return;
	}
	for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p && !rc->error; p = p->next) {
		const char *t = jstr(p, "type");
		if (t && (!strcmp(t, "image_url") || !strcmp(t, "input_image") || !strcmp(t, "file")))
			add_image(rc);
		else
			add_str(rc, slot, jget(p, "text"));
	}
}

static void count_responses_item(req_count *rc, const cJSON *it)
{
	cmv_token_stats *st = rc->st;
	const char *t = jstr(it, "type");

	if (!t || !strcmp(t, "message")) {
		count_chat_content(rc, jget(it, "content"), &st->text);
	} else if (!strcmp(t, "function_call") || !strcmp(t, "custom_tool_call") || !strcmp(t, "local_shell_call")) {
		add_str(rc, &st->tool_calls, jget(it, "name"));
		add_json(rc, &st->tool_calls, jget(it, "arguments") ? jget(it, "arguments") : jget(it, "input"));
		st->overhead += OPENAI_CALL_FRAMING;
	} else if (!strcmp(t, "function_call_output") || !strcmp(t, "custom_tool_call_output")) {
		const cJSON *o = jget(it, "output");
		if (cJSON_IsArray(o))
			count_chat_content(rc, o, &st->tool_results);
		else
			add_json(rc, &st->tool_results, o);
		st->overhead += OPENAI_OUTPUT_FRAMING;
	} else if (!strcmp(t, "reasoning")) {
		/*
		 * The summary is text. encrypted_content is not: it is an opaque
		 * carrier of the reasoning, whose tokens the provider bills as it
		 * recorded them (within a turn, the call's reasoning_output_tokens),
		 * not as the base64's o200k count, which overstates them many times.
		 */
		for (const cJSON *s = jget(it, "summary") ? jget(it, "summary")->child : NULL; s; s = s->next)
			add_str(rc, &st->thinking, jget(s, "text"));
	} else {
		add_json(rc, &st->other, it);
	}
}

static void count_gemini_parts(req_count *rc, const cJSON *parts)
{
	cmv_token_stats *st = rc->st;
	for (const cJSON *p = cJSON_IsArray(parts) ? parts->child : NULL; p && !rc->error; p = p->next) {
		const cJSON *fc = jget(p, "functionCall"), *fr = jget(p, "functionResponse");
		if (jget(p, "text"))
			add_str(rc, cJSON_IsTrue(jget(p, "thought")) ? &st->thinking : &st->text, jget(p, "text"));
		else if (fc) {
			add_str(rc, &st->tool_calls, jget(fc, "name"));
			add_json(rc, &st->tool_calls, jget(fc, "args"));
		} else if (fr)
			add_json(rc, &st->tool_results, jget(fr, "response"));
		else if (jget(p, "inlineData") || jget(p, "fileData"))
			add_image(rc);
	}
}

static int count_request_filled(cmv_token_stats *out, const cmv_model *model, cmv_tok *tok, const char *json, size_t len)
{
	cJSON *body;
	req_count rc = { out, model, tok, 0 };
	const cJSON *arr;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	CMV_ASSERT_ARG(json);
	memset(out, 0, sizeof(*out));
	out->exact = model->exact;
	int perr = 0;
	if (!(body = cmv_formats__jscan_parse(json, len, &perr)) || !cJSON_IsObject(body)) {
		cJSON_Delete(body);
		/* out of memory is not a body that does not parse */
		return perr < 0 ? perr : cmv_error__set(CMV_EINVALID, "not a request body: the JSON does not parse");
	}
	switch (model->api) {
	case CMV_API_ANTHROPIC:
		count_anthropic(&rc, jget(body, "system"), &out->text);
		arr = jget(body, "messages");
		for (const cJSON *m = cJSON_IsArray(arr) ? arr->child : NULL; m && !rc.error; m = m->next) {
			out->messages++;
			out->overhead += model->per_message;
			count_anthropic(&rc, jget(m, "content"), &out->text);
		}
		break;
	case CMV_API_OPENAI_CHAT:
		arr = jget(body, "messages");
		for (const cJSON *m = cJSON_IsArray(arr) ? arr->child : NULL; m && !rc.error; m = m->next) {
			const cJSON *calls = jget(m, "tool_calls");
			const char *role = jstr(m, "role");
			bool tool = role && !strcmp(role, "tool");
			out->messages++;
			out->overhead += model->per_message + (tool ? OPENAI_OUTPUT_FRAMING : 0);
			count_chat_content(&rc, jget(m, "content"), tool ? &out->tool_results : &out->text);
			/* each call is framed as a message of its own, as a Responses function_call item is */
			for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c && !rc.error; c = c->next) {
				add_str(&rc, &out->tool_calls, jget(jget(c, "function"), "name"));
				add_json(&rc, &out->tool_calls, jget(jget(c, "function"), "arguments"));
				out->overhead += model->per_message + OPENAI_CALL_FRAMING;
			}
			add_str(&rc, &out->thinking, jget(m, "reasoning_content"));
		}
		break;
	case CMV_API_OPENAI_RESPONSES:
		if (jget(body, "instructions"))
			add_str(&rc, &out->text, jget(body, "instructions"));
		arr = jget(body, "input");
		for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it && !rc.error; it = it->next) {
			out->messages++;
			out->overhead += model->per_message;
			count_responses_item(&rc, it);
		}
		break;
	case CMV_API_GEMINI:
		count_gemini_parts(&rc, jget(jget(body, "systemInstruction"), "parts"));
		arr = jget(body, "contents");
		for (const cJSON *c = cJSON_IsArray(arr) ? arr->child : NULL; c && !rc.error; c = c->next) {
			out->messages++;
			out->overhead += model->per_message;
			count_gemini_parts(&rc, jget(c, "parts"));
		}
		break;
	default:
		rc.error = cmv_error__set(CMV_EINVALID, "model '%s' has no known API", model->id);
	}
	cJSON_Delete(body);
	if (rc.error)
		return rc.error;
	out->overhead += model->per_request;
	out->total = out->text + out->tool_calls + out->tool_results + out->thinking + out->images + out->other +
		     out->overhead;
	return 0;
}

int cmv_count_request(cmv_token_stats *out, const cmv_model *model, cmv_tok *tok, const char *json, size_t len)
{
	int error = count_request_filled(out, model, tok, json, len);
	if (out)
		out->version = CMV_TOKEN_STATS_VERSION;
	return error;
}

cmv_render_target cmv_model_render_target(const cmv_model *model)
{
	static const cmv_render_target targets[] = { [CMV_API_OPENAI_CHAT] = CMV_RENDER_OPENAI_CHAT,
						      [CMV_API_OPENAI_RESPONSES] = CMV_RENDER_OPENAI_RESPONSES,
						      [CMV_API_ANTHROPIC] = CMV_RENDER_ANTHROPIC,
						      [CMV_API_GEMINI] = CMV_RENDER_GEMINI };
	return model && (unsigned)model->api < CMV_ARRAY_SIZE(targets) ? targets[model->api] : (cmv_render_target)0;
}

/* What one node of a branch says about the turn's reasoning. */
enum { TR_NONE, TR_RESET, TR_REASONING, TR_USAGE };
typedef struct {
	int what;
	bool has_total;
	double total;     /* total_token_usage.total_tokens: a repeat shows as the same */
	double reasoning; /* last_token_usage.reasoning_output_tokens, or -1 */
} turn_mark;

static int turn_mark_of(turn_mark *m, cmv_buf *rec, cmv_repo *repo, const cmv_node *n)
{
	const char *format;
	int rc;

	memset(m, 0, sizeof(*m));
	m->reasoning = -1;
	if ((rc = cmv_formats__session_record_bytes(rec, &format, repo, n, false)) == CMV_ENOTFOUND) {
		cmv_error_clear();
		if (n->kind != CMV_KIND_EVENT && n->role == CMV_ROLE_USER)
			m->what = TR_RESET; /* a message appended in cmv: a turn of its own */
		return 0;
	}
	if (rc < 0)
		return rc;
	if (strcmp(format, "codex"))
		return 0;
	int perr = 0;
	cJSON *j = cmv_formats__jscan_parse(rec->ptr, rec->size, &perr);
	if (perr < 0)
		return perr;
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
	const char *pt = cmv_formats__cj_str(p, "type"), *role = cmv_formats__cj_str(p, "role");
	if (!type || !pt) {
		if (type && !strcmp(type, "compacted"))
			m->what = TR_RESET;
	} else if (!strcmp(type, "response_item") && !strcmp(pt, "reasoning")) {
		m->what = TR_REASONING;
	} else if (!strcmp(type, "response_item") && !strcmp(pt, "message") && role && !strcmp(role, "user")) {
		m->what = TR_RESET;
	} else if (!strcmp(type, "event_msg") && (!strcmp(pt, "user_message") || !strcmp(pt, "context_compacted"))) {
		m->what = TR_RESET;
	} else if (!strcmp(type, "event_msg") && !strcmp(pt, "token_count")) {
		const cJSON *info = cJSON_GetObjectItemCaseSensitive(p, "info");
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(info, "last_token_usage");
		const cJSON *tot = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(info, "total_token_usage"), "total_tokens");
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(last, "reasoning_output_tokens");
		m->what = TR_USAGE;
		if ((m->has_total = cJSON_IsNumber(tot)))
			m->total = tot->valuedouble;
		if (cJSON_IsNumber(r))
			m->reasoning = r->valuedouble;
	}
	cJSON_Delete(j);
	return 0;
}

/*
 * The reasoning a Responses request carries within a turn. A Codex reply's
 * reasoning item goes back to the model with every later call of the same
 * turn and is billed there as the reply's reasoning_output_tokens (its
 * token_count event); the provider drops it once a new user turn begins
 * (measured on the rollouts of ../shared/transcripts/codex: within a turn
 * the prompt runs ahead of the visible items by the turn's reasoning so far,
 * and falls back at the next user message). encrypted_content is no text:
 * its base64 says nothing countable (and the published samples' is
 * redacted), so the charge is the recorded tokens, walked from the branch's
 * records: 0 for a branch that is no Codex rollout.
 *
 * Only the current turn can count, so the records are read from the tip
 * back to the turn's start (a user message, a compaction, the root): every
 * pager load for a Responses target pays this, and a long rollout
 * continued through the proxy must not re-read its whole history per
 * request (docs/pager.md). Nodes before the turn are not read, except,
 * rarely, back to the last usage before it, which tells a repeated
 * token_count at the turn's start from a new call.
 */
int cmv_pager__turn_reasoning(uint64_t *out, cmv_repo *repo, const cmv_id *tip)
{
	cmv_node *n = NULL;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	turn_mark *marks = NULL, m;
	size_t count = 0, cap = 0;
	cmv_id cur = *tip, before; /* before: the node above the turn's start */
	uint64_t turn = 0;
	double total = -1;
	bool seeded = false;
	bool item = false; /* a reasoning item since the last call's usage */
	int error = 0;

	*out = 0;
	cmv_id_clear(&before);
	/* back from the tip to the turn's start: marks[0] is the tip's */
	while (!cmv_id_is_none(&cur)) {
		cmv_node_free(n);
		n = NULL;
		if ((error = cmv_node_read(&n, repo, &cur)) < 0 || (error = turn_mark_of(&m, &rec, repo, n)) < 0)
			goto done;
		cur = n->parent;
		if (m.what == TR_RESET) {
			before = n->parent;
			break;
		}
		if (count >= cap) {
			size_t ncap = cap ? cap * 2 : 64;
			turn_mark *na = cmv__realloc(marks, ncap * sizeof(*marks));
			if (!na) {
				error = cmv_error__oom();
				goto done;
			}
			marks = na, cap = ncap;
		}
		marks[count++] = m;
	}
	/* then forwards through it, as the records were written */
	for (size_t i = count; i-- > 0;) {
		const turn_mark *t = &marks[i];
		if (t->what == TR_REASONING) {
			item = true;
		} else if (t->what == TR_USAGE) {
			/* the turn's first usage could repeat the last one before the turn */
			for (cur = before; t->has_total && !seeded && item && t->reasoning > 0 && !cmv_id_is_none(&cur);) {
				cmv_node_free(n);
				n = NULL;
				if ((error = cmv_node_read(&n, repo, &cur)) < 0 || (error = turn_mark_of(&m, &rec, repo, n)) < 0)
					goto done;
				cur = n->parent;
				if (m.what == TR_USAGE && m.has_total) {
					total = m.total;
					break;
				}
			}
			seeded = seeded || t->has_total;
			/* Codex may log a call's usage twice: the repeat is no new call */
			bool repeat = t->has_total && t->total == total;
			if (t->has_total)
				total = t->total;
			if (!repeat && item && t->reasoning > 0 && t->reasoning < 1e9)
				turn += (uint64_t)t->reasoning;
			if (!repeat)
				item = false;
		}
	}
done:
	cmv_node_free(n);
	cmv_buf_dispose(&rec);
	free(marks);
	if (!error)
		*out = turn;
	return error;
}

static int count_sent_filled(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model, cmv_tok *tok,
			     unsigned int flags)
{
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31);
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(model);
	cmv_render_target target = cmv_model_render_target(model);
	if (!target)
		return cmv_error__set(CMV_EINVALID, "model '%s' has no API to render for", model->id);
	ro.model = model->id;
	ro.flags = CMV_RENDER_NO_DECORATIONS | flags;
	if ((error = cmv_render(&body, NULL, repo, tip, target, &ro)) == 0)
		error = cmv_count_request(out, model, tok, body.ptr, body.size);
	cmv_buf_dispose(&body);
	if (!error && model->api == CMV_API_OPENAI_RESPONSES) {
		uint64_t r;
		if ((error = cmv_pager__turn_reasoning(&r, repo, tip)) == 0) {
			/* billed tokens already: not scaled by the model's factor */
			out->thinking += r;
			out->total += r;
		}
	}
	return error;
}

int cmv_count_sent(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model, cmv_tok *tok)
{
	int error = count_sent_filled(out, repo, tip, model, tok, 0);
	if (out)
		out->version = CMV_TOKEN_STATS_VERSION;
	return error;
}

int cmv_pager__count_sent_live(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip, const cmv_model *model,
			       cmv_tok *tok)
{
	int error = count_sent_filled(out, repo, tip, model, tok, CMV__RENDER_STUB_CLEARED);
	if (out)
		out->version = CMV_TOKEN_STATS_VERSION;
	return error;
}
