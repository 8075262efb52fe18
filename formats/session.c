/* SPDX-License-Identifier: MIT */
/*
 * Session records as templates, the chunked manifest, the session ref and
 * branch, byte-identical export, and the generic importer for formats whose
 * records form one chain (see session.h).
 */
#include <errno.h>
#include <xxhash.h>
#include "session.h"

#define META_MAGIC_CC "cmvcc\1"   /* Claude Code records: the format is implied */
#define META_MAGIC "cmvrec\1"     /* then the format's name, length first */

const char *cmv_formats__cj_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *cmv_formats__cj_get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* ---- cutting a record into blocks ---------------------------------------- */

void cmv_formats__record_build_init(record_build *rb)
{
	memset(rb, 0, sizeof(*rb));
	cmv_buf_init(&rb->texts, CMV_BUF_CONTENT);
	cmv_buf_init(&rb->scratch, CMV_BUF_CONTENT);
}

void cmv_formats__record_build_reset(record_build *rb, const char *rec)
{
	rb->n_blocks = rb->n_holes = rb->n_text = 0;
	rb->rec = rec;
	cmv_buf_clear(&rb->texts);
}

void cmv_formats__record_build_dispose(record_build *rb)
{
	free(rb->blocks);
	free(rb->holes);
	free(rb->text_off);
	cmv_buf_dispose(&rb->texts);
	cmv_buf_dispose(&rb->scratch);
}

void cmv_formats__record_build_finish(record_build *rb)
{
	for (size_t i = 0; i < rb->n_blocks; i++)
		rb->blocks[i].data = rb->texts.ptr + rb->text_off[i];
}

static int add_block(record_build *rb, jspan v, bool is_string, const char *type, const char *tool_id,
		     const char *tool_name, const char *media_type, unsigned flags)
{
	cmv_block_content *b;
	cmv_buf *scratch = &rb->scratch;
	int error;
	size_t start = rb->texts.size;

	if ((error = cmv__array_grow((void **)&rb->blocks, &rb->cap_blocks, rb->n_blocks, sizeof(*rb->blocks))) < 0 ||
	    (error = cmv__array_grow((void **)&rb->holes, &rb->cap_holes, rb->n_holes, sizeof(*rb->holes))) < 0 ||
	    (error = cmv__array_grow((void **)&rb->text_off, &rb->cap_text, rb->n_text, sizeof(*rb->text_off))) < 0)
		return error;
	if (is_string) {
		if ((error = cmv_formats__jscan_unescape(scratch, v)) < 0)
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
		if ((error = cmv_formats__jscan_escape(scratch, rb->texts.ptr + start, b->len)) < 0)
			return error;
		exact = scratch->size == (size_t)(v.end - v.p) && !memcmp(scratch->ptr, v.p, scratch->size);
	}
	if (exact)
		rb->holes[rb->n_holes++] = (session_hole){ (size_t)(v.p - rb->rec), (size_t)(v.end - v.p),
							   is_string ? 'S' : 'R', rb->n_blocks };
	rb->n_blocks++;
	return 0;
}

int cmv_formats__record_add_block(record_build *rb, jspan v, const char *type, const char *tool_id, const char *tool_name,
		     const char *media_type, unsigned flags)
{
	return add_block(rb, v, *v.p == '"', type, tool_id, tool_name, media_type, flags);
}

int cmv_formats__record_add_opaque(record_build *rb, jspan rec)
{
	/* NUL separates a template's pieces, so bytes holding one can only live in a blob */
	if (!memchr(rec.p, '\0', (size_t)(rec.end - rec.p)))
		return 0;
	return add_block(rb, rec, false, "opaque", NULL, NULL, "application/octet-stream", 0);
}

int cmv_formats__record_add_string(record_build *rb, jspan obj, const char *key, const char *type, const char *tool_id,
		      const char *tool_name)
{
	jspan v;
	if (*obj.p != '{' || cmv_formats__jscan_member(&v, obj, key) != 1 || *v.p != '"')
		return 0;
	return cmv_formats__record_add_block(rb, v, type, tool_id, tool_name, NULL, 0);
}

int cmv_formats__record_add_raw(record_build *rb, jspan obj, const char *key, const char *type, const char *tool_id,
		   const char *tool_name, const char *media_type)
{
	jspan v;
	if (*obj.p != '{' || cmv_formats__jscan_member(&v, obj, key) != 1)
		return 0;
	if (*v.p == '"') /* a string is kept as its text: counted and searched as such */
		return cmv_formats__record_add_block(rb, v, type, tool_id, tool_name, NULL, 0);
	return cmv_formats__record_add_block(rb, v, type, tool_id, tool_name, media_type ? media_type : "application/json", 0);
}

