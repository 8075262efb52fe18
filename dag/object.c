/* SPDX-License-Identifier: MIT */
/*
 * Nodes as values: canonical encoding, hashing, validation, deep copies,
 * and the id set used by gc and fsck.
 */
#include "repo.h"

#define put_varint cmv__varint_put

static int put_bytes(cmv_buf *b, const void *p, size_t n)
{
	int error;

	if ((error = put_varint(b, n)) < 0)
		return error;
	return cmv_buf_put(b, p, n);
}

static int put_str(cmv_buf *b, const char *s)
{
	return put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

static int put_id(cmv_buf *b, const cmv_id *id)
{
	int error;

	if ((error = cmv_buf_putc(b, (char)id->type)) < 0)
		return error;
	if (id->type == CMV_ID_NONE)
		return 0;
	return cmv_buf_put(b, id->raw, CMV_ID_RAWSZ);
}

int cmv_dag__blocks_encode(cmv_buf *out, const cmv_block *blocks, size_t n_blocks)
{
	int error;

	if ((error = put_varint(out, n_blocks)) < 0)
		return error;
	for (size_t i = 0; i < n_blocks; i++) {
		const cmv_block *bl = &blocks[i];
		if ((error = put_str(out, bl->type)) < 0 || (error = put_id(out, &bl->blob)) < 0 ||
		    (error = put_str(out, bl->tool_id)) < 0 ||
		    (error = put_str(out, bl->tool_name)) < 0 ||
		    (error = put_str(out, bl->media_type)) < 0 ||
		    (error = put_varint(out, bl->flags)) < 0)
			return error;
	}
	return 0;
}

/*
 * Version 1 layout:
 *   "cmvnode\1" role:u8 kind:u8 parent:id
 *   blocks: n:varint { type:str blob:id tool_id:str tool_name:str media_type:str flags:varint }
 *   meta:bytes n_derived:varint {id} n_covers:varint {id} [n_includes:varint {id}]
 * where str and bytes are varint length + bytes and id is type:u8 [+16 raw].
 * The includes list is written only when it is not empty, so nodes without
 * one keep the ids they had before the list existed.
 * The magic keeps node ids apart from blob ids of the same bytes' hash.
 * The blocks part alone is also how a store may keep a node's block list.
 */
int cmv_dag__node_encode(cmv_buf *out, const cmv_node *n)
{
	int error = 0;
	size_t i;

	cmv_buf_clear(out);
	if ((error = cmv_buf_put(out, "cmvnode\1", 8)) < 0 ||
	    (error = cmv_buf_putc(out, (char)n->role)) < 0 ||
	    (error = cmv_buf_putc(out, (char)n->kind)) < 0 ||
	    (error = put_id(out, &n->parent)) < 0 ||
	    (error = cmv_dag__blocks_encode(out, n->blocks, n->n_blocks)) < 0)
		return error;
	if ((error = put_bytes(out, n->meta ? n->meta : "", n->meta ? n->meta_len : 0)) < 0)
		return error;
	cmv_edge_list edges[CMV_EDGE_KINDS];
	cmv_dag__node_edges(edges, n);
	for (int k = 0; k < CMV_EDGE_KINDS; k++) {
		if (edges[k].kind == CMV_EDGE_INCLUDES && !edges[k].n)
			break;
		if ((error = put_varint(out, edges[k].n)) < 0)
			return error;
		for (i = 0; i < edges[k].n; i++)
			if ((error = put_id(out, &edges[k].ids[i])) < 0)
				return error;
	}
	return 0;
}

void cmv_dag__node_edges(cmv_edge_list out[CMV_EDGE_KINDS], const cmv_node *n)
{
	out[0] = (cmv_edge_list){ CMV_EDGE_DERIVED_FROM, "derived_from", n->derived_from, n->n_derived_from };
	out[1] = (cmv_edge_list){ CMV_EDGE_COVERS, "covers", n->covers, n->n_covers };
	out[2] = (cmv_edge_list){ CMV_EDGE_INCLUDES, "includes", n->includes, n->n_includes };
}

size_t cmv_dag__node_n_edges(const cmv_node *n)
{
	return n->n_derived_from + n->n_covers + n->n_includes;
}

void cmv_dag__node_set_edges(cmv_node *n, const cmv_id *ids, const size_t counts[CMV_EDGE_KINDS])
{
	n->derived_from = ids;
	n->n_derived_from = counts[0];
	n->covers = ids + counts[0];
	n->n_covers = counts[1];
	n->includes = ids + counts[0] + counts[1];
	n->n_includes = counts[2];
}

/* Copy src's edge lists into ids (room for all of them) and point n at the copies. */
static void copy_edges(cmv_node *n, cmv_id *ids, const cmv_node *src)
{
	cmv_edge_list edges[CMV_EDGE_KINDS];
	size_t counts[CMV_EDGE_KINDS], at = 0;

	cmv_dag__node_edges(edges, src);
	for (int k = 0; k < CMV_EDGE_KINDS; k++) {
		if (edges[k].n)
			memcpy(ids + at, edges[k].ids, edges[k].n * sizeof(cmv_id));
		counts[k] = edges[k].n;
		at += edges[k].n;
	}
	cmv_dag__node_set_edges(n, ids, counts);
}

/* ---- decoding a block list --------------------------------------------- */

typedef struct {
	const unsigned char *p, *end;
} reader;

static bool get_varint(reader *r, uint64_t *out)
{
	return cmv__varint_get(&r->p, r->end, out);
}

/* A string field: its bytes (not terminated) and length; absent when len is 0. */
static bool get_str(reader *r, const unsigned char **s, size_t *len)
{
	uint64_t n;

	if (!get_varint(r, &n) || n > (uint64_t)(r->end - r->p))
		return false;
	*s = r->p;
	*len = (size_t)n;
	r->p += n;
	return true;
}

static bool get_id(reader *r, cmv_id *id)
{
	if (r->p >= r->end)
		return false;
	id->type = *r->p++;
	if (id->type == CMV_ID_NONE) {
		memset(id->raw, 0, sizeof(id->raw));
		return true;
	}
	if (id->type != CMV_ID_XXH3_128 || r->end - r->p < CMV_ID_RAWSZ)
		return false;
	memcpy(id->raw, r->p, CMV_ID_RAWSZ);
	r->p += CMV_ID_RAWSZ;
	return true;
}

/*
 * Decode a block list into `blocks` (n entries), copying its strings,
 * NUL-terminated, to *cursor. With blocks == NULL it only measures: *n_out
 * gets the count and *bytes_out the string bytes needed.
 */
static bool blocks_walk(const void *data, size_t len, cmv_block *blocks, char **cursor,
			size_t *n_out, size_t *bytes_out)
{
	reader r = { data, (const unsigned char *)data + len };
	uint64_t n, flags;
	size_t bytes = 0;

	if (!get_varint(&r, &n) || n > len)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *f[4];
		size_t fl[4];
		cmv_id blob;
		if (!get_str(&r, &f[0], &fl[0]) || !get_id(&r, &blob) || !get_str(&r, &f[1], &fl[1]) ||
		    !get_str(&r, &f[2], &fl[2]) || !get_str(&r, &f[3], &fl[3]) || !get_varint(&r, &flags))
			return false;
		for (int k = 0; k < 4; k++)
			bytes += fl[k] ? fl[k] + 1 : 0;
		if (!blocks)
			continue;
		const char **dst[4] = { &blocks[i].type, &blocks[i].tool_id, &blocks[i].tool_name,
					&blocks[i].media_type };
		for (int k = 0; k < 4; k++) {
			if (!fl[k]) {
				*dst[k] = NULL;
				continue;
			}
			memcpy(*cursor, f[k], fl[k]);
			(*cursor)[fl[k]] = '\0';
			*dst[k] = *cursor;
			*cursor += fl[k] + 1;
		}
		blocks[i].blob = blob;
		blocks[i].flags = (unsigned int)flags;
	}
	if (r.p != r.end)
		return false;
	*n_out = (size_t)n;
	*bytes_out = bytes;
	return true;
}

