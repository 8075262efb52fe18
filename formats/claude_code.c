/* SPDX-License-Identifier: MIT */
/*
 * Claude Code session JSONL: lossless import, byte-identical export.
 *
 * Design notes
 *  - Every record of the file becomes a node. User and assistant lines are
 *    messages; everything else (progress, system, summary,
 *    file-history-snapshot, queue-operation, pr-link, types not seen yet)
 *    is an event, never sent to a model but kept.
 *  - The DAG is the conversation, linearized: a record follows the chain's
 *    tail in file order, so the branch's path holds the results of parallel
 *    tool calls (which Claude Code parents on their tool_use line, off the
 *    path from the newest message) and crosses compaction boundaries. A new
 *    prompt whose parentUuid points at or before an earlier message of the
 *    chain is a rewind: the chain forks there, and the abandoned tail keeps
 *    a branch. Sidechain records hang by their parentUuid, off the chain.
 *  - A record is stored as a template: its exact bytes with the content cut
 *    out. Each cut is a hole, marked by a NUL byte (which cannot occur in
 *    JSON text), and filled from a block's blob on export: a string is
 *    re-escaped exactly as JavaScript's JSON.stringify does (the importer
 *    checks that this gives back the original bytes, and leaves the text
 *    in the template when it does not); tool inputs, array results and the
 *    UI-only toolUseResult are raw JSON. So export is byte-identical, and
 *    the text is stored once, in blobs the pager and search use.
 *  - The file's record order is a session manifest: chunk nodes whose
 *    `includes` edges list up to CHUNK records, and a manifest node that
 *    includes the chunks, named by the session ref "cc/<sessionId>". A
 *    grown file shares every full chunk, so re-importing it adds only its
 *    tail (plus one chunk and one manifest).
 *  - Two JSON objects glued on one line are two records (the separator
 *    between them is empty); a last line cut off mid-write is left out and
 *    picked up by the next import.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include "jscan.h"

#define CHUNK 256
#define META_MAGIC "cmvcc\1"
#define MAX_SESSION_BYTES ((size_t)1 << 31)

typedef struct {
	size_t off, len;  /* the value's bytes in the record */
	char enc;         /* 'S' a JSON string re-escaped from the blob; 'R' raw JSON */
	size_t block;
} hole;

typedef struct {
	cmv_block_content *blocks;
	size_t n_blocks, cap_blocks;
	hole *holes;
	size_t n_holes, cap_holes;
	cmv_buf texts;   /* unescaped strings, back to back */
	size_t *text_off;
	size_t n_text, cap_text;
} record_build;

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *q = cmv__realloc(*p, ncap * size);
	if (!q)
		return CMV_ENOMEM;
	*p = q;
	*cap = ncap;
	return 0;
}

static void record_build_reset(record_build *rb)
{
	rb->n_blocks = rb->n_holes = rb->n_text = 0;
	cmv_buf_clear(&rb->texts);
}

static void record_build_dispose(record_build *rb)
{
	free(rb->blocks);
	free(rb->holes);
	free(rb->text_off);
	cmv_buf_dispose(&rb->texts);
}

/*
 * Add a block whose content is the value at `v` (inside the record at
 * `rec`): a string is unescaped into the block's data and becomes an 'S'
 * hole when re-escaping gives back its bytes; anything else is raw.
 */