static int cmp_hole(const void *a, const void *b)
{
	const session_hole *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

int cmv_formats__session_meta_build(cmv_buf *meta, const char *format, const char *rec, size_t len, record_build *rb,
		       const char *sep, size_t sep_len)
{
	int error = 0;
	size_t at = 0;
	bool cc = !strcmp(format, "claude-code");

	if (rb->n_holes > 1) /* qsort of a NULL array is undefined even when empty */
		qsort(rb->holes, rb->n_holes, sizeof(*rb->holes), cmp_hole);
	cmv_buf_clear(meta);
	if (cc)
		error = cmv_buf_put(meta, META_MAGIC_CC, sizeof(META_MAGIC_CC) - 1);
	else if ((error = cmv_buf_put(meta, META_MAGIC, sizeof(META_MAGIC) - 1)) == 0 &&
		 (error = cmv__varint_put(meta, strlen(format))) == 0)
		error = cmv_buf_put(meta, format, strlen(format));
	if (error < 0 || (error = cmv__varint_put(meta, rb->n_holes)) < 0)
		return error;
	for (size_t i = 0; i < rb->n_holes; i++)
		if ((error = cmv_buf_putc(meta, rb->holes[i].enc)) < 0 ||
		    (error = cmv__varint_put(meta, rb->holes[i].block)) < 0)
			return error;
	if ((error = cmv__varint_put(meta, sep_len)) < 0 || (error = cmv_buf_put(meta, sep, sep_len)) < 0)
		return error;
	for (size_t i = 0; i <= rb->n_holes; i++) {
		size_t to = i < rb->n_holes ? rb->holes[i].off : len;
		if (to < at)
			return cmv_error__set(CMV_ERROR, "overlapping content in a record");
		/* a NUL in the template would read back as a hole: refused, never stored damaged */
		if (memchr(rec + at, '\0', to - at))
			return cmv_error__set(CMV_EINVALID, "a NUL byte outside the record's content");
		if ((error = cmv_buf_put(meta, rec + at, to - at)) < 0)
			return error;
		if (i == rb->n_holes)
			break;
		if ((error = cmv_buf_putc(meta, '\0')) < 0)
			return error;
		at = rb->holes[i].off + rb->holes[i].len;
	}
	return 0;
}

/* The format names a template can carry; a static string for each. */
static const char *const known_formats[] = {
	"claude-code", "codex", "copilot-cli", "gemini-cli", "swe-agent", "openhands",
	"anthropic", "openai-chat", "openai-responses", "gemini",
};

int cmv_formats__session_template(session_tpl *t, const cmv_node *n)
{
	/* a node with no meta (cmv JSONL, appended messages) has meta NULL: no pointer arithmetic on it */
	const unsigned char *p = (const unsigned char *)n->meta, *end = p ? p + n->meta_len : p;
	uint64_t n_holes, sep_len, name_len;
	char hex[CMV_ID_HEXSZ + 1];

#define DAMAGED() cmv_error__set(CMV_ECORRUPT, "the template of record %s is damaged", cmv_id_tostr(hex, sizeof(hex), &n->id))
	memset(t, 0, sizeof(*t));
	if (n->meta && n->meta_len >= sizeof(META_MAGIC_CC) - 1 &&
	    !memcmp(p, META_MAGIC_CC, sizeof(META_MAGIC_CC) - 1)) {
		t->format = known_formats[0];
		p += sizeof(META_MAGIC_CC) - 1;
	} else if (n->meta && n->meta_len >= sizeof(META_MAGIC) - 1 && !memcmp(p, META_MAGIC, sizeof(META_MAGIC) - 1)) {
		p += sizeof(META_MAGIC) - 1;
		if (!cmv__varint_get(&p, end, &name_len) || name_len > (uint64_t)(end - p))
			return DAMAGED();
		for (size_t i = 0; i < sizeof(known_formats) / sizeof(*known_formats); i++)
			if (strlen(known_formats[i]) == name_len && !memcmp(p, known_formats[i], name_len))
				t->format = known_formats[i];
		if (!t->format)
			return DAMAGED();
		p += name_len;
	} else {
		return CMV_ENOTFOUND;
	}
	if (!cmv__varint_get(&p, end, &n_holes) || n_holes > n->meta_len)
		return DAMAGED();
	t->holes = p;
	for (uint64_t i = 0; i < n_holes; i++) {
		uint64_t bi;
		if (p >= end)
			return DAMAGED();
		p++;
		if (!cmv__varint_get(&p, end, &bi) || bi >= n->n_blocks)
			return DAMAGED();
	}
	t->holes_end = p;
	t->n_holes = (size_t)n_holes;
	if (!cmv__varint_get(&p, end, &sep_len) || sep_len > (uint64_t)(end - p))
		return DAMAGED();
	t->sep = (const char *)p;
	t->sep_len = (size_t)sep_len;
	t->tpl = (const char *)p + sep_len;
	t->tpl_end = (const char *)end;
	size_t nuls = 0;
	for (const char *q = t->tpl; (q = memchr(q, '\0', (size_t)(t->tpl_end - q))) != NULL; q++)
		nuls++;
	if (nuls != t->n_holes)
		return DAMAGED();
	return 0;
#undef DAMAGED
}

int cmv_formats__session_tpl_hole(char *enc, size_t *block, const unsigned char **cursor, const session_tpl *t)
{
	uint64_t bi = 0;
	if (*cursor >= t->holes_end)
		return CMV_ECORRUPT;
	*enc = (char)*(*cursor)++;
	if (!cmv__varint_get(cursor, t->holes_end, &bi))
		return CMV_ECORRUPT;
	*block = (size_t)bi;
	return 0;
}

int cmv_formats__session_record_bytes(cmv_buf *out, const char **format, cmv_repo *repo, const cmv_node *n, bool with_sep)
{
	cmv_buf blob = CMV_BUF_INIT(CMV_BUF_CONTENT);
	session_tpl t;
	int error;

	*format = NULL;
	if ((error = cmv_formats__session_template(&t, n)) < 0)
		return error;
	*format = t.format;
	const unsigned char *holes = t.holes;
	cmv_buf_clear(out);
	for (const char *q = t.tpl; q < t.tpl_end;) {
		const char *nul = memchr(q, '\0', (size_t)(t.tpl_end - q));
		const char *stop = nul ? nul : t.tpl_end;
		if ((error = cmv_buf_put(out, q, (size_t)(stop - q))) < 0)
			goto done;
		if (!nul)
			break;
		size_t bi;
		char enc;
		if ((error = cmv_formats__session_tpl_hole(&enc, &bi, &holes, &t)) < 0)
			goto done;
		if ((error = cmv_blob_read(&blob, repo, &n->blocks[bi].blob)) < 0)
			goto done;
		error = enc == 'S' ? cmv_formats__jscan_escape(out, blob.ptr, blob.size) : cmv_buf_put(out, blob.ptr, blob.size);
		if (error < 0)
			goto done;
		q = nul + 1;
	}
	if (with_sep)
		error = cmv_buf_put(out, t.sep, t.sep_len);
done:
	cmv_buf_dispose(&blob);
	return error;
}

/* ---- the record list, the manifest, the session ref and the branch ------- */

int cmv_formats__record_list_push(record_list *rl, const cmv_id *id, size_t parent, bool on_chain, bool msg)
{
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 256;
		void *a = cmv__realloc(rl->ids, ncap * sizeof(*rl->ids));
		if (!a)
			return cmv_error__oom();
		rl->ids = a;
		if (!(a = cmv__realloc(rl->chain_parent, ncap * sizeof(*rl->chain_parent))))
			return cmv_error__oom();
		rl->chain_parent = a;
		if (!(a = cmv__realloc(rl->depth, ncap * sizeof(*rl->depth))))
			return cmv_error__oom();
		rl->depth = a;
		if (!(a = cmv__realloc(rl->on_chain, ncap)))
			return cmv_error__oom();
		rl->on_chain = a;
		if (!(a = cmv__realloc(rl->is_msg, ncap)))
			return cmv_error__oom();
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

void cmv_formats__record_list_dispose(record_list *rl)
{
	free(rl->ids);
	free(rl->chain_parent);
	free(rl->depth);
	free(rl->on_chain);
	free(rl->is_msg);
	memset(rl, 0, sizeof(*rl));
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

static int write_manifest(cmv_id *out, cmv_repo *repo, const record_list *rl, const char *format,
			  const char *session_id, const char *lead, size_t lead_len,
			  const session_source *src, const char *branch, size_t tip)
{
	char hex[CMV_ID_HEXSZ + 1], xxh[17];
	cmv_id *chunks = NULL;
	size_t n_chunks = (rl->n + SESSION_CHUNK - 1) / SESSION_CHUNK;
	cmv_block_content b = { .type = "session_chunk", .data = "" };
	cmv_message m = { .role = CMV_ROLE_SYSTEM, .kind = CMV_KIND_EVENT, .blocks = &b, .n_blocks = 1 };
	cmv_buf leadbuf = CMV_BUF_INIT(1 << 20);
	cJSON *info = NULL;
	char *info_text = NULL;
	int error = 0;

	if (!(chunks = cmv__calloc(n_chunks ? n_chunks : 1, sizeof(*chunks))))
		return cmv_error__oom();
	for (size_t c = 0; c < n_chunks && !error; c++) {
		m.includes = rl->ids + c * SESSION_CHUNK;
		m.n_includes = rl->n - c * SESSION_CHUNK < SESSION_CHUNK ? rl->n - c * SESSION_CHUNK : SESSION_CHUNK;
		error = cmv_node_write(&chunks[c], repo, NULL, &m);
	}
	/* The file's path is not kept: the same session imported from two places is one manifest. */
	if (!error && (!(info = cJSON_CreateObject()) || !cJSON_AddStringToObject(info, "format", format) ||
		       !cJSON_AddStringToObject(info, "session", session_id) ||
		       cmv_buf_put(&leadbuf, lead, lead_len) < 0 ||
		       !cJSON_AddStringToObject(info, "lead", leadbuf.ptr) ||
		       /* what a re-import of the same file checks first, so that it costs a hash */
		       !cJSON_AddNumberToObject(info, "bytes", (double)src->size) ||
		       !cJSON_AddStringToObject(info, "xxh3", (snprintf(xxh, sizeof(xxh), "%016llx", (unsigned long long)src->xxh3), xxh)) ||
		       !cJSON_AddNumberToObject(info, "records", (double)src->records) ||
		       !cJSON_AddStringToObject(info, "branch", branch) ||
		       !cJSON_AddStringToObject(info, "head", tip == SIZE_MAX ? "" : cmv_id_tostr(hex, sizeof(hex), &rl->ids[tip])) ||
		       !(info_text = cJSON_PrintUnformatted(info))))
		error = cmv_error__oom();
	if (!error) {
		b.type = "session";
		b.data = info_text;
		b.len = strlen(info_text);
		b.media_type = "application/json";
		m.includes = chunks;
		m.n_includes = n_chunks;
		error = cmv_node_write(out, repo, NULL, &m);
	}
	cmv_buf_dispose(&leadbuf);
	cJSON_Delete(info);
	free(info_text);
	free(chunks);
	return error;
}

/* The branch an import of this session goes to. */
static void branch_for(char *branch, size_t n, const char *prefix, const char *session_id, const cmv_import_options *opts)
{
	if (opts->branch)
		snprintf(branch, n, "%s", opts->branch);
	else if (cmv_ref_name_is_valid(session_id))
		snprintf(branch, n, "%s", session_id);
	else
		snprintf(branch, n, "%s/%s", prefix, session_id);
}

int cmv_formats__session_finish(cmv_import_result *out, cmv_repo *repo, const char *path, const char *format,
		   const char *prefix, const char *session_id, const record_list *rl, size_t tip,
		   const size_t *abandoned, size_t n_abandoned, const char *lead, size_t lead_len,
		   const session_source *src, const cmv_import_options *opts)
{
	cmv_buf name = CMV_BUF_INIT(4096), alt = CMV_BUF_INIT(4096);
	cmv_id manifest, *kept = NULL;
	cmv_ref *old = NULL;
	char branch[CMV_REF_NAME_MAX + 1];
	int error;

	branch_for(branch, sizeof(branch), prefix, session_id, opts);
	if ((error = write_manifest(&manifest, repo, rl, format, session_id, lead, lead_len, src, branch, tip)) < 0 ||
	    (error = cmv_buf_printf(&name, "%s/%s", prefix, session_id)) < 0)
		goto done;
	if (!cmv_ref_name_is_valid(name.ptr)) {
		error = cmv_error__set(CMV_EINVALID, "%s: session id '%s' cannot name a ref", path, session_id);
		goto done;
	}
	error = cmv_ref_lookup(&old, repo, name.ptr);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = cmv_session_set(repo, name.ptr, &manifest, NULL);
		out->outcome = CMV_IMPORT_CREATED;
	} else if (error == 0) {
		out->outcome = cmv_id_equal(&old->target, &manifest) ? CMV_IMPORT_UNCHANGED : CMV_IMPORT_UPDATED;
		error = cmv_session_set(repo, name.ptr, &manifest, &old->target);
	}
	if (error < 0)
		goto done;

	if (!(kept = cmv__calloc(n_abandoned ? n_abandoned : 1, sizeof(*kept)))) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t k = 0; k < n_abandoned && !error; k++) {
		kept[k] = rl->ids[abandoned[k]];
		cmv_buf_clear(&alt);
		if ((error = cmv_buf_printf(&alt, "%s.%zu", branch, k + 2)) == 0)
			error = session_branch(repo, path, alt.ptr, &kept[k], name.ptr, opts->flags, NULL, 0);
	}
	if (!error && tip != SIZE_MAX)
		error = session_branch(repo, path, branch, &rl->ids[tip], name.ptr, opts->flags, kept, n_abandoned);
	if (error < 0)
		goto done;
	snprintf(out->branch, sizeof(out->branch), "%s", tip != SIZE_MAX ? branch : name.ptr);
	snprintf(out->session, sizeof(out->session), "%s", name.ptr);
	out->format = format;
	out->head = tip != SIZE_MAX ? rl->ids[tip] : manifest;
done:
	free(kept);
	cmv_ref_free(old);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&alt);
	return error;
}

