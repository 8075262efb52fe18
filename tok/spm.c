/* SPDX-License-Identifier: MIT */
/*
 * The SentencePiece family (llama2, mistral-7b-v0.1, gemma3): the models
 * through Debian's libsentencepiece (the C++ shim, spm_shim.h), and a native
 * BPE encoder read straight from the ModelProto that takes over when it can.
 *
 * The library is the reference: the native encoder runs only for models
 * whose every setting it mirrors, and only once it gave the library's ids
 * on the probe strings at load (spm_native_verify); else t->spm_native
 * stays false and the library encodes. The continuation model (no dummy
 * prefix, for blocks after the first) is covered natively only when it is
 * the main model with that one setting off.
 */
#include <limits.h>
#include "tok_priv.h"

#ifdef CMV_WITH_SENTENCEPIECE
/* ---- the library ------------------------------------------------------- */

/* A SentencePiece model file, whole: the shim parses it from memory. */
static int load_spm_file(cmv_spm **out, cmv_buf *keep, const char *path, const char *name)
{
	cmv_buf data = CMV_BUF_INIT((size_t)256 << 20);
	char err[512] = "";
	int error, rc;

	error = cmv__read_file(&data, path);
	if (error == CMV_ENOTFOUND)
		error = cmv_error__set(CMV_ENOTFOUND,
				       "tokenizer '%s' is not installed (%s is missing): run scripts/setup",
				       name, path);
	else if (error == CMV_ETOOBIG)
		error = cmv_error__set(CMV_EINVALID, "%s: not a SentencePiece model (over 256 MiB)", path);
	if (!error) {
		rc = cmv_spm__load(out, data.ptr ? data.ptr : "", data.size, err, sizeof(err));
		if (rc == -1)
			error = cmv_error__oom();
		else if (rc < 0)
			error = cmv_error__set(CMV_EINVALID, "%s: not a valid SentencePiece model: %s", path, err);
	}
	if (!error && keep) {
		cmv_buf tmp = *keep;
		*keep = data;
		data = tmp;
	}
	cmv_buf_dispose(&data);
	return error;
}

int cmv_tok__run_spm(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont)
{
	char err[512] = "";
	int rc = cmv_spm__encode(cont && t->spm_cont ? t->spm_cont : t->spm, (const char *)p, len,
				 s->counting ? NULL : &s->ids, &s->n, &s->cap, err, sizeof(err));
	if (rc == -1)
		return cmv_error__oom();
	if (rc < 0)
		return cmv_error__set(CMV_ERROR, "tokenizer '%s': %s", t->name, err);
	return 0;
}

/* ---- native SentencePiece BPE ----------------------------------------------
 *
 * libsentencepiece encodes a few MB/s. For BPE models with the identity
 * normalizer (all that setup installs) the same algorithm runs here, read
 * straight from the ModelProto: escape ' ' as U+2581 (after a dummy one in
 * front, when the model adds it), split into characters and user-defined
 * pieces (longest first; those never merge), then repeatedly merge the
 * adjacent pair whose concatenation is a piece with the highest score (the
 * leftmost on ties), and emit unknown symbols as <0xNN> bytes. This mirrors
 * bpe_model.cc, including its lazy agenda. Anything else in the model (a
 * normalization map, unused pieces, no byte fallback) keeps the library,
 * and every load checks the two agree on probe strings.
 */

enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER = 4, SPM_UNUSED = 5, SPM_BYTE = 6 };

struct spm_sym {
	uint32_t off, len;
	int32_t prev, next;
	bool freeze;
};

struct spm_pair {
	float score;
	uint32_t left, right, size;
};

typedef struct {
	const unsigned char *p, *end;
} pb;

