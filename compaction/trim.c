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
 */
#include <cjson/cJSON.h>
#include "formats/formats_int.h"
#include "pager/pager_int.h"
#include <cmv/compaction.h>
#include "copy.h"
#include <cmv/formats.h>


static const char *const rule_names[CMV_TRIM_RULES] = {
	"pre_boundary", "tool_results", "tool_inputs", "images", "thinking", "ui_copies", "progress",
	"file_history", "queue_operations", "usage", "orphan_results", "empty_records", "unanswered_calls",
	"superseded_inputs",
};

/*
 * Tools whose input is the whole of some state, restated in full by every
 * call: all but the last call's copy say nothing the last one does not.
 */
static const struct {
	const char *tool, *key;
} snapshot_inputs[] = {
	{ "TodoWrite", "todos" },
};

const char *cmv_trim_rule_name(cmv_trim_rule rule)
{
	return (unsigned)rule < CMV_TRIM_RULES ? rule_names[rule] : NULL;
}

/* ---- the trim ------------------------------------------------------------- */

typedef struct {
	cmv_repo *repo;
	const cmv_trim_options *opts;
	cmv_trim_report *rep;
	size_t threshold;
	cmv__strmap calls;    /* call ids seen after the boundary */
	cmv__strmap results;  /* call ids with a result after the boundary */
	cmv__strmap remap;    /* uuid of a dropped record -> the uuid its children now hang from (NULL: none) */
	cmv_buf blob, text, stub;
	cmv_id tail;     /* the new branch's tip so far (none at first) */
	bool parent_kept; /* the new tip is the original parent of the next record */
	char last_uuid[128];
	/* calls of the last assistant message with no result anywhere after it */
	char **pending;
	size_t n_pending, cap_pending;
	char *last_snapshot[CMV_ARRAY_SIZE(snapshot_inputs)]; /* the last call id of each snapshot tool */
	char pending_group[128];
	cJSON *pending_base; /* the call's record, for the fields an answer copies */
	/* blobs made for this record's stubs (an input string, a superseded list, an image inside a result) */
	cmv_id *held;
	size_t n_held, cap_held;
	bool live;          /* CMV_TRIM_LIVE */
	size_t index;       /* the record being rewritten, by position on the path */
	size_t frozen_from; /* live: records from here on are only relinked */
	cmv_id pending_from;
} trim_ctx;

static void rule_add(trim_ctx *t, cmv_trim_rule r, size_t items, int64_t bytes, int64_t tokens)
{
	t->rep->rules[r].items += items;
	t->rep->rules[r].bytes += bytes;
	t->rep->rules[r].tokens += tokens;
}

/* A blob a stub of the record being rewritten names (written already). */
static int hold(trim_ctx *t, const cmv_id *blob)
{
	int error = cmv__array_grow((void **)&t->held, &t->cap_held, t->n_held, sizeof(*t->held));
	if (error < 0)
		return error;
	t->held[t->n_held++] = *blob;
	return 0;
}

/*
 * The blobs a record's stubs name hang from a node of their own, which the
 * rewritten record is derived from (besides its original): nothing else
 * points at them, and a stub must recall after gc, and in another store
 * that a bundle brought it to.
 */
static int write_holder(cmv_id *out, trim_ctx *t)
{
	cmv_block_content stack[8], *blocks = stack;
	int error;
	if (t->n_held > CMV_ARRAY_SIZE(stack) && !(blocks = cmv__calloc(t->n_held, sizeof(*blocks))))
		return CMV_ENOMEM;
	for (size_t i = 0; i < t->n_held; i++)
		blocks[i] = (cmv_block_content){ .type = "stubbed", .blob = &t->held[i] };
	cmv_message m = { .role = CMV_ROLE_TOOL, .kind = CMV_KIND_EVENT, .blocks = blocks, .n_blocks = t->n_held };
	error = cmv_node_write(out, t->repo, NULL, &m);
	if (blocks != stack)
		free(blocks);
	t->n_held = 0;
	return error;
}

/* Tokens of text in the report's model (0 without one). */
static int64_t tokens_of(trim_ctx *t, const char *s, size_t len)
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

static int64_t tokens_of_blob(trim_ctx *t, const cmv_id *blob)
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

/* Replace `old` in its parent by `neu`. */
static int replace_item(cJSON *parent, cJSON *old, cJSON *neu)
{
	if (!neu)
		return CMV_ENOMEM;
	/* a member keeps its key (ReplaceItemViaPointer would leave the new item without one) */
	if (!(old->string ? cJSON_ReplaceItemInObjectCaseSensitive(parent, old->string, neu)
			  : cJSON_ReplaceItemViaPointer(parent, old, neu))) {
		cJSON_Delete(neu);
		return CMV_ENOMEM;
	}
	return 0;
}

/*
 * The shortest prefix of `id` that names one object in the store, 7 hex
 * digits at least (as git abbreviates): a stub pays for every digit in
 * tokens, on every request that carries it.
 */
