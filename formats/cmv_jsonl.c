/* SPDX-License-Identifier: MIT */
/*
 * cmv's own neutral JSONL format: import and export.
 *
 * One message per line: {"role": R, "content": C} with C a string or an
 * array of Anthropic-shaped blocks, and optionally "kind" (message, event,
 * summary). How each block maps to a stored block:
 *
 *   text         blob = text
 *   thinking     blob = thinking text
 *   tool_use     blob = input as compact JSON; tool_id = id; tool_name = name
 *   tool_result  blob = content (a string as is; an array as compact JSON,
 *                media_type "application/vnd.cmv.blocks+json"); tool_id =
 *                tool_use_id; CMV_BLOCK_ERROR when is_error
 *   image        base64 source: blob = the decoded bytes, media_type from
 *                the source; any other source: blob = the source as JSON
 *   anything else  blob = the whole block as JSON (kept, never interpreted)
 *
 * Every field not listed above, on the line or on a block, is kept in the
 * node's meta ({"extra": {...}, "blocks": {"i": {...}}, "string": true}),
 * which export merges back, so import then export is JSON-equal.
 */
#include <cjson/cJSON.h>
#include "util.h"
#include "formats_int.h"

#define MEDIA_BLOCKS_JSON "application/vnd.cmv.blocks+json"
#define MEDIA_SOURCE_JSON "application/vnd.cmv.source+json"
#define MEDIA_BLOCK_JSON "application/vnd.cmv.block+json"

/* One parsed line: the message and the memory its blocks point into. */
typedef struct {
	cmv_message msg;
	cmv_block_content *blocks;
	size_t n_blocks;
	char **owned; /* strings and buffers to free */
	size_t n_owned, cap_owned;
	char *meta;
	cJSON *doc;   /* the parsed line: blocks point into its strings */
} parsed_line;

static int own(parsed_line *pl, char *p)
{
	if (!p)
		return cmv_error__oom();
	if (pl->n_owned == pl->cap_owned) {
		size_t ncap = pl->cap_owned ? pl->cap_owned * 2 : 8;
		char **n = cmv__realloc(pl->owned, ncap * sizeof(*n));
		if (!n) {
			free(p);
			return cmv_error__oom();
		}
		pl->owned = n;
		pl->cap_owned = ncap;
	}
	pl->owned[pl->n_owned++] = p;
	return 0;
}

static void parsed_line_dispose(parsed_line *pl)
{
	for (size_t i = 0; i < pl->n_owned; i++)
		free(pl->owned[i]);
	free(pl->owned);
	free(pl->blocks);
	free(pl->meta);
	cJSON_Delete(pl->doc);
	memset(pl, 0, sizeof(*pl));
}

/* Move every member of `src` not in `used` into a new object under `dst[key]`. */
static int keep_extras(cJSON *dst, const char *key, cJSON *src, const char *const *used)
{
	cJSON *extra = NULL, *c = src->child;

	while (c) {
		cJSON *next = c->next;
		bool is_used = false;
		for (size_t i = 0; used[i]; i++)
			if (!strcmp(c->string, used[i]))
				is_used = true;
		if (!is_used) {
			if (!extra && (!(extra = cJSON_CreateObject()) ||
				       !cJSON_AddItemToObject(dst, key, extra)))
				return cmv_error__oom();
			cJSON_AddItemToObject(extra, c->string, cJSON_DetachItemViaPointer(src, c));
		}
		c = next;
	}
	return 0;
}

