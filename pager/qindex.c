/* SPDX-License-Identifier: MIT */
/*
 * The query index a branch keeps in its notes, per model and target:
 * written, parsed, and grown after an append, so that recall --query need
 * not load the branch (the index itself, in memory, and the ranking over
 * it are query.c's).
 *
 * A kept index is used only when its notes read as one, whole, and name
 * the counts the model now gives: anything else is no index, never an
 * error, and the load path builds it again. It grows from its seam by the
 * rules the kept request does (cmv_pager__splice_append): records that
 * would read otherwise in the whole branch are left to a fresh build.
 */
#include <ctype.h>
#include <string.h>
#include <xxhash.h>
#include "pager_priv.h"

/*
 * A branch keeps its query index in notes per model and target, so that
 * recall --query reads it instead of loading the branch. KEY holds a line
 * each for the header, the tip, the counts, the seam and the calls before
 * it, and where the index is split; then a line per turn ("t first tokens
 * id node"), per body ("b msg tokens id") and per text ("x msg hash") from
 * the split turn on. KEY:base holds the same lines for the turns before
 * the split, with its size and hash in KEY: an append rewrites KEY alone,
 * and KEY:base when what follows the split has grown past
 * cmv__pager_fold_bytes, as the page table does. After an append the index
 * grows from the seam (qindex_grow) as the kept request does
 * (cmv_pager__splice_append), by the same rules.
 */
/*
 * 3: Claude Code's cleared results are indexed whole (a version 2 index may
 * hold their stubs); 4: a Codex tool search's output no longer starts a turn.
 */
#define QINDEX_MAGIC "cmv query index 4"
#define QINDEX_TURN_RECORDS 8192 /* a turn read alone for recall: at most this many records */

size_t cmv__pager_qgrown, cmv__pager_qread;

static void qindex_key(char *out, size_t cap, const cmv_model *m, cmv_render_target target)
{
	snprintf(out, cap, CMV__PAGER_QUERY_NOTE, m->id, (int)target);
}

/* Where turn g's bodies and texts begin (g may be n_turns: where they end). */
static void qindex_at(const qindex *qi, size_t g, size_t *body, size_t *text)
{
	size_t first = g < qi->n_turns ? qi->turn_first[g] : qi->n_msgs;
	*body = *text = 0;
	while (*body < qi->n_bodies && qi->body_msg[*body] < first)
		(*body)++;
	while (*text < qi->n_texts && qi->text_msg[*text] < first)
		(*text)++;
}

/* The lines of turns [g0, g1) with their bodies and texts. */
static int qindex_lines(cmv_buf *out, const qindex *qi, size_t g0, size_t g1)
{
	size_t b0, b1, x0, x1;
	int error = 0;
	qindex_at(qi, g0, &b0, &x0);
	qindex_at(qi, g1, &b1, &x1);
	for (size_t g = g0; g < g1 && !error; g++)
		error = cmv_buf_printf(out, "t %zu %llu %s %s\n", qi->turn_first[g],
				       (unsigned long long)qi->tokens[qi->n_bodies + g],
				       qi->ids[qi->n_bodies + g][0] ? qi->ids[qi->n_bodies + g] : "-",
				       qi->nodes[g][0] ? qi->nodes[g] : "-");
	for (size_t k = b0; k < b1 && !error; k++)
		error = cmv_buf_printf(out, "b %zu %llu %s\n", qi->body_msg[k], (unsigned long long)qi->tokens[k], qi->ids[k]);
	for (size_t k = x0; k < x1 && !error; k++)
		error = cmv_buf_printf(out, "x %zu %s\n", qi->text_msg[k], qi->texts[k]);
	return error;
}

/* KEY: the header, then the lines from the split turn on. */
static int qindex_text(cmv_buf *out, const qindex *qi)
{
	size_t b, x;
	qindex_at(qi, qi->split, &b, &x);
	int error = cmv_buf_printf(out, "%s\ntip %s\nmodel %s\ncounts %zu %zu %zu %zu\nseam %s\nbase %zu %zu %zu %zu %016llx\ncalls ",
				   QINDEX_MAGIC, qi->tip, qi->model, qi->n_msgs, qi->n_bodies, qi->n_turns, qi->n_texts,
				   qi->seam[0] ? qi->seam : "-", qi->split, b, x, qi->base_bytes,
				   (unsigned long long)qi->base_hash);
	if (!error && qi->calls) {
		char hexf[2 * CALLS_FILTER_BYTES + 1];
		cmv_pager__calls_to_hex(hexf, qi->calls);
		error = cmv_buf_puts(out, hexf);
	}
	if (!error)
		error = cmv_buf_puts(out, qi->calls ? "\n" : "-\n");
	return error ? error : qindex_lines(out, qi, qi->split, qi->n_turns);
}