static bool pb_varint(pb *b, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
		unsigned char c = *b->p++;
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

/* The next field: number, wire type, and its varint value or bytes. */
static bool pb_next(pb *b, uint32_t *field, int *wire, uint64_t *v, pb *sub)
{
	uint64_t key, len;

	if (!pb_varint(b, &key))
		return false;
	*field = (uint32_t)(key >> 3);
	*wire = (int)(key & 7);
	switch (*wire) {
	case 0:
		return pb_varint(b, v);
	case 1:
		if (b->end - b->p < 8)
			return false;
		memcpy(v, b->p, 8);
		b->p += 8;
		return true;
	case 2:
		if (!pb_varint(b, &len) || len > (uint64_t)(b->end - b->p))
			return false;
		sub->p = b->p;
		sub->end = b->p + len;
		b->p += len;
		return true;
	case 5:
		if (b->end - b->p < 4)
			return false;
		*v = 0;
		memcpy(v, b->p, 4);
		b->p += 4;
		return true;
	default:
		return false;
	}
}

typedef struct {
	bool bpe, byte_fallback, identity, dummy_prefix, extra_ws, escape_ws;
	size_t n_pieces;
} spm_spec;

/* What of the model matters to the encoder; false when the bytes do not parse. */
static bool spm_read_spec(const cmv_buf *model, spm_spec *sp)
{
	pb b = { (const unsigned char *)model->ptr, (const unsigned char *)model->ptr + model->size }, sub;
	uint32_t f;
	int w;
	uint64_t v;

	memset(sp, 0, sizeof(*sp));
	sp->identity = true;
	/* the proto's defaults */
	sp->dummy_prefix = sp->extra_ws = sp->escape_ws = true;
	while (b.p < b.end) {
		if (!pb_next(&b, &f, &w, &v, &sub))
			return false;
		if (f == 1 && w == 2)
			sp->n_pieces++;
		else if (f == 2 && w == 2) {
			while (sub.p < sub.end) {
				pb inner;
				if (!pb_next(&sub, &f, &w, &v, &inner))
					return false;
				if (f == 3 && w == 0)
					sp->bpe = v == 2;
				else if (f == 35 && w == 0)
					sp->byte_fallback = v != 0;
			}
		} else if (f == 3 && w == 2) {
			while (sub.p < sub.end) {
				pb inner;
				if (!pb_next(&sub, &f, &w, &v, &inner))
					return false;
				if (f == 2 && w == 2 && inner.end > inner.p)
					sp->identity = false; /* a precompiled normalization map */
				else if (f == 3 && w == 0)
					sp->dummy_prefix = v != 0;
				else if (f == 4 && w == 0)
					sp->extra_ws = v != 0;
				else if (f == 5 && w == 0)
					sp->escape_ws = v != 0;
				else if (f == 6)
					sp->identity = false; /* normalization rules */
			}
		}
	}
	return true;
}

/* The continuation model is the main one with the dummy prefix off, and nothing else. */
static bool spm_is_noprefix_twin(const cmv_buf *main_model, const cmv_buf *cont)
{
	spm_spec a, b;
	pb pa = { (const unsigned char *)main_model->ptr,
		  (const unsigned char *)main_model->ptr + main_model->size };
	pb pc = { (const unsigned char *)cont->ptr, (const unsigned char *)cont->ptr + cont->size };
	pb sa, sc;
	uint32_t fa, fc;
	int wa, wc;
	uint64_t va, vc;

	if (!spm_read_spec(main_model, &a) || !spm_read_spec(cont, &b) || b.dummy_prefix ||
	    a.n_pieces != b.n_pieces)
		return false;
	/* same pieces, in the same order, byte for byte */
	while (pa.p < pa.end && pc.p < pc.end) {
		if (!pb_next(&pa, &fa, &wa, &va, &sa) || !pb_next(&pc, &fc, &wc, &vc, &sc))
			return false;
		if (fa != 1 || fc != 1)
			break;
		if (sa.end - sa.p != sc.end - sc.p || memcmp(sa.p, sc.p, (size_t)(sa.end - sa.p)))
			return false;
	}
	return true;
}

static int spm_native_build(cmv_tok *t, const cmv_buf *model)
{
	spm_spec sp;
	pb b = { (const unsigned char *)model->ptr, (const unsigned char *)model->ptr + model->size }, sub;
	uint32_t f, id = 0;
	int w;
	uint64_t v;
	size_t total = 0, cap;

	if (!spm_read_spec(model, &sp) || !sp.bpe || !sp.byte_fallback || !sp.identity || sp.extra_ws ||
	    !sp.escape_ws || sp.n_pieces != t->spm_vocab || sp.n_pieces >= UINT32_MAX / 2)
		return 0;
	if (!(t->entries = cmv__calloc(sp.n_pieces, sizeof(*t->entries))) ||
	    !(t->spm_score = cmv__calloc(sp.n_pieces, sizeof(float))) ||
	    !(t->spm_type = cmv__calloc(sp.n_pieces, 1)) ||
	    !(t->bytes = cmv__calloc(model->size + 1, 1)) ||
	    !(t->pair_rank = cmv__calloc(65536, sizeof(uint32_t))))
		return cmv_error__oom();
	memset(t->pair_rank, 0xff, 65536 * sizeof(uint32_t));
	for (int i = 0; i < 256; i++)
		t->spm_byte[i] = NO_RANK;
	t->spm_unk = NO_RANK;
	while (b.p < b.end) {
		if (!pb_next(&b, &f, &w, &v, &sub))
			return 0;
		if (f != 1 || w != 2)
			continue;
		const unsigned char *piece = NULL;
		size_t len = 0;
		float score = 0;
		int type = SPM_NORMAL;
		while (sub.p < sub.end) {
			pb inner;
			if (!pb_next(&sub, &f, &w, &v, &inner))
				return 0;
			if (f == 1 && w == 2) {
				piece = inner.p;
				len = (size_t)(inner.end - inner.p);
			} else if (f == 2 && w == 5) {
				uint32_t bits = (uint32_t)v;
				memcpy(&score, &bits, 4);
			} else if (f == 3 && w == 0) {
				type = (int)v;
			}
		}
		if (!piece || !len || len > 255 || type == SPM_UNUSED || type < 1 || type > 6)
			return 0;
		memcpy(t->bytes + total, piece, len);
		t->entries[id].off = (uint32_t)total;
		t->entries[id].len = (uint32_t)len;
		total += len;
		t->spm_score[id] = score;
		t->spm_type[id] = (unsigned char)type;
		if (type == SPM_UNKNOWN && t->spm_unk == NO_RANK)
			t->spm_unk = id;
		if (type == SPM_BYTE && len == 6 && !memcmp(piece, "<0x", 3) && piece[5] == '>') {
			unsigned hi = (unsigned)(piece[3] <= '9' ? piece[3] - '0' : piece[3] - 'A' + 10);
			unsigned lo = (unsigned)(piece[4] <= '9' ? piece[4] - '0' : piece[4] - 'A' + 10);
			if (hi < 16 && lo < 16)
				t->spm_byte[hi << 4 | lo] = id;
		}
		if (type == SPM_NORMAL || type == SPM_USER)
			for (size_t k = 1; k + 3 <= len; k++)
				if (!memcmp(piece + k, "\xe2\x96\x81", 3) &&
				    (k < 3 || memcmp(piece + k - 3, "\xe2\x96\x81", 3)))
					t->spm_no_cut[piece[k - 1]] = true;
		if (type == SPM_USER) {
			if (!t->spm_ud && !(t->spm_ud = cmv__calloc(256, sizeof(*t->spm_ud))))
				return cmv_error__oom();
			if (!t->spm_ud_last && !(t->spm_ud_last = cmv__calloc(256, sizeof(*t->spm_ud_last))))
				return cmv_error__oom();
			int16_t *last = &t->spm_ud_last[piece[0]][len];
			if (!(t->spm_ud[piece[0]][len >> 6] >> (len & 63) & 1))
				*last = piece[len - 1];
			else if (*last != piece[len - 1])
				*last = -1;
			t->spm_ud[piece[0]][len >> 6] |= (uint64_t)1 << (len & 63);
			if (len > t->spm_ud_max[piece[0]])
				t->spm_ud_max[piece[0]] = (unsigned char)len;
		}
		id++;
	}
	for (int i = 0; i < 256; i++)
		if (t->spm_byte[i] == NO_RANK)
			return 0;
	if (t->spm_unk == NO_RANK)
		return 0;
	t->n_ranks = id;
	for (cap = 1024; cap < (size_t)id * 2; cap <<= 1)
		;
	if (!(t->table = cmv__calloc(cap, sizeof(uint32_t))) || !(t->tags = cmv__calloc(cap, sizeof(uint32_t))))
		return cmv_error__oom();
	t->table_mask = cap - 1;
	for (uint32_t r = 0; r < id; r++)
		if (cmv_tok__table_insert(t, r) < 0)
			return 0; /* a piece twice: leave it to the library */
	t->spm_native = true;
	t->spm_prefix = sp.dummy_prefix;
	return 0;
}

/* Can pieces l and r merge, and into what? Only normal and user-defined pieces take part. */
static bool spm_mergeable(const cmv_tok *t, const unsigned char *p, uint32_t n, uint32_t *id)
{
	uint32_t r = rank_of(t, p, n);
	if (r == NO_RANK || (t->spm_type[r] != SPM_NORMAL && t->spm_type[r] != SPM_USER))
		return false;
	*id = r;
	return true;
}

static bool agenda_less(const struct spm_pair *a, const struct spm_pair *b)
{
	/* a max-heap on score; on equal scores the leftmost pair first */
	if (a->score != b->score)
		return a->score < b->score;
	return a->left > b->left;
}

static int agenda_push(cmv_tok *t, size_t *n, struct spm_pair it)
{
	size_t i;

	if (*n == t->agenda_cap) {
		size_t cap = t->agenda_cap ? t->agenda_cap * 2 : 1024;
		struct spm_pair *p = realloc(t->agenda, cap * sizeof(*p));
		if (!p)
			return cmv_error__oom();
		t->agenda = p;
		t->agenda_cap = cap;
	}
	i = (*n)++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!agenda_less(&t->agenda[up], &it))
			break;
		t->agenda[i] = t->agenda[up];
		i = up;
	}
	t->agenda[i] = it;
	return 0;
}