static int add_block(record_build *rb, const char *rec, jspan v, const char *type, const char *tool_id,
		     const char *tool_name, const char *media_type, unsigned flags, cmv_buf *scratch)
{
	cmv_block_content *b;
	int error;
	bool is_string = *v.p == '"';
	size_t start = rb->texts.size;

	if ((error = grow((void **)&rb->blocks, &rb->cap_blocks, rb->n_blocks, sizeof(*rb->blocks))) < 0 ||
	    (error = grow((void **)&rb->holes, &rb->cap_holes, rb->n_holes, sizeof(*rb->holes))) < 0 ||
	    (error = grow((void **)&rb->text_off, &rb->cap_text, rb->n_text, sizeof(*rb->text_off))) < 0)
		return error;
	if (is_string) {
		if ((error = jscan_unescape(scratch, v)) < 0)
			return error;
	} else {
		if ((error = cmv_buf_set(scratch, v.p, (size_t)(v.end - v.p))) < 0)
			return error;
	}
	if ((error = cmv_buf_put(&rb->texts, scratch->ptr, scratch->size)) < 0)
		return error;
	b = &rb->blocks[rb->n_blocks];
	memset(b, 0, sizeof(*b));
	b->type = type;
	b->len = scratch->size;
	b->tool_id = tool_id;
	b->tool_name = tool_name;
	b->media_type = media_type;
	b->flags = flags;
	rb->text_off[rb->n_text++] = start; /* data pointers are fixed up once texts stops growing */
	bool exact = true;
	if (is_string) {
		cmv_buf_clear(scratch);
		if ((error = jscan_escape(scratch, rb->texts.ptr + start, b->len)) < 0)
			return error;
		exact = scratch->size == (size_t)(v.end - v.p) && !memcmp(scratch->ptr, v.p, scratch->size);
	}
	if (exact)
		rb->holes[rb->n_holes++] = (hole){ (size_t)(v.p - rec), (size_t)(v.end - v.p),
						   is_string ? 'S' : 'R', rb->n_blocks };
	rb->n_blocks++;
	return 0;
}

static const char *cj_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The blocks of one content block object `el` (its cJSON twin is `cel`). */
static int content_block(record_build *rb, const char *rec, jspan el, const cJSON *cel, cmv_buf *scratch)
{
	const char *type = cj_str(cel, "type");
	jspan v;
	int found;

	if (!type)
		type = "unknown";
	if (!strcmp(type, "text") || !strcmp(type, "thinking") || !strcmp(type, "redacted_thinking")) {
		const char *field = !strcmp(type, "text") ? "text" : !strcmp(type, "thinking") ? "thinking" : "data";
		if ((found = jscan_member(&v, el, field)) == 1 && *v.p == '"')
			return add_block(rb, rec, v, cj_str(cel, "type"), NULL, NULL, NULL, 0, scratch);
	} else if (!strcmp(type, "tool_use")) {
		if (jscan_member(&v, el, "input") == 1)
			return add_block(rb, rec, v, "tool_use", cj_str(cel, "id"), cj_str(cel, "name"),
					 "application/json", 0, scratch);
	} else if (!strcmp(type, "tool_result")) {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(cel, "is_error");
		if (jscan_member(&v, el, "content") == 1)
			return add_block(rb, rec, v, "tool_result", cj_str(cel, "tool_use_id"), NULL,
					 *v.p == '"' ? NULL : "application/vnd.cmv.blocks+json",
					 cJSON_IsTrue(err) ? CMV_BLOCK_ERROR : 0, scratch);
	} else if (!strcmp(type, "image")) {
		jspan src;
		if (jscan_member(&src, el, "source") == 1 && *src.p == '{' && jscan_member(&v, src, "data") == 1 &&
		    *v.p == '"')
			return add_block(rb, rec, v, "image", NULL, NULL, "application/vnd.cmv.base64",
					 0, scratch);
	}
	/* Anything else: the whole block, raw. */
	return add_block(rb, rec, el, cj_str(cel, "type") ? cj_str(cel, "type") : "unknown", NULL, NULL,
			 "application/vnd.cmv.block+json", 0, scratch);
}

