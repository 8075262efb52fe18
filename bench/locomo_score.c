/* SPDX-License-Identifier: MIT */
/* LoCoMo's QA scorer (locomo_score.h). Words are handled as code points, as Python does. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "locomo_score.h"

#define MAXW 256 /* longest word stemmed, in code points; longer ones are kept as they are */

/* ---- UTF-8 ----------------------------------------------------------------- */

static size_t decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
		return 2;
	}
	if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
		return 3;
	}
	if ((s[0] & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
		*cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 |
		      (s[3] & 0x3F);
		return 4;
	}
	*cp = 0xFFFD; /* a bad byte stands for one character */
	return 1;
}

static size_t encode(char *o, uint32_t c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3F));
	o[2] = (char)(0x80 | (c >> 6 & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

static uint32_t lower(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if ((c >= 0xC0 && c <= 0xDE && c != 0xD7))
		return c + 32;
	if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149) {
		/* Latin Extended-A pairs: even upper, odd lower, except the 0x139-0x148 and 0x179-0x17E runs */
		bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
		if (odd_upper ? (c & 1) : !(c & 1))
			return c + 1;
		return c;
	}
	if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
		return c + 32;
	if (c >= 0x410 && c <= 0x42F)
		return c + 32;
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	return c;
}

static bool is_space(uint32_t c)
{
	return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_ascii_punct(uint32_t c)
{
	return c < 0x80 && ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126));
}

/* \w in Python's Unicode regex, closely enough: letters, digits, underscore; not punctuation or symbols. */
static bool is_word(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
	if (is_space(c))
		return false;
	if ((c >= 0xA1 && c <= 0xBF && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 && c != 0xBA &&
	     c != 0xBC && c != 0xBD && c != 0xBE) ||
	    c == 0xD7 || c == 0xF7)
		return false;
	if ((c >= 0x2010 && c <= 0x206F) || (c >= 0x20A0 && c <= 0x20CF) || (c >= 0x2190 && c <= 0x2BFF) ||
	    (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF01 && c <= 0xFF0F) ||
	    (c >= 0x1F000 && c <= 0x1FAFF))
		return false;
	return true;
}

/* ---- the stemmer ---------------------------------------------------------- */

typedef struct {
	uint32_t c[MAXW];
	size_t n;
} word;

static bool ends(const word *w, const char *s)
{
	size_t l = strlen(s);
	if (l > w->n)
		return false;
	for (size_t i = 0; i < l; i++)
		if (w->c[w->n - l + i] != (unsigned char)s[i])
			return false;
	return true;
}

static bool cons(const uint32_t *c, size_t i)
{
	uint32_t x = c[i];
	if (x == 'a' || x == 'e' || x == 'i' || x == 'o' || x == 'u')
		return false;
	if (x == 'y')
		return i == 0 ? true : !cons(c, i - 1);
	return true;
}

/* m: the number of VC sequences in the first n letters */
static int measure(const uint32_t *c, size_t n)
{
	int m = 0;
	for (size_t i = 1; i < n; i++)
		if (!cons(c, i - 1) && cons(c, i))
			m++;
	return m;
}

static bool has_vowel(const uint32_t *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cons(c, i))
			return true;
	return false;
}

static bool double_cons(const uint32_t *c, size_t n)
{
	return n >= 2 && c[n - 1] == c[n - 2] && cons(c, n - 1);
}

static bool cvc(const uint32_t *c, size_t n)
{
	if (n >= 3 && cons(c, n - 3) && !cons(c, n - 2) && cons(c, n - 1) && c[n - 1] != 'w' && c[n - 1] != 'x' &&
	    c[n - 1] != 'y')
		return true;
	return n == 2 && !cons(c, 0) && cons(c, 1); /* NLTK's extension */
}

static void set_suffix(word *w, size_t strip, const char *add)
{
	w->n -= strip;
	for (const char *p = add; *p && w->n < MAXW; p++)
		w->c[w->n++] = (unsigned char)*p;
}

typedef enum { C_NONE, C_M0, C_M1, C_ION, C_LOGI } cond;

typedef struct {
	const char *suffix, *repl;
	cond c;
} rule;