static struct spm_pair agenda_pop(cmv_tok *t, size_t *n)
{
	struct spm_pair top = t->agenda[0], last = t->agenda[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && agenda_less(&t->agenda[c], &t->agenda[c + 1]))
			c++;
		if (!agenda_less(&last, &t->agenda[c]))
			break;
		t->agenda[i] = t->agenda[c];
		i = c;
	}
	if (*n)
		t->agenda[i] = last;
	return top;
}

static int spm_add_pair(cmv_tok *t, const unsigned char *text, size_t *n_agenda, int32_t l, int32_t r)
{
	struct spm_sym *L, *R;
	uint32_t id;

	if (l < 0 || r < 0)
		return 0;
	L = &t->syms[l];
	R = &t->syms[r];
	if (L->freeze || R->freeze || L->len + R->len > 255)
		return 0;
	if (!spm_mergeable(t, text + L->off, L->len + R->len, &id))
		return 0;
	return agenda_push(t, n_agenda,
			   (struct spm_pair){ t->spm_score[id], (uint32_t)l, (uint32_t)r, L->len + R->len });
}

/* Longest user-defined piece at p, or 0. */
static size_t spm_user_match(const cmv_tok *t, const unsigned char *p, size_t avail)
{
	const uint64_t *lens = t->spm_ud[p[0]];

	for (int len = t->spm_ud_max[p[0]]; len > 0; len--) {
		if (!(lens[len >> 6] >> (len & 63) & 1) || (size_t)len > avail)
			continue;
		int16_t last = t->spm_ud_last[p[0]][len];
		if (last >= 0 && p[len - 1] != last)
			continue;
		uint32_t r = rank_of(t, p, (size_t)len);
		if (r != NO_RANK && t->spm_type[r] == SPM_USER)
			return (size_t)len;
	}
	return 0;
}

