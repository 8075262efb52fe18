/* SPDX-License-Identifier: MIT */
/*
 * The query: which pages a question brings back. The store's full-text
 * search (BM25) is asked for the question's words, then for its compounds'
 * other spellings and its adjacent word pairs (as phrases and within a
 * window); its hits are mapped to
 * this branch's messages and pages through the query index (a qindex: the
 * hash of each text, the pages and their tokens), ranked, and taken while
 * they fit an allowance. The index in memory is built here from a loaded
 * branch (cmv_pager__qindex_of); qindex.c keeps it in the branch's notes.
 *
 * The ranking depends on the query, the store and the index only, never on
 * how the index was had (built, read, or grown): materialize --query and
 * recall --query share it, and a kept index must give what a fresh one
 * would. A body taken brings its turn; a page pinned already costs nothing.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "pager_priv.h"

/*
 * A message's neighbours' scores count in its own, by a Gaussian kernel
 * over their distance: exp(-d^2 / 2 sigma^2), sigma QUERY_NEIGHBOUR_SIGMA
 * (0.71 for the next message, 0.25 for the next but one, 0.04 three away),
 * up to QUERY_NEIGHBOURS away. An answer often sits next to the words that
 * find it: the reply to a question, the result of a call, the turn after
 * the one that names the subject. The kernel's shape is the one Lv and
 * Zhai found best for proximity in positional language models (SIGIR
 * 2009); its one width was chosen on each LoCoMo development conversation
 * (0.8 to 2.0) and measured on the other, both ways, where both chose 1.2
 * (docs/pager.md, "Query fault-in").
 */
#define QUERY_NEIGHBOUR_SIGMA 1.2
#define QUERY_NEIGHBOURS 3

/*
 * The query's adjacent word pairs count too, as Metzler and Croft's
 * sequential dependence model has it (SIGIR 2005): in order (a phrase) and
 * within a window of 8 words in any order, with their published weights,
 * 0.85 for the words, 0.10 for the phrases and 0.05 for the windows (here
 * relative to the words'). Not fitted to any data: they reward a page that
 * says "dance studio" over one that says "dance" and, elsewhere, "studio".
 */
#define QUERY_PHRASE_WEIGHT (0.10 / 0.85)
#define QUERY_WINDOW_WEIGHT (0.05 / 0.85)
#define QUERY_WINDOW 8

/*
 * A compound's other spellings (query_compounds): its parts have at least
 * this many letters (prefixes such as "co" and "re" are left out: as
 * words of their own they are frequent and mean little), and a spelling
 * found counts as the word itself.
 */
#define QUERY_COMPOUND_PART 3
#define QUERY_COMPOUND_WEIGHT 1.0

/*
 * Pseudo-relevance feedback, as RM3 has it (Lavrenko and Croft, SIGIR
 * 2001; the interpolation of Abdul-Jaleel et al., TREC 2004): the words of
 * the best QUERY_FEEDBACK_DOCS messages (their own scores, before the
 * neighbours'), each weighed by its share of the message's words times the
 * message's share of their scores, summed, are the relevance model; its
 * best QUERY_FEEDBACK_TERMS words are searched as one more query, at
 * QUERY_FEEDBACK_WEIGHT of the question's words. The texts that answer a
 * question share words with the ones that match it that the question does
 * not have: a question about a trip finds the turns that say "trip", and
 * they name the city, which the turn that answers names too. The documents
 * and terms are the defaults of Anserini's RM3 (10 and 10), not fitted
 * here. Each word's weight is also multiplied by its inverse document
 * frequency in the store (BM25's): without it the words every chat turn
 * has fill the list, and feedback costs 1 to 3 points on LoCoMo. Only the
 * QUERY_FEEDBACK_CANDIDATES likeliest words are counted in the store (a
 * pass over each one's matches: 32 gave the figures 64 did), with the
 * question's first QUERY_FEEDBACK_WORDS words, whose matches bound the
 * feedback's (query_feedback); a text is read up to QUERY_FEEDBACK_TEXT
 * bytes. The pass's scores are scaled so that its best is the best so far
 * before the weight applies: a question whose words are in most texts (an
 * idf near nil, so scores near nil) is not outweighed by rarer feedback
 * words. The weight was chosen on each LoCoMo development conversation
 * and measured on the other, both ways (docs/pager.md, "Query fault-in").
 */
#define QUERY_FEEDBACK_DOCS 10
#define QUERY_FEEDBACK_TERMS 10
#define QUERY_FEEDBACK_WEIGHT 0.2
#define QUERY_FEEDBACK_CANDIDATES 32
#define QUERY_FEEDBACK_TEXT 16384
#define QUERY_FEEDBACK_WORDS 32

