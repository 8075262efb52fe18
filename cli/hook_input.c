/* SPDX-License-Identifier: MIT */
/*
 * A hook's JSON input, read as a stream (hook_input.h).
 *
 * Design notes
 *  - One pass over a 64 KiB window: a byte is looked at once and never
 *    kept unless it belongs to a kept member's string. Values passed over
 *    are still checked as JSON (strings, escapes, numbers, literals,
 *    brackets matched on a bit stack), so a malformed input is refused
 *    rather than half read.
 *  - A kept member is refused when it is not a string, holds a NUL (cJSON,
 *    which other code uses, would stop there and see a shorter, different
 *    string: "abc\u0000../../x" must never pass as "abc"), does not fit
 *    its field, or comes twice (which of two would a reader take?).
 *  - The input is read to its end, so the agent's write never meets a
 *    closed pipe.
 */
#include <stdlib.h>
#include <string.h>
#include "hook_input.h"

typedef struct {
	hook_read_fn rd;
	void *payload;
	size_t pos, len, total, max;
	bool eof;
	const char *err;
	char buf[65536];
} stream;

/* The next byte without taking it; -1 at the end or on an error (s->err says which). */
static int peek(stream *s)
{
	if (s->pos == s->len) {
		if (s->eof || s->err)
			return -1;
		long n = s->rd(s->payload, s->buf, sizeof(s->buf), &s->err);
		if (n < 0) {
			if (!s->err)
				s->err = "cannot read the hook input";
			return -1;
		}
		if (n == 0) {
			s->eof = true;
			return -1;
		}
		if ((size_t)n > sizeof(s->buf) || s->total + (size_t)n > s->max) {
			s->err = "the hook input is over the size a hook is sent (see docs/trim.md)";
			return -1;
		}
		s->total += (size_t)n;
		s->pos = 0;
		s->len = (size_t)n;
	}
	return (unsigned char)s->buf[s->pos];
}

static int next(stream *s)
{
	int c = peek(s);
	if (c >= 0)
		s->pos++;
	return c;
}