static const char *str_field(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_block(parsed_line *pl, cJSON *blk, size_t i, cJSON *meta_blocks)
{
	cmv_block_content *bc = &pl->blocks[i];
	cJSON *v;
	const char *type;
	char idx[32];
	char *json;
	int error;

	if (!cJSON_IsObject(blk))
		return cmv_error__set(CMV_EINVALID, "content block %zu is not an object", i);
	if (!(type = str_field(blk, "type")) || !*type)
		return cmv_error__set(CMV_EINVALID, "content block %zu has no \"type\"", i);
	memset(bc, 0, sizeof(*bc));
	/* Strings point into the parsed document, which lives as long as pl. */
	bc->type = type;
	snprintf(idx, sizeof(idx), "%zu", i);

	if (!strcmp(type, "text") || !strcmp(type, "thinking")) {
		const char *field = !strcmp(type, "text") ? "text" : "thinking";
		const char *t = str_field(blk, field);
		if (!t)
			return cmv_error__set(CMV_EINVALID, "%s block %zu has no \"%s\" string", type, i,
					      field);
		bc->data = t;
		bc->len = strlen(t);
		static const char *const used_text[] = { "type", "text", NULL };
		static const char *const used_thinking[] = { "type", "thinking", NULL };
		return keep_extras(meta_blocks, idx, blk,
				   !strcmp(type, "text") ? used_text : used_thinking);
	}
	if (!strcmp(type, "tool_use")) {
		const char *id = str_field(blk, "id"), *name = str_field(blk, "name");
		cJSON *input = cJSON_GetObjectItemCaseSensitive(blk, "input");
		if (!id || !*id || !name || !*name)
			return cmv_error__set(CMV_EINVALID, "tool_use block %zu needs \"id\" and \"name\"", i);
		if (!input)
			return cmv_error__set(CMV_EINVALID, "tool_use block %zu has no \"input\"", i);
		bc->tool_id = id;
		bc->tool_name = name;
		if ((error = own(pl, cJSON_PrintUnformatted(input))) < 0)
			return error;
		bc->data = pl->owned[pl->n_owned - 1];
		bc->len = strlen(bc->data);
		static const char *const used[] = { "type", "id", "name", "input", NULL };
		return keep_extras(meta_blocks, idx, blk, used);
	}
	if (!strcmp(type, "tool_result")) {
		const char *id = str_field(blk, "tool_use_id");
		if (!id || !*id)
			return cmv_error__set(CMV_EINVALID, "tool_result block %zu has no \"tool_use_id\"", i);
		bc->tool_id = id;
		v = cJSON_GetObjectItemCaseSensitive(blk, "content");
		if (cJSON_IsString(v)) {
			json = cmv__strdup(v->valuestring);
		} else if (cJSON_IsArray(v)) {
			json = cJSON_PrintUnformatted(v);
			bc->media_type = MEDIA_BLOCKS_JSON;
		} else if (!v) {
			json = cmv__strdup("");
			bc->media_type = "application/vnd.cmv.absent";
		} else {
			return cmv_error__set(CMV_EINVALID,
					      "tool_result block %zu: \"content\" must be a string or an array", i);
		}
		if ((error = own(pl, json)) < 0)
			return error;
		bc->data = json;
		bc->len = strlen(json);
		v = cJSON_GetObjectItemCaseSensitive(blk, "is_error");
		if (v && !cJSON_IsBool(v))
			return cmv_error__set(CMV_EINVALID, "tool_result block %zu: \"is_error\" must be a boolean", i);
		if (cJSON_IsTrue(v))
			bc->flags |= CMV_BLOCK_ERROR;
		/* false and absent differ in the source: keep false as an extra. */
		static const char *const used_true[] = { "type", "tool_use_id", "content", "is_error", NULL };
		static const char *const used_other[] = { "type", "tool_use_id", "content", NULL };
		return keep_extras(meta_blocks, idx, blk, cJSON_IsTrue(v) ? used_true : used_other);
	}
	if (!strcmp(type, "image")) {
		cJSON *src = cJSON_GetObjectItemCaseSensitive(blk, "source");
		const char *stype = src ? str_field(src, "type") : NULL;
		if (!cJSON_IsObject(src))
			return cmv_error__set(CMV_EINVALID, "image block %zu has no \"source\" object", i);
		if (stype && !strcmp(stype, "base64") && str_field(src, "data") &&
		    str_field(src, "media_type") && cJSON_GetArraySize(src) == 3) {
			cmv_buf bytes = CMV_BUF_INIT(CMV_BUF_CONTENT);
			const char *data = str_field(src, "data");
			if ((error = cmv_base64_decode(&bytes, data, strlen(data))) < 0) {
				cmv_buf_dispose(&bytes);
				cmv_error__prefix("image block %zu: ", i);
				return error;
			}
			bc->len = bytes.size;
			if ((error = own(pl, cmv_buf_detach(&bytes))) < 0)
				return error;
			bc->data = pl->owned[pl->n_owned - 1];
			bc->media_type = str_field(src, "media_type");
		} else {
			if ((error = own(pl, cJSON_PrintUnformatted(src))) < 0)
				return error;
			bc->data = pl->owned[pl->n_owned - 1];
			bc->len = strlen(bc->data);
			bc->media_type = MEDIA_SOURCE_JSON;
		}
		static const char *const used[] = { "type", "source", NULL };
		return keep_extras(meta_blocks, idx, blk, used);
	}
	/* A block type cmv does not model: kept whole, as compact JSON, its numbers the doubles they were. */
	if ((error = cmv_formats__exact_numbers(blk)) < 0 || (error = own(pl, cJSON_PrintUnformatted(blk))) < 0)
		return error;
	bc->data = pl->owned[pl->n_owned - 1];
	bc->len = strlen(bc->data);
	bc->media_type = MEDIA_BLOCK_JSON;
	return 0;
}

static int parse_line(parsed_line *pl, const char *text, size_t len)
{
	cJSON *root = NULL, *meta = NULL, *meta_blocks = NULL, *content, *v;
	const char *end = NULL;
	size_t bad;
	int error = 0;

	memset(pl, 0, sizeof(*pl));
	if (!cmv__utf8_valid(text, len, &bad))
		return cmv_error__set(CMV_EINVALID, "invalid UTF-8 at byte %zu", bad + 1);
	if (!(root = cJSON_ParseWithLengthOpts(text, len, &end, 0))) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
		return cmv_error__set(CMV_EINVALID, "malformed JSON near byte %zu%s", off + 1,
				      off + 1 >= len ? " (truncated line?)" : "");
	}
	while (end && end < text + len && (*end == ' ' || *end == '\t'))
		end++;
	if (end && end < text + len) {
		error = cmv_error__set(CMV_EINVALID,
				       "unexpected data after the JSON value at byte %zu (two records glued on one line?)",
				       (size_t)(end - text) + 1);
		goto done;
	}
	if (!cJSON_IsObject(root)) {
		error = cmv_error__set(CMV_EINVALID, "expected a JSON object");
		goto done;
	}
	if (!(v = cJSON_GetObjectItemCaseSensitive(root, "role"))) {
		error = cmv_error__set(CMV_EINVALID, "missing field \"role\"");
		goto done;
	}
	if (!cJSON_IsString(v)) {
		error = cmv_error__set(CMV_EINVALID, "field \"role\" must be a string");
		goto done;
	}
	if ((error = cmv_role_parse(&pl->msg.role, v->valuestring)) < 0)
		goto done;
	pl->msg.kind = CMV_KIND_MESSAGE;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "kind"))) {
		if (!cJSON_IsString(v)) {
			error = cmv_error__set(CMV_EINVALID, "field \"kind\" must be a string");
			goto done;
		}
		if ((error = cmv_kind_parse(&pl->msg.kind, v->valuestring)) < 0)
			goto done;
	}
	if (!(meta = cJSON_CreateObject()) || !(meta_blocks = cJSON_CreateObject())) {
		error = cmv_error__oom();
		goto done;
	}
	content = cJSON_GetObjectItemCaseSensitive(root, "content");
	if (!content) {
		error = cmv_error__set(CMV_EINVALID, "missing field \"content\"");
		goto done;
	}
	if (cJSON_IsString(content)) {
		if (!(pl->blocks = cmv__calloc(1, sizeof(*pl->blocks)))) {
			error = cmv_error__oom();
			goto done;
		}
		pl->blocks[0].type = "text";
		pl->blocks[0].data = content->valuestring;
		pl->blocks[0].len = strlen(content->valuestring);
		pl->n_blocks = 1;
		cJSON_AddTrueToObject(meta, "string");
	} else if (cJSON_IsArray(content)) {
		size_t n = (size_t)cJSON_GetArraySize(content), i = 0;
		if (!(pl->blocks = cmv__calloc(n ? n : 1, sizeof(*pl->blocks)))) {
			error = cmv_error__oom();
			goto done;
		}
		for (cJSON *blk = content->child; blk; blk = blk->next, i++)
			if ((error = parse_block(pl, blk, i, meta_blocks)) < 0)
				goto done;
		pl->n_blocks = n;
	} else {
		error = cmv_error__set(CMV_EINVALID, "field \"content\" must be a string or an array");
		goto done;
	}
	static const char *const used[] = { "role", "content", "kind", NULL };
	if ((error = keep_extras(meta, "extra", root, used)) < 0)
		goto done;
	if (meta_blocks->child) {
		cJSON_AddItemToObject(meta, "blocks", meta_blocks);
		meta_blocks = NULL;
	}
	if (meta->child) {
		if (!(pl->meta = cJSON_PrintUnformatted(meta))) {
			error = cmv_error__oom();
			goto done;
		}
		pl->msg.meta = pl->meta;
		pl->msg.meta_len = strlen(pl->meta);
	}
	pl->msg.blocks = pl->blocks;
	pl->msg.n_blocks = pl->n_blocks;
	pl->doc = root;
	root = NULL;
