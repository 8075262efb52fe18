/* SPDX-License-Identifier: MIT */
/*
 * Private to the tokenizer's files (tok.c, tiktoken.c, pretok.c, spm.c,
 * memo.c): the cmv_tok handle, and what more than one of them uses.
 *
 * One handle serves both backends, so its struct is one definition here:
 * the tiktoken family fills the rank table and the regex, SentencePiece the
 * shim's models and, when the native encoder takes the model, the same rank
 * table (pieces by id) with the scores and types beside it.
 *
 * rank_of, hash_bytes and emit run once or more per token: they are static
 * inline here so that every merge loop and both encoders still inline them,
 * as they did when the tokenizer was one file.
 */
#ifndef CMV_TOK_PRIV_H
#define CMV_TOK_PRIV_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
/* Inlined: most keys are a few bytes long, where the call costs more than the hash. */
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "base/base.h"
#include <cmv/tok.h>
#ifdef CMV_WITH_SENTENCEPIECE
#include "spm_shim.h"
#endif

#define NO_RANK UINT32_MAX

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

/* Texts shorter than this are not worth the memo's hash (memo.c). */
#define MEMO_MIN_BYTES 64

/* Where ids go: counted only, or appended to a growable array. */
typedef struct {
	uint32_t *ids;
	size_t n, cap;
	bool counting;
} sink;

static inline int emit(sink *s, uint32_t rank)
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

/* ---- the rank table ---------------------------------------------------- */

static inline uint64_t hash_bytes(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static inline uint32_t rank_of(const cmv_tok *t, const unsigned char *p, size_t n)
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

/* tiktoken.c: the .tiktoken rank files and byte-level BPE merging */
int cmv_tok__load_ranks(cmv_tok *t, const char *path);
/* Add rank to the table (both backends fill it): -1 when its bytes are there already. */
int cmv_tok__table_insert(cmv_tok *t, uint32_t rank);
/* One pre-tokenized piece into ranks: looked up whole, else merged. */
int cmv_tok__encode_piece(cmv_tok *t, const unsigned char *p, size_t n, sink *s);

/* pretok.c: cutting text into pieces, the regex and its ASCII equivalents */
extern const char cmv_tok__cl100k_pattern[];
extern const char cmv_tok__o200k_pattern[];
/* Compile pattern into t->re and t->md (JIT when the platform has it). */
int cmv_tok__compile_pattern(cmv_tok *t, const char *pattern);
/* Pre-tokenize valid UTF-8 and encode each piece (the tiktoken family). */
int cmv_tok__pretokenize(cmv_tok *t, const unsigned char *p, size_t len, sink *s);

/* spm.c: the SentencePiece family */
int cmv_tok__load_spm(cmv_tok *t, const tok_spec *spec, const char *path);
#ifdef CMV_WITH_SENTENCEPIECE
/* Through libsentencepiece; cont: a block after the first (no dummy prefix). */
int cmv_tok__run_spm(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont);
/* The native BPE, when t->spm_native: the same ids as the library. */
int cmv_tok__run_spm_native(cmv_tok *t, const unsigned char *p, size_t len, sink *s, bool cont);
#endif

/* memo.c: cmv_tok_count's side of the count memo, with the text's hash computed once */
bool cmv_tok__memo_lookup(size_t *count, cmv_tok *t, uint64_t h, size_t len);
void cmv_tok__memo_store(cmv_tok *t, uint64_t h, size_t len, size_t count);

#endif