static int cmp_hole(const void *a, const void *b)
{
	const hole *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

#define put_varint cmv__varint_put
#define get_varint cmv__varint_get

/* meta = magic, holes, the separator after the record, then the template. */
static int build_meta(cmv_buf *meta, const char *rec, size_t len, record_build *rb, const char *sep,
		      size_t sep_len)
{
	int error = 0;
	size_t at = 0;

	if (rb->n_holes > 1) /* qsort of a NULL array is undefined even when empty */
		qsort(rb->holes, rb->n_holes, sizeof(*rb->holes), cmp_hole);
	cmv_buf_clear(meta);
	if ((error = cmv_buf_put(meta, META_MAGIC, sizeof(META_MAGIC) - 1)) < 0 ||
	    (error = put_varint(meta, rb->n_holes)) < 0)
		return error;
	for (size_t i = 0; i < rb->n_holes; i++)
		if ((error = cmv_buf_putc(meta, rb->holes[i].enc)) < 0 ||
		    (error = put_varint(meta, rb->holes[i].block)) < 0)
			return error;
	if ((error = put_varint(meta, sep_len)) < 0 || (error = cmv_buf_put(meta, sep, sep_len)) < 0)
		return error;
	for (size_t i = 0; i < rb->n_holes; i++) {
		if (rb->holes[i].off < at)
			return cmv_error__set(CMV_ERROR, "overlapping content in a record");
		if ((error = cmv_buf_put(meta, rec + at, rb->holes[i].off - at)) < 0 ||
		    (error = cmv_buf_putc(meta, '\0')) < 0)
			return error;
		at = rb->holes[i].off + rb->holes[i].len;
	}
	return cmv_buf_put(meta, rec + at, len - at);
}

/* ---- uuid -> node map ---------------------------------------------------- */

typedef struct {
	char **keys;
	size_t *vals; /* record index */
	size_t cap, n;
} uuid_map;

static size_t map_slot(const uuid_map *m, const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = k; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	size_t i = (size_t)h & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], k))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int map_put(uuid_map *m, const char *k, size_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		uuid_map old = *m;
		m->cap = old.cap ? old.cap * 2 : 1024;
		m->n = 0;
		if (!(m->keys = cmv__calloc(m->cap, sizeof(char *))) || !(m->vals = cmv__calloc(m->cap, sizeof(size_t)))) {
			free(m->keys);
			*m = old;
			return CMV_ENOMEM;
		}
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i]) {
				size_t s = map_slot(m, old.keys[i]);
				m->keys[s] = old.keys[i];
				m->vals[s] = old.vals[i];
				m->n++;
			}
		free(old.keys);
		free(old.vals);
	}
	size_t s = map_slot(m, k);
	if (!m->keys[s]) {
		if (!(m->keys[s] = cmv__strdup(k)))
			return CMV_ENOMEM;
		m->n++;
	}
	m->vals[s] = v;
	return 0;
}

/* The record index of a uuid, or SIZE_MAX. */
static size_t map_get(const uuid_map *m, const char *k)
{
	if (!m->cap || !k)
		return SIZE_MAX;
	size_t s = map_slot(m, k);
	return m->keys[s] ? m->vals[s] : SIZE_MAX;
}

static void map_dispose(uuid_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
}

/* ---- import ------------------------------------------------------------- */

typedef struct {
	cmv_id *ids;          /* every record, in file order */
	size_t *chain_parent; /* its parent in the DAG (a record index), or SIZE_MAX */
	uint64_t *depth;
	unsigned char *on_chain; /* on the current conversation chain */
	unsigned char *is_msg;
	size_t n, cap;
} record_list;

static int record_list_push(record_list *rl, const cmv_id *id, size_t parent, bool on_chain, bool msg)
{
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 256;
		void *a = cmv__realloc(rl->ids, ncap * sizeof(*rl->ids));
		if (!a)
			return CMV_ENOMEM;
		rl->ids = a;
		if (!(a = cmv__realloc(rl->chain_parent, ncap * sizeof(*rl->chain_parent))))
			return CMV_ENOMEM;
		rl->chain_parent = a;
		if (!(a = cmv__realloc(rl->depth, ncap * sizeof(*rl->depth))))
			return CMV_ENOMEM;
		rl->depth = a;
		if (!(a = cmv__realloc(rl->on_chain, ncap)))
			return CMV_ENOMEM;
		rl->on_chain = a;
		if (!(a = cmv__realloc(rl->is_msg, ncap)))
			return CMV_ENOMEM;
		rl->is_msg = a;
		rl->cap = ncap;
	}
	rl->ids[rl->n] = *id;
	rl->chain_parent[rl->n] = parent;
	rl->depth[rl->n] = parent == SIZE_MAX ? 0 : rl->depth[parent] + 1;
	rl->on_chain[rl->n] = on_chain;
	rl->is_msg[rl->n] = msg;
	rl->n++;
	return 0;
}

/*
 * A new prompt typed by the user: a user record with text that is not a
 * tool result, a meta line or a compaction summary. Only such a record can
 * start a rewind.
 */
static bool is_prompt(const cJSON *j, const char *type)
{
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message"), *content;

	if (!type || strcmp(type, "user") || !cJSON_IsObject(msg) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isMeta")) ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isCompactSummary")))
		return false;
	content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	if (cJSON_IsString(content))
		return true;
	for (const cJSON *b = content ? content->child : NULL; b; b = b->next) {
		const char *bt = cj_str(b, "type");
		if (bt && !strcmp(bt, "tool_result"))
			return false;
	}
	return cJSON_IsArray(content) && content->child;
}

