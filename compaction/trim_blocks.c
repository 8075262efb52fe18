/* SPDX-License-Identifier: MIT */
/*
 * Trim's records with no JSON rules of their own, rewritten by their
 * blocks: a Codex rollout's (whose template stays as it is) and messages
 * appended in cmv (which have no source record). The design notes are in
 * trim.c.
 *
 * Invariants: a block is kept by its blob id, or replaced by a stub naming
 * that same blob (already in the store: nothing is written but the stubs'
 * text), or, in a message of cmv's own, dropped (thinking, a result with no
 * call); a Codex record keeps all its blocks, so its template still fits.
 * A record in which nothing changed is carried, the same node when its
 * parent is.
 */
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include "trim_priv.h"

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/*
 * The record below the tail: carried as it is when nothing changed, else
 * written anew from its nb kept blocks, a stubbed one taking its bytes
 * from stubs (stub_off: 1 + the offset, 0 for a block not stubbed).
 */
static int write_blocks(trim_ctx *t, const cmv_node *n, cmv_block_content *blocks, size_t nb, const size_t *stub_off,
			const cmv_buf *stubs, bool changed)
{
	int error;
	if (!changed) {
		error = cmv_trim__carry(t, n);
	} else {
		for (size_t i = 0; i < nb; i++)
			if (stub_off[i])
				blocks[i].data = stubs->ptr + stub_off[i] - 1;
		cmv_message m = { .role = n->role, .kind = n->kind, .blocks = blocks, .n_blocks = nb, .meta = n->meta,
				  .meta_len = n->meta_len, .derived_from = &n->id, .n_derived_from = 1 };
		error = cmv_node_write(&t->tail, t->repo, cmv_id_is_none(&t->tail) ? NULL : &t->tail, &m);
		t->parent_kept = false;
	}
	if (!error)
		t->rep->records_after++;
	return error;
}

/*
 * A record of a format with no rules of its own (a Codex rollout's): each
 * tool result over the threshold that its template holds as a string
 * becomes a stub in place. Nothing else changes, and no block goes, so the
 * record keeps its shape and its template, and is written back whole.
 */
int cmv_trim__templated(trim_ctx *t, const cmv_node *n)
{
	record_edit e;
	cmv_block_content *blocks = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(*blocks)) : NULL;
	cmv_buf stubs = CMV_BUF_INIT(CMV_BUF_CONTENT);
	size_t *stub_off = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(size_t)) : NULL;
	bool changed = false;
	int error;

	if (n->n_blocks && (!blocks || !stub_off)) {
		free(blocks);
		free(stub_off);
		return cmv_error__oom();
	}
	if ((error = cmv_formats__record_edit_load(&e, n)) < 0)
		goto done;
	for (size_t i = 0; i < n->n_blocks && !error; i++) {
		const cmv_block *b = &n->blocks[i];
		blocks[i] = (cmv_block_content){ .type = b->type, .tool_id = b->tool_id, .tool_name = b->tool_name,
						 .media_type = b->media_type, .flags = b->flags, .blob = &b->blob };
		if (!is(b->type, "tool_result") || !e.enc || e.enc[i] != 'S')
			continue;
		if ((error = cmv_blob_read(&t->blob, t->repo, &b->blob)) < 0)
			break;
		if (cmv__utf8_chars(t->blob.ptr ? t->blob.ptr : "", t->blob.size) <= t->threshold)
			continue;
		if ((error = cmv_trim__make_stub(t, NULL, t->blob.ptr ? t->blob.ptr : "", t->blob.size, &b->blob)) < 0)
			break;
		if (t->stub.size >= t->blob.size)
			continue;
		cmv_trim__rule_add(t, CMV_TRIM_TOOL_RESULTS, 1, (int64_t)t->blob.size - (int64_t)t->stub.size,
			 cmv_trim__tokens_of_blob(t, &b->blob) - cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
		stub_off[i] = stubs.size + 1;
		if ((error = cmv_buf_put(&stubs, t->stub.ptr, t->stub.size)) < 0)
			break;
		blocks[i].blob = NULL;
		blocks[i].len = t->stub.size;
		changed = true;
	}
	if (error)
		goto done;
	error = write_blocks(t, n, blocks, n->n_blocks, stub_off, &stubs, changed);
done:
	cmv_formats__record_edit_dispose(&e);
	free(blocks);
	free(stub_off);
	cmv_buf_dispose(&stubs);
	return error;
}