int cmv_dag__node_from_parts(cmv_node **out, const cmv_node *head, const void *blocks_enc,
			     size_t blocks_len)
{
	size_t n_blocks, str_bytes, total, n_ids = cmv_dag__node_n_edges(head);
	cmv_node *n;
	cmv_block *blocks;
	cmv_id *ids;
	char *cursor;

	*out = NULL;
	if (!blocks_walk(blocks_enc, blocks_len, NULL, NULL, &n_blocks, &str_bytes))
		return cmv_error__set(CMV_ECORRUPT, "a node's block list cannot be decoded (run 'cmv fsck')");
	total = sizeof(cmv_node) + n_blocks * sizeof(cmv_block) + n_ids * sizeof(cmv_id) + str_bytes +
		(head->meta ? head->meta_len + 1 : 0);
	if (!(n = cmv__malloc(total)))
		return cmv_error__oom();
	*n = *head;
	blocks = (cmv_block *)(n + 1);
	ids = (cmv_id *)(blocks + n_blocks);
	cursor = (char *)(ids + n_ids);
	blocks_walk(blocks_enc, blocks_len, blocks, &cursor, &n_blocks, &str_bytes);
	n->blocks = blocks;
	n->n_blocks = n_blocks;
	copy_edges(n, ids, head);
	if (head->meta) {
		memcpy(cursor, head->meta, head->meta_len);
		cursor[head->meta_len] = '\0';
		n->meta = cursor;
	}
	*out = n;
	return 0;
}