/* Make the chain the path from `tip` to the root; the depth of its last message in *last_msg. */
static void rebuild_chain(record_list *rl, size_t tip, uint64_t *last_msg)
{
	bool found = false;

	memset(rl->on_chain, 0, rl->n);
	*last_msg = 0;
	for (size_t a = tip; a != SIZE_MAX; a = rl->chain_parent[a]) {
		rl->on_chain[a] = 1;
		if (!found && rl->is_msg[a]) {
			*last_msg = rl->depth[a];
			found = true;
		}
	}
}

/*
 * Create a branch at `at`, or move it forward. Moving it sideways is
 * refused unless forced, or unless its old position stays on one of the
 * `kept` nodes (after a rewind, the abandoned tail keeps a branch).
 */
static int session_branch(cmv_repo *repo, const char *path, const char *branch, const cmv_id *at,
			  const char *session_ref, unsigned int flags, const cmv_id *kept, size_t n_kept)
{
	cmv_ref *b = NULL;
	int error = cmv_ref_lookup(&b, repo, branch);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		return cmv_branch_create(repo, branch, at, session_ref);
	}
	if (error == 0 && !cmv_id_equal(&b->target, at)) {
		int anc = b->type == CMV_REF_BRANCH && !cmv_id_is_none(&b->target)
				  ? cmv_is_ancestor(repo, &b->target, at)
				  : 0;
		for (size_t k = 0; anc == 0 && k < n_kept; k++)
			anc = cmv_is_ancestor(repo, &b->target, &kept[k]);
		if (anc < 0)
			error = anc;
		else if (b->type != CMV_REF_BRANCH)
			error = cmv_error__set(CMV_EINVALID, "'%s' is not a branch", branch);
		else if (!anc && !(flags & CMV_IMPORT_FORCE))
			error = cmv_error__set(CMV_EMODIFIED,
					       "%s: branch '%s' has diverged from the session (force it, or import into another branch)",
					       path, branch);
		else
			error = cmv_branch_update(repo, branch, at, &b->target);
	}
	cmv_ref_free(b);
	return error;
}

static int write_chunked_manifest(cmv_id *out, cmv_repo *repo, const record_list *rl,
				  const char *session_id, const char *lead, size_t lead_len)
{
	cmv_id *chunks = NULL;
	size_t n_chunks = (rl->n + CHUNK - 1) / CHUNK;
	cmv_block_content b;
	cmv_message m;
	cJSON *info = NULL;
	char *info_text = NULL;
	int error = 0;

	if (!(chunks = cmv__calloc(n_chunks ? n_chunks : 1, sizeof(*chunks))))
		return CMV_ENOMEM;
	memset(&b, 0, sizeof(b));
	memset(&m, 0, sizeof(m));
	m.role = CMV_ROLE_SYSTEM;
	m.kind = CMV_KIND_EVENT;
	m.blocks = &b;
	m.n_blocks = 1;
	b.type = "cc_chunk";
	b.data = "";
	for (size_t c = 0; c < n_chunks && !error; c++) {
		m.includes = rl->ids + c * CHUNK;
		m.n_includes = rl->n - c * CHUNK < CHUNK ? rl->n - c * CHUNK : CHUNK;
		error = cmv_node_write(&chunks[c], repo, NULL, &m);
	}
	if (!error) {
		cmv_buf leadbuf = CMV_BUF_INIT(1 << 20);
		if (!(info = cJSON_CreateObject()) || !cJSON_AddStringToObject(info, "format", "claude-code") ||
		    !cJSON_AddStringToObject(info, "session", session_id) ||
		    cmv_buf_put(&leadbuf, lead, lead_len) < 0 ||
		    !cJSON_AddStringToObject(info, "lead", leadbuf.ptr) ||
		    !(info_text = cJSON_PrintUnformatted(info)))
			error = cmv_error__oom();
		cmv_buf_dispose(&leadbuf);
	}
	if (!error) {
		b.type = "cc_session";
		b.data = info_text;
		b.len = strlen(info_text);
		b.media_type = "application/json";
		m.includes = chunks;
		m.n_includes = n_chunks;
		error = cmv_node_write(out, repo, NULL, &m);
	}
	cJSON_Delete(info);
	free(info_text);
	free(chunks);
	return error;
}