/* A message appended in cmv (no source record): the same rules, on its blocks. */
int cmv_trim__native(trim_ctx *t, const cmv_node *n)
{
	cmv_block_content *blocks = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(*blocks)) : NULL;
	cmv_buf stubs = CMV_BUF_INIT(CMV_BUF_CONTENT);
	size_t nb = 0, *stub_off = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(size_t)) : NULL;
	bool changed = false;
	int error = 0;

	if (n->n_blocks && (!blocks || !stub_off)) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t i = 0; i < n->n_blocks && !error; i++) {
		const cmv_block *b = &n->blocks[i];
		cmv_block_content bc = { .type = b->type, .tool_id = b->tool_id, .tool_name = b->tool_name,
					 .media_type = b->media_type, .flags = b->flags, .blob = &b->blob };
		if (is(b->type, "thinking") || is(b->type, "redacted_thinking")) {
			cmv_trim__rule_add(t, CMV_TRIM_THINKING, 1, 0, cmv_trim__tokens_of_blob(t, &b->blob));
			changed = true;
			continue;
		}
		if (is(b->type, "tool_use") && b->tool_id && (error = cmv__strmap_put(&t->calls, b->tool_id, 0, NULL)) < 0)
			break;
		if (is(b->type, "tool_result") && (!b->tool_id || !cmv__strmap_get(&t->calls, b->tool_id, NULL, NULL))) {
			cmv_trim__rule_add(t, CMV_TRIM_ORPHANS, 1, 0, 0);
			changed = true;
			continue;
		}
		if (is(b->type, "tool_result") || is(b->type, "image")) {
			if ((error = cmv_blob_read(&t->blob, t->repo, &b->blob)) < 0)
				break;
			bool image = is(b->type, "image");
			if (image || cmv__utf8_chars(t->blob.ptr ? t->blob.ptr : "", t->blob.size) > t->threshold) {
				if ((error = cmv_trim__make_stub(t, image ? (b->media_type ? b->media_type : "unknown") : NULL,
						       t->blob.ptr ? t->blob.ptr : "", t->blob.size, &b->blob)) < 0)
					break;
				if (!image && t->stub.size >= t->blob.size) {
					blocks[nb++] = bc;
					continue;
				}
				cmv_trim__rule_add(t, image ? CMV_TRIM_IMAGES : CMV_TRIM_TOOL_RESULTS, 1,
					 (int64_t)t->blob.size - (int64_t)t->stub.size,
					 (image ? (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) : cmv_trim__tokens_of_blob(t, &b->blob)) -
						 cmv_trim__tokens_of(t, t->stub.ptr, t->stub.size));
				stub_off[nb] = stubs.size + 1;
				if ((error = cmv_buf_put(&stubs, t->stub.ptr, t->stub.size)) < 0)
					break;
				bc.blob = NULL;
				bc.len = t->stub.size;
				bc.media_type = NULL;
				if (image)
					bc.type = "text";
				changed = true;
			}
		}
		blocks[nb++] = bc;
	}
	if (error)
		goto done;
	if (!nb) {
		cmv_trim__rule_add(t, CMV_TRIM_EMPTY, 1, 0, 0);
		t->parent_kept = false;
		goto done;
	}
	error = write_blocks(t, n, blocks, nb, stub_off, &stubs, changed);
done:
	free(blocks);
	free(stub_off);
	cmv_buf_dispose(&stubs);
	return error;
}
