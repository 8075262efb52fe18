/* SPDX-License-Identifier: MIT */
/*
 * Portable bundles: snapshots (and the branches made from them) with every
 * object they reach, in a POSIX ustar archive that any tar can list.
 *
 *   cmv-bundle.json   the refs: name, type, target, lineage, description,
 *                     tags, notes; the format's name and version
 *   blobs/<id>        each blob's bytes (32 hex digits: their xxh128)
 *   nodes.jsonl       each node as JSON, parents and edge targets first
 *
 * Objects are content-addressed, so a bundle is verified as it is read:
 * a blob must hash to its name and a node, written again, to its id. A node
 * carries its edges (derived_from, covers, includes) and the bundle carries
 * their targets, so a trimmed branch arrives with its originals and every
 * stub still recalls.
 *
 * Reading refuses anything but those three kinds of entry, and says why:
 * absolute paths, "..", links and other special entries, entries over the
 * size cap, a bad header checksum, a truncated archive. Nothing is ever
 * written to the file system from a bundle; the store gets all of it in one
 * transaction, or none of it.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include "base/base.h"
#include <cmv/dag.h>

void cmv_bundle_import_options_init(cmv_bundle_import_options *opts)
{
	static const cmv_bundle_import_options init = CMV_BUNDLE_IMPORT_OPTIONS_INIT;
	*opts = init;
}

#define TAR_BLOCK 512
#define BUNDLE_MANIFEST "cmv-bundle.json"
#define BUNDLE_NODES "nodes.jsonl"
#define BUNDLE_FORMAT "cmv-bundle"
#define BUNDLE_VERSION 1

/* ---- writing ---------------------------------------------------------------- */

typedef struct {
	cmv_write_fn write;
	void *payload;
	uint64_t bytes;
	int64_t mtime;
} tar_out;

static void octal(char *field, size_t width, uint64_t v)
{
	/* width - 1 digits and a NUL, as ustar wants */
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0; v >>= 3)
		field[i] = (char)('0' + (v & 7));
}

static int tar_entry(tar_out *t, const char *name, const void *data, size_t len)
{
	unsigned char h[TAR_BLOCK];
	static const unsigned char zero[TAR_BLOCK];
	unsigned sum = 0;
	int error;

	memset(h, 0, sizeof(h));
	memcpy(h, name, strlen(name)); /* our names are short: no prefix field needed */
	octal((char *)h + 100, 8, 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, len);
	octal((char *)h + 136, 12, (uint64_t)t->mtime);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += h[i];
	octal((char *)h + 148, 7, sum);
	h[155] = ' ';
	if ((error = t->write(h, TAR_BLOCK, t->payload)) != 0 || (len && (error = t->write(data, len, t->payload)) != 0) ||
	    (len % TAR_BLOCK && (error = t->write(zero, TAR_BLOCK - len % TAR_BLOCK, t->payload)) != 0))
		return error < 0 ? error : cmv_error__set(CMV_EIO, "cannot write the bundle");
	t->bytes += TAR_BLOCK + len + (len % TAR_BLOCK ? TAR_BLOCK - len % TAR_BLOCK : 0);
	return 0;
}

/* The objects to bundle: nodes in an order where parents and edge targets come first. */
typedef struct {
	cmv_repo *repo;
	cmv__strmap seen; /* node hex -> 1 */
	cmv__strmap blobs;
	cmv_id *order;
	size_t n, cap;
} collect;

static int push_id(cmv_id **arr, size_t *n, size_t *cap, const cmv_id *id)
{
	int error = cmv__array_grow((void **)arr, cap, *n, sizeof(**arr));
	if (error < 0)
		return error;
	(*arr)[(*n)++] = *id;
	return 0;
}

/*
 * Depth first, children (parent and edge targets) before the node, with an
 * explicit stack: a history can be a million nodes deep.
 */