int cmv_import_claude_code_file(cmv_import_result *out, cmv_repo *repo, const char *path,
				const cmv_import_options *opts)
{
	cmv_import_options defaults = CMV_IMPORT_OPTIONS_INIT;
	cmv_buf file = CMV_BUF_INIT(MAX_SESSION_BYTES), scratch = CMV_BUF_INIT(CMV_BUF_CONTENT),
		meta = CMV_BUF_INIT(CMV_BUF_CONTENT), name = CMV_BUF_INIT(4096);
	record_build rb;
	record_list rl;
	uuid_map uuids;
	size_t tail = SIZE_MAX, *abandoned = NULL, n_abandoned = 0, cap_abandoned = 0;
	uint64_t last_msg_depth = 0;
	cmv_import_result res;
	char session_id[128] = "";
	const char *p, *end, *lead_end;
	size_t lineno = 1;
	int error = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (!opts)
		opts = &defaults;
	memset(&rb, 0, sizeof(rb));
	memset(&rl, 0, sizeof(rl));
	memset(&uuids, 0, sizeof(uuids));
	memset(&res, 0, sizeof(res));
	cmv_buf_init(&rb.texts, CMV_BUF_CONTENT);
	if ((error = cmv__read_file(&file, path)) < 0)
		goto out;
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;

	p = file.ptr;
	end = file.ptr + file.size;
	lead_end = jscan_ws(p, end);
	for (const char *q = p; q < lead_end; q++)
		lineno += *q == '\n';
	p = lead_end;
	while (p < end) {
		const char *rec = p, *rec_end = *p == '{' ? jscan_value(p, end) : NULL;
		cJSON *j = NULL;
		if (!rec_end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl) {
				/* the last line, cut off: the session is still being written */
				res.skipped_lines[0] = lineno;
				res.skipped = 1;
				break;
			}
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON record", path, lineno);
			goto fail;
		}
		const char *sep = rec_end, *next = jscan_ws(rec_end, end);
		if (!(j = cJSON_ParseWithLength(rec, (size_t)(rec_end - rec))) || !cJSON_IsObject(j)) {
			cJSON_Delete(j);
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON record", path, lineno);
			goto fail;
		}
		if (!cmv__utf8_valid(rec, (size_t)(rec_end - rec), NULL)) {
			cJSON_Delete(j);
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: invalid UTF-8", path, lineno);
			goto fail;
		}
		const char *type = cj_str(j, "type"), *uuid = cj_str(j, "uuid");
		const char *parent = cj_str(j, "parentUuid");
		if (!parent)
			parent = cj_str(j, "logicalParentUuid");
		if (!session_id[0] && cj_str(j, "sessionId"))
			snprintf(session_id, sizeof(session_id), "%s", cj_str(j, "sessionId"));
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
		bool is_msg = type && (!strcmp(type, "user") || !strcmp(type, "assistant")) && cJSON_IsObject(msg);

		record_build_reset(&rb);
		jspan recspan = { rec, rec_end }, v, mspan;
		if (is_msg && jscan_member(&mspan, recspan, "message") == 1 && jscan_member(&v, mspan, "content") == 1) {
			const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
			if (*v.p == '"') {
				error = add_block(&rb, rec, v, "text", NULL, NULL, NULL, 0, &scratch);
			} else if (*v.p == '[') {
				const char *cur = NULL;
				const cJSON *cel = content ? content->child : NULL;
				jspan el;
				while (!error && cel && jscan_next_element(&el, v, &cur) == 1) {
					error = *el.p == '{' ? content_block(&rb, rec, el, cel, &scratch) : 0;
					cel = cel->next;
				}
			}
		}
		if (!error && jscan_member(&v, recspan, "toolUseResult") == 1)
			error = add_block(&rb, rec, v, "cc_tool_use_result", NULL, NULL, "application/json", 0,
					  &scratch);
		if (!error)
			error = build_meta(&meta, rec, (size_t)(rec_end - rec), &rb, sep, (size_t)(next - sep));
		if (error) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		for (size_t i = 0; i < rb.n_blocks; i++)
			rb.blocks[i].data = rb.texts.ptr + rb.text_off[i];

		cmv_message m;
		memset(&m, 0, sizeof(m));
		m.role = !is_msg ? CMV_ROLE_SYSTEM : !strcmp(type, "user") ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
		m.kind = is_msg ? CMV_KIND_MESSAGE : CMV_KIND_EVENT;
		m.blocks = rb.blocks;
		m.n_blocks = rb.n_blocks;
		m.meta = meta.ptr;
		m.meta_len = meta.size;
		/*
		 * The record's place in the DAG. Records follow the chain's tail in
		 * file order: parallel tool results (parented on their tool_use
		 * line), events and compaction boundaries included, so the
		 * branch's path is the conversation. A new prompt whose parent is
		 * at or before an earlier message of the chain is a rewind: the
		 * chain forks there and the abandoned tail keeps a branch.
		 * Sidechain records hang by their parentUuid, off the chain.
		 */
		size_t pidx = map_get(&uuids, parent), cparent = tail;
		bool sidechain = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isSidechain"));
		if (sidechain) {
			cparent = pidx;
		} else if (pidx != SIZE_MAX && rl.on_chain[pidx] && pidx != tail && is_prompt(j, type) &&
			   last_msg_depth > rl.depth[pidx] && rl.is_msg[pidx]) {
			if ((error = grow((void **)&abandoned, &cap_abandoned, n_abandoned, sizeof(*abandoned))) < 0) {
				cJSON_Delete(j);
				goto fail;
			}
			abandoned[n_abandoned++] = tail;
			cparent = pidx;
			rebuild_chain(&rl, pidx, &last_msg_depth);
		}
		cmv_id id;
		if ((error = cmv_node_write(&id, repo, cparent == SIZE_MAX ? NULL : &rl.ids[cparent], &m)) < 0) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		if ((error = record_list_push(&rl, &id, cparent, !sidechain, is_msg)) < 0 ||
		    (uuid && (error = map_put(&uuids, uuid, rl.n - 1)) < 0)) {
			cJSON_Delete(j);
			goto fail;
		}
		if (!sidechain) {
			tail = rl.n - 1;
			if (is_msg)
				last_msg_depth = rl.depth[tail];
		}
		cJSON_Delete(j);
		res.records++;
		for (const char *q = rec; q < next; q++)
			lineno += *q == '\n';
		p = next;
		if (opts->progress && opts->progress(res.records, opts->progress_payload)) {
			error = cmv_error__set(CMV_EUSER, "%s: import cancelled", path);
			goto fail;
		}
	}
	if (!rl.n) {
		error = cmv_error__set(CMV_EINVALID, "%s: no records to import", path);
		goto fail;
	}
	if (!session_id[0]) {
		/* old files may lack it on every line: name the session after the file */
		if ((error = cmv_formats__branch_name_from_path(&name, path)) < 0)
			goto fail;
		snprintf(session_id, sizeof(session_id), "%s", name.ptr);
	}

	/* the manifest and the session ref */
	cmv_id manifest;
	cmv_ref *old = NULL;
	cmv_buf_clear(&name);
	if ((error = write_chunked_manifest(&manifest, repo, &rl, session_id, file.ptr,
					    (size_t)(lead_end - file.ptr))) < 0 ||
	    (error = cmv_buf_printf(&name, "cc/%s", session_id)) < 0)
		goto fail;
	if (!cmv_ref_name_is_valid(name.ptr)) {
		error = cmv_error__set(CMV_EINVALID, "%s: session id '%s' cannot name a ref", path, session_id);
		goto fail;
	}
	error = cmv_ref_lookup(&old, repo, name.ptr);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = cmv_session_set(repo, name.ptr, &manifest, NULL);
		res.outcome = CMV_IMPORT_CREATED;
	} else if (error == 0) {
		res.outcome = cmv_id_equal(&old->target, &manifest) ? CMV_IMPORT_UNCHANGED : CMV_IMPORT_UPDATED;
		error = cmv_session_set(repo, name.ptr, &manifest, &old->target);
	}
	cmv_ref_free(old);
	if (error < 0)
		goto fail;

	/*
	 * The conversation is a branch at the chain's tail; each abandoned tail
	 * (a rewind) keeps a branch NAME.2, NAME.3, ... in file order, which
	 * stays stable as the file grows.
	 */
	char branch[CMV_REF_NAME_MAX + 1];
	bool have_leaf = tail != SIZE_MAX;
	cmv_id leaf;
	cmv_buf alt = CMV_BUF_INIT(4096);
	cmv_id *kept = cmv__calloc(n_abandoned ? n_abandoned : 1, sizeof(*kept));
	if (!kept) {
		error = CMV_ENOMEM;
		goto fail;
	}
	snprintf(branch, sizeof(branch), "%s", opts->branch ? opts->branch : name.ptr + 3);
	for (size_t k = 0; k < n_abandoned && !error; k++) {
		kept[k] = rl.ids[abandoned[k]];
		cmv_buf_clear(&alt);
		if ((error = cmv_buf_printf(&alt, "%s.%zu", branch, k + 2)) == 0)
			error = session_branch(repo, path, alt.ptr, &kept[k], name.ptr, opts->flags, NULL, 0);
	}
	cmv_buf_dispose(&alt);
	if (!error && have_leaf) {
		leaf = rl.ids[tail];
		error = session_branch(repo, path, branch, &leaf, name.ptr, opts->flags, kept, n_abandoned);
	}
	free(kept);
	if (error < 0)
		goto fail;
	if ((error = cmv_repo_txn_commit(repo)) < 0)
		goto out;
	snprintf(res.branch, sizeof(res.branch), "%s", have_leaf ? branch : name.ptr);
	res.head = have_leaf ? leaf : manifest;
	*out = res;
	goto out;