/* What a model's counts depend on: an index counted otherwise (an edited profile) is not used. */
void cmv_pager__qindex_model(char *out, size_t cap, const cmv_model *m)
{
	snprintf(out, cap, "%s %.9g %u %u %u", m->tokenizer, m->token_factor, m->per_message, m->per_block,
		 m->image_tokens);
}

/*
 * The hashes of the branch's texts and bodies, each to where it is: open
 * addressing over the qindex's own strings, nothing copied (built for
 * each query; a map that copied every key cost a twentieth of a search at
 * 1M tokens).
 */
typedef struct qwhere {
	const char **keys;
	size_t *at;
	size_t mask;
} qwhere;

static size_t qwhere_slot(const qwhere *w, const char *key)
{
	size_t i = (size_t)cmv__str_hash(key) & w->mask;
	while (w->keys[i] && strcmp(w->keys[i], key))
		i = (i + 1) & w->mask;
	return i;
}

static bool qwhere_get(const qwhere *w, const char *key, size_t *at)
{
	size_t i;
	if (!w->keys)
		return false;
	i = qwhere_slot(w, key);
	if (!w->keys[i])
		return false;
	*at = w->at[i];
	return true;
}

static void qwhere_dispose(qwhere *w)
{
	free(w->keys);
	free(w->at);
	memset(w, 0, sizeof(*w));
}

typedef struct {
	const qindex *qi;
	const qwhere *where; /* hash of a text -> its message; of a body page -> page + n_msgs */
	double *msg_score;   /* per message: its best hit (BM25, higher is better) */
	double *page_score;  /* per page: a body's own hit */
	double weight;       /* of the search under way (the pairs count less than the words) */
	size_t seen;         /* search results, this branch's or not */
} query_state;

/* Words that say nothing about which turn is meant. */
static const char *const query_stopwords[] = {
	"a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as",
	"is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "done", "has", "have", "had",
	"having", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her", "it", "its", "they",
	"them", "their", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that", "this",
	"these", "those", "there", "here", "not", "no", "yes", "would", "could", "should", "will", "can", "may",
	"might", "must", "shall", "about", "into", "over", "after", "before", "than", "then", "so", "such", "some",
	"any", "all", "both", "each", "more", "most", "other", "also", "just", "only", "very", "too", "s", "t",
	"up", "out", NULL };

static bool query_stopword(const char *word, size_t n)
{
	/* the first letter first: the feedback asks this of every word of ten texts */
	for (const char *const *w = query_stopwords; *w; w++)
		if (**w == *word && !strncmp(*w, word, n) && !(*w)[n])
			return true;
	return false;
}

/*
 * An appending printf that treats the buffer's cap as the end of the list:
 * a very long question (hundreds of long words) asks for what fits, where
 * failing would answer nothing. *full: set once a clause did not fit (the
 * buffer is as it was before it).
 */
__attribute__((format(printf, 3, 4))) static int query_add(cmv_buf *b, bool *full, const char *fmt, ...)
{
	va_list ap;
	int error;
	if (*full)
		return 0;
	va_start(ap, fmt);
	error = cmv_buf_vprintf(b, fmt, ap);
	va_end(ap);
	if (error == CMV_ETOOBIG) {
		cmv_error_clear();
		*full = true;
		error = 0;
	}
	return error;
}

/*
 * The next word of the text at *at into word (cap bytes, NUL-terminated; a
 * longer word is cut): lowercase ASCII letters and digits, and any byte of
 * a UTF-8 sequence; an apostrophe, ASCII or U+2019, cuts a word as the
 * index's tokenizer does. Returns its length, 0 at the end of the text.
 */
static size_t query_word(const char **at, const char *end, char *word, size_t cap)
{
	size_t n = 0;
	for (const char *s = *at;; s++) {
		unsigned char ch = s < end ? (unsigned char)*s : 0;
		bool apostrophe = s + 3 <= end && !strncmp(s, "\xe2\x80\x99", 3);
		if (ch && !apostrophe && (ch >= 0x80 || isalnum(ch))) {
			if (n + 1 < cap)
				word[n++] = (char)(ch < 0x80 ? tolower(ch) : ch);
			continue;
		}
		if (apostrophe)
			s += 2; /* its other two bytes start no word */
		if (n || !ch) {
			*at = ch ? s + 1 : s;
			word[n] = '\0';
			return n;
		}
	}
}

/*
 * Whether a word's bytes are whole UTF-8 sequences: a word cut at its cap
 * or at the end of a text read in part, or one from a text that is not
 * UTF-8, is no word to search for (PostgreSQL refuses the query).
 */