/* The next word of a line, moving *at past it and the space after it; false at the end of the line. */
static bool next_word(const char **at, const char **word, size_t *len)
{
	const char *s = *at;
	size_t n = strcspn(s, " \n");
	if (!n)
		return false;
	*word = s;
	*len = n;
	*at = s + n + (s[n] == ' ');
	return true;
}

static bool next_size(const char **at, size_t *out)
{
	const char *w;
	size_t len;
	char *end;
	if (!next_word(at, &w, &len) || !isdigit((unsigned char)*w))
		return false;
	unsigned long long v = strtoull(w, &end, 10);
	*out = (size_t)v;
	return end == w + len;
}

/* A hex id, or "-" for none (when none is allowed). */
static bool next_hex(const char **at, char *out, bool none_ok)
{
	const char *w;
	size_t len;
	if (!next_word(at, &w, &len))
		return false;
	if (len == 1 && *w == '-' && none_ok) {
		out[0] = '\0';
		return true;
	}
	if (len != CMV_ID_HEXSZ || strspn(w, "0123456789abcdef") < len)
		return false;
	memcpy(out, w, len);
	out[len] = '\0';
	return true;
}

/* The line after the current one, which must begin with `tag` and a space: its words, or NULL. */
static const char *next_line(const char **at, const char *tag)
{
	const char *s = *at, *nl = strchr(s, '\n');
	size_t n = strlen(tag);
	if (!nl || strncmp(s, tag, n) || s[n] != ' ')
		return NULL;
	*at = nl + 1;
	return s + n + 1;
}

/* The lines of turns [g0, g1), bodies [b0, b1) and texts [x0, x1): all of text, or false. */
static bool parse_lines(qindex *qi, const char *at, size_t g0, size_t g1, size_t b0, size_t b1, size_t x0, size_t x1)
{
	const char *l;
	size_t v;
	for (size_t g = g0; g < g1; g++) {
		if (!(l = next_line(&at, "t")) || !next_size(&l, &qi->turn_first[g]) || !next_size(&l, &v) ||
		    !next_hex(&l, qi->ids[qi->n_bodies + g], true) || !next_hex(&l, qi->nodes[g], true) ||
		    qi->turn_first[g] >= qi->n_msgs || (g && qi->turn_first[g] <= qi->turn_first[g - 1]) || *l != '\n')
			return false;
		qi->tokens[qi->n_bodies + g] = v;
	}
	for (size_t k = b0; k < b1; k++) {
		if (!(l = next_line(&at, "b")) || !next_size(&l, &qi->body_msg[k]) || !next_size(&l, &v) ||
		    !next_hex(&l, qi->ids[k], false) || qi->body_msg[k] >= qi->n_msgs || *l != '\n')
			return false;
		qi->tokens[k] = v;
	}
	for (size_t k = x0; k < x1; k++)
		if (!(l = next_line(&at, "x")) || !next_size(&l, &qi->text_msg[k]) || !next_hex(&l, qi->texts[k], false) ||
		    qi->text_msg[k] >= qi->n_msgs || *l != '\n')
			return false;
	return !*at;
}

/*
 * 1 when text (KEY) and base (KEY:base) are an index, read into qi; 0 when
 * they are not one (an older or a broken note, a base that is not the one
 * KEY names).
 */