fail:
	cmv_repo_txn_rollback(repo);
out:
	record_build_dispose(&rb);
	free(rl.ids);
	free(rl.chain_parent);
	free(rl.depth);
	free(rl.on_chain);
	free(rl.is_msg);
	free(abandoned);
	map_dispose(&uuids);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&scratch);
	cmv_buf_dispose(&meta);
	cmv_buf_dispose(&name);
	return error;
}

/* ---- export ------------------------------------------------------------- */

static int export_record(cmv_repo *repo, const cmv_node *n, cmv_buf *blob, cmv_buf *line,
			 cmv_write_fn write, void *payload)
{
	const unsigned char *p = (const unsigned char *)n->meta, *end = p + n->meta_len;
	uint64_t n_holes, sep_len;
	int error;

	if (!n->meta || n->meta_len < sizeof(META_MAGIC) - 1 || memcmp(p, META_MAGIC, sizeof(META_MAGIC) - 1))
		return cmv_error__set(CMV_ECORRUPT, "a session record is not a Claude Code record");
	p += sizeof(META_MAGIC) - 1;
	if (!get_varint(&p, end, &n_holes) || n_holes > n->meta_len)
		return cmv_error__set(CMV_ECORRUPT, "a session record's template is damaged");
	const unsigned char *holes = p;
	for (uint64_t i = 0; i < n_holes; i++) {
		uint64_t bi;
		if (p >= end)
			return cmv_error__set(CMV_ECORRUPT, "a session record's template is damaged");
		p++;
		if (!get_varint(&p, end, &bi) || bi >= n->n_blocks)
			return cmv_error__set(CMV_ECORRUPT, "a session record's template is damaged");
	}
	if (!get_varint(&p, end, &sep_len) || sep_len > (uint64_t)(end - p))
		return cmv_error__set(CMV_ECORRUPT, "a session record's template is damaged");
	const unsigned char *sep = p, *tpl = p + sep_len;
	uint64_t left = n_holes;
	cmv_buf_clear(line);
	for (const unsigned char *q = tpl; q < end;) {
		const unsigned char *nul = memchr(q, '\0', (size_t)(end - q));
		const unsigned char *stop = nul ? nul : end;
		if ((error = cmv_buf_put(line, q, (size_t)(stop - q))) < 0)
			return error;
		if (!nul)
			break;
		/* the next hole (the list was checked above) */
		uint64_t bi = 0;
		char enc = (char)*holes++;
		if (!left-- || !get_varint(&holes, end, &bi))
			return cmv_error__set(CMV_ECORRUPT, "a session record's template is damaged");
		if ((error = cmv_blob_read(blob, repo, &n->blocks[bi].blob)) < 0)
			return error;
		error = enc == 'S' ? jscan_escape(line, blob->ptr, blob->size) : cmv_buf_put(line, blob->ptr, blob->size);
		if (error < 0)
			return error;
		q = nul + 1;
	}
	if ((error = cmv_buf_put(line, sep, sep_len)) < 0)
		return error;
	return write(line->ptr, line->size, payload);
}