void cmv_formats__session_source_init(session_source *src, const char *data, size_t size)
{
	src->size = size;
	src->xxh3 = XXH3_64bits(data, size);
	src->records = 0;
}

int cmv_formats__session_unchanged(cmv_import_result *out, cmv_repo *repo, const char *format, const char *prefix,
		      const char *session_id, const session_source *src, const cmv_import_options *opts)
{
	cmv_buf name = CMV_BUF_INIT(4096), blob = CMV_BUF_INIT(1 << 24);
	cmv_ref *ref = NULL, *br = NULL;
	cmv_node *manifest = NULL;
	cJSON *info = NULL;
	char branch[CMV_REF_NAME_MAX + 1], xxh[17];
	int same = 0;

	if (opts->flags & CMV_IMPORT_FORCE)
		return 0;
	branch_for(branch, sizeof(branch), prefix, session_id, opts);
	snprintf(xxh, sizeof(xxh), "%016llx", (unsigned long long)src->xxh3);
	if (cmv_buf_printf(&name, "%s/%s", prefix, session_id) < 0 || !cmv_ref_name_is_valid(name.ptr) ||
	    cmv_ref_lookup(&ref, repo, name.ptr) < 0 || ref->type != CMV_REF_SESSION ||
	    cmv_node_read(&manifest, repo, &ref->target) < 0 || manifest->n_blocks != 1 ||
	    cmv_blob_read(&blob, repo, &manifest->blocks[0].blob) < 0 ||
	    !(info = cJSON_ParseWithLength(blob.ptr, blob.size)))
		goto done;
	const cJSON *bytes = cmv_formats__cj_get(info, "bytes"), *records = cmv_formats__cj_get(info, "records");
	const char *head = cmv_formats__cj_str(info, "head"), *b = cmv_formats__cj_str(info, "branch"), *f = cmv_formats__cj_str(info, "format");
	cmv_id head_id;
	if (!cJSON_IsNumber(bytes) || (size_t)bytes->valuedouble != src->size || !cmv_formats__cj_str(info, "xxh3") ||
	    strcmp(cmv_formats__cj_str(info, "xxh3"), xxh) || !b || strcmp(b, branch) || !f || strcmp(f, format) || !head ||
	    !cJSON_IsNumber(records) || cmv_id_fromstr(&head_id, head) < 0)
		goto done;
	/* the branch is still there, at the session's tail or past it (the user went on from it) */
	if (cmv_ref_lookup(&br, repo, branch) < 0 || br->type != CMV_REF_BRANCH ||
	    cmv_is_ancestor(repo, &head_id, &br->target) != 1)
		goto done;
	memset(out, 0, sizeof(*out));
	snprintf(out->branch, sizeof(out->branch), "%s", branch);
	snprintf(out->session, sizeof(out->session), "%s", name.ptr);
	out->format = format;
	out->outcome = CMV_IMPORT_UNCHANGED;
	out->head = head_id;
	out->records = (size_t)records->valuedouble;
	same = 1;
done:
	cmv_error_clear();
	cJSON_Delete(info);
	cmv_node_free(manifest);
	cmv_ref_free(ref);
	cmv_ref_free(br);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&blob);
	return same;
}