static int collect_from(collect *c, const cmv_id *root)
{
	typedef struct {
		cmv_id id;
		bool expanded;
	} frame;
	frame *stack = NULL;
	size_t n = 0, cap = 0;
	char hex[CMV_ID_HEXSZ + 1];
	int error = 0;

	if (cmv_id_is_none(root) || cmv__strmap_get(&c->seen, cmv_id_tostr(hex, sizeof(hex), root), NULL, NULL))
		return 0;
#define PUSH(x, e)                                                                             \
	do {                                                                                   \
		if (n == cap) {                                                                \
			frame *g_ = cmv__realloc(stack, (cap = cap ? cap * 2 : 64) * sizeof(*stack)); \
			if (!g_) {                                                             \
				error = cmv_error__oom();                                            \
				goto done;                                                     \
			}                                                                      \
			stack = g_;                                                            \
		}                                                                              \
		stack[n++] = (frame){ *(x), (e) };                                             \
	} while (0)
	PUSH(root, false);
	while (n) {
		frame f = stack[--n];
		cmv_id_tostr(hex, sizeof(hex), &f.id);
		if (f.expanded) {
			if (!cmv__strmap_get(&c->seen, hex, NULL, NULL)) {
				if ((error = cmv__strmap_put(&c->seen, hex, 1, NULL)) < 0 ||
				    (error = push_id(&c->order, &c->n, &c->cap, &f.id)) < 0)
					goto done;
			}
			continue;
		}
		if (cmv__strmap_get(&c->seen, hex, NULL, NULL))
			continue;
		cmv_node *node = NULL;
		if ((error = cmv_node_read(&node, c->repo, &f.id)) < 0)
			goto done;
		PUSH(&f.id, true);
		for (size_t i = 0; i < node->n_blocks && !error; i++) {
			char bh[CMV_ID_HEXSZ + 1];
			error = cmv__strmap_put(&c->blobs, cmv_id_tostr(bh, sizeof(bh), &node->blocks[i].blob), 0, NULL);
		}
		const cmv_id *const lists[] = { node->derived_from, node->covers, node->includes };
		const size_t counts[] = { node->n_derived_from, node->n_covers, node->n_includes };
		for (size_t l = 0; l < 3 && !error; l++)
			for (size_t i = 0; i < counts[l]; i++) {
				char eh[CMV_ID_HEXSZ + 1];
				if (!cmv__strmap_get(&c->seen, cmv_id_tostr(eh, sizeof(eh), &lists[l][i]), NULL, NULL))
					PUSH(&lists[l][i], false);
			}
		if (!error && !cmv_id_is_none(&node->parent)) {
			char ph[CMV_ID_HEXSZ + 1];
			if (!cmv__strmap_get(&c->seen, cmv_id_tostr(ph, sizeof(ph), &node->parent), NULL, NULL))
				PUSH(&node->parent, false);
		}
		cmv_node_free(node);
		if (error)
			goto done;
	}
#undef PUSH
done:
	free(stack);
	return error;
}

static cJSON *ids_json(const cmv_id *ids, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	char hex[CMV_ID_HEXSZ + 1];
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(cmv_id_tostr(hex, sizeof(hex), &ids[i])));
	return a;
}