int cmv_export_session(cmv_repo *repo, const char *session, cmv_write_fn write, void *payload)
{
	cmv_ref *ref = NULL;
	cmv_node *manifest = NULL, *chunk = NULL, *rec = NULL;
	cmv_buf blob = CMV_BUF_INIT(CMV_BUF_CONTENT), line = CMV_BUF_INIT(MAX_SESSION_BYTES);
	cJSON *info = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(session);
	CMV_ASSERT_ARG(write);
	if ((error = cmv_ref_lookup(&ref, repo, session)) < 0)
		goto done;
	if (ref->type != CMV_REF_SESSION) {
		error = cmv_error__set(CMV_EINVALID, "'%s' is not an imported session", session);
		goto done;
	}
	if ((error = cmv_node_read(&manifest, repo, &ref->target)) < 0)
		goto done;
	if (manifest->n_blocks != 1 || strcmp(manifest->blocks[0].type, "cc_session") ||
	    (error = cmv_blob_read(&blob, repo, &manifest->blocks[0].blob)) < 0 ||
	    !(info = cJSON_ParseWithLength(blob.ptr, blob.size))) {
		error = error < 0 ? error : cmv_error__set(CMV_ECORRUPT, "session '%s' has no manifest", session);
		goto done;
	}
	const char *lead = cj_str(info, "lead");
	if (lead && *lead && (error = write(lead, strlen(lead), payload)) < 0)
		goto done;
	for (size_t c = 0; c < manifest->n_includes && !error; c++) {
		if ((error = cmv_node_read(&chunk, repo, &manifest->includes[c])) < 0)
			break;
		for (size_t r = 0; r < chunk->n_includes && !error; r++) {
			if ((error = cmv_node_read(&rec, repo, &chunk->includes[r])) < 0)
				break;
			error = export_record(repo, rec, &blob, &line, write, payload);
			cmv_node_free(rec);
			rec = NULL;
		}
		cmv_node_free(chunk);
		chunk = NULL;
	}
done:
	cJSON_Delete(info);
	cmv_node_free(rec);
	cmv_node_free(chunk);
	cmv_node_free(manifest);
	cmv_ref_free(ref);
	cmv_buf_dispose(&blob);
	cmv_buf_dispose(&line);
	return error;
}