static bool holds(cond c, const word *w, size_t stem_n)
{
	switch (c) {
	case C_NONE:
		return true;
	case C_M0:
		return measure(w->c, stem_n) > 0;
	case C_M1:
		return measure(w->c, stem_n) > 1;
	case C_ION:
		return measure(w->c, stem_n) > 1 && stem_n && (w->c[stem_n - 1] == 's' || w->c[stem_n - 1] == 't');
	case C_LOGI:
		return measure(w->c, stem_n + 1) > 0; /* the l stays with the stem */
	}
	return false;
}

/* The first rule whose suffix matches decides, whether or not its condition holds. */
static void apply(word *w, const rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ends(w, rules[i].suffix)) {
			size_t l = strlen(rules[i].suffix);
			if (holds(rules[i].c, w, w->n - l))
				set_suffix(w, l, rules[i].repl);
			return;
		}
}

static void step1a(word *w)
{
	if (ends(w, "ies") && w->n == 4) {
		set_suffix(w, 3, "ie");
		return;
	}
	static const rule r[] = { { "sses", "ss", C_NONE }, { "ies", "i", C_NONE }, { "ss", "ss", C_NONE }, { "s", "", C_NONE } };
	apply(w, r, 4);
}

static void step1b(word *w)
{
	if (ends(w, "ied")) {
		set_suffix(w, 3, w->n == 4 ? "ie" : "i");
		return;
	}
	if (ends(w, "eed")) {
		if (measure(w->c, w->n - 3) > 0)
			set_suffix(w, 3, "ee");
		return;
	}
	size_t strip = 0;
	if (ends(w, "ed") && has_vowel(w->c, w->n - 2))
		strip = 2;
	else if (ends(w, "ing") && has_vowel(w->c, w->n - 3))
		strip = 3;
	if (!strip)
		return;
	w->n -= strip;
	if (ends(w, "at") || ends(w, "bl") || ends(w, "iz")) {
		set_suffix(w, 0, "e");
		return;
	}
	if (double_cons(w->c, w->n)) {
		uint32_t last = w->c[w->n - 1];
		if (last != 'l' && last != 's' && last != 'z')
			w->n--;
		return;
	}
	if (measure(w->c, w->n) == 1 && cvc(w->c, w->n))
		set_suffix(w, 0, "e");
}

static void step1c(word *w)
{
	if (ends(w, "y") && w->n - 1 > 1 && cons(w->c, w->n - 2))
		w->c[w->n - 1] = 'i';
}

static void step2(word *w)
{
	if (ends(w, "alli") && measure(w->c, w->n - 4) > 0) {
		set_suffix(w, 4, "al");
		step2(w);
		return;
	}
	static const rule r[] = {
		{ "ational", "ate", C_M0 }, { "tional", "tion", C_M0 }, { "enci", "ence", C_M0 },
		{ "anci", "ance", C_M0 },   { "izer", "ize", C_M0 },     { "bli", "ble", C_M0 },
		{ "alli", "al", C_M0 },     { "entli", "ent", C_M0 },    { "eli", "e", C_M0 },
		{ "ousli", "ous", C_M0 },   { "ization", "ize", C_M0 },  { "ation", "ate", C_M0 },
		{ "ator", "ate", C_M0 },    { "alism", "al", C_M0 },     { "iveness", "ive", C_M0 },
		{ "fulness", "ful", C_M0 }, { "ousness", "ous", C_M0 },  { "aliti", "al", C_M0 },
		{ "iviti", "ive", C_M0 },   { "biliti", "ble", C_M0 },   { "fulli", "ful", C_M0 },
		{ "logi", "log", C_LOGI },
	};
	apply(w, r, sizeof(r) / sizeof(*r));
}

static void step3(word *w)
{
	static const rule r[] = { { "icate", "ic", C_M0 }, { "ative", "", C_M0 }, { "alize", "al", C_M0 },
				  { "iciti", "ic", C_M0 }, { "ical", "ic", C_M0 }, { "ful", "", C_M0 },
				  { "ness", "", C_M0 } };
	apply(w, r, sizeof(r) / sizeof(*r));
}