static int abbrev(char hex[CMV_ID_HEXSZ + 1], trim_ctx *t, const cmv_id *id)
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
static int make_stub(trim_ctx *t, const char *media, const char *data, size_t len, const cmv_id *id)
{
	char hex[CMV_ID_HEXSZ + 1];
	size_t lines = media ? 0 : cmv__count_lines(data, len);
	int error;

	if ((error = abbrev(hex, t, id)) < 0)
		return error;
	cmv_buf_clear(&t->stub);
	if (media)
		error = cmv_buf_printf(&t->stub, "[%s image, %zu bytes; recall %s]", media, len, hex);
	else
		error = cmv__stub_body(&t->stub, cmv__utf8_chars(data, len), lines, hex);
	return error;
}

/* Stub one input string into a blob of its own (which gives back its exact bytes). */
static int stub_value(trim_ctx *t, cJSON *v, bool *changed)
{
	const char *data = v->valuestring;
	size_t len = strlen(data);
	cmv_id id;
	int error;

	cmv_id_hash(&id, data, len);
	if ((error = make_stub(t, NULL, data, len, &id)) < 0 || t->stub.size >= len)
		return error; /* a stub no shorter than what it stands for saves nothing */
	if ((error = cmv_blob_write(&id, t->repo, data, len)) < 0 || (error = hold(t, &id)) < 0)
		return error;
	rule_add(t, CMV_TRIM_TOOL_INPUTS, 1, (int64_t)len - (int64_t)t->stub.size,
		 tokens_of(t, data, len) - tokens_of(t, t->stub.ptr, t->stub.size));
	if (!cJSON_SetValuestring(v, t->stub.ptr))
		return CMV_ENOMEM;
	*changed = true;
	return 0;
}

/* Every string over the threshold, nested ones too. */
static int stub_strings(trim_ctx *t, cJSON *v, bool *changed)
{
	int error = 0;
	if (cJSON_IsString(v))
		return cmv__utf8_chars(v->valuestring, strlen(v->valuestring)) > t->threshold ? stub_value(t, v, changed) : 0;
	for (cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c && !error; c = c->next)
		error = stub_strings(t, c, changed);
	return error;
}

static size_t json_chars(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	size_t n = s ? cmv__utf8_chars(s, strlen(s)) : 0;
	cJSON_free(s);
	return n;
}

/* The largest string below `v` worth a stub, and its parent. */
static void largest(cJSON *v, cJSON **best, size_t *best_len)
{
	for (cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; c; c = c->next) {
		/* strings only: their stub gives back their exact bytes (a nested value printed again might not) */
		size_t n = cJSON_IsString(c) ? cmv__utf8_chars(c->valuestring, strlen(c->valuestring)) : 0;
		if (n > *best_len) {
			*best = c;
			*best_len = n;
		}
		largest(c, best, best_len);
	}
}

/*
 * A tool input over the threshold is cut down to it: first every string
 * over the threshold (nested ones too: MultiEdit's edits, a Bash heredoc),
 * then the largest remaining strings (an Edit's two halves) until it fits
 * or nothing is worth a stub. Each stubbed string is a blob of its own,
 * which gives back its exact bytes.
 */
static int fit_input(trim_ctx *t, cJSON *in, bool *changed)
{
	int error;
	if (json_chars(in) <= t->threshold)
		return 0;
	if ((error = stub_strings(t, in, changed)) < 0)
		return error;
	for (int guard = 0; guard < 64 && json_chars(in) > t->threshold; guard++) {
		cJSON *best = NULL;
		size_t len = 160; /* below this a stub saves too little to hide the value */
		largest(in, &best, &len);
		if (!best)
			break;
		bool did = false;
		if ((error = stub_value(t, best, &did)) < 0)
			return error;
		if (!did)
			break;
		*changed = true;
	}
	return 0;
}

/* A text block whose text is a new blob (a stub). */
static cJSON *text_block(record_edit *e, const char *text, size_t len)
{
	cJSON *b = cJSON_CreateObject(), *ph;
	cmv_block_content bc = { .type = "text", .data = text, .len = len };
	if (!b || !cJSON_AddStringToObject(b, "type", "text") || !(ph = record_edit_add(e, 'S', &bc))) {
		cJSON_Delete(b);
		return NULL;
	}
	cJSON_AddItemToObject(b, "text", ph);
	return b;
}

/* An image block of a message: a text stub naming the image's blob. */
static int stub_image(trim_ctx *t, record_edit *e, cJSON *content, cJSON *el, const cmv_id *blob, const char *data,
		      size_t len, const char *media)
{
	int error;
	if ((error = make_stub(t, media ? media : "unknown", data, len, blob)) < 0)
		return error;
	rule_add(t, CMV_TRIM_IMAGES, 1, (int64_t)len - (int64_t)t->stub.size,
		 (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) - tokens_of(t, t->stub.ptr, t->stub.size));
	return replace_item(content, el, text_block(e, t->stub.ptr, t->stub.size));
}