static int node_line(cmv_buf *out, const cmv_node *n)
{
	cJSON *o = cJSON_CreateObject(), *blocks;
	char hex[CMV_ID_HEXSZ + 1];
	char *s;
	int error = 0;

	cJSON_AddStringToObject(o, "id", cmv_id_tostr(hex, sizeof(hex), &n->id));
	if (cmv_id_is_none(&n->parent))
		cJSON_AddNullToObject(o, "parent");
	else
		cJSON_AddStringToObject(o, "parent", cmv_id_tostr(hex, sizeof(hex), &n->parent));
	cJSON_AddStringToObject(o, "role", cmv_role_name(n->role));
	cJSON_AddStringToObject(o, "kind", cmv_kind_name(n->kind));
	if (n->meta) {
		/* text when it can travel as a JSON string, base64 otherwise */
		if (cmv__utf8_valid(n->meta, n->meta_len, NULL) && !memchr(n->meta, '\0', n->meta_len)) {
			char *m = cmv__malloc(n->meta_len + 1);
			if (!m) {
				cJSON_Delete(o);
				return cmv_error__oom();
			}
			memcpy(m, n->meta, n->meta_len);
			m[n->meta_len] = '\0';
			cJSON_AddStringToObject(o, "meta", m);
			free(m);
		} else {
			cmv_buf b = CMV_BUF_INIT((size_t)1 << 31);
			if ((error = cmv_base64_encode(&b, n->meta, n->meta_len)) == 0)
				cJSON_AddStringToObject(o, "meta_base64", b.ptr ? b.ptr : "");
			cmv_buf_dispose(&b);
		}
	}
	blocks = cJSON_AddArrayToObject(o, "blocks");
	for (size_t i = 0; i < n->n_blocks; i++) {
		const cmv_block *b = &n->blocks[i];
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "type", b->type);
		cJSON_AddStringToObject(x, "blob", cmv_id_tostr(hex, sizeof(hex), &b->blob));
		if (b->tool_id)
			cJSON_AddStringToObject(x, "tool_id", b->tool_id);
		if (b->tool_name)
			cJSON_AddStringToObject(x, "tool_name", b->tool_name);
		if (b->media_type)
			cJSON_AddStringToObject(x, "media_type", b->media_type);
		if (b->flags)
			cJSON_AddNumberToObject(x, "flags", b->flags);
		cJSON_AddItemToArray(blocks, x);
	}
	if (n->n_derived_from)
		cJSON_AddItemToObject(o, "derived_from", ids_json(n->derived_from, n->n_derived_from));
	if (n->n_covers)
		cJSON_AddItemToObject(o, "covers", ids_json(n->covers, n->n_covers));
	if (n->n_includes)
		cJSON_AddItemToObject(o, "includes", ids_json(n->includes, n->n_includes));
	if (!error && !(s = cJSON_PrintUnformatted(o)))
		error = cmv_error__oom();
	if (!error) {
		error = cmv_buf_printf(out, "%s\n", s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	return error;
}

typedef struct {
	cmv_repo *repo;
	const char *const *want;
	size_t n_want;
	cmv__strmap names; /* refs already picked */
	cJSON *refs;
	bool with_branches;
	int error;
} pick;

static int add_ref(pick *p, const cmv_ref *r)
{
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *o;
	cmv_buf note = CMV_BUF_INIT(1 << 20);

	if (cmv__strmap_get(&p->names, r->name, NULL, NULL))
		return 0;
	if (cmv__strmap_put(&p->names, r->name, 0, NULL) < 0 || !(o = cJSON_CreateObject()))
		return cmv_error__oom();
	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "type", r->type == CMV_REF_SNAPSHOT ? "snapshot" : "branch");
	cJSON_AddStringToObject(o, "target", cmv_id_tostr(hex, sizeof(hex), &r->target));
	if (r->from_ref)
		cJSON_AddStringToObject(o, "from", r->from_ref);
	if (r->description)
		cJSON_AddStringToObject(o, "description", r->description);
	if (r->n_tags) {
		cJSON *t = cJSON_AddArrayToObject(o, "tags");
		for (size_t i = 0; i < r->n_tags; i++)
			cJSON_AddItemToArray(t, cJSON_CreateString(r->tags[i]));
	}
	cJSON_AddNumberToObject(o, "created", (double)r->created);
	if (r->type == CMV_REF_BRANCH) {
		if (cmv_branch_note_get(&note, p->repo, r->name, "trim") == 0 && note.size)
			cJSON_AddStringToObject(o, "trim", note.ptr);
		cmv_error_clear();
		cmv_buf_clear(&note);
		if (cmv_branch_llm_get(&note, p->repo, r->name) == 0 && note.size)
			cJSON_AddStringToObject(o, "llm", note.ptr);
		cmv_error_clear();
	}
	cmv_buf_dispose(&note);
	cJSON_AddItemToArray(p->refs, o);
	return 0;
}

/* Branches made from a picked snapshot. */
static int pick_children(const cmv_ref *r, void *payload)
{
	pick *p = payload;
	if (r->type == CMV_REF_BRANCH && r->from_ref && cmv__strmap_get(&p->names, r->from_ref, NULL, NULL)) {
		cmv_ref *from = NULL;
		bool snap = cmv_ref_lookup(&from, p->repo, r->from_ref) == 0 && from->type == CMV_REF_SNAPSHOT;
		cmv_error_clear();
		cmv_ref_free(from);
		if (snap && !cmv_id_is_none(&r->target))
			return add_ref(p, r);
	}
	return 0;
}

