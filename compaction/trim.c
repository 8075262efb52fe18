/* SPDX-License-Identifier: MIT */
/*
 * Trim (docs/trim.md): a new branch whose records derive from the
 * originals, with mechanical bloat stubbed or dropped and nothing verbatim
 * lost.
 *
 * Design notes
 *  - Three passes over the path: find the last real compaction boundary
 *    (a compact_boundary line, or a compaction summary with no boundary
 *    line before it; never a title `summary` line); collect the tool calls
 *    and results after it from the nodes' blocks (no content is read);
 *    rewrite. Records before the boundary are not carried: the model has
 *    not seen them since the compaction.
 *  - A record is edited as a skeleton (formats/edit.c): its content holes
 *    are placeholders, so a rule reads only the blobs it may stub, and an
 *    untouched block keeps its blob by id. An unchanged record below an
 *    unchanged parent is the same node; below a new parent it is written
 *    again, byte for byte, with a derived_from edge.
 *  - Dropping a record that others name as their parent (progress lines
 *    often are) relinks them to its own parent, so Claude Code's uuid chain
 *    stays whole on resume.
 *  - A stub names what was there and the blob that holds it. A nested
 *    input string or an image inside a result gets a blob of its own, so
 *    every stub's id gives back the exact original bytes.
 *  - Claude Code records and messages appended in cmv have rules; records
 *    of other formats are carried as they are and counted in the report.
 *
 * Files: this one has the entry (cmv_trim), the three passes, the report
 * and the stubs every rule makes; trim_cc.c the Claude Code rules;
 * trim_blocks.c the records rewritten by their blocks (Codex's, and
 * messages appended in cmv); trim_priv.h the context they share.
 */
#include <cjson/cJSON.h>
#include "formats/formats_int.h"
#include "pager/pager_int.h"
#include <cmv/compaction.h>
#include "copy.h"
#include <cmv/formats.h>
#include "trim_priv.h"

void cmv_trim_options_init(cmv_trim_options *opts)
{
	static const cmv_trim_options init = CMV_TRIM_OPTIONS_INIT;
	*opts = init;
}

static const char *const rule_names[CMV_TRIM_RULES] = {
	"pre_boundary", "tool_results", "tool_inputs", "images", "thinking", "ui_copies", "progress",
	"file_history", "queue_operations", "usage", "orphan_results", "empty_records", "unanswered_calls",
	"superseded_inputs",
};

const char *cmv_trim_rule_name(cmv_trim_rule rule)
{
	return (unsigned)rule < CMV_TRIM_RULES ? rule_names[rule] : NULL;
}

/* ---- the report, and the stubs every rule makes ------------------------------ */

void cmv_trim__rule_add(trim_ctx *t, cmv_trim_rule r, size_t items, int64_t bytes, int64_t tokens)
{
	t->rep->rules[r].items += items;
	t->rep->rules[r].bytes += bytes;
	t->rep->rules[r].tokens += tokens;
}

/* Tokens of text in the report's model (0 without one). */
int64_t cmv_trim__tokens_of(trim_ctx *t, const char *s, size_t len)
{
	size_t n = 0;
	if (!t->opts->model || !t->opts->tok)
		return 0;
	if (cmv_model_count(&n, NULL, t->opts->model, t->opts->tok, s, len) < 0) {
		cmv_error_clear();
		return 0;
	}
	return (int64_t)n;
}

int64_t cmv_trim__tokens_of_blob(trim_ctx *t, const cmv_id *blob)
{
	uint64_t raw = 0;
	if (!t->opts->model || !t->opts->tok)
		return 0;
	if (cmv_count_blob(&raw, t->repo, t->opts->tok, blob) < 0) {
		cmv_error_clear();
		return 0;
	}
	return (int64_t)cmv_model_scale(t->opts->model, raw);
}

/*
 * The shortest prefix of `id` that names one object in the store, 7 hex
 * digits at least (as git abbreviates): a stub pays for every digit in
 * tokens, on every request that carries it.
 */