/* A tool result's content: images stubbed, and the whole stubbed when over the threshold. */
static int trim_result(trim_ctx *t, record_edit *e, cJSON *el, bool *changed)
{
	cJSON *content = cJSON_GetObjectItemCaseSensitive(el, "content");
	const char *id = cj_str(el, "tool_use_id");
	size_t k = record_edit_block(e, content);
	cmv_id blob;
	int error;

	if (!content)
		return 0;
	if (k != SIZE_MAX) {
		blob = e->node->blocks[k].blob;
		if ((error = cmv_blob_read(&t->blob, t->repo, &blob)) < 0)
			return error;
	} else if (cJSON_IsString(content)) {
		if ((error = cmv_buf_set(&t->blob, content->valuestring, strlen(content->valuestring))) < 0)
			return error;
		cmv_id_hash(&blob, t->blob.ptr, t->blob.size);
	} else {
		return 0; /* inline structure the importer did not cut: small by construction */
	}
	if (k == SIZE_MAX || e->enc[k] == 'S') {
		if (cmv__utf8_chars(t->blob.ptr, t->blob.size) <= t->threshold)
			return 0;
	} else {
		/* blocks: images are stubbed whatever the size; the text decides the rest */
		cJSON *arr = cJSON_ParseWithLength(t->blob.ptr ? t->blob.ptr : "", t->blob.size);
		size_t chars = 0;
		bool images = false;
		for (cJSON *c = cJSON_IsArray(arr) ? arr->child : NULL; c; c = c->next) {
			const char *ct = cj_str(c, "type");
			if (ct && !strcmp(ct, "text") && cj_str(c, "text"))
				chars += cmv__utf8_chars(cj_str(c, "text"), strlen(cj_str(c, "text")));
			else if (ct && !strcmp(ct, "image"))
				images = true;
			else if (!ct || strcmp(ct, "image")) {
				char *s = cJSON_PrintUnformatted(c);
				chars += s ? strlen(s) : 0;
				cJSON_free(s);
			}
		}
		if (!arr || (chars <= t->threshold && !images)) {
			cJSON_Delete(arr);
			return 0;
		}
		if (chars <= t->threshold) {
			/* small text: keep it, stub each image into a blob of its own */
			for (cJSON *c = arr->child, *next; c; c = next) {
				next = c->next;
				const char *ct = cj_str(c, "type");
				const cJSON *src = cJSON_GetObjectItemCaseSensitive(c, "source");
				const char *data = cj_str(src, "data");
				if (!ct || strcmp(ct, "image"))
					continue;
				cmv_id iid;
				const char *d = data ? data : "";
				if ((error = cmv_blob_write(&iid, t->repo, d, strlen(d))) < 0 || (error = hold(t, &iid)) < 0 ||
				    (error = make_stub(t, cj_str(src, "media_type") ? cj_str(src, "media_type") : "unknown", d, strlen(d), &iid)) < 0)
					break;
				rule_add(t, CMV_TRIM_IMAGES, 1, (int64_t)strlen(d) - (int64_t)t->stub.size,
					 (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) -
						 tokens_of(t, t->stub.ptr, t->stub.size));
				cJSON *tb = cJSON_CreateObject();
				if (!tb || !cJSON_AddStringToObject(tb, "type", "text") ||
				    !cJSON_AddStringToObject(tb, "text", t->stub.ptr)) {
					cJSON_Delete(tb);
					error = CMV_ENOMEM;
					break;
				}
				cJSON_ReplaceItemViaPointer(arr, c, tb);
			}
			char *s = error ? NULL : cJSON_PrintUnformatted(arr);
			cJSON_Delete(arr);
			if (error)
				return error;
			if (!s)
				return CMV_ENOMEM;
			const cmv_block *ob = &e->node->blocks[k];
			cmv_block_content bc = { .type = ob->type, .data = s, .len = strlen(s), .tool_id = ob->tool_id,
						 .media_type = ob->media_type, .flags = ob->flags };
			error = replace_item(el, content, record_edit_add(e, 'R', &bc));
			cJSON_free(s);
			*changed = true;
			return error;
		}
		cJSON_Delete(arr);
	}
	/* the whole result becomes a stub; the stub names the blob that holds it */
	if ((error = make_stub(t, NULL, t->blob.ptr ? t->blob.ptr : "", t->blob.size, &blob)) < 0)
		return error;
	if (t->stub.size >= t->blob.size)
		return 0; /* a stub no shorter than what it stands for saves nothing */
	if (k == SIZE_MAX && (error = cmv_blob_write(&blob, t->repo, t->blob.ptr, t->blob.size)) < 0)
		return error;
	rule_add(t, CMV_TRIM_TOOL_RESULTS, 1, (int64_t)t->blob.size - (int64_t)t->stub.size,
		 tokens_of_blob(t, &blob) - tokens_of(t, t->stub.ptr, t->stub.size));
	cmv_block_content bc = { .type = "tool_result", .data = t->stub.ptr, .len = t->stub.size, .tool_id = id,
				 .flags = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(el, "is_error")) ? CMV_BLOCK_ERROR : 0 };
	*changed = true;
	return replace_item(el, content, record_edit_add(e, 'S', &bc));
}