static int bundle_export_filled(cmv_bundle_stats *out, cmv_repo *repo, const char *const *snapshots, size_t n_snapshots,
		      unsigned int flags, cmv_write_fn write, void *payload)
{
	pick p = { .repo = repo, .want = snapshots, .n_want = n_snapshots, .with_branches = flags & CMV_BUNDLE_WITH_BRANCHES };
	collect c = { .repo = repo };
	tar_out t = { .write = write, .payload = payload, .mtime = cmv__now() };
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 31), blob = CMV_BUF_INIT((size_t)1 << 31);
	cJSON *doc = NULL;
	char *s = NULL;
	int error = 0;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(write);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!n_snapshots)
		return cmv_error__set(CMV_EINVALID, "a bundle needs at least one snapshot");
	if (!(doc = cJSON_CreateObject()) || !(p.refs = cJSON_CreateArray())) {
		cJSON_Delete(doc);
		return cmv_error__oom();
	}
	cJSON_AddStringToObject(doc, "format", BUNDLE_FORMAT);
	cJSON_AddNumberToObject(doc, "version", BUNDLE_VERSION);
	cJSON_AddStringToObject(doc, "cmv", cmv_version());
	cJSON_AddItemToObject(doc, "refs", p.refs);
	/* each snapshot, then the snapshots of its lineage (what it was made from, and so on up) */
	for (size_t i = 0; i < n_snapshots && !error; i++) {
		char name[CMV_REF_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%s", snapshots[i]);
		for (int guard = 0; guard < 10000; guard++) {
			cmv_ref *r = NULL;
			if ((error = cmv_ref_lookup(&r, repo, name)) < 0) {
				if (guard && error == CMV_ENOTFOUND) {
					cmv_error_clear(); /* a lineage whose source was deleted ends there */
					error = 0;
				}
				break;
			}
			if (!guard && r->type == CMV_REF_BRANCH && (flags & CMV_BUNDLE_ANY_REFS)) {
				error = add_ref(&p, r);
				cmv_ref_free(r);
				break;
			}
			if (!guard && r->type != CMV_REF_SNAPSHOT) {
				error = cmv_error__set(CMV_EINVALID, "'%s' is a %s; a bundle holds snapshots (snapshot it first)",
						       name, r->type == CMV_REF_BRANCH ? "branch" : "session");
				cmv_ref_free(r);
				break;
			}
			if (r->type == CMV_REF_SNAPSHOT)
				error = add_ref(&p, r);
			bool more = !error && r->from_ref && r->type != CMV_REF_SESSION;
			if (more)
				snprintf(name, sizeof(name), "%s", r->from_ref);
			cmv_ref_free(r);
			if (!more)
				break;
		}
	}
	if (!error && p.with_branches)
		error = cmv_ref_foreach(repo, pick_children, &p);
	for (cJSON *r = p.refs->child; r && !error; r = r->next) {
		cmv_id target;
		if ((error = cmv_id_fromstr(&target, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "target")))) == 0)
			error = collect_from(&c, &target);
	}
	if (error)
		goto done;
	cJSON_AddNumberToObject(doc, "nodes", (double)c.n);
	cJSON_AddNumberToObject(doc, "blobs", (double)c.blobs.n);
	if (!(s = cJSON_Print(doc))) {
		error = cmv_error__oom();
		goto done;
	}
	if ((error = tar_entry(&t, BUNDLE_MANIFEST, s, strlen(s))) < 0)
		goto done;
	for (size_t i = 0; i < c.blobs.cap && !error; i++) {
		char name[8 + CMV_ID_HEXSZ + 1];
		cmv_id id;
		if (!c.blobs.keys[i])
			continue;
		snprintf(name, sizeof(name), "blobs/%s", c.blobs.keys[i]);
		if ((error = cmv_id_fromstr(&id, c.blobs.keys[i])) == 0 && (error = cmv_blob_read(&blob, repo, &id)) == 0)
			error = tar_entry(&t, name, blob.ptr ? blob.ptr : "", blob.size);
	}
	for (size_t i = 0; i < c.n && !error; i++) {
		cmv_node *n = NULL;
		if ((error = cmv_node_read(&n, repo, &c.order[i])) == 0)
			error = node_line(&text, n);
		cmv_node_free(n);
	}
	if (!error)
		error = tar_entry(&t, BUNDLE_NODES, text.ptr ? text.ptr : "", text.size);
	if (!error) {
		static const unsigned char end[2 * TAR_BLOCK];
		if ((error = write(end, sizeof(end), payload)) != 0)
			error = error < 0 ? error : cmv_error__set(CMV_EIO, "cannot write the bundle");
		t.bytes += sizeof(end);
	}
	if (!error && out) {
		out->refs = (size_t)cJSON_GetArraySize(p.refs);
		out->nodes = c.n;
		out->blobs = c.blobs.n;
		out->bytes = t.bytes;
	}
done:
	cJSON_free(s);
	cJSON_Delete(doc);
	cmv__strmap_dispose(&p.names);
	cmv__strmap_dispose(&c.seen);
	cmv__strmap_dispose(&c.blobs);
	free(c.order);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&blob);
	return error;
}

int cmv_bundle_export(cmv_bundle_stats *out, cmv_repo *repo, const char *const *snapshots, size_t n_snapshots,
		      unsigned int flags, cmv_write_fn write, void *payload)
{
	int error = bundle_export_filled(out, repo, snapshots, n_snapshots, flags, write, payload);
	if (out)
		out->version = CMV_BUNDLE_STATS_VERSION;
	return error;
}

/* ---- reading ---------------------------------------------------------------- */

typedef struct {
	const char *path;
	FILE *fp;
	uint64_t offset;
	char name[256 + 2];
	uint64_t size;
} tar_in;

