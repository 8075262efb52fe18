/* SPDX-License-Identifier: MIT */
/*
 * Pre-tokenization for the tiktoken family: the text is cut into pieces by
 * the published patterns (PCRE2), and each piece goes to byte-level BPE
 * (tiktoken.c).
 *
 * The patterns carry one change: every `\s` becomes the explicit Unicode
 * White_Space class. Under UCP, PCRE2's `\s` also matches U+180E, which
 * tiktoken's (Rust regex) does not.
 *
 * The hand-written ASCII pre-tokenizers below must cut exactly where the
 * regex would, and give up (return 0) wherever a non-ASCII byte could change
 * the answer; the regex then decides that piece. The input reaches here as
 * valid UTF-8 (tok.c sanitizes it), which lets the JIT skip its checks.
 */
#include "tok_priv.h"

/* Unicode White_Space, spelled out (see above). */
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

const char cmv_tok__cl100k_pattern[] =
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS
	"\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";

const char cmv_tok__o200k_pattern[] =
	"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
	"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
	"|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS
	"])|[" WS "]+";

int cmv_tok__compile_pattern(cmv_tok *t, const char *pattern)
{
	int errcode;
	PCRE2_SIZE erroff;

	t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			      PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &errcode, &erroff, NULL);
	if (!t->re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return cmv_error__set(CMV_ERROR, "tokenizer '%s': pattern does not compile at %zu: %s",
				      t->name, (size_t)erroff, (char *)msg);
	}
	/* JIT is several times faster; without it (some platforms) matching still works. */
	t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
	if (!(t->md = pcre2_match_data_create_from_pattern(t->re, NULL)))
		return cmv_error__oom();
	return 0;
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

/* Each piece by the ASCII path where it can decide, else by the regex. */
int cmv_tok__pretokenize(cmv_tok *t, const unsigned char *p, size_t len, sink *s)
{
	size_t off = 0;
	int error;

	while (off < len) {
		if (t->fast && p[off] < 0x80) {
			size_t end = t->pat == PAT_CL100K ? cl100k_piece(p, len, off) : o200k_piece(p, len, off);
			if (end > off) {
				if ((error = cmv_tok__encode_piece(t, p + off, end - off, s)) < 0)
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
		if ((error = cmv_tok__encode_piece(t, p + ov[0], ov[1] - ov[0], s)) < 0)
			return error;
		off = ov[1];
	}
	return 0;
}