/* BPE over symbols [from, to) (linked among themselves), then emit their ids. */
static int spm_merge_segment(cmv_tok *t, const unsigned char *text, size_t from, size_t to, sink *s)
{
	size_t n_agenda = 0;
	int error;

	for (size_t i = from + 1; i < to; i++)
		if ((error = spm_add_pair(t, text, &n_agenda, (int32_t)i - 1, (int32_t)i)) < 0)
			return error;
	while (n_agenda) {
		struct spm_pair top = agenda_pop(t, &n_agenda);
		struct spm_sym *L = &t->syms[top.left], *R = &t->syms[top.right];
		/* stale: one side merged away or grew since the pair was queued */
		if (!L->len || !R->len || L->len + R->len != top.size)
			continue;
		L->len += R->len;
		L->next = R->next;
		if (R->next >= 0)
			t->syms[R->next].prev = (int32_t)top.left;
		R->len = 0;
		if ((error = spm_add_pair(t, text, &n_agenda, L->prev, (int32_t)top.left)) < 0 ||
		    (error = spm_add_pair(t, text, &n_agenda, (int32_t)top.left, L->next)) < 0)
			return error;
	}
	for (int32_t i = (int32_t)from; i >= 0; i = t->syms[i].next) {
		const struct spm_sym *sy = &t->syms[i];
		uint32_t id = rank_of(t, text + sy->off, sy->len);
		if (id != NO_RANK && t->spm_type[id] != SPM_UNKNOWN) {
			if ((error = emit(s, id)) < 0)
				return error;
			continue;
		}
		for (uint32_t k = 0; k < sy->len; k++)
			if ((error = emit(s, t->spm_byte[text[sy->off + k]])) < 0)
				return error;
	}
	return 0;
}