static bool zero_block(const unsigned char *h)
{
	for (size_t i = 0; i < TAR_BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

static bool parse_octal(uint64_t *out, const unsigned char *f, size_t width)
{
	size_t i = 0;
	uint64_t v = 0;
	while (i < width && f[i] == ' ')
		i++;
	if (i == width || f[i] < '0' || f[i] > '7')
		return false;
	for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < width; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	*out = v;
	return true;
}

/*
 * The next entry's header, checked: 1 an entry (t->name, t->size), 0 the
 * end, or an error whose message names the bundle, the entry and why.
 */
static int tar_next(tar_in *t, const cmv_bundle_import_options *o)
{
	unsigned char h[TAR_BLOCK];
	uint64_t sum = 0, want;
	size_t n = fread(h, 1, TAR_BLOCK, t->fp);

	if (n == 0 && feof(t->fp))
		return cmv_error__set(CMV_EINVALID, "%s: truncated: the archive ends without its end marker", t->path);
	if (n != TAR_BLOCK)
		return cmv_error__set(CMV_EINVALID, "%s: truncated at byte %llu (a header cut off)", t->path,
				      (unsigned long long)t->offset);
	if (zero_block(h))
		return 0;
	for (size_t i = 0; i < TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	if (memcmp(h + 257, "ustar", 5) || !parse_octal(&want, h + 148, 8) || want != sum)
		return cmv_error__set(CMV_EINVALID, "%s: byte %llu: not a tar header (bad magic or checksum): damaged, or not a cmv bundle",
				      t->path, (unsigned long long)t->offset);
	/* ustar: prefix "/" name, each NUL-terminated unless full */
	char name[101], prefix[156];
	memcpy(name, h, 100);
	name[100] = '\0';
	memcpy(prefix, h + 345, 155);
	prefix[155] = '\0';
	snprintf(t->name, sizeof(t->name), "%s%s%s", prefix, prefix[0] ? "/" : "", name);
	char type = (char)h[156];
	if (t->name[0] == '/')
		return cmv_error__set(CMV_EINVALID, "%s: entry '%s': an absolute path; refused", t->path, t->name);
	for (const char *p = t->name; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
		if (!strncmp(p, "..", 2) && (p[2] == '/' || p[2] == '\0'))
			return cmv_error__set(CMV_EINVALID, "%s: entry '%s': a '..' in its path; refused", t->path, t->name);
	if (type == '1' || type == '2')
		return cmv_error__set(CMV_EINVALID, "%s: entry '%s': a %s link; refused", t->path, t->name,
				      type == '1' ? "hard" : "symbolic");
	if (type != '0' && type != '\0')
		return cmv_error__set(CMV_EINVALID, "%s: entry '%s': not a regular file (tar type '%c'); refused", t->path,
				      t->name, type >= 32 && type < 127 ? type : '?');
	if (!parse_octal(&t->size, h + 124, 12))
		return cmv_error__set(CMV_EINVALID, "%s: entry '%s': its size is not an octal number", t->path, t->name);
	if (t->size > o->max_entry_bytes)
		return cmv_error__set(CMV_ETOOBIG, "%s: entry '%s' is %llu bytes, over the limit of %llu; refused", t->path,
				      t->name, (unsigned long long)t->size, (unsigned long long)o->max_entry_bytes);
	t->offset += TAR_BLOCK;
	return 1;
}

static int tar_read(cmv_buf *out, tar_in *t)
{
	uint64_t padded = t->size + (t->size % TAR_BLOCK ? TAR_BLOCK - t->size % TAR_BLOCK : 0);
	char chunk[1 << 16];
	int error;
	cmv_buf_clear(out);
	for (uint64_t left = padded; left;) {
		size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
		size_t n = fread(chunk, 1, want, t->fp);
		if (n != want)
			return cmv_error__set(CMV_EINVALID, "%s: entry '%s': truncated (the archive ends inside it)", t->path,
					      t->name);
		uint64_t done = padded - left, keep = done < t->size ? t->size - done : 0;
		if (keep && (error = cmv_buf_put(out, chunk, keep < n ? (size_t)keep : n)) < 0)
			return error;
		left -= n;
	}
	t->offset += padded;
	return 0;
}

static bool hex32(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == CMV_ID_HEXSZ;
}

static int ids_parse(cmv_id **out, size_t *n_out, const cJSON *arr)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
	*out = NULL;
	*n_out = 0;
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr) || (n && !(*out = cmv__calloc(n, sizeof(**out)))))
		return cJSON_IsArray(arr) ? cmv_error__oom() : CMV_EINVALID;
	for (const cJSON *c = arr->child; c; c = c->next, i++)
		if (!cJSON_IsString(c) || !hex32(c->valuestring) || cmv_id_fromstr(&(*out)[i], c->valuestring) < 0)
			return CMV_EINVALID;
	*n_out = n;
	return 0;
}

/* One line of nodes.jsonl: the node written again, which must give its id. */
static int node_apply(cmv_repo *repo, const char *line, size_t len, const char *path, size_t lineno)
{
	cJSON *o = cJSON_ParseWithLength(line, len), *blocks;
	cmv_id want, parent, got, *edges[3] = { NULL, NULL, NULL }, *blob_ids = NULL;
	size_t n_edges[3] = { 0, 0, 0 }, nb = 0;
	cmv_block_content *bcs = NULL;
	cmv_buf meta = CMV_BUF_INIT((size_t)1 << 31);
	cmv_message m = { 0 };
	const char *why = NULL;
	int error = 0;

	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
	const cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parent");
	if (!cJSON_IsObject(o) || !id || !hex32(id) || cmv_id_fromstr(&want, id) < 0) {
		why = "not a node (no valid id)";
		goto bad;
	}
	if (!cJSON_IsNull(par) && (!cJSON_IsString(par) || !hex32(par->valuestring) ||
				   cmv_id_fromstr(&parent, par->valuestring) < 0)) {
		why = "bad parent";
		goto bad;
	}
	if (cmv_role_parse(&m.role, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "role"))) < 0 ||
	    cmv_kind_parse(&m.kind, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"))) < 0) {
		cmv_error_clear();
		why = "bad role or kind";
		goto bad;
	}
	const char *mt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "meta"));
	const char *mb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "meta_base64"));
	if (mt) {
		m.meta = mt;
		m.meta_len = strlen(mt);
	} else if (mb) {
		if (cmv_base64_decode(&meta, mb, strlen(mb)) < 0) {
			cmv_error_clear();
			why = "bad meta_base64";
			goto bad;
		}
		m.meta = meta.ptr ? meta.ptr : "";
		m.meta_len = meta.size;
	}
	static const char *const edge_keys[3] = { "derived_from", "covers", "includes" };
	for (size_t k = 0; k < 3; k++)
		if ((error = ids_parse(&edges[k], &n_edges[k], cJSON_GetObjectItemCaseSensitive(o, edge_keys[k]))) < 0) {
			if (error == CMV_ENOMEM)
				goto done;
			error = 0;
			why = "bad edge list";
			goto bad;
		}
	blocks = cJSON_GetObjectItemCaseSensitive(o, "blocks");
	if (!cJSON_IsArray(blocks)) {
		why = "no blocks";
		goto bad;
	}
	nb = (size_t)cJSON_GetArraySize(blocks);
	if (nb && (!(bcs = cmv__calloc(nb, sizeof(*bcs))) || !(blob_ids = cmv__calloc(nb, sizeof(*blob_ids))))) {
		error = cmv_error__oom();
		goto done;
	}
	size_t i = 0;
	for (const cJSON *b = blocks->child; b; b = b->next, i++) {
		const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		const char *bb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "blob"));
		const cJSON *fl = cJSON_GetObjectItemCaseSensitive(b, "flags");
		if (!bt || !bb || !hex32(bb) || cmv_id_fromstr(&blob_ids[i], bb) < 0 || (fl && (!cJSON_IsNumber(fl) || fl->valuedouble < 0 || fl->valuedouble > UINT32_MAX))) {
			why = "bad block";
			goto bad;
		}
		bcs[i] = (cmv_block_content){ .type = bt, .blob = &blob_ids[i],
					      .tool_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "tool_id")),
					      .tool_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "tool_name")),
					      .media_type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "media_type")),
					      .flags = fl ? (unsigned int)fl->valuedouble : 0 };
	}
	m.blocks = bcs;
	m.n_blocks = nb;
	m.derived_from = edges[0];
	m.n_derived_from = n_edges[0];
	m.covers = edges[1];
	m.n_covers = n_edges[1];
	m.includes = edges[2];
	m.n_includes = n_edges[2];
	if ((error = cmv_node_write(&got, repo, cJSON_IsNull(par) ? NULL : &parent, &m)) < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", cmv_error_last() ? cmv_error_last()->message : "cannot be written");
		error = cmv_error__set(error == CMV_ENOTFOUND ? CMV_EINVALID : error, "%s: %s:%zu: node %s: %s", path,
				       BUNDLE_NODES, lineno, id, msg);
		goto done;
	}
	if (!cmv_id_equal(&got, &want)) {
		char hex[CMV_ID_HEXSZ + 1];
		error = cmv_error__set(CMV_EMISMATCH, "%s: %s:%zu: node %s hashes to %s: damaged", path, BUNDLE_NODES,
				       lineno, id, cmv_id_tostr(hex, sizeof(hex), &got));
	}
	goto done;