static void step4(word *w)
{
	static const rule r[] = { { "al", "", C_M1 },   { "ance", "", C_M1 }, { "ence", "", C_M1 }, { "er", "", C_M1 },
				  { "ic", "", C_M1 },   { "able", "", C_M1 }, { "ible", "", C_M1 }, { "ant", "", C_M1 },
				  { "ement", "", C_M1 }, { "ment", "", C_M1 }, { "ent", "", C_M1 }, { "ion", "", C_ION },
				  { "ou", "", C_M1 },   { "ism", "", C_M1 },  { "ate", "", C_M1 },  { "iti", "", C_M1 },
				  { "ous", "", C_M1 },  { "ive", "", C_M1 },  { "ize", "", C_M1 } };
	apply(w, r, sizeof(r) / sizeof(*r));
}

static void step5(word *w)
{
	if (ends(w, "e")) {
		int m = measure(w->c, w->n - 1);
		if (m > 1 || (m == 1 && !cvc(w->c, w->n - 1)))
			w->n--;
	}
	if (ends(w, "ll") && measure(w->c, w->n - 1) > 1)
		w->n--;
}

void locomo_stem(char *out, size_t cap, const char *s)
{
	static const char *const irregular[][2] = {
		{ "skies", "sky" }, { "sky", "sky" },       { "dying", "die" },       { "lying", "lie" },
		{ "tying", "tie" }, { "news", "news" },     { "innings", "inning" },  { "inning", "inning" },
		{ "outings", "outing" }, { "outing", "outing" }, { "cannings", "canning" }, { "canning", "canning" },
		{ "howe", "howe" }, { "proceed", "proceed" }, { "exceed", "exceed" }, { "succeed", "succeed" },
	};
	word w;
	size_t o = 0;

	for (size_t i = 0; i < sizeof(irregular) / sizeof(*irregular); i++)
		if (!strcmp(s, irregular[i][0])) {
			snprintf(out, cap, "%s", irregular[i][1]);
			return;
		}
	w.n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && w.n < MAXW;) {
		uint32_t cp;
		p += decode(p, &cp);
		w.c[w.n++] = cp;
	}
	if (w.n > 2 && w.n < MAXW) {
		step1a(&w);
		step1b(&w);
		step1c(&w);
		step2(&w);
		step3(&w);
		step4(&w);
		step5(&w);
		for (size_t i = 0; i < w.n && o + 5 < cap; i++)
			o += encode(out + o, w.c[i]);
		out[o] = '\0';
		return;
	}
	snprintf(out, cap, "%s", s);
}

/* ---- normalization, tokens, F1 ----------------------------------------------- */

char *locomo_tokens(const char *s)
{
	size_t len = strlen(s);
	uint32_t *cp = malloc((len + 1) * sizeof(*cp));
	char *out = malloc(len * 4 + 2), word_buf[MAXW * 4 + 8], stem[MAXW * 4 + 8];
	size_t n = 0, o = 0;

	if (!cp || !out) {
		free(cp);
		free(out);
		return NULL;
	}
	/* 1-3: commas go, lowercase, ASCII punctuation goes */
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t c;
		p += decode(p, &c);
		if (c == ',' || is_ascii_punct(c))
			continue;
		cp[n++] = lower(c);
	}
	/* 4: the articles and "and", as whole words, become spaces; 5: split on whitespace */
	for (size_t i = 0; i < n;) {
		if (is_space(cp[i])) {
			i++;
			continue;
		}
		/* a token runs to the next space; inside it, word runs are checked against the list */
		size_t j = i;
		while (j < n && !is_space(cp[j]))
			j++;
		size_t k = i, wl = 0;
		word_buf[0] = '\0';
		while (k < j) {
			size_t r = k;
			if (is_word(cp[k])) {
				while (r < j && is_word(cp[r]))
					r++;
				bool drop = false;
				size_t rl = r - k;
				if (rl <= 3) {
					char t[4] = { 0 };
					for (size_t q = 0; q < rl; q++)
						t[q] = cp[k + q] < 0x80 ? (char)cp[k + q] : '?';
					drop = !strcmp(t, "a") || !strcmp(t, "an") || !strcmp(t, "the") || !strcmp(t, "and");
				}
				if (drop) {
					/* a space splits the token here */
					if (wl) {
						word_buf[wl] = '\0';
						locomo_stem(stem, sizeof(stem), word_buf);
						o += (size_t)snprintf(out + o, len * 4 + 2 - o, "%s%s", o ? " " : "", stem);
						wl = 0;
					}
				} else {
					for (size_t q = k; q < r && wl < MAXW * 4; q++)
						wl += encode(word_buf + wl, cp[q]);
				}
			} else {
				r = k + 1;
				if (wl < MAXW * 4)
					wl += encode(word_buf + wl, cp[k]);
			}
			k = r;
		}
		if (wl) {
			word_buf[wl] = '\0';
			locomo_stem(stem, sizeof(stem), word_buf);
			o += (size_t)snprintf(out + o, len * 4 + 2 - o, "%s%s", o ? " " : "", stem);
		}
		i = j;
	}
	out[o] = '\0';
	free(cp);
	return out;
}