/*
 * A snapshot tool's input restated by a later call (every TodoWrite but the
 * last): its state member becomes a stub whose blob is that member's exact
 * bytes in the call (t->blob holds the input as recorded).
 */
static int stub_superseded(trim_ctx *t, cJSON *in, const char *name, const char *id, bool *changed)
{
	for (size_t s = 0; s < CMV_ARRAY_SIZE(snapshot_inputs); s++) {
		const char *key = snapshot_inputs[s].key;
		jspan obj = { t->blob.ptr, t->blob.ptr + t->blob.size }, val;
		cJSON *member = cJSON_GetObjectItemCaseSensitive(in, key);
		char hex[CMV_ID_HEXSZ + 1];
		cmv_id blob;
		int error;

		if (!name || !id || strcmp(name, snapshot_inputs[s].tool) || !t->last_snapshot[s] ||
		    !strcmp(id, t->last_snapshot[s]) || !member || !t->blob.ptr)
			continue;
		obj.p = jscan_ws(obj.p, obj.end);
		if (jscan_member(&val, obj, key) != 1)
			continue;
		size_t len = (size_t)(val.end - val.p);
		cmv_id_hash(&blob, val.p, len);
		if ((error = abbrev(hex, t, &blob)) < 0)
			return error;
		cmv_buf_clear(&t->stub);
		if ((error = cmv_buf_printf(&t->stub, "[superseded; recall %s]", hex)) < 0)
			return error;
		if (t->stub.size + 2 >= len)
			continue; /* as its quoted string, the stub would be no shorter */
		if ((error = cmv_blob_write(&blob, t->repo, val.p, len)) < 0 || (error = hold(t, &blob)) < 0)
			return error;
		rule_add(t, CMV_TRIM_SUPERSEDED, 1, (int64_t)len - (int64_t)t->stub.size - 2,
			 tokens_of(t, val.p, len) - tokens_of(t, t->stub.ptr, t->stub.size));
		if (replace_item(in, member, cJSON_CreateString(t->stub.ptr)) < 0)
			return CMV_ENOMEM;
		*changed = true;
	}
	return 0;
}

/* A tool call: its input's large strings stubbed; its id and what it was about remembered. */
static int trim_call(trim_ctx *t, record_edit *e, cJSON *el, bool *changed)
{
	cJSON *input = cJSON_GetObjectItemCaseSensitive(el, "input"), *parsed = NULL, *in;
	const char *id = cj_str(el, "id");
	size_t k = record_edit_block(e, input);
	bool stubbed = false;
	int error = 0;

	if (k != SIZE_MAX && e->enc[k] == 'R') {
		if ((error = cmv_blob_read(&t->blob, t->repo, &e->node->blocks[k].blob)) < 0)
			return error;
		parsed = cJSON_ParseWithLength(t->blob.ptr ? t->blob.ptr : "", t->blob.size);
		in = parsed;
	} else {
		in = input;
	}
	if (id)
		error = cmv__strmap_put(&t->calls, id, 0, NULL);
	if (!error && parsed)
		error = stub_superseded(t, parsed, cj_str(el, "name"), id, &stubbed);
	if (!error && in && (k == SIZE_MAX || t->blob.size > t->threshold))
		error = fit_input(t, in, &stubbed);
	if (!error && stubbed && parsed) {
		char *s = cJSON_PrintUnformatted(parsed);
		const cmv_block *ob = &e->node->blocks[k];
		cmv_block_content bc = { .type = ob->type, .data = s, .len = s ? strlen(s) : 0, .tool_id = ob->tool_id,
					 .tool_name = ob->tool_name, .media_type = ob->media_type, .flags = ob->flags };
		error = s ? replace_item(el, input, record_edit_add(e, 'R', &bc)) : CMV_ENOMEM;
		cJSON_free(s);
	}
	if (stubbed)
		*changed = true;
	cJSON_Delete(parsed);
	return error;
}

/* The uuid a record's children hang from once dropped records are skipped. */
static const char *resolve_uuid(const trim_ctx *t, const char *uuid)
{
	const char *to;
	for (int guard = 0; uuid && guard < 1 << 20 && cmv__strmap_get(&t->remap, uuid, NULL, &to); guard++)
		uuid = to;
	return uuid;
}