int cmv_tok__run_spm_native(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont)
{
	const unsigned char *text;
	size_t n_syms = 0, tlen;
	int error;

	/* normalize: the dummy prefix, and every ' ' as U+2581 */
	cmv_buf_clear(&t->norm);
	if (t->spm_prefix && !cont && (error = cmv_buf_put(&t->norm, "\xe2\x96\x81", 3)) < 0)
		return error;
	for (size_t i = 0; i < len;) {
		const unsigned char *sp = memchr(p + i, ' ', len - i);
		size_t run = sp ? (size_t)(sp - (p + i)) : len - i;
		if ((error = cmv_buf_put(&t->norm, p + i, run)) < 0)
			return error;
		i += run;
		if (sp) {
			if ((error = cmv_buf_put(&t->norm, "\xe2\x96\x81", 3)) < 0)
				return error;
			i++;
		}
	}
	text = (const unsigned char *)t->norm.ptr;
	tlen = t->norm.size;
	if (tlen >= UINT32_MAX)
		return cmv_error__set(CMV_ETOOBIG, "tokenizer '%s': text over 4 GiB", t->name);
	/* symbols: user-defined pieces whole, else one character */
	if (t->syms_cap < tlen) {
		struct spm_sym *q = realloc(t->syms, tlen * sizeof(*q));
		if (!q)
			return cmv_error__oom();
		t->syms = q;
		t->syms_cap = tlen;
	}
	for (size_t i = 0; i < tlen;) {
		size_t n = t->spm_ud ? spm_user_match(t, text + i, tlen - i) : 0;
		struct spm_sym *sy = &t->syms[n_syms];
		sy->freeze = n > 0;
		if (!n) {
			unsigned char c = text[i];
			n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
			if (n > tlen - i)
				n = tlen - i;
		}
		sy->off = (uint32_t)i;
		sy->len = (uint32_t)n;
		sy->prev = (int32_t)n_syms - 1;
		sy->next = (int32_t)n_syms + 1;
		n_syms++;
		i += n;
	}
	/*
	 * Merge segment by segment: a segment starts at a "▁" whose previous
	 * symbol is not one; no piece spans such a cut (spm_no_cut lists the
	 * characters after which one does), so no merge crosses it, and the
	 * agenda stays small.
	 */
	for (size_t seg = 0; seg < n_syms;) {
		size_t end = seg + 1;
		while (end < n_syms) {
			const struct spm_sym *a = &t->syms[end - 1], *b = &t->syms[end];
			const unsigned char *last = text + a->off + a->len;
			/* the length first: a last symbol of one byte has no three bytes to compare */
			if (b->len >= 3 && !memcmp(text + b->off, "\xe2\x96\x81", 3) && !t->spm_no_cut[last[-1]] &&
			    (a->len < 3 || memcmp(last - 3, "\xe2\x96\x81", 3)))
				break;
			end++;
		}
		t->syms[seg].prev = -1;
		t->syms[end - 1].next = -1;
		if ((error = spm_merge_segment(t, text, seg, end, s)) < 0)
			return error;
		seg = end;
	}
	return 0;
}