static bool query_utf8(const char *w, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)w[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (!len || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)w[i + k] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

/* Whether words (space-separated) holds word. */
static bool query_has(const char *words, const char *word, size_t n)
{
	for (const char *p = words; p && (p = strstr(p, word)) != NULL; p++)
		if ((p == words || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
	return false;
}

/*
 * The query as search words: lowercase letters and digits, stopwords out,
 * each once (a question's "what did she" matches every turn). Empty when
 * nothing is left. A typographic apostrophe (U+2019) cuts a word as "'"
 * does, as the index's tokenizer cuts it: "Caroline’s" is "caroline".
 */
int cmv_pager__query_words(cmv_buf *out, const char *query)
{
	char word[64];
	const char *at = query, *end = query + strlen(query);
	size_t n;
	int error = 0;
	bool full = false;
	cmv_buf_clear(out);
	while (!error && !full && (n = query_word(&at, end, word, sizeof(word))) > 0)
		if (!query_stopword(word, n) && !(out->size && query_has(out->ptr, word, n)))
			error = query_add(out, &full, "%s%s", out->size ? " " : "", word);
	return error;
}

static int query_hit(const cmv_search_hit *hit, void *payload)
{
	query_state *q = payload;
	const qindex *qi = q->qi;
	char hex[CMV_ID_HEXSZ + 1];
	size_t at;
	double s = -hit->score * q->weight; /* SQLite's BM25 is lower for better */
	q->seen++;
	if (!qwhere_get(q->where, cmv_id_tostr(hex, sizeof(hex), &hit->blob), &at) || s <= 0)
		return 0;
	if (at >= qi->n_msgs) {
		q->page_score[at - qi->n_msgs] = s;
		at = qi->body_msg[at - qi->n_msgs];
	}
	/* a blob seen again when the search looks further down has the same score */
	if (s > q->msg_score[at])
		q->msg_score[at] = s;
	return 0;
}

/* A word of ASCII letters only (the spellings of a compound are looked for in those). */
static bool query_letters(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalpha((unsigned char)w[i]))
			return false;
	return n > 0;
}

/*
 * The other spellings of the query's compounds. English writes one
 * compound closed, hyphenated or open ("database", "data-base", "data
 * base"; "notebook", "note book"), and the index cuts a hyphen as a space:
 * a word is also looked for as the phrase of each split of it into two
 * parts of QUERY_COMPOUND_PART letters or more, neither a stopword, and
 * two adjacent search words also as the word they make closed. No lexicon
 * says which splits are compounds, as none is needed: a split that is not
 * one ("pain ting") is not a phrase of the texts, so it finds nothing.
 */
static int query_compounds(cmv_buf *out, const char *words)
{
	int error = 0;
	bool full = false;
	for (const char *a = words; !error && !full && *a; a += strcspn(a, " "), a += *a == ' ') {
		size_t la = strcspn(a, " ");
		const char *b = a + la + (a[la] == ' ');
		size_t lb = strcspn(b, " ");
		if (!query_letters(a, la))
			continue;
		for (size_t i = QUERY_COMPOUND_PART; i + QUERY_COMPOUND_PART <= la && !error; i++)
			if (!query_stopword(a, i) && !query_stopword(a + i, la - i))
				error = query_add(out, &full, "%s\"%.*s %.*s\"", out->size ? " OR " : "", (int)i, a, (int)(la - i),
						  a + i);
		if (!error && lb && query_letters(b, lb))
			error = query_add(out, &full, "%s\"%.*s%.*s\"", out->size ? " OR " : "", (int)la, a, (int)lb, b);
	}
	return error;
}

/*
 * One more search (FTS5 syntax), its scores added to the words' at weight,
 * per message and per body. relative: scaled first so that its best is
 * the best so far (the question's words' scale, however rare they are).
 */
static int query_pass(query_state *q, cmv_repo *repo, const cmv_buf *fts, double weight, size_t limit, bool relative)
{
	const qindex *qi = q->qi;
	double *own = q->msg_score, *own_pages = q->page_score, scale = 1;
	int error = 0;
	if (!fts->size)
		return 0;
	if (!(q->msg_score = cmv__calloc(qi->n_msgs + 1, sizeof(double))) ||
	    !(q->page_score = cmv__calloc(qi->n_bodies + 1, sizeof(double)))) {
		error = cmv_error__oom();
	} else {
		q->weight = relative ? 1 : weight;
		error = cmv_search(repo, fts->ptr, limit, CMV_SEARCH_RAW | CMV_SEARCH_NO_SNIPPET | CMV_SEARCH_BLOBS, query_hit, q);
		if (relative) {
			double best = 0, pass_best = 0;
			for (size_t i = 0; i < qi->n_msgs; i++) {
				best = own[i] > best ? own[i] : best;
				pass_best = q->msg_score[i] > pass_best ? q->msg_score[i] : pass_best;
			}
			for (size_t i = 0; i < qi->n_bodies; i++) {
				best = own_pages[i] > best ? own_pages[i] : best;
				pass_best = q->page_score[i] > pass_best ? q->page_score[i] : pass_best;
			}
			scale = pass_best > 0 ? weight * best / pass_best : 0;
		}
		for (size_t i = 0; i < qi->n_msgs && !error; i++)
			own[i] += scale * q->msg_score[i];
		for (size_t i = 0; i < qi->n_bodies && !error; i++)
			own_pages[i] += scale * q->page_score[i];
	}
	free(q->msg_score);
	free(q->page_score);
	q->msg_score = own;
	q->page_score = own_pages;
	return error;
}

/*
 * The searches after the words': the compounds' other spellings
 * (QUERY_COMPOUND_WEIGHT), the pairs as phrases (QUERY_PHRASE_WEIGHT) and
 * within a window. Their scores are added to the words', per message and
 * per body, at their weights. words: the query's search words,
 * alphanumeric or UTF-8, so quoting them needs no escape.
 */
static int query_pairs(query_state *q, cmv_repo *repo, const char *words, size_t limit)
{
	cmv_buf phrases = CMV_BUF_INIT(1 << 16), windows = CMV_BUF_INIT(1 << 16), compounds = CMV_BUF_INIT(1 << 16);
	int error = 0;
	bool full_p = false, full_w = false;
	for (const char *a = words, *b; !error && !full_w && (b = strchr(a, ' ')) != NULL; a = b + 1) {
		int la = (int)(b - a), lb = (int)strcspn(b + 1, " ");
		if ((error = query_add(&phrases, &full_p, "%s\"%.*s %.*s\"", phrases.size ? " OR " : "", la, a, lb, b + 1)) == 0)
			error = query_add(&windows, &full_w, "%sNEAR(\"%.*s\" \"%.*s\", %d)", windows.size ? " OR " : "", la,
					  a, lb, b + 1, QUERY_WINDOW);
	}
	if (!error)
		error = query_compounds(&compounds, words);
	const struct {
		const cmv_buf *fts;
		double weight;
	} pass[3] = { { &compounds, QUERY_COMPOUND_WEIGHT }, { &phrases, QUERY_PHRASE_WEIGHT }, { &windows, QUERY_WINDOW_WEIGHT } };
	for (int k = 0; k < 3 && !error; k++)
		error = query_pass(q, repo, pass[k].fts, pass[k].weight, limit, false);
	cmv_buf_dispose(&compounds);
	cmv_buf_dispose(&phrases);
	cmv_buf_dispose(&windows);
	return error;
}

typedef struct {
	char word[64];
	double p; /* P(w|R), then times its idf */
	uint64_t df;
} fb_term;

static int fb_cmp(const void *a, const void *b)
{
	const fb_term *x = a, *y = b;
	if (x->p != y->p)
		return x->p < y->p ? 1 : -1;
	return strcmp(x->word, y->word);
}

typedef struct {
	size_t *seen; /* open addressing over the words in terms: its index + 1, 0 for none */
	size_t mask;
	fb_term *terms;
	size_t n, cap;
	size_t *occ; /* the message's words that count, as indexes in terms */
	size_t n_occ, cap_occ, n_words;
} fb_model;

/* Where word is in f->seen: its slot, or the empty one it would take. */
static size_t feedback_slot(const fb_model *f, const char *word)
{
	size_t i = (size_t)cmv__str_hash(word) & f->mask;
	while (f->seen[i] && strcmp(f->terms[f->seen[i] - 1].word, word))
		i = (i + 1) & f->mask;
	return i;
}

/* A new word into f->terms and f->seen (at slot), grown as needed; its index. */
static int feedback_add(fb_model *f, const char *word, size_t wl, size_t slot, size_t *k)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 256;
		fb_term *nt = cmv__realloc(f->terms, nc * sizeof(*nt));
		if (!nt)
			return cmv_error__oom();
		f->terms = nt;
		f->cap = nc;
	}
	*k = f->n++;
	memcpy(f->terms[*k].word, word, wl + 1);
	f->terms[*k].p = 0;
	f->seen[slot] = *k + 1;
	if (2 * f->n > f->mask) {
		size_t cap = 2 * (f->mask + 1), *old = f->seen;
		if (!(f->seen = cmv__calloc(cap, sizeof(*f->seen)))) {
			f->seen = old;
			return cmv_error__oom();
		}
		f->mask = cap - 1;
		for (size_t i = 0; i < f->n; i++)
			f->seen[feedback_slot(f, f->terms[i].word)] = i + 1;
		free(old);
	}
	return 0;
}