done:
	cJSON_Delete(root);
	cJSON_Delete(meta);
	cJSON_Delete(meta_blocks);
	if (error < 0) {
		parsed_line_dispose(pl);
		/* cJSON may fail on allocation without a message of ours */
		if (!cmv_error_last())
			cmv_error__set(error, "cannot parse the line");
	}
	return error;
}

struct cmv__parsed_message {
	parsed_line pl;
};

int cmv__message_parse(cmv__parsed_message **out, const char *text, size_t len)
{
	cmv__parsed_message *p;
	int error;

	*out = NULL;
	if (!(p = cmv__calloc(1, sizeof(*p))))
		return cmv_error__oom();
	if ((error = parse_line(&p->pl, text, len)) < 0) {
		free(p);
		return error;
	}
	*out = p;
	return 0;
}

const cmv_message *cmv__parsed_message_get(const cmv__parsed_message *p)
{
	return &p->pl.msg;
}

void cmv__parsed_message_free(cmv__parsed_message *p)
{
	if (!p)
		return;
	parsed_line_dispose(&p->pl);
	free(p);
}

static int import_cmv_file_filled(cmv_import_result *out, cmv_repo *repo, const char *path,
			const cmv_import_options *opts)
{
	cmv_import_options defaults = CMV_IMPORT_OPTIONS_INIT;
	cmv_linereader r;
	cmv_import_result res;
	cmv_buf branch = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_ref *ref = NULL;
	cmv_id head;
	bool have_head = false;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (!opts)
		opts = &defaults;
	if (opts->version != CMV_IMPORT_OPTIONS_VERSION)
		return cmv_error__set(CMV_EINVALID, "unknown import options version %u", opts->version);
	memset(&res, 0, sizeof(res));
	cmv_id_clear(&head);
	if (opts->branch)
		error = cmv_buf_puts(&branch, opts->branch);
	else
		error = cmv_formats__branch_name_from_path(&branch, path);
	if (error < 0)
		return error;
	if (!cmv_ref_name_is_valid(branch.ptr)) {
		error = cmv_error__set(CMV_EINVALID, "invalid branch name '%s'", branch.ptr);
		cmv_buf_dispose(&branch);
		return error;
	}
	if ((error = cmv_linereader_open(&r, path, opts->max_line_bytes)) < 0) {
		cmv_linereader_close(&r);
		cmv_buf_dispose(&branch);
		return error;
	}
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;

	while ((error = cmv_linereader_next(&r)) == 0) {
		parsed_line pl;
		const char *p = r.line.ptr;
		while (*p == ' ' || *p == '\t')
			p++;
		if ((size_t)(p - r.line.ptr) == r.line.size)
			continue; /* blank lines separate nothing and carry nothing */
		error = parse_line(&pl, r.line.ptr, r.line.size);
		if (error == 0) {
			cmv_id id;
			error = cmv_node_write(&id, repo, have_head ? &head : NULL, &pl.msg);
			parsed_line_dispose(&pl);
			if (error == 0) {
				head = id;
				have_head = true;
				res.records++;
			}
		}
		if (error == CMV_EINVALID && (opts->flags & CMV_IMPORT_LENIENT)) {
			if (res.skipped < CMV_IMPORT_SKIPPED_LISTED)
				res.skipped_lines[res.skipped] = r.lineno;
			res.skipped++;
			cmv_error_clear();
			error = 0;
			continue;
		}
		if (error < 0) {
			if (error == CMV_EINVALID && r.last_unterminated)
				cmv_error__prefix("truncated last line (is the file still being written?): ");
			cmv_error__prefix("%s:%zu: ", path, r.lineno);
			goto fail;
		}
		if (opts->progress && opts->progress(res.records, opts->progress_payload)) {
			error = cmv_error__set(CMV_EUSER, "%s: import cancelled", path);
			goto fail;
		}
	}
	if (error != CMV_ITEROVER)
		goto fail;
	error = 0;
	if (!have_head) {
		error = cmv_error__set(CMV_EINVALID, "%s: no messages to import", path);
		goto fail;
	}

	error = cmv_ref_lookup(&ref, repo, branch.ptr);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		if ((error = cmv_branch_create(repo, branch.ptr, &head, NULL)) < 0)
			goto fail;
		res.outcome = CMV_IMPORT_CREATED;
	} else if (error < 0) {
		goto fail;
	} else if (ref->type != CMV_REF_BRANCH) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is a snapshot; import into another branch",
				       branch.ptr);
		goto fail;
	} else if (cmv_id_equal(&ref->target, &head)) {
		res.outcome = CMV_IMPORT_UNCHANGED;
	} else {
		int anc = cmv_id_is_none(&ref->target) ? 1 : cmv_is_ancestor(repo, &ref->target, &head);
		if (anc < 0) {
			error = anc;
			goto fail;
		}
		if (!anc && !(opts->flags & CMV_IMPORT_FORCE)) {
			error = cmv_error__set(CMV_EMODIFIED,
					       "%s: branch '%s' has diverged from the file "
					       "(import into another branch, or force it)",
					       path, branch.ptr);
			goto fail;
		}
		if ((error = cmv_branch_update(repo, branch.ptr, &head, &ref->target)) < 0)
			goto fail;
		res.outcome = anc ? CMV_IMPORT_UPDATED : CMV_IMPORT_REPLACED;
	}
	if ((error = cmv_repo_txn_commit(repo)) < 0)
		goto out;
	snprintf(res.branch, sizeof(res.branch), "%s", branch.ptr);
	res.head = head;
	*out = res;
	goto out;