/*
 * The native encoder must give the library's ids: checked once per load on
 * strings that exercise the prefix, spaces, bytes, user pieces and merges.
 */
static int spm_native_verify(cmv_tok *t)
{
	static const char *const probes[] = {
		"Hello, World! How are you today? \xf0\x9f\x8c\x8d",
		"           grabbed",
		"\ttabs\t\t\t\tout here\n\n\n  x",
		"\xe9\x95\x87 \xf0\x9f\xa6\x99\xea\x99\x8a <span> </s> <unk> \xe2\x96\x81\xe2\x96\x81 a",
		"def f(x):\n    return x ** 2  # comment\n\n\n\n",
		/* one probe in two literals (clang's -Wstring-concatenation wants the parentheses) */
		("\xd0\x97\xd0\xb4\xd1\x80\xd0\xb0\xd0\xb2\xd1\x81\xd1\x82\xd0\xb2\xd1\x83\xd0\xb9\xd1\x82\xd0\xb5 "
		 "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"),
	};
	int error = 0;

	for (size_t i = 0; i < CMV_ARRAY_SIZE(probes) && t->spm_native && !error; i++) {
		for (int c = 0; c < 2 && t->spm_native && !error; c++) {
			sink a = { NULL, 0, 0, false }, b = { NULL, 0, 0, false };
			const unsigned char *p = (const unsigned char *)probes[i];
			size_t n = strlen(probes[i]);
			if ((error = cmv_tok__run_spm(t, p, n, &a, c)) == 0 &&
			    (error = cmv_tok__run_spm_native(t, p, n, &b, c)) == 0 &&
			    (a.n != b.n || memcmp(a.ids, b.ids, a.n * sizeof(uint32_t))))
				t->spm_native = false;
			free(a.ids);
			free(b.ids);
		}
	}
	return error;
}

#endif /* CMV_WITH_SENTENCEPIECE */

/* ---- load -------------------------------------------------------------- */

int cmv_tok__load_spm(cmv_tok *t, const tok_spec *spec, const char *path)
{
#ifdef CMV_WITH_SENTENCEPIECE
	cmv_buf cont = CMV_BUF_INIT(PATH_MAX);
	const char *slash;
	int error;

	cmv_buf model = CMV_BUF_INIT((size_t)256 << 20), cont_model = CMV_BUF_INIT((size_t)256 << 20);

	if ((error = load_spm_file(&t->spm, &model, path, spec->name)) < 0)
		goto out;
	t->spm_vocab = cmv_spm__vocab_size(t->spm);
	if ((error = spm_native_build(t, &model)) < 0)
		goto out;
	if (!spec->cont_file)
		goto verify;
	/* the continuation model sits beside the main one */
	slash = strrchr(path, '/');
	if (slash)
		error = cmv_buf_put(&cont, path, (size_t)(slash - path + 1));
	if (!error)
		error = cmv_buf_puts(&cont, spec->cont_file);
	if (!error)
		error = load_spm_file(&t->spm_cont, &cont_model, cont.ptr, spec->name);
	if (!error && cmv_spm__vocab_size(t->spm_cont) != t->spm_vocab)
		error = cmv_error__set(CMV_EINVALID, "%s: its vocabulary differs from %s", cont.ptr, path);
	/* the native path covers the variant when it differs only by the dummy prefix */
	if (!error && t->spm_native && !spm_is_noprefix_twin(&model, &cont_model))
		t->spm_native = false;
verify:
	if (!error && t->spm_native && (error = spm_native_verify(t)) < 0)
		goto out;
out:
	cmv_buf_dispose(&model);
	cmv_buf_dispose(&cont_model);
	cmv_buf_dispose(&cont);
	return error;
#else
	(void)t;
	(void)path;
	return cmv_error__set(CMV_ENOTFOUND,
			      "tokenizer '%s' needs SentencePiece, which this build left out "
			      "(CMV_WITH_SENTENCEPIECE=OFF)", spec->name);
#endif
}