/*
 * The words of one of a message's texts: |d| counts them all; stopwords,
 * the question's and letters alone are no candidates. A word seen before
 * is a candidate already (each test is of the word alone).
 */
static int feedback_text(fb_model *f, const char *words, const char *text, size_t len)
{
	char word[64];
	const char *at = text, *end = text + len;
	size_t wl, k = 0, slot;
	int error = 0;
	if (!f->seen) {
		if (!(f->seen = cmv__calloc(1024, sizeof(*f->seen))))
			return cmv_error__oom();
		f->mask = 1023;
	}
	while (!error && (wl = query_word(&at, end, word, sizeof(word))) > 0) {
		f->n_words++;
		if (f->seen[slot = feedback_slot(f, word)]) {
			k = f->seen[slot] - 1;
		} else {
			if (wl < 2 || query_stopword(word, wl) || query_has(words, word, wl) || !query_utf8(word, wl))
				continue;
			if ((error = feedback_add(f, word, wl, slot, &k)) < 0)
				break;
		}
		if (f->n_occ == f->cap_occ) {
			size_t nc = f->cap_occ ? f->cap_occ * 2 : 256;
			size_t *no = cmv__realloc(f->occ, nc * sizeof(*no));
			if (!no)
				return cmv_error__oom();
			f->occ = no;
			f->cap_occ = nc;
		}
		f->occ[f->n_occ++] = k;
	}
	return error;
}