/* ---- writing a branch as a new session of its agent ------------------------ */

int cmv_formats__session_rewrite(cmv_buf *out, cmv_repo *repo, const cmv_id *tip, const session_rewriter *w, void *payload)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_buf rec = CMV_BUF_INIT(SESSION_MAX_BYTES);
	size_t from_source = 0;
	int error;

	if ((error = cmv_walk_new(&walk, repo, tip)) < 0)
		return error;
	cmv_buf_clear(out);
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		const char *format;
		/* without its separator: glued records become a line each, as a resumable file needs */
		error = cmv_formats__session_record_bytes(&rec, &format, repo, n, false);
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			if (n->kind == CMV_KIND_EVENT) {
				error = 0;
				continue;
			}
			/* appended in cmv, or a summary a compaction wrote: a line of its own */
			error = w->message(out, repo, n, payload);
		} else if (error < 0) {
			break;
		} else if (strcmp(format, w->format)) {
			error = cmv_error__set(CMV_EINVALID, "the branch has %s records, not %s ones", format, w->label);
		} else {
			from_source++;
			error = w->record(out, rec.ptr, rec.size, payload);
		}
		if (error < 0 || (error = cmv_buf_putc(out, '\n')) < 0)
			break;
	}
	if (error == CMV_ITEROVER)
		error = 0;
	if (!error && !from_source)
		error = cmv_error__set(CMV_EINVALID, "the branch holds no %s records to resume from", w->label);
	cmv_walk_free(walk);
	cmv_buf_dispose(&rec);
	return error;
}

