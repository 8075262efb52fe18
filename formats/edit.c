/* SPDX-License-Identifier: MIT */
/*
 * Editing a session record without reading its content (see session.h).
 *
 * The template's holes become placeholder strings "\u0001cmv<K>\u0002"
 * (K a block number: the original blocks first, then the added ones), so
 * the record parses as ordinary JSON however large its content is. Writing
 * prints the tree and turns each placeholder back into a hole: an original
 * block keeps its blob (by id: nothing is read or hashed again), an added
 * one is stored. U+0001 and U+0002 never occur in a template outside a
 * hole, since the importer cuts every string it understands.
 */
#include "session.h"

#define PH_OPEN "\\u0001cmv"
#define PH_CLOSE "\\u0002\""

static void edit_init(record_edit *e)
{
	memset(e, 0, sizeof(*e));
	cmv_buf_init(&e->added_data, CMV_BUF_CONTENT);
}

int cmv_formats__record_edit_load(record_edit *e, const cmv_node *n)
{
	cmv_buf text = CMV_BUF_INIT(SESSION_MAX_BYTES);
	session_tpl t;
	int error;

	edit_init(e);
	e->node = n;
	if ((error = cmv_formats__session_template(&t, n)) < 0)
		return error;
	e->format = t.format;
	e->sep = t.sep;
	e->sep_len = t.sep_len;
	if (n->n_blocks && !(e->enc = cmv__calloc(n->n_blocks, 1)))
		return cmv_error__oom();
	const unsigned char *cursor = t.holes;
	for (const char *q = t.tpl; q < t.tpl_end;) {
		const char *nul = memchr(q, '\0', (size_t)(t.tpl_end - q));
		const char *stop = nul ? nul : t.tpl_end;
		if ((error = cmv_buf_put(&text, q, (size_t)(stop - q))) < 0)
			goto done;
		if (!nul)
			break;
		char enc;
		size_t bi;
		if ((error = cmv_formats__session_tpl_hole(&enc, &bi, &cursor, &t)) < 0)
			goto done;
		e->enc[bi] = enc;
		if ((error = cmv_buf_printf(&text, "\"" PH_OPEN "%zu" PH_CLOSE, bi)) < 0)
			goto done;
		q = nul + 1;
	}
	/* a parse that ran out of memory is not a damaged record */
	if (!(e->root = cmv_formats__jscan_parse(text.ptr ? text.ptr : "", text.size, &error)) && !error) {
		char hex[CMV_ID_HEXSZ + 1];
		error = cmv_error__set(CMV_ECORRUPT, "record %s does not parse as JSON",
				       cmv_id_tostr(hex, sizeof(hex), &n->id));
	}
done:
	cmv_buf_dispose(&text);
	if (error < 0)
		cmv_formats__record_edit_dispose(e); /* the caller disposes only what loaded */
	return error;
}

int cmv_formats__record_edit_new(record_edit *e, const char *format, cJSON *root)
{
	edit_init(e);
	e->format = format;
	e->root = root;
	e->sep = "\n";
	e->sep_len = 1;
	return root ? 0 : cmv_error__oom();
}

/* The block number of a placeholder string, or SIZE_MAX. */
static size_t placeholder(const cJSON *v)
{
	const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
	size_t k = 0;

	if (!s || strncmp(s, "\1cmv", 4))
		return SIZE_MAX;
	s += 4;
	if (*s < '0' || *s > '9')
		return SIZE_MAX;
	for (; *s >= '0' && *s <= '9'; s++)
		k = k * 10 + (size_t)(*s - '0');
	return s[0] == '\2' && !s[1] ? k : SIZE_MAX;
}

size_t cmv_formats__record_edit_block(const record_edit *e, const cJSON *v)
{
	size_t k = placeholder(v);
	return e->node && k < e->node->n_blocks ? k : SIZE_MAX;
}

cJSON *cmv_formats__record_edit_add(record_edit *e, char enc, const cmv_block_content *bc)
{
	size_t n_orig = e->node ? e->node->n_blocks : 0;
	char ph[48];

	if (cmv__array_grow((void **)&e->added, &e->cap_added, e->n_added, sizeof(*e->added)) < 0 ||
	    cmv__array_grow((void **)&e->added_off, &e->cap_off, e->n_added, sizeof(*e->added_off)) < 0)
		return NULL;
	e->added_off[e->n_added] = e->added_data.size;
	if (cmv_buf_put(&e->added_data, bc->data, bc->len) < 0)
		return NULL;
	e->added[e->n_added] = *bc;
	e->added[e->n_added].data = NULL;
	e->added[e->n_added].blob = NULL;
	snprintf(ph, sizeof(ph), "\1cmv%zu\2", n_orig + e->n_added);
	cJSON *v = cJSON_CreateString(ph);
	if (!v)
		return NULL;
	/* enc covers the added blocks too, after the original ones */
	char *enc_added = cmv__realloc(e->enc, n_orig + e->n_added + 1);
	if (!enc_added) {
		cJSON_Delete(v);
		return NULL;
	}
	e->enc = enc_added;
	e->enc[n_orig + e->n_added] = enc;
	e->n_added++;
	return v;
}