/*
 * Pseudo-relevance feedback (QUERY_FEEDBACK_DOCS, above): the relevance
 * model of the best messages so far (their own scores, before the
 * neighbours'), its likeliest words weighed by their rarity in the store,
 * and the best of those searched as one more pass. A store that cannot
 * count (a backend without search_count) gives no feedback.
 */
static int query_feedback(query_state *q, cmv_repo *repo, const char *words, size_t limit)
{
	const qindex *qi = q->qi;
	size_t top[QUERY_FEEDBACK_DOCS], n_top = 0, docs = QUERY_FEEDBACK_DOCS;
	double total = 0;
	fb_model f;
	cmv_buf fts = CMV_BUF_INIT(1 << 16), text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = 0;
	bool full = false;

	memset(&f, 0, sizeof(f));
	/* the best messages, best first (the earlier of two equal) */
	for (size_t i = 0; i < qi->n_msgs; i++) {
		double s = q->msg_score[i];
		size_t j;
		if (s <= 0 || (n_top == docs && s <= q->msg_score[top[n_top - 1]]))
			continue;
		j = n_top < docs ? n_top++ : n_top - 1;
		for (; j > 0 && q->msg_score[top[j - 1]] < s; j--)
			top[j] = top[j - 1];
		top[j] = i;
	}
	for (size_t d = 0; d < n_top; d++)
		total += q->msg_score[top[d]];
	for (size_t d = 0; d < n_top && !error; d++) {
		f.n_occ = f.n_words = 0;
		for (size_t k = 0; k < qi->n_texts && !error; k++) {
			cmv_id id;
			if (qi->text_msg[k] != top[d] || cmv_id_fromstr(&id, qi->texts[k]) < 0)
				continue;
			cmv_buf_clear(&text);
			if ((error = cmv_blob_read(&text, repo, &id)) == CMV_ENOTFOUND) {
				cmv_error_clear(); /* a text kept elsewhere (an image's, a cleared result's): none to read */
				error = 0;
				continue;
			}
			if (!error)
				error = feedback_text(&f, words, text.ptr, text.size < QUERY_FEEDBACK_TEXT ? text.size : QUERY_FEEDBACK_TEXT);
		}
		for (size_t o = 0; o < f.n_occ && !error; o++)
			f.terms[f.occ[o]].p += q->msg_score[top[d]] / total / (double)f.n_words;
	}
	/* the likeliest words, each times its idf in the store (BM25's, floored at nil) */
	if (!error && f.n) {
		size_t n_cand = f.n < QUERY_FEEDBACK_CANDIDATES ? f.n : QUERY_FEEDBACK_CANDIDATES;
		qsort(f.terms, f.n, sizeof(*f.terms), fb_cmp);
		const char *cand[QUERY_FEEDBACK_CANDIDATES + QUERY_FEEDBACK_WORDS];
		char qw[QUERY_FEEDBACK_WORDS][64];
		uint64_t df[QUERY_FEEDBACK_CANDIDATES + QUERY_FEEDBACK_WORDS], n = 0, room = 0;
		size_t n_q = 0;
		for (size_t k = 0; k < n_cand; k++)
			cand[k] = f.terms[k].word;
		/* the question's own words, counted too: their matches bound the feedback's (below) */
		for (const char *w = words; *w && n_q < QUERY_FEEDBACK_WORDS; w += strcspn(w, " "), w += *w == ' ') {
			size_t wl = strcspn(w, " ");
			if (wl >= sizeof(qw[0]))
				continue;
			memcpy(qw[n_q], w, wl);
			qw[n_q][wl] = '\0';
			cand[n_cand + n_q] = qw[n_q];
			n_q++;
		}
		if ((error = cmv_search_count(repo, cand, n_cand + n_q, 0, df, &n)) == CMV_EUNSUPPORTED) {
			cmv_error_clear();
			error = 0;
			n_cand = 0;
			n_q = 0; /* nothing was counted: df holds nothing */
		}
		for (size_t k = 0; k < n_q && !error; k++)
			room += df[n_cand + k];
		if (room < limit)
			room = limit; /* as many as one search brings back: a rare question still gets its feedback */
		for (size_t k = 0; k < n_cand && !error; k++) {
			double idf = df[k] && n > df[k] ? log(((double)(n - df[k]) + 0.5) / ((double)df[k] + 0.5)) : 0;
			f.terms[k].p *= idf > 0 ? idf : 0;
			f.terms[k].df = df[k];
		}
		qsort(f.terms, n_cand, sizeof(*f.terms), fb_cmp);
		/*
		 * The best words, while the texts they match (their sum) are no
		 * more than the question's words match, or one search's results
		 * if that is more: the feedback's search costs about what the
		 * question's did, a pass over those matches.
		 */
		for (size_t k = 0, taken = 0; k < n_cand && taken < QUERY_FEEDBACK_TERMS && f.terms[k].p > 0 && !error; k++) {
			if (f.terms[k].df > room)
				continue;
			room -= f.terms[k].df;
			taken++;
			error = query_add(&fts, &full, "%s\"%s\"", fts.size ? " OR " : "", f.terms[k].word);
		}
	}
	if (!error)
		error = query_pass(q, repo, &fts, QUERY_FEEDBACK_WEIGHT, limit, true);
	free(f.seen);
	free(f.terms);
	free(f.occ);
	cmv_buf_dispose(&fts);
	cmv_buf_dispose(&text);
	return error;
}