/* ---- export ------------------------------------------------------------- */

int cmv_export_session(cmv_repo *repo, const char *session, cmv_write_fn write, void *payload)
{
	cmv_ref *ref = NULL;
	cmv_node *manifest = NULL, *chunk = NULL, *rec = NULL;
	cmv_buf blob = CMV_BUF_INIT(CMV_BUF_CONTENT), line = CMV_BUF_INIT(SESSION_MAX_BYTES);
	cJSON *info = NULL;
	const char *format;
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
	if (manifest->n_blocks != 1 || strcmp(manifest->blocks[0].type, "session") ||
	    (error = cmv_blob_read(&blob, repo, &manifest->blocks[0].blob)) < 0 ||
	    !(info = cJSON_ParseWithLength(blob.ptr, blob.size))) {
		error = error < 0 ? error : cmv_error__set(CMV_ECORRUPT, "session '%s' has no manifest", session);
		goto done;
	}
	const char *lead = cmv_formats__cj_str(info, "lead");
	if (lead && *lead && (error = write(lead, strlen(lead), payload)) < 0)
		goto done;
	for (size_t c = 0; c < manifest->n_includes && !error; c++) {
		if ((error = cmv_node_read(&chunk, repo, &manifest->includes[c])) < 0)
			break;
		for (size_t r = 0; r < chunk->n_includes && !error; r++) {
			if ((error = cmv_node_read(&rec, repo, &chunk->includes[r])) < 0)
				break;
			error = cmv_formats__session_record_bytes(&line, &format, repo, rec, true);
			if (error == CMV_ENOTFOUND) {
				char hex[CMV_ID_HEXSZ + 1];
				error = cmv_error__set(CMV_ECORRUPT, "record %s of session '%s' has no template",
						       cmv_id_tostr(hex, sizeof(hex), &rec->id), session);
			}
			if (!error)
				error = write(line.ptr, line.size, payload);
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

/* ---- the generic importer ------------------------------------------------- */

/* ---- what every importer shares ---------------------------------------------- */

void cmv_formats__session_skip(cmv_import_result *res, size_t lineno)
{
	if (res->skipped < CMV_IMPORT_SKIPPED_LISTED)
		res->skipped_lines[res->skipped] = lineno;
	res->skipped++;
}

int cmv_formats__session_check_size(const char *path, size_t lineno, size_t len, const cmv_import_options *opts)
{
	size_t max = opts->max_line_bytes ? opts->max_line_bytes : CMV_IMPORT_MAX_LINE_DEFAULT;
	if (len <= max)
		return 0;
	return cmv_error__set(CMV_ETOOBIG, "%s:%zu: a record of %zu bytes is over the limit of %zu (--max-line-bytes)", path,
			      lineno, len, max);
}

void cmv_formats__session_probe(const char *file, size_t size, int (*fn)(jspan rec, const cJSON *j, void *payload), void *payload)
{
	const char *end = file + size, *p = cmv_formats__jscan_ws(file, end);
	for (int k = 0; k < 16 && p < end && *p == '{'; k++) {
		const char *e = cmv_formats__jscan_value(p, end);
		cJSON *j = e ? cJSON_ParseWithLength(p, (size_t)(e - p)) : NULL;
		jspan span = { p, e };
		int found = cJSON_IsObject(j) ? fn(span, j, payload) : 0;
		cJSON_Delete(j);
		if (found || !e)
			break;
		p = cmv_formats__jscan_ws(e, end);
	}
	cmv_error_clear();
}

struct session_import {
	char id[256];
};

void cmv_formats__session_import_id(session_import *si, const char *id)
{
	if (!si->id[0] && id && *id)
		snprintf(si->id, sizeof(si->id), "%s", id);
}

/* One record to write: [rec, rec_end) then its separator up to `next`. */
typedef struct {
	const char *rec, *rec_end, *next;
	enum { REC_JSON, REC_HEADER, REC_TRAILER, REC_RAW } what;
} raw_record;

static size_t count_lines(const char *p, const char *end)
{
	size_t n = 0;
	for (; p < end; p++)
		n += *p == '\n';
	return n;
}

/* Split a JSON document into header, elements and trailer. */
static int split_document(raw_record **out, size_t *n_out, const char *path, const char *file, size_t size,
			  const char *key)
{
	const char *end = file + size, *p = cmv_formats__jscan_ws(file, end);
	jspan arr;
	raw_record *rs = NULL;
	size_t n = 0, cap = 0;
	int error = 0;

	if (p == end || !cmv_formats__jscan_value(p, end) || cmv_formats__jscan_ws(cmv_formats__jscan_value(p, end), end) != end)
		return cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON document", path,
				      1 + count_lines(file, p < end && cmv_formats__jscan_value(p, end) ? cmv_formats__jscan_value(p, end) : p));
	if (!*key) {
		arr.p = p;
		arr.end = cmv_formats__jscan_value(p, end);
		if (*p != '[')
			return cmv_error__set(CMV_EINVALID, "%s:1: expected a JSON array of records", path);
	} else {
		jspan doc = { p, cmv_formats__jscan_value(p, end) };
		if (*p != '{' || cmv_formats__jscan_member(&arr, doc, key) != 1 || *arr.p != '[')
			return cmv_error__set(CMV_EINVALID, "%s: no \"%s\" array of records", path, key);
	}
	const char *cur = NULL, *prev_end = NULL;
	jspan el;
	int more;
	while ((more = cmv_formats__jscan_next_element(&el, arr, &cur)) == 1 || !n) {
		if ((error = cmv__array_grow((void **)&rs, &cap, n + 1, sizeof(*rs))) < 0)
			goto fail;
		if (!n) { /* the header runs up to the first element, or to the closing bracket */
			const char *stop = more == 1 ? el.p : cmv_formats__jscan_ws(arr.p + 1, arr.end);
			rs[n++] = (raw_record){ file, stop, stop, REC_HEADER };
			if (more != 1)
				break;
		}
		if (prev_end) /* the separator runs up to this element */
			rs[n - 1].next = el.p;
		rs[n++] = (raw_record){ el.p, el.end, el.end, REC_JSON };
		prev_end = el.end;
	}
	if (more < 0) {
		error = cmv_error__set(CMV_EINVALID, "%s: malformed record array", path);
		goto fail;
	}
	/* the last element's separator is the space before ']'; the trailer is the rest */
	const char *close = arr.end - 1;
	if (n > 1)
		rs[n - 1].next = close;
	if ((error = cmv__array_grow((void **)&rs, &cap, n + 1, sizeof(*rs))) < 0)
		goto fail;
	rs[n++] = (raw_record){ close, end, end, REC_TRAILER };
	*out = rs;
	*n_out = n;
	return 0;
fail:
	free(rs);
	return error;
}

typedef struct {
	const session_driver *d;
	session_import *si;
	record_build *rb;
} probe_ctx;

/* Let the driver read a record for the session id it may hold (its blocks are thrown away). */
static int probe_record(jspan rec, const cJSON *j, void *payload)
{
	probe_ctx *pc = payload;
	cmv_role role;
	cmv_kind kind;
	cmv_formats__record_build_reset(pc->rb, rec.p);
	pc->d->record(pc->si, pc->rb, rec, j, &role, &kind);
	return pc->si->id[0] != '\0';
}

int cmv__session_import(cmv_import_result *out, cmv_repo *repo, const char *path, const session_driver *d,
			const cmv_import_options *opts)
{
	cmv_import_options defaults = CMV_IMPORT_OPTIONS_INIT;
	cmv_buf file = CMV_BUF_INIT(SESSION_MAX_BYTES), meta = CMV_BUF_INIT(CMV_BUF_CONTENT),
		name = CMV_BUF_INIT(4096);
	record_build rb;
	record_list rl;
	raw_record *recs = NULL;
	size_t n_recs = 0, cap_recs = 0, tail = SIZE_MAX;
	session_import si;
	cmv_import_result res;
	const char *lead_end;
	int error = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (!opts)
		opts = &defaults;
	cmv_formats__record_build_init(&rb);
	memset(&rl, 0, sizeof(rl));
	memset(&si, 0, sizeof(si));
	memset(&res, 0, sizeof(res));
	if ((error = cmv__read_file(&file, path)) < 0)
		goto out;
	const char *fend = file.ptr + file.size;
	lead_end = file.ptr;

	/*
	 * The session's id, from its first records, before anything else: a
	 * file imported before and unchanged since costs a hash.
	 */
	session_source src;
	cmv_formats__session_source_init(&src, file.ptr, file.size);
	{
		const char *top = cmv_formats__jscan_ws(file.ptr, fend);
		jspan doc = { top, fend }, v;
		if (d->array_key && *top == '{' && cmv_formats__jscan_member(&v, doc, "sessionId") == 1 && *v.p == '"' &&
		    cmv_formats__jscan_unescape(&meta, v) == 0)
			cmv_formats__session_import_id(&si, meta.ptr); /* Gemini CLI names its session at the top */
		if (!d->array_key && !si.id[0]) {
			probe_ctx pc = { d, &si, &rb };
			cmv_formats__session_probe(file.ptr, file.size, probe_record, &pc);
		}
	}
	cmv_error_clear();
	if (!si.id[0]) {
		if ((error = cmv_formats__branch_name_from_path(&name, path)) < 0)
			goto out;
		snprintf(si.id, sizeof(si.id), "%s", name.ptr);
	}
	if (cmv_formats__session_unchanged(out, repo, d->name, d->prefix, si.id, &src, opts))
		goto out;

	/* Split the file into records first: a malformed file fails before any write. */
	if (d->array_key) {
		if ((error = split_document(&recs, &n_recs, path, file.ptr, file.size, d->array_key)) < 0)
			goto out;
	} else {
		const char *p = lead_end = cmv_formats__jscan_ws(file.ptr, fend);
		size_t lineno = 1 + count_lines(file.ptr, p);
		while (p < fend) {
			const char *rec_end = (*p == '{' || *p == '[') ? cmv_formats__jscan_value(p, fend) : NULL;
			const char *nl = memchr(p, '\n', (size_t)(fend - p));
			if ((error = cmv__array_grow((void **)&recs, &cap_recs, n_recs, sizeof(*recs))) < 0)
				goto out;
			if (!rec_end) {
				if (!nl) { /* the last line, cut off: the session is still being written */
					cmv_formats__session_skip(&res, lineno);
					res.partial_tail = true;
					break;
				}
				if (!(opts->flags & CMV_IMPORT_LENIENT)) {
					error = cmv_error__set(CMV_EINVALID, "%s:%zu: malformed JSON record", path, lineno);
					goto out;
				}
				/* kept as an opaque record, so that export still gives the file back */
				cmv_formats__session_skip(&res, lineno);
				recs[n_recs++] = (raw_record){ p, nl, cmv_formats__jscan_ws(nl, fend), REC_RAW };
			} else {
				recs[n_recs++] = (raw_record){ p, rec_end, cmv_formats__jscan_ws(rec_end, fend), REC_JSON };
			}
			lineno += count_lines(p, recs[n_recs - 1].next);
			p = recs[n_recs - 1].next;
		}
	}

	/* A record over the cap is refused before anything is written: it is an attack or a corrupt file. */
	for (size_t i = 0, ln = 1 + count_lines(file.ptr, lead_end); i < n_recs; ln += count_lines(recs[i].rec, recs[i].next), i++)
		if ((error = cmv_formats__session_check_size(path, ln, (size_t)(recs[i].rec_end - recs[i].rec), opts)) < 0)
			goto out;
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto out;
	size_t lineno = 1 + count_lines(file.ptr, lead_end);
	for (size_t i = 0; i < n_recs; i++) {
		raw_record *r = &recs[i];
		cJSON *j = NULL;
		cmv_role role = CMV_ROLE_SYSTEM;
		cmv_kind kind = CMV_KIND_EVENT;
		jspan span = { r->rec, r->rec_end };

		cmv_formats__record_build_reset(&rb, r->rec);
		if (r->what == REC_JSON) {
			if (!cmv__utf8_valid(r->rec, (size_t)(r->rec_end - r->rec), NULL)) {
				error = cmv_error__set(CMV_EINVALID, "%s:%zu: invalid UTF-8", path, lineno);
				goto fail;
			}
			if (!(j = cJSON_ParseWithLength(r->rec, (size_t)(r->rec_end - r->rec))) || !cJSON_IsObject(j)) {
				cJSON_Delete(j);
				if (!(opts->flags & CMV_IMPORT_LENIENT)) {
					error = cmv_error__set(CMV_EINVALID, "%s:%zu: %s", path, lineno,
							       j ? "a record is not a JSON object" : "malformed JSON record");
					goto fail;
				}
				cmv_formats__session_skip(&res, lineno);
				j = NULL;
			} else if ((error = d->record(&si, &rb, span, j, &role, &kind)) < 0) {
				cJSON_Delete(j);
				cmv_error__prefix("%s:%zu: ", path, lineno);
				goto fail;
			}
		}
		if ((!j && (error = cmv_formats__record_add_opaque(&rb, span)) < 0) ||
		    (error = cmv_formats__session_meta_build(&meta, d->name, r->rec, (size_t)(r->rec_end - r->rec), &rb, r->rec_end,
						(size_t)(r->next - r->rec_end))) < 0) {
			cJSON_Delete(j);
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		cmv_formats__record_build_finish(&rb);
		cmv_message m = { .role = role, .kind = kind, .blocks = rb.blocks, .n_blocks = rb.n_blocks,
				  .meta = meta.ptr, .meta_len = meta.size };
		cmv_id id;
		error = cmv_node_write(&id, repo, tail == SIZE_MAX ? NULL : &rl.ids[tail], &m);
		cJSON_Delete(j);
		if (error < 0) {
			cmv_error__prefix("%s:%zu: ", path, lineno);
			goto fail;
		}
		if ((error = cmv_formats__record_list_push(&rl, &id, tail, true, kind == CMV_KIND_MESSAGE)) < 0)
			goto fail;
		tail = rl.n - 1;
		if (r->what == REC_JSON)
			res.records++;
		lineno += count_lines(r->rec, r->next);
		if (opts->progress && opts->progress(res.records, opts->progress_payload)) {
			error = cmv_error__set(CMV_EUSER, "%s: import cancelled", path);
			goto fail;
		}
	}
	if (!rl.n) {
		error = cmv_error__set(CMV_EINVALID, "%s: no records to import", path);
		goto fail;
	}
	src.records = res.records;
	if ((error = cmv_formats__session_finish(&res, repo, path, d->name, d->prefix, si.id, &rl, tail, NULL, 0, file.ptr,
				    (size_t)(lead_end - file.ptr), &src, opts)) < 0 ||
	    (error = cmv_repo_txn_commit(repo)) < 0)
		goto fail;
	*out = res;
	goto out;
fail:
	cmv_repo_txn_rollback(repo);
out:
	cmv_formats__record_build_dispose(&rb);
	cmv_formats__record_list_dispose(&rl);
	free(recs);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&meta);
	cmv_buf_dispose(&name);
	return error;
}