static size_t split(char *s, char **v, size_t max)
{
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(s, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
		v[n++] = t;
	return n;
}

double locomo_f1(const char *pred, const char *gold)
{
	char *p = locomo_tokens(pred), *g = locomo_tokens(gold);
	char *pv[512], *gv[512];
	bool used[512] = { false };
	double f1 = 0;

	if (p && g) {
		size_t np = split(p, pv, 512), ng = split(g, gv, 512), same = 0;
		/* multiset intersection */
		for (size_t i = 0; i < np; i++)
			for (size_t k = 0; k < ng; k++)
				if (!used[k] && !strcmp(pv[i], gv[k])) {
					used[k] = true;
					same++;
					break;
				}
		if (same) {
			double pr = (double)same / (double)np, rc = (double)same / (double)ng;
			f1 = 2 * pr * rc / (pr + rc);
		}
	}
	free(p);
	free(g);
	return f1;
}

static char *strip_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\n'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		n--;
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

double locomo_score(const char *pred, const char *answer, int cat)
{
	if (cat == 5) {
		size_t n = strlen(pred);
		char *low = malloc(n + 1);
		if (!low)
			return 0;
		for (size_t i = 0; i <= n; i++)
			low[i] = (char)(pred[i] >= 'A' && pred[i] <= 'Z' ? pred[i] + 32 : pred[i]);
		double s = strstr(low, "no information available") || strstr(low, "not mentioned") ? 1 : 0;
		free(low);
		return s;
	}
	if (cat == 3) {
		size_t n = strcspn(answer, ";");
		char *g = strip_dup(answer, n);
		double s = g ? locomo_f1(pred, g) : 0;
		free(g);
		return s;
	}
	if (cat == 1) {
		/* the mean over gold parts of the best pred part, both split on ',' raw */
		double sum = 0;
		size_t ng = 0;
		for (const char *g = answer;; ng++) {
			size_t gl = strcspn(g, ",");
			char *gp = strip_dup(g, gl);
			double best = 0;
			for (const char *p = pred;;) {
				size_t pl = strcspn(p, ",");
				char *pp = strip_dup(p, pl);
				double f = gp && pp ? locomo_f1(pp, gp) : 0;
				free(pp);
				if (f > best)
					best = f;
				if (!p[pl])
					break;
				p += pl + 1;
			}
			free(gp);
			sum += best;
			if (!g[gl]) {
				ng++;
				break;
			}
			g += gl + 1;
		}
		return ng ? sum / (double)ng : 0;
	}
	return locomo_f1(pred, answer);
}

size_t locomo_evidence(char (*out)[32], size_t max, const char *evidence)
{
	size_t n = 0;
	const char *s = evidence;
	while (s && *s && n < max) {
		size_t len = strcspn(s, ";, \t\r\n");
		const char *p = s, *end = s + len;
		unsigned long a = 0, b = 0;
		bool ok = len > 0 && *p++ == 'D';
		if (ok && p < end && *p == ':')
			p++;
		const char *d = p;
		while (ok && p < end && *p >= '0' && *p <= '9' && a < 1000000)
			a = a * 10 + (unsigned long)(*p++ - '0');
		ok = ok && p > d && p < end && *p++ == ':';
		d = p;
		while (ok && p < end && *p >= '0' && *p <= '9' && b < 1000000)
			b = b * 10 + (unsigned long)(*p++ - '0');
		if (ok && p > d && p == end)
			snprintf(out[n++], sizeof(out[0]), "D%lu:%lu", a, b);
		s = end;
		s += strspn(s, ";, \t\r\n");
	}
	return n;
}