int cmv_trim__abbrev(char hex[CMV_ID_HEXSZ + 1], trim_ctx *t, const cmv_id *id)
{
	cmv_id_tostr(hex, CMV_ID_HEXSZ + 1, id);
	for (size_t n = CMV_ID_MINPREFIX; n < CMV_ID_HEXSZ; n++) {
		char save = hex[n];
		cmv_object_type type;
		cmv_id found;
		hex[n] = '\0';
		int error = cmv_resolve_object(&found, &type, t->repo, hex);
		if (error == CMV_ENOTFOUND || (error == 0 && cmv_id_equal(&found, id))) {
			cmv_error_clear();
			return 0;
		}
		if (error != CMV_EAMBIGUOUS && error != 0)
			return error;
		cmv_error_clear();
		hex[n] = save;
	}
	return 0;
}

/*
 * The stub for `len` bytes kept in blob `id`: their size and the id that
 * brings them back, in as few tokens as that takes. What they were is said
 * by where the stub sits: a result follows its call (tool and path), an
 * input field keeps its key, an image says its type.
 */
int cmv_trim__make_stub(trim_ctx *t, const char *media, const char *data, size_t len, const cmv_id *id)
{
	char hex[CMV_ID_HEXSZ + 1];
	size_t lines = media ? 0 : cmv__count_lines(data, len);
	int error;

	if ((error = cmv_trim__abbrev(hex, t, id)) < 0)
		return error;
	cmv_buf_clear(&t->stub);
	if (media)
		error = cmv_buf_printf(&t->stub, "[%s image, %zu bytes; recall %s]", media, len, hex);
	else
		error = cmv__stub_body(&t->stub, cmv__utf8_chars(data, len), lines, hex);
	return error;
}

/* ---- carrying a record as it was ------------------------------------------------ */

int cmv__node_copy_below(cmv_id *tail, cmv_repo *repo, const cmv_node *n)
{
	cmv_block_content stack[16], *blocks = stack;
	int error;

	if (n->n_blocks > CMV_ARRAY_SIZE(stack) && !(blocks = cmv__calloc(n->n_blocks, sizeof(*blocks))))
		return cmv_error__oom();
	for (size_t i = 0; i < n->n_blocks; i++)
		blocks[i] = (cmv_block_content){ .type = n->blocks[i].type, .tool_id = n->blocks[i].tool_id,
						 .tool_name = n->blocks[i].tool_name, .media_type = n->blocks[i].media_type,
						 .flags = n->blocks[i].flags, .blob = &n->blocks[i].blob };
	cmv_message m = { .role = n->role, .kind = n->kind, .blocks = blocks, .n_blocks = n->n_blocks, .meta = n->meta,
			  .meta_len = n->meta_len, .derived_from = &n->id, .n_derived_from = 1,
			  .covers = n->covers, .n_covers = n->n_covers };
	error = cmv_node_write(tail, repo, cmv_id_is_none(tail) ? NULL : tail, &m);
	if (blocks != stack)
		free(blocks);
	return error;
}

/* Write a record as it was, below the new tip. */
int cmv_trim__carry(trim_ctx *t, const cmv_node *n)
{
	if (t->parent_kept) {
		t->tail = n->id; /* the same node: same parent, same bytes */
		return 0;
	}
	return cmv__node_copy_below(&t->tail, t->repo, n);
}

/* ---- the passes ------------------------------------------------------------------ */

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* Whether a template holds a literal (the holes are cut out, so content cannot fake one). */
static bool tpl_has(const session_tpl *tpl, const char *lit)
{
	size_t n = strlen(lit);
	for (const char *p = tpl->tpl; p + n <= tpl->tpl_end; p++) {
		p = memchr(p, lit[0], (size_t)(tpl->tpl_end - p));
		if (!p || p + n > tpl->tpl_end)
			return false;
		if (!memcmp(p, lit, n))
			return true;
	}
	return false;
}

/*
 * Pass 1: the index of the last real compaction boundary (0: none). A
 * title `summary` line is not one (claude-code-cmv's defect); a
 * compaction summary is one only when no boundary line came just before
 * it (files older than boundary lines).
 */