int cmv__node_copy_below(cmv_id *tail, cmv_repo *repo, const cmv_node *n)
{
	cmv_block_content stack[16], *blocks = stack;
	int error;

	if (n->n_blocks > CMV_ARRAY_SIZE(stack) && !(blocks = cmv__calloc(n->n_blocks, sizeof(*blocks))))
		return CMV_ENOMEM;
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
static int carry(trim_ctx *t, const cmv_node *n)
{
	if (t->parent_kept) {
		t->tail = n->id; /* the same node: same parent, same bytes */
		return 0;
	}
	return cmv__node_copy_below(&t->tail, t->repo, n);
}

static int pending_push(trim_ctx *t, const char *id)
{
	int error = cmv__array_grow((void **)&t->pending, &t->cap_pending, t->n_pending, sizeof(*t->pending));
	if (error < 0)
		return error;
	if (!(t->pending[t->n_pending] = cmv__strdup(id)))
		return CMV_ENOMEM;
	t->n_pending++;
	return 0;
}

/* A deterministic uuid for a record trim adds, from what it answers. */
static void derived_uuid(char out[37], const char *seed)
{
	cmv_id h;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_id_hash(&h, seed, strlen(seed));
	cmv_id_tostr(hex, sizeof(hex), &h);
	hex[12] = '4';
	hex[16] = "89ab"[hex[16] % 4];
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static const char *const answer_copies[] = { "isSidechain", "userType", "cwd", "sessionId", "version", "gitBranch",
					     "timestamp" };

/* What an answer copies from its call's record: the fields every Claude Code line has. */
static cJSON *answer_base(const cJSON *rec)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && i < CMV_ARRAY_SIZE(answer_copies); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, answer_copies[i]);
		cJSON *c = v ? cJSON_Duplicate(v, true) : NULL;
		if (v && (!c || !cJSON_AddItemToObject(o, answer_copies[i], c))) {
			cJSON_Delete(c);
			cJSON_Delete(o);
			return NULL;
		}
	}
	return o;
}

/* Answer the pending calls with an error result, in a Claude Code line after their message. */
static int answer_pending(trim_ctx *t)
{
	/* the words the renderer answers such a call with, so a trimmed branch reads the same */
	static const char answer[] = "[cmv: no result was recorded for this call]";
	record_edit e;
	cJSON *o = cJSON_CreateObject(), *msg, *content;
	char uuid[37];
	int error = 0;

	if (!t->n_pending) {
		cJSON_Delete(o);
		return 0;
	}
	if ((error = record_edit_new(&e, "claude-code", o)) < 0)
		return error;
	cmv_buf_clear(&t->text);
	for (size_t i = 0; i < t->n_pending; i++)
		cmv_buf_puts(&t->text, t->pending[i]);
	derived_uuid(uuid, t->text.ptr ? t->text.ptr : "");
	if (!(t->last_uuid[0] ? cJSON_AddStringToObject(o, "parentUuid", t->last_uuid) : cJSON_AddNullToObject(o, "parentUuid")))
		error = CMV_ENOMEM;
	for (size_t i = 0; !error && i + 1 < CMV_ARRAY_SIZE(answer_copies); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->pending_base, answer_copies[i]);
		if (v && !cJSON_AddItemToObject(o, answer_copies[i], cJSON_Duplicate(v, true)))
			error = CMV_ENOMEM;
	}
	if (!error && (!cJSON_AddStringToObject(o, "type", "user") || !(msg = cJSON_AddObjectToObject(o, "message")) ||
		       !cJSON_AddStringToObject(msg, "role", "user") || !(content = cJSON_AddArrayToObject(msg, "content"))))
		error = CMV_ENOMEM;
	for (size_t i = 0; !error && i < t->n_pending; i++) {
		cJSON *b = cJSON_CreateObject(), *ph;
		cmv_block_content bc = { .type = "tool_result", .data = answer, .len = sizeof(answer) - 1,
					 .tool_id = t->pending[i], .flags = CMV_BLOCK_ERROR };
		if (!b || !cJSON_AddItemToArray(content, b) || !cJSON_AddStringToObject(b, "tool_use_id", t->pending[i]) ||
		    !cJSON_AddStringToObject(b, "type", "tool_result") || !(ph = record_edit_add(&e, 'S', &bc)) ||
		    !cJSON_AddItemToObject(b, "content", ph) || !cJSON_AddTrueToObject(b, "is_error"))
			error = CMV_ENOMEM;
		rule_add(t, CMV_TRIM_UNANSWERED, 1, -(int64_t)sizeof(answer), -tokens_of(t, answer, sizeof(answer) - 1));
	}
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(t->pending_base, "timestamp");
	if (!error && (!cJSON_AddStringToObject(o, "uuid", uuid) ||
		       (ts && !cJSON_AddItemToObject(o, "timestamp", cJSON_Duplicate(ts, true)))))
		error = CMV_ENOMEM;
	if (!error)
		error = record_edit_write(&t->tail, &e, t->repo, cmv_id_is_none(&t->tail) ? NULL : &t->tail,
					  CMV_ROLE_USER, CMV_KIND_MESSAGE, &t->pending_from, 1);
	/* whatever hung from the call's line now hangs from its answer */
	if (!error && t->last_uuid[0])
		error = cmv__strmap_put(&t->remap, t->last_uuid, 0, uuid);
	if (!error) {
		snprintf(t->last_uuid, sizeof(t->last_uuid), "%s", uuid);
		t->parent_kept = false;
		t->rep->records_after++;
	}
	record_edit_dispose(&e);
	for (size_t i = 0; i < t->n_pending; i++)
		free(t->pending[i]);
	t->n_pending = 0;
	cJSON_Delete(t->pending_base);
	t->pending_base = NULL;
	return error;
}

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* Drop a record: its children hang from its parent instead. */
static int drop_record(trim_ctx *t, const cJSON *root, cmv_trim_rule rule, size_t bytes)
{
	const char *uuid = cj_str(root, "uuid"), *parent = cj_str(root, "parentUuid");
	rule_add(t, rule, 1, (int64_t)bytes, 0);
	t->parent_kept = false;
	return uuid ? cmv__strmap_put(&t->remap, uuid, 0, resolve_uuid(t, parent)) : 0;
}