fail:
	cmv_repo_txn_rollback(repo);
out:
	cmv_ref_free(ref);
	cmv_linereader_close(&r);
	cmv_buf_dispose(&branch);
	return error;
}

int cmv_import_cmv_file(cmv_import_result *out, cmv_repo *repo, const char *path,
			const cmv_import_options *opts)
{
	int error = import_cmv_file_filled(out, repo, path, opts);
	if (out)
		out->version = CMV_IMPORT_RESULT_VERSION;
	return error;
}

/* ---- export ------------------------------------------------------------ */

/* Merge the members of `extra` (if any) into `dst`, in their stored order. */
static void merge_extras(cJSON *dst, cJSON *extra)
{
	if (!cJSON_IsObject(extra))
		return;
	while (extra->child) {
		cJSON *c = cJSON_DetachItemViaPointer(extra, extra->child);
		cJSON_AddItemToObject(dst, c->string, c);
	}
}

static cJSON *block_json(const cmv_block *bl, const cmv_buf *data, cJSON *extra)
{
	cJSON *o = NULL, *v;
	const char *media = bl->media_type;

	if (media && !strcmp(media, MEDIA_BLOCK_JSON))
		return cJSON_ParseWithLength(data->ptr, data->size);
	if (!(o = cJSON_CreateObject()))
		return NULL;
	cJSON_AddStringToObject(o, "type", bl->type);
	if (!strcmp(bl->type, "text") || !strcmp(bl->type, "thinking")) {
		cJSON_AddItemToObject(o, bl->type, cJSON_CreateString(data->ptr));
	} else if (!strcmp(bl->type, "tool_use")) {
		cJSON_AddStringToObject(o, "id", bl->tool_id ? bl->tool_id : "");
		cJSON_AddStringToObject(o, "name", bl->tool_name ? bl->tool_name : "");
		v = cJSON_ParseWithLength(data->ptr, data->size);
		cJSON_AddItemToObject(o, "input", v ? v : cJSON_CreateNull());
	} else if (!strcmp(bl->type, "tool_result")) {
		cJSON_AddStringToObject(o, "tool_use_id", bl->tool_id ? bl->tool_id : "");
		if (media && !strcmp(media, MEDIA_BLOCKS_JSON)) {
			v = cJSON_ParseWithLength(data->ptr, data->size);
			cJSON_AddItemToObject(o, "content", v ? v : cJSON_CreateArray());
		} else if (!media || strcmp(media, "application/vnd.cmv.absent")) {
			cJSON_AddItemToObject(o, "content", cJSON_CreateString(data->ptr));
		}
		if (bl->flags & CMV_BLOCK_ERROR)
			cJSON_AddTrueToObject(o, "is_error");
	} else if (!strcmp(bl->type, "image")) {
		if (media && !strcmp(media, MEDIA_SOURCE_JSON)) {
			v = cJSON_ParseWithLength(data->ptr, data->size);
			cJSON_AddItemToObject(o, "source", v ? v : cJSON_CreateObject());
		} else {
			cmv_buf b64 = CMV_BUF_INIT(CMV_BUF_CONTENT * 2);
			cJSON *src = cJSON_CreateObject();
			cJSON_AddStringToObject(src, "type", "base64");
			cJSON_AddStringToObject(src, "media_type", media ? media : "");
			if (cmv_base64_encode(&b64, data->ptr, data->size) == 0)
				cJSON_AddStringToObject(src, "data", b64.ptr);
			cmv_buf_dispose(&b64);
			cJSON_AddItemToObject(o, "source", src);
		}
	}
	merge_extras(o, extra);
	return o;
}