/*
 * A Claude Code `attachment` sent to the model (formats.md): a message node,
 * but no turn of the conversation. Trim keeps it as it is (its rules are for
 * turns); where trim counts turns, it is not one. Its template has no
 * `message` member; a user or assistant line always has one.
 */
static bool is_cc_attachment(const session_tpl *tpl)
{
	return tpl_has(tpl, "\"type\":\"attachment\"") && !tpl_has(tpl, "\"message\":");
}

static int find_boundary(size_t *out, cmv_walk *walk)
{
	const cmv_node *n;
	size_t i = 0, line = SIZE_MAX, msgs_since_line = 0;
	int error;

	*out = 0;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		session_tpl tpl;
		if (cmv_formats__session_template(&tpl, n) == 0 && tpl.format && !strcmp(tpl.format, "claude-code")) {
			if (tpl_has(&tpl, "\"subtype\":\"compact_boundary\"")) {
				line = i;
				*out = i;
				msgs_since_line = 0;
			} else if (n->kind == CMV_KIND_MESSAGE && !is_cc_attachment(&tpl)) {
				if (tpl_has(&tpl, "\"isCompactSummary\":true") && (line == SIZE_MAX || msgs_since_line > 0))
					*out = i;
				msgs_since_line++;
			}
		} else {
			cmv_error_clear();
		}
		i++;
	}
	return error == CMV_ITEROVER ? 0 : error;
}

/* Pass 2: the calls and results after the boundary, from the blocks alone. */
static int collect_pairs(trim_ctx *t, cmv_walk *walk)
{
	const cmv_node *n;
	int error;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		if (n->kind != CMV_KIND_MESSAGE)
			continue;
		for (size_t i = 0; i < n->n_blocks && !error; i++) {
			const cmv_block *b = &n->blocks[i];
			if (is(b->type, "tool_result") && b->tool_id)
				error = cmv__strmap_put(&t->results, b->tool_id, 0, NULL);
			for (size_t s = 0; s < CMV_ARRAY_SIZE(trim_snapshot_inputs); s++)
				if (is(b->type, "tool_use") && b->tool_id && is(b->tool_name, trim_snapshot_inputs[s].tool)) {
					free(t->last_snapshot[s]);
					if (!(t->last_snapshot[s] = cmv__strdup(b->tool_id)))
						error = cmv_error__oom();
				}
		}
		if (error < 0)
			return error;
	}
	return error == CMV_ITEROVER ? 0 : error;
}

/*
 * Bytes of the conversation written as its source session (what a resume
 * reads); *prefix_out gets those of its first `prefix` records.
 */
static int path_bytes(uint64_t *out, uint64_t *prefix_out, size_t prefix, cmv_repo *repo, const cmv_id *tip)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	size_t i = 0;
	int error;

	*out = 0;
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		const char *format;
		if (prefix_out && i++ == prefix)
			*prefix_out = *out;
		if ((error = cmv_formats__session_record_bytes(&rec, &format, repo, n, true)) == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = 0;
			for (size_t b = 0; b < n->n_blocks && !error; b++)
				if ((error = cmv_blob_read(&rec, repo, &n->blocks[b].blob)) == 0)
					*out += rec.size;
			if (error < 0)
				break;
			continue;
		}
		if (error < 0)
			break;
		*out += rec.size;
	}
	if (error == CMV_ITEROVER) {
		error = 0;
		if (prefix_out && i <= prefix)
			*prefix_out = *out;
	}
	cmv_walk_free(walk);
	cmv_buf_dispose(&rec);
	return error;
}

static int sent_tokens(uint64_t *out, cmv_repo *repo, const cmv_id *tip, const cmv_trim_options *opts)
{
	cmv_token_stats st;
	int error = cmv_count_sent(&st, repo, tip, opts->model, opts->tok);
	if (!error)
		*out = st.total;
	return error;
}

/* ---- the entry ------------------------------------------------------------------- */