bad:
	error = cmv_error__set(CMV_EINVALID, "%s: %s:%zu: %s", path, BUNDLE_NODES, lineno, why);
done:
	for (size_t k = 0; k < 3; k++)
		free(edges[k]);
	free(bcs);
	free(blob_ids);
	cmv_buf_dispose(&meta);
	cJSON_Delete(o);
	return error;
}

static int refs_apply(cmv_bundle_stats *st, cmv_repo *repo, const cJSON *refs, const char *prefix, const char *path)
{
	cmv__strmap names = { 0 };
	int error = 0;

	for (const cJSON *r = refs->child; r && !error; r = r->next)
		error = cmv__strmap_put(&names, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "name")) ?
						cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "name")) : "",
					0, NULL);
	for (const cJSON *r = refs->child; r && !error; r = r->next) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "name"));
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "type"));
		const char *target = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "target"));
		const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "from"));
		const char *desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "description"));
		const cJSON *tags = cJSON_GetObjectItemCaseSensitive(r, "tags");
		char full[CMV_REF_NAME_MAX + 2], from_full[CMV_REF_NAME_MAX + 2];
		cmv_id id;
		cmv_ref *have = NULL;
		bool snap = type && !strcmp(type, "snapshot");

		if (!name || !type || !target || (!snap && strcmp(type, "branch")) || !hex32(target) ||
		    cmv_id_fromstr(&id, target) < 0) {
			error = cmv_error__set(CMV_EINVALID, "%s: %s: a ref with no valid name, type or target", path,
					       BUNDLE_MANIFEST);
			break;
		}
		snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "/" : "", name);
		if (!cmv_ref_name_is_valid(full)) {
			error = cmv_error__set(CMV_EINVALID, "%s: '%s' is not a valid ref name", path, full);
			break;
		}
		if (from && prefix && cmv__strmap_get(&names, from, NULL, NULL))
			snprintf(from_full, sizeof(from_full), "%s/%s", prefix, from);
		else
			snprintf(from_full, sizeof(from_full), "%s", from ? from : "");
		if (cmv_ref_lookup(&have, repo, full) == 0) {
			bool same = have->type == (snap ? CMV_REF_SNAPSHOT : CMV_REF_BRANCH) && cmv_id_equal(&have->target, &id);
			cmv_ref_free(have);
			if (!same) {
				error = cmv_error__set(CMV_EEXISTS, "%s: '%s' exists in this store and points elsewhere; import with a prefix",
						       path, full);
				break;
			}
			st->unchanged++;
			continue;
		}
		cmv_error_clear();
		if (snap) {
			const char *tagv[64];
			cmv_snapshot_options so = CMV_SNAPSHOT_OPTIONS_INIT;
			size_t nt = 0;
			for (const cJSON *t = cJSON_IsArray(tags) ? tags->child : NULL; t && nt < 64; t = t->next)
				if (cJSON_IsString(t))
					tagv[nt++] = t->valuestring;
			so.description = desc;
			so.tags = tagv;
			so.n_tags = nt;
			error = cmv_snapshot_create(repo, full, &id, from ? from_full : NULL, &so);
		} else {
			const char *trim = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "trim"));
			const char *llm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "llm"));
			error = cmv_branch_create(repo, full, &id, from ? from_full : NULL);
			if (!error && trim)
				error = cmv_branch_note_set(repo, full, "trim", trim);
			if (!error && llm)
				error = cmv_branch_llm_set(repo, full, llm);
		}
		if (error < 0)
			cmv_error__prefix("%s: ref '%s': ", path, full);
		else
			st->refs++;
	}
	cmv__strmap_dispose(&names);
	return error;
}