/* ---- detection ------------------------------------------------------------ */

int cmv_format_detect(const char **out, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char head[65536];
	size_t n;
	cJSON *j = NULL;
	const char *endp = NULL;

	*out = NULL;
	if (!fp)
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO, "cannot open '%s': %s", path,
				      strerror(errno));
	n = fread(head, 1, sizeof(head) - 1, fp);
	fclose(fp);
	head[n] = '\0';
	/* The first record decides; a first line longer than the sniff window is cut, so parse leniently. */
	const char *p = jscan_ws(head, head + n);
	const char *e = p < head + n ? jscan_value(p, head + n) : NULL;
	if (e)
		j = cJSON_ParseWithLengthOpts(p, (size_t)(e - p), &endp, 0);
	if (cJSON_IsObject(j)) {
		if (cJSON_GetObjectItemCaseSensitive(j, "role") && cJSON_GetObjectItemCaseSensitive(j, "content"))
			*out = "cmv";
		else if (cj_str(j, "type") &&
			 (cJSON_GetObjectItemCaseSensitive(j, "sessionId") || cJSON_GetObjectItemCaseSensitive(j, "uuid") ||
			  cJSON_GetObjectItemCaseSensitive(j, "leafUuid") || cJSON_GetObjectItemCaseSensitive(j, "messageId")))
			*out = "claude-code";
	} else if (!e && n == sizeof(head) - 1 && strstr(head, "\"sessionId\"") && strstr(head, "\"type\"")) {
		*out = "claude-code"; /* a first record too long to sniff whole */
	}
	cJSON_Delete(j);
	if (!*out)
		return cmv_error__set(CMV_EINVALID, "%s: cannot tell the format (use --format)", path);
	return 0;
}