/* The texts in message order, then the bodies: a hash both have is the body's, as a later text's is the later. */
static int qindex_where(qwhere *w, const qindex *qi)
{
	size_t n = qi->n_texts + qi->n_bodies, cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	if (!(w->keys = cmv__calloc(cap, sizeof(*w->keys))) || !(w->at = cmv__calloc(cap, sizeof(*w->at))))
		return cmv_error__oom();
	w->mask = cap - 1;
	for (size_t k = 0; k < n; k++) {
		const char *key = k < qi->n_texts ? qi->texts[k] : qi->ids[k - qi->n_texts];
		size_t i = qwhere_slot(w, key);
		w->keys[i] = key;
		w->at[i] = k < qi->n_texts ? qi->text_msg[k] : qi->n_msgs + (k - qi->n_texts);
	}
	return 0;
}

typedef struct {
	double score;
	size_t page; /* a body page, or a turn's page */
} query_pick;

static int pick_cmp(const void *a, const void *b)
{
	const query_pick *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return (x->page > y->page) - (x->page < y->page);
}

/*
 * The turns and bodies the hits point at, best first: a body by its own
 * score, a turn by its best message's, where a message's score is its own
 * (its words', its compounds' and its word pairs') plus its neighbours'
 * up to QUERY_NEIGHBOURS away, weighed by the kernel (QUERY_NEIGHBOUR_SIGMA).
 */
static int query_rank(query_pick **out, size_t *n_out, query_state *q)
{
	const qindex *qi = q->qi;
	size_t n_pages = qi->n_bodies + qi->n_turns, n = 0;
	query_pick *picks = cmv__calloc(n_pages + 1, sizeof(*picks));
	double kernel[QUERY_NEIGHBOURS + 1];
	if (!picks)
		return cmv_error__oom();
	for (size_t d = 1; d <= QUERY_NEIGHBOURS; d++)
		kernel[d] = exp(-(double)(d * d) / (2 * QUERY_NEIGHBOUR_SIGMA * QUERY_NEIGHBOUR_SIGMA));
	for (size_t k = 0; k < qi->n_bodies; k++)
		if (q->page_score[k] > 0)
			picks[n++] = (query_pick){ q->page_score[k], k };
	for (size_t g = 0, i = 0; g < qi->n_turns; g++) {
		size_t end = g + 1 < qi->n_turns ? qi->turn_first[g + 1] : qi->n_msgs;
		double best = 0;
		for (; i < end; i++) {
			const double *m = q->msg_score;
			double v = m[i];
			for (size_t d = 1; d <= QUERY_NEIGHBOURS; d++)
				v += kernel[d] * ((i >= d ? m[i - d] : 0) + (i + d < qi->n_msgs ? m[i + d] : 0));
			if (v > best)
				best = v;
		}
		if (best > 0)
			picks[n++] = (query_pick){ best, qi->n_bodies + g };
	}
	qsort(picks, n, sizeof(*picks), pick_cmp);
	*out = picks;
	*n_out = n;
	return 0;
}

/* A body's turn page. */
static size_t body_turn_page(const qindex *qi, size_t k)
{
	size_t lo = 0, hi = qi->n_turns;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (qi->turn_first[mid] <= qi->body_msg[k])
			lo = mid;
		else
			hi = mid;
	}
	return qi->n_bodies + lo;
}