void cmv_dag__node_hash(cmv_id *out, const cmv_node *node, cmv_buf *scratch)
{
	if (cmv_dag__node_encode(scratch, node) < 0) {
		/* Only a buffer cap can fail here; callers size the scratch for it. */
		cmv_id_clear(out);
		return;
	}
	cmv_id_hash(out, scratch->ptr, scratch->size);
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *copy_str(char **cursor, const char *s)
{
	size_t n;
	char *dst;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	dst = *cursor;
	memcpy(dst, s, n);
	*cursor += n;
	return dst;
}

cmv_node *cmv_dag__node_copy(const cmv_node *src)
{
	size_t total = sizeof(cmv_node), i;
	cmv_node *n;
	cmv_block *blocks;
	cmv_id *ids;
	char *cursor;

	total += src->n_blocks * sizeof(cmv_block);
	total += cmv_dag__node_n_edges(src) * sizeof(cmv_id);
	for (i = 0; i < src->n_blocks; i++)
		total += str_size(src->blocks[i].type) + str_size(src->blocks[i].tool_id) +
			 str_size(src->blocks[i].tool_name) + str_size(src->blocks[i].media_type);
	total += src->meta ? src->meta_len + 1 : 0;

	if (!(n = cmv__malloc(total)))
		return NULL;
	*n = *src;
	blocks = (cmv_block *)(n + 1);
	ids = (cmv_id *)(blocks + src->n_blocks);
	cursor = (char *)(ids + cmv_dag__node_n_edges(src));
	for (i = 0; i < src->n_blocks; i++) {
		blocks[i] = src->blocks[i];
		blocks[i].type = copy_str(&cursor, src->blocks[i].type);
		blocks[i].tool_id = copy_str(&cursor, src->blocks[i].tool_id);
		blocks[i].tool_name = copy_str(&cursor, src->blocks[i].tool_name);
		blocks[i].media_type = copy_str(&cursor, src->blocks[i].media_type);
	}
	n->blocks = blocks;
	copy_edges(n, ids, src);
	if (src->meta) {
		memcpy(cursor, src->meta, src->meta_len);
		cursor[src->meta_len] = '\0';
		n->meta = cursor;
	}
	return n;
}

void cmv_node_free(cmv_node *node)
{
	free(node);
}

cmv_ref *cmv_dag__ref_copy(const cmv_ref *src)
{
	size_t total = sizeof(cmv_ref) + src->n_tags * sizeof(char *), i;
	cmv_ref *r;
	const char **tags;
	char *cursor;

	total += str_size(src->name) + str_size(src->description) + str_size(src->from_ref);
	for (i = 0; i < src->n_tags; i++)
		total += str_size(src->tags[i]);
	if (!(r = cmv__malloc(total)))
		return NULL;
	*r = *src;
	tags = (const char **)(r + 1);
	cursor = (char *)(tags + src->n_tags);
	r->name = copy_str(&cursor, src->name);
	r->description = copy_str(&cursor, src->description);
	r->from_ref = copy_str(&cursor, src->from_ref);
	for (i = 0; i < src->n_tags; i++)
		tags[i] = copy_str(&cursor, src->tags[i]);
	r->tags = tags;
	return r;
}

void cmv_ref_free(cmv_ref *ref)
{
	free(ref);
}

static const char *const role_names[] = { NULL, "system", "user", "assistant", "tool" };
static const char *const kind_names[] = { NULL, "message", "event", "summary" };

const char *cmv_role_name(cmv_role role)
{
	return (role >= 1 && role <= 4) ? role_names[role] : NULL;
}

const char *cmv_kind_name(cmv_kind kind)
{
	return (kind >= 1 && kind <= 3) ? kind_names[kind] : NULL;
}

int cmv_role_parse(cmv_role *out, const char *name)
{
	if (!name)
		return cmv_error__set(CMV_EINVALID, "missing role (expected system, user, assistant or tool)");
	for (int i = 1; i <= 4; i++)
		if (!strcmp(name, role_names[i])) {
			*out = (cmv_role)i;
			return 0;
		}
	return cmv_error__set(CMV_EINVALID,
			      "unknown role '%s' (expected system, user, assistant or tool)", name);
}

int cmv_kind_parse(cmv_kind *out, const char *name)
{
	if (!name)
		return cmv_error__set(CMV_EINVALID, "missing kind (expected message, event or summary)");
	for (int i = 1; i <= 3; i++)
		if (!strcmp(name, kind_names[i])) {
			*out = (cmv_kind)i;
			return 0;
		}
	return cmv_error__set(CMV_EINVALID,
			      "unknown kind '%s' (expected message, event or summary)", name);
}

bool cmv_dag__block_is_text(const char *type, const char *media_type)
{
	if (!strcmp(type, "image") || !strcmp(type, "document") || !strcmp(type, "redacted_thinking"))
		return false;
	if (media_type && strncmp(media_type, "text/", 5) && strncmp(media_type, "application/", 12))
		return false;
	return true;
}

/* ---- id set ------------------------------------------------------------ */

void cmv_idset_init(cmv_idset *s)
{
	s->slots = NULL;
	s->n = s->cap = 0;
}

void cmv_idset_dispose(cmv_idset *s)
{
	free(s->slots);
	cmv_idset_init(s);
}

static size_t idset_slot(const cmv_idset *s, const cmv_id *id)
{
	uint64_t h;
	size_t i;

	/* The id is already a good hash: its first 8 bytes pick the slot. */
	memcpy(&h, id->raw, sizeof(h));
	i = (size_t)h & (s->cap - 1);
	while (s->slots[i].type != CMV_ID_NONE && !cmv_id_equal(&s->slots[i], id))
		i = (i + 1) & (s->cap - 1);
	return i;
}

int cmv_idset_add(cmv_idset *s, const cmv_id *id)
{
	size_t i;

	if ((s->n + 1) * 4 > s->cap * 3) {
		size_t ncap = s->cap ? s->cap * 2 : 1024, j;
		cmv_idset old = *s;

		if (!(s->slots = cmv__calloc(ncap, sizeof(cmv_id)))) {
			s->slots = old.slots;
			return cmv_error__oom();
		}
		s->cap = ncap;
		s->n = 0;
		for (j = 0; j < old.cap; j++)
			if (old.slots[j].type != CMV_ID_NONE) {
				s->slots[idset_slot(s, &old.slots[j])] = old.slots[j];
				s->n++;
			}
		free(old.slots);
	}
	i = idset_slot(s, id);
	if (s->slots[i].type != CMV_ID_NONE)
		return 0;
	s->slots[i] = *id;
	s->n++;
	return 1;
}

bool cmv_idset_has(const cmv_idset *s, const cmv_id *id)
{
	if (!s->cap)
		return false;
	return s->slots[idset_slot(s, id)].type != CMV_ID_NONE;
}