static int qindex_parse(qindex *qi, const char *text, const cmv_buf *base)
{
	const char *at = text, *l, *w;
	size_t b, x, len;
	memset(qi, 0, sizeof(*qi));
	if (strncmp(at, QINDEX_MAGIC "\n", sizeof(QINDEX_MAGIC)))
		return 0;
	at += sizeof(QINDEX_MAGIC);
	if (!(l = next_line(&at, "tip")) || !next_hex(&l, qi->tip, false) || !(l = next_line(&at, "model")) ||
	    (len = strcspn(l, "\n")) >= sizeof(qi->model))
		return 0;
	memcpy(qi->model, l, len);
	qi->model[len] = '\0';
	if (!(l = next_line(&at, "counts")) ||
	    !next_size(&l, &qi->n_msgs) || !next_size(&l, &qi->n_bodies) || !next_size(&l, &qi->n_turns) ||
	    !next_size(&l, &qi->n_texts) || !(l = next_line(&at, "seam")) || !next_hex(&l, qi->seam, true) ||
	    !(l = next_line(&at, "base")) || !next_size(&l, &qi->split) || !next_size(&l, &b) || !next_size(&l, &x) ||
	    !next_size(&l, &qi->base_bytes) || !next_word(&l, &w, &len) || len != 16 || strspn(w, "0123456789abcdef") < 16 ||
	    !(l = next_line(&at, "calls")))
		return 0;
	qi->base_hash = (uint64_t)strtoull(w, NULL, 16);
	/*
	 * The counts must be what the lines can hold (a line is over 10 bytes),
	 * so that no allocation below is sized by a number the note made up;
	 * and the base must be the one this names, whole.
	 */
	size_t bytes = strlen(text) + (base ? base->size : 0);
	if (!qi->n_turns || qi->n_turns > bytes / 10 || qi->n_bodies > bytes / 10 || qi->n_texts > bytes / 10 ||
	    qi->n_msgs > ((size_t)1 << 32) || qi->split >= qi->n_turns || b > qi->n_bodies || x > qi->n_texts ||
	    (qi->split && (!base || base->size != qi->base_bytes || XXH3_64bits(base->ptr, base->size) != qi->base_hash)))
		return 0;
	if (cmv_pager__qindex_alloc(qi) < 0)
		goto bad; /* not believed: the load path says whether memory is short */
	if (*l != '-' && (!(qi->calls = cmv__malloc(CALLS_FILTER_BYTES)) || !cmv_pager__calls_from_hex(qi->calls, l)))
		goto bad;
	if ((qi->split && !parse_lines(qi, base->ptr, 0, qi->split, 0, b, 0, x)) ||
	    !parse_lines(qi, at, qi->split, qi->n_turns, b, qi->n_bodies, x, qi->n_texts) || qi->turn_first[0])
		goto bad;
	/* each line was where its counts said: the split falls between turns */
	size_t bb, xx;
	qindex_at(qi, qi->split, &bb, &xx);
	if (bb != b || xx != x)
		goto bad;
	return 1;
bad:
	cmv_pager__qindex_dispose(qi);
	return 0;
}

/*
 * The records from first_hex to last, read alone for the target: 1 when
 * their messages are the turn whose page id is want (the whole branch
 * renders them so), 0 when not or when they cannot be read apart (cv is
 * then empty).
 */
int cmv_pager__load_turn(cmv__conversation *cv, cmv_repo *repo, const char *first_hex, const cmv_id *last,
			 cmv_render_target target, const char *want)
{
	cmv_id first;
	char id[CMV_ID_HEXSZ + 1];
	int error;
	memset(cv, 0, sizeof(*cv));
	if (!first_hex[0] || !want[0] || cmv_id_fromstr(&first, first_hex) < 0)
		return 0;
	if ((error = cmv__conversation_load_since(cv, repo, &first, last, target, 0,
						 QINDEX_TURN_RECORDS)) < 0) {
		if (error != CMV_ENOTFOUND)
			return error;
		cmv_error_clear();
		return 0;
	}
	if (!cJSON_GetArraySize(cv->msgs) ||
	    (error = cmv_pager__group_id(id, cv->msgs->child, (size_t)cJSON_GetArraySize(cv->msgs))) < 0 || strcmp(id, want)) {
		cmv__conversation_dispose(cv);
		return error < 0 ? error : 0;
	}
	return 1;
}

/*
 * The seam of qi, the index of tip: its last turn, when those records read
 * alone give that turn as the whole branch does; else none (the next query
 * after an append builds the index again). calls_before: the filter of the
 * calls before msgs, NULL for none; msgs: the messages from qi's message
 * `from` on, in which the calls before the seam are looked for.
 */
int cmv_pager__qindex_seam(qindex *qi, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
			   const uint8_t *calls_before, const cJSON *msgs, size_t from)
{
	size_t g = qi->n_turns - 1;
	cmv__conversation cv;
	int ok;
	qi->seam[0] = '\0';
	free(qi->calls);
	qi->calls = NULL;
	if ((ok = cmv_pager__load_turn(&cv, repo, qi->nodes[g], tip, target, qi->ids[qi->n_bodies + g])) <= 0)
		return ok;
	cmv__conversation_dispose(&cv);
	if (!(qi->calls = cmv__calloc(1, CALLS_FILTER_BYTES)))
		return cmv_error__oom();
	if (calls_before)
		memcpy(qi->calls, calls_before, CALLS_FILTER_BYTES);
	cmv_pager__calls_filter(qi->calls, msgs, 0, qi->turn_first[g] - from, true);
	memcpy(qi->seam, qi->nodes[g], sizeof(qhex));
	return 0;
}

/*
 * Keep qi in the branch's notes. fold: KEY:base is written again, with
 * the turns before the last (on a build, or when what follows the split
 * has grown long); else only KEY.
 */