/*
 * Take the ranked picks while their tokens fit the allowance (one that
 * does not fit is passed over for a smaller one after it): a body pins its
 * turn, a turn comes whole; a page pinned already costs nothing here. With
 * hit NULL, only the tokens they would take; else hit[page] marks those
 * taken, and pinned[] gets the turns of the bodies among them.
 */
static int query_take(uint64_t *used_out, const qindex *qi, bool *pinned, const query_pick *picks, size_t n,
		      uint64_t allowance, bool *hit, size_t *order, size_t *n_order)
{
	uint64_t used = 0;
	size_t n_pages = qi->n_bodies + qi->n_turns;
	bool *taken = cmv__calloc(n_pages + 1, sizeof(bool));
	if (!taken)
		return cmv_error__oom();
	for (size_t k = 0; k < n; k++) {
		size_t pg = picks[k].page;
		if (pinned[pg] || taken[pg] || used + qi->tokens[pg] > allowance)
			continue;
		used += qi->tokens[pg];
		taken[pg] = true;
		if (!hit)
			continue;
		pinned[pg] = hit[pg] = true;
		if (order)
			order[(*n_order)++] = pg;
		if (pg < qi->n_bodies)
			pinned[body_turn_page(qi, pg)] = true;
	}
	free(taken);
	*used_out = used;
	return 0;
}

/*
 * The query path, shared by materialize --query and recall --query: the
 * pages that match best (FTS5 BM25 over the store, a message's neighbours
 * counted too: query_rank) are taken, a body with its turn, while their
 * tokens fit the allowance. pinned[] (per page) says which cost nothing,
 * and gets the turns of the bodies taken; hit[] (per page, zeroed) gets
 * the pages taken.
 */
int cmv_pager__qindex_query(const qindex *qi, cmv_repo *repo, const char *query, uint64_t allowance, bool *pinned,
			    bool *hit)
{
	return cmv_pager__qindex_ranked(qi, repo, query, allowance, pinned, hit, NULL, NULL);
}

/* As cmv_pager__qindex_query; order (room for every page) gets the pages taken, best first. */
int cmv_pager__qindex_ranked(const qindex *qi, cmv_repo *repo, const char *query, uint64_t allowance, bool *pinned,
			     bool *hit, size_t *order, size_t *n_order)
{
	qwhere where = { 0 };
	cmv_buf words = CMV_BUF_INIT(1 << 16);
	query_state q;
	query_pick *picks = NULL;
	size_t n_picks = 0;
	int error;

	memset(&q, 0, sizeof(q));
	q.qi = qi;
	q.where = &where;
	if ((error = cmv_pager__query_words(&words, query)) < 0 || !words.size) {
		cmv_buf_dispose(&words);
		return error;
	}
	if (!(q.msg_score = cmv__calloc(qi->n_msgs + 1, sizeof(double))) ||
	    !(q.page_score = cmv__calloc(qi->n_bodies + 1, sizeof(double))))
		error = cmv_error__oom();
	if (!error)
		error = qindex_where(&where, qi);
	/*
	 * The index spans the whole store: in a store of many sessions the best
	 * hits may all be elsewhere. While every result came back and this
	 * branch's picks do not fill the allowance, look further down the
	 * ranking (a blob seen again scores the same, so what was seen before
	 * changes nothing).
	 */
	q.weight = 1;
	size_t limit = 256;
	for (; !error; limit *= 8) {
		q.seen = 0;
		error = cmv_search(repo, words.ptr, limit, CMV_SEARCH_ANY | CMV_SEARCH_NO_SNIPPET | CMV_SEARCH_BLOBS, query_hit, &q);
		if (error || q.seen < limit || limit >= 16384)
			break;
		uint64_t used = 0;
		free(picks);
		picks = NULL;
		if ((error = query_rank(&picks, &n_picks, &q)) < 0 ||
		    (error = query_take(&used, qi, pinned, picks, n_picks, allowance, NULL, NULL, NULL)) < 0 || used * 10 >= allowance * 9)
			break;
	}
	free(picks);
	picks = NULL;
	if (!error)
		error = query_pairs(&q, repo, words.ptr, limit);
	if (!error)
		error = query_feedback(&q, repo, words.ptr, limit);
	if (!error && (error = query_rank(&picks, &n_picks, &q)) == 0) {
		uint64_t used;
		error = query_take(&used, qi, pinned, picks, n_picks, allowance, hit, order, n_order);
	}
	free(picks);
	free(q.msg_score);
	free(q.page_score);
	qwhere_dispose(&where);
	cmv_buf_dispose(&words);
	return error;
}

void cmv_pager__qindex_dispose(qindex *qi)
{
	free(qi->turn_first);
	free(qi->body_msg);
	free(qi->tokens);
	free(qi->ids);
	free(qi->nodes);
	free(qi->text_msg);
	free(qi->texts);
	free(qi->calls);
	memset(qi, 0, sizeof(*qi));
}