/* The members by which a Claude Code record names the record it hangs from. */
static const char *const uuid_links[] = { "parentUuid", "leafUuid" };

static int trim_cc(trim_ctx *t, const cmv_node *n)
{
	record_edit e;
	bool changed = false;
	int error;

	t->n_held = 0;
	if ((error = record_edit_load(&e, n)) < 0)
		return error;
	cJSON *root = e.root;
	const char *type = cj_str(root, "type");
	size_t tpl_bytes = n->meta_len;
	cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
	const char *group = is(type, "assistant") ? cj_str(msg, "id") : NULL;

	bool is_msg = (is(type, "user") || is(type, "assistant")) && cJSON_IsObject(msg);

	if (t->live && t->index >= t->frozen_from)
		goto relink;

	/* calls of the previous message with no result: answered once the next message begins */
	if (t->n_pending && is_msg && !(group && !strcmp(group, t->pending_group)) && (error = answer_pending(t)) < 0)
		goto done;
	if (is(type, "progress") || is(type, "file-history-snapshot") || is(type, "queue-operation")) {
		error = drop_record(t, root, is(type, "progress") ? CMV_TRIM_PROGRESS
					     : is(type, "queue-operation") ? CMV_TRIM_QUEUE : CMV_TRIM_FILE_HISTORY,
				    tpl_bytes);
		goto done;
	}
	cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	for (cJSON *el = is_msg && cJSON_IsArray(content) ? content->child : NULL, *next; el && !error; el = next) {
		next = el->next;
		const char *bt = cj_str(el, "type");
		if (is(bt, "thinking") || is(bt, "redacted_thinking")) {
			size_t k = record_edit_block(&e, cJSON_GetObjectItemCaseSensitive(el, is(bt, "thinking") ? "thinking" : "data"));
			char *s = cJSON_PrintUnformatted(el);
			rule_add(t, CMV_TRIM_THINKING, 1, s ? (int64_t)strlen(s) : 0,
				 k != SIZE_MAX ? tokens_of_blob(t, &n->blocks[k].blob) : 0);
			cJSON_free(s);
			cJSON_Delete(cJSON_DetachItemViaPointer(content, el));
			changed = true;
		} else if (is(bt, "image")) {
			cJSON *src = cJSON_GetObjectItemCaseSensitive(el, "source");
			size_t k = record_edit_block(&e, cJSON_GetObjectItemCaseSensitive(src, "data"));
			if (k == SIZE_MAX)
				continue; /* an image by URL: a few tokens of text, kept */
			if ((error = cmv_blob_read(&t->blob, t->repo, &n->blocks[k].blob)) < 0)
				break;
			error = stub_image(t, &e, content, el, &n->blocks[k].blob, t->blob.ptr ? t->blob.ptr : "",
					   t->blob.size, cj_str(src, "media_type"));
			changed = true;
		} else if (is(bt, "tool_use")) {
			const char *id = cj_str(el, "id");
			error = trim_call(t, &e, el, &changed);
			if (!error && !t->live && id && !cmv__strmap_get(&t->results, id, NULL, NULL) && group) {
				if (!t->n_pending) {
					snprintf(t->pending_group, sizeof(t->pending_group), "%s", group);
					cJSON_Delete(t->pending_base);
					if (!(t->pending_base = answer_base(root))) {
						error = CMV_ENOMEM;
						break;
					}
					t->pending_from = n->id;
				}
				error = pending_push(t, id);
			}
		} else if (is(bt, "tool_result")) {
			const char *id = cj_str(el, "tool_use_id");
			if (!id || !cmv__strmap_get(&t->calls, id, NULL, NULL)) {
				/* its call is gone (before the compaction): a result with no call is refused */
				char *s = cJSON_PrintUnformatted(el);
				rule_add(t, CMV_TRIM_ORPHANS, 1, s ? (int64_t)strlen(s) : 0, 0);
				cJSON_free(s);
				cJSON_Delete(cJSON_DetachItemViaPointer(content, el));
				changed = true;
				continue;
			}
			error = trim_result(t, &e, el, &changed);
		}
	}
	if (error)
		goto done;
	if (is_msg && cJSON_IsArray(content) && !content->child) {
		error = drop_record(t, root, CMV_TRIM_EMPTY, 0);
		goto done;
	}
	cJSON *ui = cJSON_GetObjectItemCaseSensitive(root, "toolUseResult");
	if (ui) {
		size_t k = record_edit_block(&e, ui);
		int64_t bytes = 0;
		if (k != SIZE_MAX && (error = cmv_blob_read(&t->blob, t->repo, &n->blocks[k].blob)) == 0)
			bytes = (int64_t)t->blob.size;
		if (error)
			goto done;
		rule_add(t, CMV_TRIM_UI_COPIES, 1, bytes, 0);
		cJSON_DeleteItemFromObjectCaseSensitive(root, "toolUseResult");
		changed = true;
	}
	if (is(type, "assistant") && cJSON_GetObjectItemCaseSensitive(msg, "usage")) {
		rule_add(t, CMV_TRIM_USAGE, 1, 0, 0);
		cJSON_DeleteItemFromObjectCaseSensitive(msg, "usage");
		changed = true;
	}
relink:
	/* children of dropped records hang from what is left */
	for (size_t i = 0; i < CMV_ARRAY_SIZE(uuid_links); i++) {
		const char *p = cj_str(root, uuid_links[i]), *to = p ? resolve_uuid(t, p) : NULL;
		if (p && to != p) {
			cJSON *nv = to ? cJSON_CreateString(to) : cJSON_CreateNull();
			if (!nv || !cJSON_ReplaceItemInObjectCaseSensitive(root, uuid_links[i], nv)) {
				cJSON_Delete(nv);
				error = CMV_ENOMEM;
				goto done;
			}
			changed = true;
		}
	}
	if (cj_str(root, "uuid") && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "isSidechain")))
		snprintf(t->last_uuid, sizeof(t->last_uuid), "%s", cj_str(root, "uuid"));
	if (!changed) {
		error = carry(t, n);
	} else {
		cmv_id from[2] = { n->id };
		size_t n_from = 1;
		if (t->n_held && (error = write_holder(&from[1], t)) == 0)
			n_from = 2;
		if (!error)
			error = record_edit_write(&t->tail, &e, t->repo, cmv_id_is_none(&t->tail) ? NULL : &t->tail, n->role,
						  n->kind, from, n_from);
		t->parent_kept = false;
	}
	if (!error)
		t->rep->records_after++;