int cmv_pager__qindex_put(cmv_repo *repo, const char *branch, const cmv_model *m, cmv_render_target target, qindex *qi,
			  bool fold)
{
	char key[256], bkey[300];
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
	int error = 0;
	qindex_key(key, sizeof(key), m, target);
	snprintf(bkey, sizeof(bkey), "%s:base", key);
	/* the calls' filter is KEY's bulk; the lines after the split are what grows */
	if (!fold && (error = qindex_text(&text, qi)) == 0)
		fold = text.size > 2 * CALLS_FILTER_BYTES + 512 + cmv__pager_fold_bytes;
	if (!error && fold) {
		qi->split = qi->n_turns - 1;
		cmv_buf_clear(&text);
		if ((error = qindex_lines(&text, qi, 0, qi->split)) == 0 &&
		    (error = cmv_branch_note_set(repo, branch, bkey, text.ptr ? text.ptr : "")) == 0) {
			qi->base_bytes = text.size;
			qi->base_hash = XXH3_64bits(text.ptr ? text.ptr : "", text.size);
		}
		cmv_buf_clear(&text);
		if (!error)
			error = qindex_text(&text, qi);
	}
	if (!error)
		error = cmv_branch_note_set(repo, branch, key, text.ptr);
	cmv_buf_dispose(&text);
	return error;
}

/*
 * qi, the index of an ancestor of tip, grown to tip: the records from its
 * seam on are read alone, and what they say replaces its last turn. 1 when
 * grown; 0 when those records would read otherwise in the whole branch (a
 * result whose call is before the seam, a call id used before) or cannot
 * be read apart, as for cmv_pager__splice_append.
 */
static int qindex_grow(qindex *qi, cmv_repo *repo, const cmv_id *tip, const cmv_model *model, cmv_tok *tok,
		       cmv_render_target target)
{
	pager fp;
	qindex part, nq;
	cmv_id first;
	int error, done = 0;
	if (!qi->seam[0] || !qi->calls || cmv_id_fromstr(&first, qi->seam) < 0)
		return 0;
	memset(&fp, 0, sizeof(fp));
	memset(&part, 0, sizeof(part));
	memset(&nq, 0, sizeof(nq));
	fp.repo = repo;
	fp.model = model;
	fp.tok = tok;
	cmv_buf_init(&fp.scratch, 1 << 16);
	if ((error = cmv__conversation_load_since(&fp.cv, repo, &first, tip, target, 0,
						 SPLICE_MAX_RECORDS)) < 0) {
		if (error == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = 0;
		}
		goto out;
	}
	const cJSON *head = cJSON_GetArrayItem(fp.cv.msgs, 0);
	size_t last = qi->n_turns - 1, base = qi->turn_first[last];
	if (!head || !cmv_pager__starts_turn(head) || strcmp(fp.cv.raw_first_role, "user") || fp.cv.st.orphan_results ||
	    fp.cv.st.renamed_calls || cmv_pager__calls_filter(qi->calls, fp.cv.msgs, 0, SIZE_MAX, false))
		goto out;
	if ((error = cmv_pager__pages(&fp)) < 0 || (error = cmv_pager__qindex_of(&part, &fp)) < 0)
		goto out;
	/* what came before the last turn stays; the records from its start on say the rest */
	size_t kb = 0, kx = 0;
	while (kb < qi->n_bodies && qi->body_msg[kb] < base)
		kb++;
	while (kx < qi->n_texts && qi->text_msg[kx] < base)
		kx++;
	nq.n_msgs = base + part.n_msgs;
	nq.n_bodies = kb + part.n_bodies;
	nq.n_turns = last + part.n_turns;
	nq.n_texts = kx + part.n_texts;
	if ((error = cmv_pager__qindex_alloc(&nq)) < 0)
		goto out;
	cmv_id_tostr(nq.tip, sizeof(nq.tip), tip);
	memcpy(nq.model, qi->model, sizeof(nq.model));
	nq.split = qi->split; /* at or before the last turn: what is before it stays as it is kept */
	nq.base_bytes = qi->base_bytes;
	nq.base_hash = qi->base_hash;
	for (size_t k = 0; k < nq.n_bodies; k++) {
		bool old = k < kb;
		nq.body_msg[k] = old ? qi->body_msg[k] : base + part.body_msg[k - kb];
		nq.tokens[k] = old ? qi->tokens[k] : part.tokens[k - kb];
		memcpy(nq.ids[k], old ? qi->ids[k] : part.ids[k - kb], sizeof(qhex));
	}
	for (size_t g = 0; g < nq.n_turns; g++) {
		bool old = g < last;
		size_t from = old ? qi->n_bodies + g : part.n_bodies + g - last;
		nq.turn_first[g] = old ? qi->turn_first[g] : base + part.turn_first[g - last];
		nq.tokens[nq.n_bodies + g] = old ? qi->tokens[from] : part.tokens[from];
		memcpy(nq.ids[nq.n_bodies + g], old ? qi->ids[from] : part.ids[from], sizeof(qhex));
		memcpy(nq.nodes[g], old ? qi->nodes[g] : part.nodes[g - last], sizeof(qhex));
	}
	for (size_t k = 0; k < nq.n_texts; k++) {
		bool old = k < kx;
		nq.text_msg[k] = old ? qi->text_msg[k] : base + part.text_msg[k - kx];
		memcpy(nq.texts[k], old ? qi->texts[k] : part.texts[k - kx], sizeof(qhex));
	}
	/* the seam stays where it is when no turn began since; else it moves to the last turn, if that reads alone */
	if (part.n_turns == 1) {
		memcpy(nq.seam, qi->seam, sizeof(qhex));
		nq.calls = qi->calls;
		qi->calls = NULL;
	} else if ((error = cmv_pager__qindex_seam(&nq, repo, tip, target, qi->calls, fp.cv.msgs, base)) < 0) {
		goto out;
	}
	cmv_pager__qindex_dispose(qi);
	*qi = nq;
	memset(&nq, 0, sizeof(nq));
	done = 1;
	cmv__pager_qgrown++;
out:
	cmv_pager__qindex_dispose(&nq);
	cmv_pager__qindex_dispose(&part);
	cmv_pager__dispose(&fp);
	return error < 0 ? error : done;
}