static int trim_filled(cmv_trim_report *out, cmv_repo *repo, const cmv_id *tip, const cmv_trim_options *opts)
{
	trim_ctx t;
	cmv_walk *walk = NULL;
	const cmv_node *n;
	size_t boundary = 0;
	bool dry = opts && (opts->flags & CMV_TRIM_DRY_RUN);
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(opts);
	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	if (opts->threshold && opts->threshold < CMV_TRIM_THRESHOLD_MIN)
		return cmv_error__set(CMV_EINVALID, "the trim threshold must be at least %d characters, not %zu",
				      CMV_TRIM_THRESHOLD_MIN, opts->threshold);
	if (!dry && (!opts->branch || !cmv_ref_name_is_valid(opts->branch)))
		return cmv_error__set(CMV_EINVALID, "trim needs a valid name for the new branch, not '%s'",
				      opts->branch ? opts->branch : "");
	if ((opts->model == NULL) != (opts->tok == NULL))
		return cmv_error__set(CMV_EINVALID, "trim counts tokens with a model and its tokenizer, both or neither");
	t.repo = repo;
	t.opts = opts;
	t.rep = out;
	t.threshold = opts->threshold ? opts->threshold : CMV_TRIM_THRESHOLD_DEFAULT;
	out->threshold = t.threshold;
	cmv_buf_init(&t.blob, CMV_BUF_CONTENT);
	cmv_buf_init(&t.text, CMV_BUF_SMALL);
	cmv_buf_init(&t.stub, CMV_BUF_SMALL);
	cmv_id_clear(&t.tail);

	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;
	if (!dry) {
		cmv_ref *existing = NULL;
		if (cmv_ref_lookup(&existing, repo, opts->branch) == 0) {
			cmv_ref_free(existing);
			error = cmv_error__set(CMV_EEXISTS, "'%s' already exists", opts->branch);
			goto fail;
		}
		cmv_error_clear();
	}
	uint64_t pre_bytes = 0;
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0 || (error = find_boundary(&boundary, walk)) < 0 ||
	    (error = path_bytes(&out->bytes_before, &pre_bytes, boundary, repo, tip)) < 0 ||
	    (opts->model && (error = sent_tokens(&out->tokens_before, repo, tip, opts)) < 0))
		goto fail;
	out->records_before = cmv_walk_length(walk);
	cmv_walk_seek(walk, boundary);
	if ((error = collect_pairs(&t, walk)) < 0)
		goto fail;
	t.live = (opts->flags & CMV_TRIM_LIVE) != 0;
	t.frozen_from = SIZE_MAX;
	if (t.live) {
		cmv_walk_seek(walk, boundary);
		for (size_t i = boundary; (error = cmv_walk_next(&n, walk)) == 0; i++) {
			session_tpl tpl;
			if (n->kind == CMV_KIND_MESSAGE && (n->role == CMV_ROLE_USER || n->role == CMV_ROLE_ASSISTANT) &&
			    !(cmv_formats__session_template(&tpl, n) == 0 && is_cc_attachment(&tpl)))
				t.frozen_from = i;
			cmv_error_clear();
		}
		if (error != CMV_ITEROVER)
			goto fail;
		error = 0;
	}
	if (boundary)
		cmv_trim__rule_add(&t, CMV_TRIM_PRE_BOUNDARY, boundary, (int64_t)pre_bytes, 0);
	t.parent_kept = boundary == 0;
	/*
	 * A Codex rollout resumes from its last `compacted` record: what comes
	 * before it is never sent, so stubbing it would save nothing (and the
	 * report would count tokens no model was sent).
	 */
	size_t codex_from = 0;
	cmv_walk_seek(walk, boundary);
	for (size_t i = boundary; (error = cmv_walk_next(&n, walk)) == 0; i++) {
		session_tpl tpl;
		if (n->kind == CMV_KIND_SUMMARY && cmv_formats__session_template(&tpl, n) == 0 && !strcmp(tpl.format, "codex"))
			codex_from = i + 1;
		cmv_error_clear();
	}
	if (error != CMV_ITEROVER)
		goto fail;
	error = 0;
	cmv_walk_seek(walk, boundary);
	for (t.index = boundary; (error = cmv_walk_next(&n, walk)) == 0; t.index++) {
		session_tpl tpl;
		int is_tpl = cmv_formats__session_template(&tpl, n);
		if (is_tpl == CMV_ENOTFOUND) {
			cmv_error_clear();
			if (n->kind == CMV_KIND_MESSAGE && t.n_pending && (error = cmv_trim__answer_pending(&t)) < 0)
				break;
			if (n->kind == CMV_KIND_MESSAGE && !(t.live && t.index >= t.frozen_from)) {
				error = cmv_trim__native(&t, n);
			} else {
				error = cmv_trim__carry(&t, n);
				out->records_after++;
			}
		} else if (is_tpl < 0) {
			error = is_tpl;
		} else if (!strcmp(tpl.format, "claude-code")) {
			error = cmv_trim__cc(&t, n);
		} else if (!strcmp(tpl.format, "codex") && n->kind == CMV_KIND_MESSAGE && t.index >= codex_from &&
			   !(t.live && t.index >= t.frozen_from)) {
			error = cmv_trim__templated(&t, n);
		} else {
			out->untrimmed_records++;
			out->records_after++;
			error = cmv_trim__carry(&t, n);
		}
		if (error < 0)
			break;
	}
	if (error == CMV_ITEROVER)
		error = t.n_pending ? cmv_trim__answer_pending(&t) : 0;
	if (error < 0)
		goto fail;
	if (cmv_id_is_none(&t.tail)) {
		error = cmv_error__set(CMV_EINVALID, "nothing is left to trim into a branch");
		goto fail;
	}
	out->head = t.tail;
	if ((error = path_bytes(&out->bytes_after, NULL, 0, repo, &t.tail)) < 0 ||
	    (opts->model && (error = sent_tokens(&out->tokens_after, repo, &t.tail, opts)) < 0))
		goto fail;
	out->tokens_exact = opts->model && opts->model->exact;
	if (!dry) {
		cJSON *note = cJSON_CreateObject();
		char hex[CMV_ID_HEXSZ + 1], *text = NULL;
		if (note && cJSON_AddStringToObject(note, "from", cmv_id_tostr(hex, sizeof(hex), tip)) &&
		    (!opts->from_ref || cJSON_AddStringToObject(note, "from_ref", opts->from_ref)) &&
		    cJSON_AddNumberToObject(note, "threshold", (double)t.threshold) &&
		    cJSON_AddNumberToObject(note, "bytes_before", (double)out->bytes_before) &&
		    cJSON_AddNumberToObject(note, "bytes_after", (double)out->bytes_after))
			text = cJSON_PrintUnformatted(note);
		cJSON_Delete(note);
		if (!text) {
			error = cmv_error__oom();
			goto fail;
		}
		error = cmv_branch_create(repo, opts->branch, &t.tail, opts->from_ref);
		if (!error)
			error = cmv_branch_note_set(repo, opts->branch, "trim", text);
		cJSON_free(text);
		if (error < 0 || (error = cmv_repo_txn_commit(repo)) < 0)
			goto fail;
		goto out;
	}
fail:
	cmv_repo_txn_rollback(repo);
	if (dry && !error)
		cmv_error_clear();
out:
	cmv_walk_free(walk);
	cmv__strmap_dispose(&t.calls);
	cmv__strmap_dispose(&t.results);
	cmv__strmap_dispose(&t.remap);
	for (size_t i = 0; i < t.n_pending; i++)
		free(t.pending[i]);
	free(t.pending);
	cJSON_Delete(t.pending_base);
	for (size_t i = 0; i < CMV_ARRAY_SIZE(trim_snapshot_inputs); i++)
		free(t.last_snapshot[i]);
	free(t.held);
	cmv_buf_dispose(&t.blob);
	cmv_buf_dispose(&t.text);
	cmv_buf_dispose(&t.stub);
	return error;
}

int cmv_trim(cmv_trim_report *out, cmv_repo *repo, const cmv_id *tip, const cmv_trim_options *opts)
{
	int error = trim_filled(out, repo, tip, opts);
	if (out)
		out->version = CMV_TRIM_REPORT_VERSION;
	return error;
}