int cmv_formats__record_edit_write(cmv_id *out, record_edit *e, cmv_repo *repo, const cmv_id *parent, cmv_role role,
		      cmv_kind kind, const cmv_id *derived_from, size_t n_derived)
{
	size_t n_orig = e->node ? e->node->n_blocks : 0, n_all = n_orig + e->n_added, n_new = 0;
	size_t *renum = NULL;
	cmv_block_content *blocks = NULL;
	record_build rb;
	cmv_buf tpl = CMV_BUF_INIT(SESSION_MAX_BYTES), meta = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char *text = cJSON_PrintUnformatted(e->root);
	int error = 0;

	cmv_formats__record_build_init(&rb);
	if (!text || (n_all && (!(renum = cmv__calloc(n_all, sizeof(*renum))) ||
				!(blocks = cmv__calloc(n_all, sizeof(*blocks)))))) {
		error = cmv_error__oom();
		goto done;
	}
	for (size_t i = 0; i < n_all; i++)
		renum[i] = SIZE_MAX;
	/* each placeholder back into a hole; blocks numbered by first use */
	const char *p = text, *end = text + strlen(text);
	while (p < end) {
		const char *hit = strstr(p, "\"" PH_OPEN);
		const char *digits = hit ? hit + 1 + strlen(PH_OPEN) : NULL, *q = digits;
		size_t k = 0;
		for (; q && *q >= '0' && *q <= '9'; q++)
			k = k * 10 + (size_t)(*q - '0');
		if (!hit || q == digits || strncmp(q, PH_CLOSE, strlen(PH_CLOSE)) || k >= n_all || !e->enc[k]) {
			const char *stop = hit ? hit + 1 : end;
			if ((error = cmv_buf_put(&tpl, p, (size_t)(stop - p))) < 0)
				goto done;
			p = stop;
			continue;
		}
		if (renum[k] == SIZE_MAX) {
			renum[k] = n_new;
			if (k < n_orig) {
				const cmv_block *ob = &e->node->blocks[k];
				blocks[n_new] = (cmv_block_content){ .type = ob->type, .tool_id = ob->tool_id,
								     .tool_name = ob->tool_name,
								     .media_type = ob->media_type, .flags = ob->flags,
								     .blob = &ob->blob };
			} else {
				size_t j = k - n_orig;
				blocks[n_new] = e->added[j];
				blocks[n_new].data = e->added_data.ptr + e->added_off[j];
				blocks[n_new].len = (j + 1 < e->n_added ? e->added_off[j + 1] : e->added_data.size) -
						    e->added_off[j];
			}
			n_new++;
		}
		if ((error = cmv__array_grow((void **)&rb.holes, &rb.cap_holes, rb.n_holes, sizeof(*rb.holes))) < 0 ||
		    (error = cmv_buf_put(&tpl, p, (size_t)(hit - p))) < 0)
			goto done;
		/* cmv_formats__session_meta_build wants the hole's place in a record: mark it with one byte */
		rb.holes[rb.n_holes++] = (session_hole){ tpl.size, 1, e->enc[k], renum[k] };
		if ((error = cmv_buf_putc(&tpl, 'x')) < 0)
			goto done;
		p = q + strlen(PH_CLOSE);
	}
	/* blocks whose text stayed in the template (no hole) go along unchanged */
	for (size_t i = 0; i < n_orig; i++)
		if (!e->enc[i]) {
			const cmv_block *ob = &e->node->blocks[i];
			blocks[n_new++] = (cmv_block_content){ .type = ob->type, .tool_id = ob->tool_id,
							       .tool_name = ob->tool_name, .media_type = ob->media_type,
							       .flags = ob->flags, .blob = &ob->blob };
		}
	if ((error = cmv_formats__session_meta_build(&meta, e->format, tpl.ptr ? tpl.ptr : "", tpl.size, &rb, e->sep,
					e->sep_len)) < 0)
		goto done;
	cmv_message m = { .role = role, .kind = kind, .blocks = blocks, .n_blocks = n_new, .meta = meta.ptr,
			  .meta_len = meta.size, .derived_from = derived_from, .n_derived_from = derived_from ? n_derived : 0 };
	error = cmv_node_write(out, repo, parent, &m);
done:
	cJSON_free(text);
	free(renum);
	free(blocks);
	free(rb.holes);
	rb.holes = NULL;
	cmv_formats__record_build_dispose(&rb);
	cmv_buf_dispose(&tpl);
	cmv_buf_dispose(&meta);
	return error;
}

void cmv_formats__record_edit_dispose(record_edit *e)
{
	cJSON_Delete(e->root);
	free(e->enc);
	free(e->added);
	free(e->added_off);
	cmv_buf_dispose(&e->added_data);
	memset(e, 0, sizeof(*e));
}