/* Room for n_msgs, n_bodies, n_turns and n_texts (set): the arrays, zeroed. */
int cmv_pager__qindex_alloc(qindex *qi)
{
	size_t n_pages = qi->n_bodies + qi->n_turns;
	if (!(qi->turn_first = cmv__calloc(qi->n_turns + 1, sizeof(size_t))) ||
	    !(qi->body_msg = cmv__calloc(qi->n_bodies + 1, sizeof(size_t))) ||
	    !(qi->tokens = cmv__calloc(n_pages + 1, sizeof(uint64_t))) || !(qi->ids = cmv__calloc(n_pages + 1, sizeof(qhex))) ||
	    !(qi->nodes = cmv__calloc(qi->n_turns + 1, sizeof(qhex))) ||
	    !(qi->text_msg = cmv__calloc(qi->n_texts + 1, sizeof(size_t))) ||
	    !(qi->texts = cmv__calloc(qi->n_texts + 1, sizeof(qhex))))
		return cmv_error__oom();
	return 0;
}

/*
 * Each text of message m (its string content, or the "text" of each of its
 * blocks) in order, to fn; returns how many.
 */
static size_t message_texts(const cJSON *m, void (*fn)(const char *text, void *ctx), void *ctx)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	size_t n = 0;
	if (cJSON_IsString(content)) {
		if (fn)
			fn(content->valuestring, ctx);
		return 1;
	}
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text"));
		if (t && fn)
			fn(t, ctx);
		n += t != NULL;
	}
	return n;
}

typedef struct {
	qindex *qi;
	size_t msg, k;
} text_ctx;

static void put_text(const char *text, void *ctx)
{
	text_ctx *t = ctx;
	cmv_id id;
	cmv_id_hash(&id, text, strlen(text));
	cmv_id_tostr(t->qi->texts[t->k], sizeof(qhex), &id);
	t->qi->text_msg[t->k++] = t->msg;
}

/* The index of a loaded branch (p: after cmv_pager__pages; a turn's id is "" when p->lazy_ids). */
int cmv_pager__qindex_of(qindex *qi, const pager *p)
{
	size_t n_bodies = 0;
	int error;
	memset(qi, 0, sizeof(*qi));
	while (n_bodies < p->n && p->pages[n_bodies].pub.kind == CMV_PAGE_BODY)
		n_bodies++;
	qi->n_msgs = (size_t)cJSON_GetArraySize(p->cv.msgs);
	qi->n_bodies = n_bodies;
	qi->n_turns = p->n_groups;
	for (const cJSON *m = p->cv.msgs->child; m; m = m->next)
		qi->n_texts += message_texts(m, NULL, 0);
	if ((error = cmv_pager__qindex_alloc(qi)) < 0)
		return error;
	cmv_pager__qindex_model(qi->model, sizeof(qi->model), p->model);
	for (size_t pg = 0; pg < p->n; pg++) {
		qi->tokens[pg] = p->pages[pg].pub.tokens;
		memcpy(qi->ids[pg], p->pages[pg].pub.id, sizeof(qhex));
		if (pg < n_bodies)
			qi->body_msg[pg] = p->pages[pg].msg;
	}
	for (size_t g = 0; g < p->n_groups; g++) {
		const char *node = cJSON_GetStringValue(cJSON_GetArrayItem(p->cv.nodes, (int)p->group_first[g]));
		qi->turn_first[g] = p->group_first[g];
		snprintf(qi->nodes[g], sizeof(qhex), "%s", node ? node : "");
	}
	text_ctx tc = { qi, 0, 0 };
	for (const cJSON *m = p->cv.msgs->child; m; m = m->next, tc.msg++)
		message_texts(m, put_text, &tc);
	return 0;
}

/* materialize --query: the pages the query takes are pinned, a body with its turn. */
int cmv_pager__query(pager *p, const char *query, uint64_t allowance, size_t *n_pinned)
{
	qindex qi;
	bool *pinned = cmv__calloc(p->n + 1, sizeof(bool)), *hit = cmv__calloc(p->n + 1, sizeof(bool));
	int error = !pinned || !hit ? cmv_error__oom() : cmv_pager__qindex_of(&qi, p);
	for (size_t k = 0; k < p->n && !error; k++)
		pinned[k] = p->pages[k].pub.pinned;
	if (!error && (error = cmv_pager__qindex_query(&qi, p->repo, query, allowance, pinned, hit)) == 0)
		for (size_t k = 0; k < p->n; k++) {
			p->pages[k].pub.pinned = pinned[k];
			p->pages[k].hit = hit[k];
			if (n_pinned && hit[k])
				(*n_pinned)++;
		}
	if (pinned && hit)
		cmv_pager__qindex_dispose(&qi);
	free(pinned);
	free(hit);
	return error;
}