/* The next byte that is not white space, taken. */
static int next_token(stream *s)
{
	int c;
	while ((c = next(s)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		;
	return c;
}

static bool fail(stream *s, const char *why)
{
	if (!s->err)
		s->err = why;
	return false;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_u4(stream *s, unsigned *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(next(s));
		if (d < 0)
			return fail(s, "the hook input is not JSON (a bad \\u escape)");
		*out = *out << 4 | (unsigned)d;
	}
	return true;
}

/* Append a byte to out (cap bytes, the last kept for the NUL); *len counts what would have been written. */
static void put(char *out, size_t cap, size_t *len, unsigned char c)
{
	if (out && *len + 1 < cap)
		out[*len] = (char)c;
	(*len)++;
}

/*
 * A string's body, after its opening quote, decoded into out (cap bytes;
 * NULL: checked and dropped). *len gets its decoded length, *nul whether
 * it holds a NUL.
 */
static bool read_string(stream *s, char *out, size_t cap, size_t *len, bool *nul)
{
	*len = 0;
	*nul = false;
	for (;;) {
		int c = next(s);
		if (c < 0)
			return fail(s, "the hook input is not JSON (a string is not closed)");
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(s, "the hook input is not JSON (a control character in a string)");
		if (c != '\\') {
			put(out, cap, len, (unsigned char)c);
			continue;
		}
		unsigned u, lo;
		switch (c = next(s)) {
		case '"': case '\\': case '/': put(out, cap, len, (unsigned char)c); continue;
		case 'b': put(out, cap, len, '\b'); continue;
		case 'f': put(out, cap, len, '\f'); continue;
		case 'n': put(out, cap, len, '\n'); continue;
		case 'r': put(out, cap, len, '\r'); continue;
		case 't': put(out, cap, len, '\t'); continue;
		case 'u': break;
		default: return fail(s, "the hook input is not JSON (a bad escape)");
		}
		if (!read_u4(s, &u))
			return false;
		if (u >= 0xDC00 && u <= 0xDFFF)
			return fail(s, "the hook input is not JSON (a lone low surrogate)");
		if (u >= 0xD800 && u <= 0xDBFF) {
			if (next(s) != '\\' || next(s) != 'u' || !read_u4(s, &lo) || lo < 0xDC00 || lo > 0xDFFF)
				return fail(s, "the hook input is not JSON (a lone high surrogate)");
			u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
		}
		if (u == 0)
			*nul = true;
		if (u < 0x80) {
			put(out, cap, len, (unsigned char)u);
		} else if (u < 0x800) {
			put(out, cap, len, (unsigned char)(0xC0 | u >> 6));
			put(out, cap, len, (unsigned char)(0x80 | (u & 0x3F)));
		} else if (u < 0x10000) {
			put(out, cap, len, (unsigned char)(0xE0 | u >> 12));
			put(out, cap, len, (unsigned char)(0x80 | (u >> 6 & 0x3F)));
			put(out, cap, len, (unsigned char)(0x80 | (u & 0x3F)));
		} else {
			put(out, cap, len, (unsigned char)(0xF0 | u >> 18));
			put(out, cap, len, (unsigned char)(0x80 | (u >> 12 & 0x3F)));
			put(out, cap, len, (unsigned char)(0x80 | (u >> 6 & 0x3F)));
			put(out, cap, len, (unsigned char)(0x80 | (u & 0x3F)));
		}
	}
	if (out)
		out[*len < cap ? *len : cap - 1] = '\0';
	return true;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The next byte when it is a digit, taken and counted; -1 when not. */
static int digit(stream *s, size_t *n)
{
	if (!is_digit(peek(s)))
		return -1;
	(*n)++;
	return next(s);
}

/*
 * A number whose first byte c was taken: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?,
 * at most 63 bytes, as cJSON reads one (no hook sends a longer one).
 */
static bool skip_number(stream *s, int c)
{
	size_t n = 1;
	if (c == '-') {
		c = next(s);
		n++;
	}
	if (!is_digit(c))
		return fail(s, "the hook input is not JSON (a bad number)");
	if (c != '0')
		while (digit(s, &n) >= 0)
			;
	if (peek(s) == '.') {
		next(s);
		n++;
		if (digit(s, &n) < 0)
			return fail(s, "the hook input is not JSON (a bad number)");
		while (digit(s, &n) >= 0)
			;
	}
	if (peek(s) == 'e' || peek(s) == 'E') {
		next(s);
		n++;
		if (peek(s) == '+' || peek(s) == '-') {
			next(s);
			n++;
		}
		if (digit(s, &n) < 0)
			return fail(s, "the hook input is not JSON (a bad number)");
		while (digit(s, &n) >= 0)
			;
	}
	return n <= 63 || fail(s, "the hook input has a number over 63 characters");
}

static bool skip_literal(stream *s, const char *rest)
{
	for (; *rest; rest++)
		if (next(s) != *rest)
			return fail(s, "the hook input is not JSON (a bad literal)");
	return true;
}

/* A scalar whose first byte c was taken. */
static bool skip_scalar(stream *s, int c)
{
	size_t len;
	bool nul;
	switch (c) {
	case '"': return read_string(s, NULL, 0, &len, &nul);
	case 't': return skip_literal(s, "rue");
	case 'f': return skip_literal(s, "alse");
	case 'n': return skip_literal(s, "ull");
	default: return skip_number(s, c);
	}
}

/*
 * A value whose first byte c was taken, passed over: containers on a bit
 * stack (1: an object), so depth costs no recursion.
 */
static bool skip_value(stream *s, int c)
{
	unsigned char stack[HOOK_INPUT_DEPTH_MAX / 8];
	size_t depth = 0;

	for (;;) {
		/* a value starts with c */
		if (c == '{' || c == '[') {
			if (depth == HOOK_INPUT_DEPTH_MAX)
				return fail(s, "the hook input nests too deep");
			if (c == '{')
				stack[depth / 8] |= (unsigned char)(1u << depth % 8);
			else
				stack[depth / 8] &= (unsigned char)~(1u << depth % 8);
			depth++;
			bool obj = c == '{';
			c = next_token(s);
			if (c == (obj ? '}' : ']')) {
				depth--; /* empty */
			} else if (obj) {
				size_t len;
				bool nul;
				if (c != '"' || !read_string(s, NULL, 0, &len, &nul) || next_token(s) != ':')
					return fail(s, "the hook input is not JSON (an object member)");
				c = next_token(s);
				continue;
			} else {
				continue;
			}
		} else if (!skip_scalar(s, c)) {
			return false;
		}
		/* after a value: close containers, or go on to the next member or element */
		for (;;) {
			if (!depth)
				return true;
			bool obj = stack[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
			c = next_token(s);
			if (c == (obj ? '}' : ']')) {
				depth--;
				continue;
			}
			if (c != ',')
				return fail(s, "the hook input is not JSON (a missing comma or bracket)");
			c = next_token(s);
			if (obj) {
				size_t len;
				bool nul;
				if (c != '"' || !read_string(s, NULL, 0, &len, &nul) || next_token(s) != ':')
					return fail(s, "the hook input is not JSON (an object member)");
				c = next_token(s);
			}
			break;
		}
	}
}

static const struct {
	const char *key;
	unsigned int bit;
	size_t off, cap;
} kept[] = {
	{ "session_id", HOOK_IN_SESSION_ID, offsetof(hook_input, session_id), sizeof(((hook_input *)0)->session_id) },
	{ "transcript_path", HOOK_IN_TRANSCRIPT, offsetof(hook_input, transcript_path), sizeof(((hook_input *)0)->transcript_path) },
	{ "hook_event_name", HOOK_IN_EVENT, offsetof(hook_input, event), sizeof(((hook_input *)0)->event) },
	{ "trigger", HOOK_IN_TRIGGER, offsetof(hook_input, trigger), sizeof(((hook_input *)0)->trigger) },
	{ "cwd", HOOK_IN_CWD, offsetof(hook_input, cwd), sizeof(((hook_input *)0)->cwd) },
};

/* A member's value (its first byte c taken): kept when its key is one of ours, else passed over. */
static bool member_value(stream *s, hook_input *out, const char *key, size_t key_len, int c)
{
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		if (strlen(kept[i].key) != key_len || memcmp(kept[i].key, key, key_len))
			continue;
		char *field = (char *)out + kept[i].off;
		size_t len;
		bool nul;
		if (out->seen & kept[i].bit)
			return fail(s, "the hook input names one of session_id, transcript_path, hook_event_name, "
				       "trigger, cwd twice");
		if (c != '"')
			return fail(s, "the hook input has a session_id, transcript_path, hook_event_name, trigger "
				       "or cwd that is not a string");
		if (!read_string(s, field, kept[i].cap, &len, &nul))
			return false;
		if (nul)
			return fail(s, "the hook input has a NUL (\\u0000) in session_id, transcript_path, "
				       "hook_event_name, trigger or cwd");
		if (len >= kept[i].cap)
			return fail(s, "the hook input has a session_id, transcript_path, hook_event_name, trigger "
				       "or cwd too long to be one");
		out->seen |= kept[i].bit;
		return true;
	}
	return skip_value(s, c);
}

static const char *parse(stream *s, hook_input *out)
{
	char key[32];
	size_t key_len;
	bool nul;
	int c;

	if (next_token(s) != '{')
		return s->err ? s->err : "the hook input is not a JSON object";
	c = next_token(s);
	if (c != '}') {
		for (;;) {
			if (c != '"' || !read_string(s, key, sizeof(key), &key_len, &nul) || next_token(s) != ':')
				return s->err ? s->err : "the hook input is not JSON (an object member)";
			if (nul)
				return "the hook input has a NUL (\\u0000) in a member's name";
			if (!member_value(s, out, key, key_len, next_token(s)))
				return s->err;
			if ((c = next_token(s)) == '}')
				break;
			if (c != ',')
				return s->err ? s->err : "the hook input is not JSON (a missing comma or brace)";
			c = next_token(s);
		}
	}
	/* to the end: only white space may follow */
	if ((c = next_token(s)) >= 0)
		return "the hook input has more after its object";
	return s->err;
}

const char *hook_input_parse(hook_input *out, hook_read_fn rd, void *payload, size_t max_bytes)
{
	stream *s = malloc(sizeof(*s)); /* its window is 64 KiB: not on the stack */
	const char *err;

	memset(out, 0, sizeof(*out));
	if (!s)
		return "out of memory";
	memset(s, 0, offsetof(stream, buf));
	s->rd = rd;
	s->payload = payload;
	s->max = max_bytes;
	err = parse(s, out);
	out->bytes = s->total;
	free(s);
	return err;
}