int cmv_export_cmv(cmv_repo *repo, const cmv_id *tip, cmv_write_fn write, void *payload)
{
	cmv_walk *walk = NULL;
	const cmv_node *node;
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(write);
	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	while ((error = cmv_walk_next(&node, walk)) == 0) {
		cJSON *line = cJSON_CreateObject(), *meta = NULL, *content = NULL, *mblocks;
		char *text = NULL;
		bool as_string;

		if (!line) {
			error = cmv_error__oom();
			break;
		}
		if (node->meta && node->meta_len)
			meta = cJSON_ParseWithLength(node->meta, node->meta_len);
		mblocks = meta ? cJSON_GetObjectItemCaseSensitive(meta, "blocks") : NULL;
		as_string = meta && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "string")) &&
			    node->n_blocks == 1;
		cJSON_AddStringToObject(line, "role", cmv_role_name(node->role));
		if (node->kind != CMV_KIND_MESSAGE)
			cJSON_AddStringToObject(line, "kind", cmv_kind_name(node->kind));
		content = as_string ? NULL : cJSON_CreateArray();
		for (size_t i = 0; i < node->n_blocks && !error; i++) {
			char idx[32];
			snprintf(idx, sizeof(idx), "%zu", i);
			if ((error = cmv_blob_read(&data, repo, &node->blocks[i].blob)) < 0)
				break;
			if (as_string) {
				content = cJSON_CreateString(data.ptr);
			} else {
				cJSON *b = block_json(&node->blocks[i], &data,
						      mblocks ? cJSON_GetObjectItemCaseSensitive(mblocks, idx)
							      : NULL);
				if (!b) {
					error = cmv_error__set(CMV_ECORRUPT, "block %zu of a node cannot be exported", i);
					break;
				}
				cJSON_AddItemToArray(content, b);
			}
		}
		if (!error) {
			cJSON_AddItemToObject(line, "content", content);
			content = NULL;
			merge_extras(line, meta ? cJSON_GetObjectItemCaseSensitive(meta, "extra") : NULL);
			if (!(text = cJSON_PrintUnformatted(line)))
				error = cmv_error__oom();
		}
		if (!error && (error = write(text, strlen(text), payload)) == 0)
			error = write("\n", 1, payload);
		free(text);
		cJSON_Delete(content);
		cJSON_Delete(line);
		cJSON_Delete(meta);
		if (error)
			break;
	}
	if (error == CMV_ITEROVER)
		error = 0;
	cmv_walk_free(walk);
	cmv_buf_dispose(&data);
	return error;
}
