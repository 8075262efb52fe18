/* SPDX-License-Identifier: MIT */
/*
 * Counting stored conversations in a model's tokens, through the store's
 * token cache. Raw tokenizer counts are cached (they do not depend on the
 * model); the model's factor and overheads are applied on top, per block,
 * so two models that share a tokenizer share the cache.
 */
#include "../cmv/common.h"
#include "cmv/model.h"

int cmv_count_blob(uint64_t *out, cmv_repo *repo, cmv_tok *tok, const cmv_id *blob)
{
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	size_t n;
	int error;

	CMV_ASSERT_ARG(out);
	if ((error = cmv_tokcache_get(out, repo, blob, cmv_tok_name(tok))) != CMV_ENOTFOUND)
		return error;
	if ((error = cmv_blob_read(&data, repo, blob)) == 0 &&
	    (error = cmv_tok_count(&n, tok, data.ptr ? data.ptr : "", data.size)) == 0) {
		*out = n;
		error = cmv_tokcache_put(repo, blob, cmv_tok_name(tok), n);
	}
	cmv_buf_dispose(&data);
	return error;
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

int cmv_count_conversation(cmv_token_stats *out, cmv_repo *repo, const cmv_id *tip,
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