done:
	record_edit_dispose(&e);
	return error;
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
		error = carry(t, n);
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
static int trim_templated(trim_ctx *t, const cmv_node *n)
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
		return CMV_ENOMEM;
	}
	if ((error = record_edit_load(&e, n)) < 0)
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
		if ((error = make_stub(t, NULL, t->blob.ptr ? t->blob.ptr : "", t->blob.size, &b->blob)) < 0)
			break;
		if (t->stub.size >= t->blob.size)
			continue;
		rule_add(t, CMV_TRIM_TOOL_RESULTS, 1, (int64_t)t->blob.size - (int64_t)t->stub.size,
			 tokens_of_blob(t, &b->blob) - tokens_of(t, t->stub.ptr, t->stub.size));
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
	record_edit_dispose(&e);
	free(blocks);
	free(stub_off);
	cmv_buf_dispose(&stubs);
	return error;
}

/* A message appended in cmv (no source record): the same rules, on its blocks. */
static int trim_native(trim_ctx *t, const cmv_node *n)
{
	cmv_block_content *blocks = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(*blocks)) : NULL;
	cmv_buf stubs = CMV_BUF_INIT(CMV_BUF_CONTENT);
	size_t nb = 0, *stub_off = n->n_blocks ? cmv__calloc(n->n_blocks, sizeof(size_t)) : NULL;
	bool changed = false;
	int error = 0;

	if (n->n_blocks && (!blocks || !stub_off)) {
		error = CMV_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n->n_blocks && !error; i++) {
		const cmv_block *b = &n->blocks[i];
		cmv_block_content bc = { .type = b->type, .tool_id = b->tool_id, .tool_name = b->tool_name,
					 .media_type = b->media_type, .flags = b->flags, .blob = &b->blob };
		if (is(b->type, "thinking") || is(b->type, "redacted_thinking")) {
			rule_add(t, CMV_TRIM_THINKING, 1, 0, tokens_of_blob(t, &b->blob));
			changed = true;
			continue;
		}
		if (is(b->type, "tool_use") && b->tool_id && (error = cmv__strmap_put(&t->calls, b->tool_id, 0, NULL)) < 0)
			break;
		if (is(b->type, "tool_result") && (!b->tool_id || !cmv__strmap_get(&t->calls, b->tool_id, NULL, NULL))) {
			rule_add(t, CMV_TRIM_ORPHANS, 1, 0, 0);
			changed = true;
			continue;
		}
		if (is(b->type, "tool_result") || is(b->type, "image")) {
			if ((error = cmv_blob_read(&t->blob, t->repo, &b->blob)) < 0)
				break;
			bool image = is(b->type, "image");
			if (image || cmv__utf8_chars(t->blob.ptr ? t->blob.ptr : "", t->blob.size) > t->threshold) {
				if ((error = make_stub(t, image ? (b->media_type ? b->media_type : "unknown") : NULL,
						       t->blob.ptr ? t->blob.ptr : "", t->blob.size, &b->blob)) < 0)
					break;
				if (!image && t->stub.size >= t->blob.size) {
					blocks[nb++] = bc;
					continue;
				}
				rule_add(t, image ? CMV_TRIM_IMAGES : CMV_TRIM_TOOL_RESULTS, 1,
					 (int64_t)t->blob.size - (int64_t)t->stub.size,
					 (image ? (t->opts->model ? (int64_t)t->opts->model->image_tokens : 0) : tokens_of_blob(t, &b->blob)) -
						 tokens_of(t, t->stub.ptr, t->stub.size));
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
		rule_add(t, CMV_TRIM_EMPTY, 1, 0, 0);
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
static int find_boundary(size_t *out, cmv_walk *walk)
{
	const cmv_node *n;
	size_t i = 0, line = SIZE_MAX, msgs_since_line = 0;
	int error;

	*out = 0;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		session_tpl tpl;
		if (session_template(&tpl, n) == 0 && tpl.format && !strcmp(tpl.format, "claude-code")) {
			if (tpl_has(&tpl, "\"subtype\":\"compact_boundary\"")) {
				line = i;
				*out = i;
				msgs_since_line = 0;
			} else if (n->kind == CMV_KIND_MESSAGE) {
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
			for (size_t s = 0; s < CMV_ARRAY_SIZE(snapshot_inputs); s++)
				if (is(b->type, "tool_use") && b->tool_id && is(b->tool_name, snapshot_inputs[s].tool)) {
					free(t->last_snapshot[s]);
					if (!(t->last_snapshot[s] = cmv__strdup(b->tool_id)))
						error = CMV_ENOMEM;
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
		if ((error = session_record_bytes(&rec, &format, repo, n, true)) == CMV_ENOTFOUND) {
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

int cmv_trim(cmv_trim_report *out, cmv_repo *repo, const cmv_id *tip, const cmv_trim_options *opts)
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
		for (size_t i = boundary; (error = cmv_walk_next(&n, walk)) == 0; i++)
			if (n->kind == CMV_KIND_MESSAGE && (n->role == CMV_ROLE_USER || n->role == CMV_ROLE_ASSISTANT))
				t.frozen_from = i;
		if (error != CMV_ITEROVER)
			goto fail;
		error = 0;
	}
	if (boundary)
		rule_add(&t, CMV_TRIM_PRE_BOUNDARY, boundary, (int64_t)pre_bytes, 0);
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
		if (n->kind == CMV_KIND_SUMMARY && session_template(&tpl, n) == 0 && !strcmp(tpl.format, "codex"))
			codex_from = i + 1;
		cmv_error_clear();
	}
	if (error != CMV_ITEROVER)
		goto fail;
	error = 0;
	cmv_walk_seek(walk, boundary);
	for (t.index = boundary; (error = cmv_walk_next(&n, walk)) == 0; t.index++) {
		session_tpl tpl;
		int is_tpl = session_template(&tpl, n);
		if (is_tpl == CMV_ENOTFOUND) {
			cmv_error_clear();
			if (n->kind == CMV_KIND_MESSAGE && t.n_pending && (error = answer_pending(&t)) < 0)
				break;
			if (n->kind == CMV_KIND_MESSAGE && !(t.live && t.index >= t.frozen_from)) {
				error = trim_native(&t, n);
			} else {
				error = carry(&t, n);
				out->records_after++;
			}
		} else if (is_tpl < 0) {
			error = is_tpl;
		} else if (!strcmp(tpl.format, "claude-code")) {
			error = trim_cc(&t, n);
		} else if (!strcmp(tpl.format, "codex") && n->kind == CMV_KIND_MESSAGE && t.index >= codex_from &&
			   !(t.live && t.index >= t.frozen_from)) {
			error = trim_templated(&t, n);
		} else {
			out->untrimmed_records++;
			out->records_after++;
			error = carry(&t, n);
		}
		if (error < 0)
			break;
	}
	if (error == CMV_ITEROVER)
		error = t.n_pending ? answer_pending(&t) : 0;
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
			error = CMV_ENOMEM;
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
	for (size_t i = 0; i < CMV_ARRAY_SIZE(snapshot_inputs); i++)
		free(t.last_snapshot[i]);
	free(t.held);
	cmv_buf_dispose(&t.blob);
	cmv_buf_dispose(&t.text);
	cmv_buf_dispose(&t.stub);
	return error;
}