/*
 * The index branch keeps for model and target, as its notes say it: 1 when
 * read, 0 when they do not read as one, CMV_ENOTFOUND (no error set) when
 * it keeps none.
 */
static int qindex_read(qindex *qi, cmv_repo *repo, const char *branch, const cmv_model *model,
		       cmv_render_target target)
{
	char key[256], bkey[300];
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30), base = CMV_BUF_INIT((size_t)1 << 30);
	int ok = CMV_ENOTFOUND;
	memset(qi, 0, sizeof(*qi));
	qindex_key(key, sizeof(key), model, target);
	snprintf(bkey, sizeof(bkey), "%s:base", key);
	if (cmv_branch_note_get(&text, repo, branch, key) == 0) {
		bool has_base = cmv_branch_note_get(&base, repo, branch, bkey) == 0;
		ok = qindex_parse(qi, text.ptr, has_base ? &base : NULL);
	}
	cmv_error_clear();
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&base);
	return ok;
}

/*
 * The branch's query index for tip: 1 when read (grown from an ancestor's
 * and kept again, if need be), 0 when there is none to use.
 */
int cmv_pager__qindex_get(qindex *qi, cmv_repo *repo, const char *branch, const cmv_id *tip, const cmv_model *model,
			  cmv_tok *tok, cmv_render_target target)
{
	char hex[CMV_ID_HEXSZ + 1];
	int ok = qindex_read(qi, repo, branch, model, target) > 0;
	char fp[sizeof(qi->model)];
	cmv_pager__qindex_model(fp, sizeof(fp), model);
	if (ok > 0 && strcmp(fp, qi->model)) {
		cmv_pager__qindex_dispose(qi);
		return 0;
	}
	if (ok <= 0 || !strcmp(qi->tip, cmv_id_tostr(hex, sizeof(hex), tip)))
		return ok;
	if ((ok = qindex_grow(qi, repo, tip, model, tok, target)) > 0 &&
	    cmv_pager__qindex_put(repo, branch, model, target, qi, false) < 0)
		cmv_error_clear(); /* a read-only store: the next query grows it again */
	if (ok <= 0)
		cmv_pager__qindex_dispose(qi);
	return ok;
}

int cmv__pager_query_index(cmv_buf *out, cmv_repo *repo, const char *branch, const cmv_model *model)
{
	qindex qi;
	int error = qindex_read(&qi, repo, branch, model, cmv_pager__target_of(model, 0));
	cmv_buf_clear(out);
	if (error == CMV_ENOTFOUND)
		return cmv_error__set(CMV_ENOTFOUND, "'%s' keeps no query index for %s", branch, model->id);
	if (!error)
		return cmv_error__set(CMV_EINVALID, "the query index of '%s' does not read", branch);
	qi.split = qi.base_bytes = 0;
	qi.base_hash = 0;
	error = qindex_text(out, &qi);
	cmv_pager__qindex_dispose(&qi);
	return error;
}