static int bundle_import_filled(cmv_bundle_stats *out, cmv_repo *repo, const char *path, const cmv_bundle_import_options *opts)
{
	cmv_bundle_import_options o = opts ? *opts : (cmv_bundle_import_options)CMV_BUNDLE_IMPORT_OPTIONS_INIT;
	cmv_bundle_stats st = { 0 };
	tar_in t = { .path = path };
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 40);
	cJSON *manifest = NULL;
	bool nodes_seen = false, in_txn = false;
	uint64_t total = 0;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!o.max_entry_bytes)
		o.max_entry_bytes = CMV_BUNDLE_MAX_ENTRY_DEFAULT;
	if (!o.max_total_bytes)
		o.max_total_bytes = CMV_BUNDLE_MAX_TOTAL_DEFAULT;
	if (o.prefix && !cmv_ref_name_is_valid(o.prefix))
		return cmv_error__set(CMV_EINVALID, "'%s' is not a valid ref prefix", o.prefix);
	if (!(t.fp = fopen(path, "rb")))
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO, "%s: %s", path, strerror(errno));
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		goto done;
	in_txn = true;
	for (size_t k = 0;; k++) {
		if ((error = tar_next(&t, &o)) <= 0)
			break;
		if ((total += t.size) > o.max_total_bytes) {
			error = cmv_error__set(CMV_ETOOBIG, "%s: over %llu bytes in all; refused", path,
					       (unsigned long long)o.max_total_bytes);
			break;
		}
		if (!k && strcmp(t.name, BUNDLE_MANIFEST)) {
			error = cmv_error__set(CMV_EINVALID, "%s: not a cmv bundle (its first entry is '%s', not %s)", path,
					       t.name, BUNDLE_MANIFEST);
			break;
		}
		if (k && !strcmp(t.name, BUNDLE_MANIFEST)) {
			error = cmv_error__set(CMV_EINVALID, "%s: a second %s", path, BUNDLE_MANIFEST);
			break;
		}
		if (nodes_seen) {
			error = cmv_error__set(CMV_EINVALID, "%s: entry '%s' after %s (the last entry)", path, t.name, BUNDLE_NODES);
			break;
		}
		if ((error = tar_read(&body, &t)) < 0)
			break;
		if (!k) {
			manifest = cJSON_ParseWithLength(body.ptr ? body.ptr : "", body.size);
			const char *fmt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(manifest, "format"));
			const cJSON *ver = cJSON_GetObjectItemCaseSensitive(manifest, "version");
			if (!fmt || strcmp(fmt, BUNDLE_FORMAT) || !cJSON_IsNumber(ver) ||
			    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(manifest, "refs"))) {
				error = cmv_error__set(CMV_EINVALID, "%s: %s: not a cmv bundle manifest", path, BUNDLE_MANIFEST);
				break;
			}
			if (ver->valuedouble > BUNDLE_VERSION) {
				error = cmv_error__set(CMV_EVERSION, "%s: bundle version %g is newer than this cmv reads (%d)",
						       path, ver->valuedouble, BUNDLE_VERSION);
				break;
			}
		} else if (!strncmp(t.name, "blobs/", 6) && hex32(t.name + 6)) {
			cmv_id want, got;
			char hex[CMV_ID_HEXSZ + 1];
			cmv_id_fromstr(&want, t.name + 6);
			cmv_id_hash(&got, body.ptr ? body.ptr : "", body.size);
			if (!cmv_id_equal(&want, &got)) {
				error = cmv_error__set(CMV_EMISMATCH, "%s: entry '%s': its bytes hash to %s: damaged", path, t.name,
						       cmv_id_tostr(hex, sizeof(hex), &got));
				break;
			}
			if ((error = cmv_blob_write(&got, repo, body.ptr ? body.ptr : "", body.size)) < 0)
				break;
			st.blobs++;
		} else if (!strcmp(t.name, BUNDLE_NODES)) {
			nodes_seen = true;
			const char *p = body.ptr ? body.ptr : "", *end = p + body.size;
			for (size_t line = 1; p < end && !error; line++) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
				if (len && (error = node_apply(repo, p, len, path, line)) == 0)
					st.nodes++;
				p += len + (nl != NULL);
			}
			if (error)
				break;
		} else {
			error = cmv_error__set(CMV_EINVALID, "%s: entry '%s': not part of a cmv bundle; refused", path, t.name);
			break;
		}
	}
	if (error == 0 && !manifest)
		error = cmv_error__set(CMV_EINVALID, "%s: an empty archive, not a cmv bundle", path);
	if (error == 0)
		error = refs_apply(&st, repo, cJSON_GetObjectItemCaseSensitive(manifest, "refs"), o.prefix, path);
	if (error == 0)
		error = cmv_repo_txn_commit(repo);
	if (error == 0)
		in_txn = false;
done:
	if (in_txn)
		cmv_repo_txn_rollback(repo);
	fclose(t.fp);
	cJSON_Delete(manifest);
	cmv_buf_dispose(&body);
	if (!error && out)
		*out = st;
	return error;
}

int cmv_bundle_import(cmv_bundle_stats *out, cmv_repo *repo, const char *path, const cmv_bundle_import_options *opts)
{
	int error = bundle_import_filled(out, repo, path, opts);
	if (out)
		out->version = CMV_BUNDLE_STATS_VERSION;
	return error;
}

int cmv_bundle_detect(const char *path)
{
	unsigned char h[TAR_BLOCK];
	FILE *fp = fopen(path, "rb");
	size_t n = fp ? fread(h, 1, sizeof(h), fp) : 0;
	if (fp)
		fclose(fp);
	return n == TAR_BLOCK && !memcmp(h + 257, "ustar", 5) && !memcmp(h, BUNDLE_MANIFEST, sizeof(BUNDLE_MANIFEST));
}
