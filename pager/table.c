/* SPDX-License-Identifier: MIT */
/*
 * The page table: what a materialization leaves in the branch's notes (the
 * request, its pages, what left, the seam), so that the same tip and
 * options next time are a lookup, and an append grows the kept request
 * (cmv_pager__splice_append) instead of doing the whole work again.
 *
 * Everything here must give the bytes and the report the whole work would:
 * a table is used only for the tip and options it was written for, and its
 * notes only when their hash is the one the table names (never half of an
 * older set); the splice runs only where nothing before the seam can change
 * (see its comment), and anything in doubt is left to the whole work. A
 * table that does not read is no table, never an error.
 */
#include <cjson/cJSON.h>
#include <string.h>
#include <xxhash.h>
#include "pager_priv.h"

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/*
 * What a materialization depends on besides the tip: the options, the
 * budget, and the faults recorded on the branch (a fault changes the pins).
 */
#define TABLE_RENDERING 2

void cmv_pager__options_key(cmv_buf *out, cmv_repo *repo, const cmv_pager_options *o, uint64_t budget)
{
	cmv_buf faults = CMV_BUF_INIT(1 << 24);
	char hex[CMV_ID_HEXSZ + 1] = "";
	cmv_id h;
	if (o->state_branch && cmv_branch_note_get(&faults, repo, o->state_branch, FAULT_KEY) == 0 && faults.size) {
		cmv_id_hash(&h, faults.ptr, faults.size);
		cmv_id_tostr(hex, sizeof(hex), &h);
	}
	cmv_error_clear();
	cmv_buf_dispose(&faults);
	cmv_buf_clear(out);
	/*
	 * The rendering's own version first: a table kept by a build that
	 * rendered or cut turns otherwise (2: Claude Code's cleared results
	 * whole again, a Codex tool search's output inside its turn) is not
	 * grown, the whole work is done once.
	 */
	cmv_buf_printf(out, "r%d/%s/", TABLE_RENDERING, hex);
	cmv_buf_printf(out, "%llu/%zu/%u/%d/%u/%llu/", (unsigned long long)budget, o->keep_turns, o->low_water, o->target,
		       o->render_flags, (unsigned long long)o->query_allowance);
	for (size_t i = 0; i < o->n_pins; i++)
		cmv_buf_printf(out, "%s,", o->pins[i] ? o->pins[i] : "");
	cmv_buf_printf(out, "/%s%s", o->query ? o->query : "", o->stub_pinned ? "/stub-pinned" : "");
}

/* The key each request format keeps its messages under: always its last. */
static const char *messages_key(cmv_render_target t)
{
	switch (t) {
	case CMV_RENDER_OPENAI_RESPONSES:
		return "input";
	case CMV_RENDER_GEMINI:
		return "contents";
	default:
		return "messages";
	}
}

/*
 * Where the messages of a body begin and end: the text of its messages
 * array's items, when that array is the body's last key (as the writers
 * put it). 1 when found.
 */
static int body_items(const char **items, size_t *len, const cmv_buf *body, cmv_render_target t)
{
	char pat[32];
	snprintf(pat, sizeof(pat), "\"%s\":[", messages_key(t));
	const char *at = body->ptr ? strstr(body->ptr, pat) : NULL;
	if (!at || body->size < 3 || memcmp(body->ptr + body->size - 3, "]}\n", 3))
		return 0;
	at += strlen(pat);
	if (at > body->ptr + body->size - 3)
		return 0;
	*items = at;
	*len = (size_t)(body->ptr + body->size - 3 - at);
	return 1;
}

/*
 * The seam of a request: where its last turn's messages begin, what the
 * request costs without them, and the record that turn began at. The next
 * materialize after an append renders from that record on, and puts the
 * result there (cmv_pager__splice_append).
 */
typedef struct {
	bool found;
	size_t offset;
	uint64_t tokens;
	cmv_token_stats classes;
	char node[CMV_ID_HEXSZ + 1];
	/*
	 * The ids of the calls before the seam, as a Bloom filter. Repair gives
	 * a call whose id an earlier call had a fresh one, so new records that
	 * reuse one render otherwise after the whole conversation than alone:
	 * cmv_pager__splice_append leaves those to the whole work (a false alarm costs
	 * only that).
	 */
	uint8_t calls[CALLS_FILTER_BYTES];
	/*
	 * A step seam: where the last turn's last assistant message begins,
	 * when the turn from its start does not read alone (a stub sits in it:
	 * an agent's long turn, paged). What the turn's page needs of the part
	 * before it: its estimated tokens, its body pages, its hash so far.
	 */
	bool step;
	uint64_t turn_tokens;
	size_t turn_bodies;
	char *turn_hash;
} seam;

static void calls_bits(size_t bit[3], const char *id)
{
	uint64_t h = XXH3_64bits(id, strlen(id));
	for (size_t k = 0; k < 3; k++)
		bit[k] = (size_t)(h >> (16 * k)) & (CALLS_FILTER_BYTES * 8 - 1);
}

/* Each call id of messages [from, to) of msgs, into the filter (add) or tested against it: true when one may be in it. */
bool cmv_pager__calls_filter(uint8_t *filter, const cJSON *msgs, size_t from, size_t to, bool add)
{
	size_t i = 0;
	for (const cJSON *m = msgs ? msgs->child : NULL; m && i < to; m = m->next, i++) {
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (const cJSON *b = i >= from && cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
			size_t bit[3];
			if (!id || !is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type")), "tool_use"))
				continue;
			calls_bits(bit, id);
			if (add) {
				for (size_t k = 0; k < 3; k++)
					filter[bit[k] / 8] |= (uint8_t)(1u << (bit[k] % 8));
			} else if ((filter[bit[0] / 8] >> (bit[0] % 8) & 1) && (filter[bit[1] / 8] >> (bit[1] % 8) & 1) &&
				   (filter[bit[2] / 8] >> (bit[2] % 8) & 1)) {
				return true;
			}
		}
	}
	return false;
}

/* A filter as 2 * CALLS_FILTER_BYTES hex digits and a NUL, into out, as the notes keep it. */
void cmv_pager__calls_to_hex(char *out, const uint8_t *filter)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t k = 0; k < CALLS_FILTER_BYTES; k++) {
		out[2 * k] = digits[filter[k] >> 4];
		out[2 * k + 1] = digits[filter[k] & 15];
	}
	out[2 * CALLS_FILTER_BYTES] = '\0';
}

/* hex (as cmv_pager__calls_to_hex wrote it, whatever follows) back into a filter; false when it is not that. */
bool cmv_pager__calls_from_hex(uint8_t *filter, const char *hex)
{
	if (strspn(hex, "0123456789abcdef") != 2 * CALLS_FILTER_BYTES)
		return false;
	for (size_t k = 0; k < 2 * CALLS_FILTER_BYTES; k++) {
		unsigned nib = (unsigned)(hex[k] >= 'a' ? hex[k] - 'a' + 10 : hex[k] - '0');
		filter[k / 2] = (uint8_t)(k % 2 ? filter[k / 2] | nib : nib << 4);
	}
	return true;
}

/*
 * Whether messages [from, end) of p, rendered alone, are the tail of
 * body's items; the seam at from when they are (s: offset, tokens,
 * classes, node, calls).
 */
static int seam_try(seam *s, pager *p, const char *bi, size_t blen, const cmv_buf *body, const cmv_token_stats *classes,
		    const uint8_t *calls_before, const cmv_render_options *ro, size_t from)
{
	cmv__conversation tmp = p->cv;
	cmv_buf frag = CMV_BUF_INIT((size_t)1 << 30);
	cmv_token_stats st;
	const char *fi;
	size_t flen, i = 0;
	const char *node = cJSON_GetStringValue(cJSON_GetArrayItem(p->cv.nodes, (int)from));
	int error = 0;

	if (!node)
		return 0;
	tmp.c.system = cJSON_CreateArray();
	tmp.msgs = cJSON_CreateArray();
	for (const cJSON *m = p->cv.msgs->child; m && tmp.msgs; m = m->next, i++)
		if (i >= from && !cJSON_AddItemToArray(tmp.msgs, cJSON_Duplicate(m, 1)))
			error = cmv_error__oom();
	if (!tmp.c.system || !tmp.msgs || error) {
		error = cmv_error__oom();
		goto out;
	}
	if ((error = cmv__conversation_write(&frag, &tmp, ro)) < 0 ||
	    (error = cmv_count_request(&st, p->model, p->tok, frag.ptr, frag.size)) < 0)
		goto out;
	if (!body_items(&fi, &flen, &frag, p->cv.target) || flen > blen || memcmp(bi + blen - flen, fi, flen) ||
	    (flen < blen && bi[blen - flen - 1] != ','))
		goto out;
	uint64_t per_request = (uint64_t)p->model->per_request, last = st.total - per_request;
	s->found = true;
	s->offset = (size_t)(bi + blen - flen - body->ptr);
	s->tokens = classes->total - last;
	s->classes = *classes;
	s->classes.text -= st.text;
	s->classes.tool_calls -= st.tool_calls;
	s->classes.tool_results -= st.tool_results;
	s->classes.thinking -= st.thinking;
	s->classes.images -= st.images;
	s->classes.other -= st.other;
	s->classes.overhead -= st.overhead - per_request;
	s->classes.total = s->tokens;
	snprintf(s->node, sizeof(s->node), "%s", node);
	/* the calls before the seam: those before p's messages (calls_before), then p's before it */
	if (calls_before)
		memcpy(s->calls, calls_before, sizeof(s->calls));
	cmv_pager__calls_filter(s->calls, p->cv.msgs, 0, from, true);
out:
	cJSON_Delete(tmp.c.system);
	cJSON_Delete(tmp.msgs);
	cmv_buf_dispose(&frag);
	return error;
}

static void seam_dispose(seam *s)
{
	free(s->turn_hash);
	s->turn_hash = NULL;
}

/*
 * Find the seam of body, the request p rendered (classes: its counts;
 * calls_before: the filter of calls before p's messages, or NULL; cont:
 * the step seam p's messages were read from, its first turn continuing
 * the turn before, or NULL). The seam is where the last turn begins, or
 * else where its last assistant message begins (a step seam): what
 * follows it, rendered alone, must be the body's tail byte for byte: then
 * nothing before it depends on it (no stub sits in it, no repair reached
 * across), and what comes after it cannot change what is before. No seam
 * is no error: the next call does the whole work.
 */
static int seam_find(seam *s, pager *p, const cmv_buf *body, const cmv_token_stats *classes,
		     const uint8_t *calls_before, const cmv_render_options *ro, const seam *cont)
{
	const char *bi;
	size_t blen, g = p->n_groups ? p->n_groups - 1 : 0, first = p->n_groups ? p->group_first[g] : 0;
	size_t n_msgs = (size_t)cJSON_GetArraySize(p->cv.msgs), step = SIZE_MAX, i = 0;
	bool continues = cont && g == 0; /* the last turn began before p's messages */
	int error = 0;

	memset(s, 0, sizeof(*s));
	if (!p->n_groups || !body_items(&bi, &blen, body, p->cv.target))
		return 0;
	if (!continues && ((error = seam_try(s, p, bi, blen, body, classes, calls_before, ro, first)) < 0 || s->found))
		return error;
	/* the last assistant message of the last turn, after its first message (or p's first, continuing) */
	const cJSON *fm = NULL;
	for (const cJSON *m = p->cv.msgs->child; m; m = m->next, i++) {
		if (i == first)
			fm = m;
		if (i >= first && (i > first || continues) &&
		    is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role")), "assistant"))
			step = i;
	}
	if (step == SIZE_MAX || step >= n_msgs || !fm ||
	    (error = seam_try(s, p, bi, blen, body, classes, calls_before, ro, step)) < 0 || !s->found)
		return error < 0 ? error : 0;
	/* what the turn's page needs of its part before the seam */
	size_t before = step - first;
	s->step = true;
	s->turn_tokens = (continues ? cont->turn_tokens : 0) + cmv_pager__estimate_messages(p, fm, before);
	s->turn_bodies = continues ? cont->turn_bodies : 0;
	for (size_t q = 0; q < p->n; q++)
		if (p->pages[q].pub.kind == CMV_PAGE_BODY && p->pages[q].pub.turn == g && p->pages[q].msg < step)
			s->turn_bodies++;
	if ((error = cmv_pager__group_hash(&s->turn_hash, NULL, continues ? cont->turn_hash : NULL, fm, before,
					   before)) != 0) {
		s->found = false;
		return error < 0 ? error : 0;
	}
	return 0;
}

static void stats_to_array(double *v, const cmv_token_stats *c)
{
	const uint64_t f[] = { c->text, c->tool_calls, c->tool_results, c->thinking,
			       c->images, c->other, c->overhead, c->total };
	for (size_t i = 0; i < CMV_ARRAY_SIZE(f); i++)
		v[i] = (double)f[i];
}

static void stats_from_array(cmv_token_stats *c, const double *v)
{
	uint64_t *f[] = { &c->text, &c->tool_calls, &c->tool_results, &c->thinking,
			  &c->images, &c->other, &c->overhead, &c->total };
	for (size_t i = 0; i < CMV_ARRAY_SIZE(f); i++)
		*f[i] = (uint64_t)v[i];
}

/*
 * The page table is kept in notes of the branch, so that an append writes
 * about what changed and not the whole request again:
 *   KEY           the table: tip, options, budget, totals, pins, seam, and
 *                 where the request and its pages are split (JSON, small);
 *   KEY:request   the request up to the split (written by the whole work,
 *                 and when the tail has grown past cmv__pager_fold_bytes);
 *   KEY:tail      the request from the split on (written every time);
 *   KEY:pages     the pages of the turns before the split turn, one line
 *                 each: "id kind state turn tokens", turn by turn, each
 *                 turn's bodies before the turn itself;
 *   KEY:ptail     the pages from the split turn on, likewise;
 *   KEY:evicted   the ids of the pages that left, one a line.
 * The split is the seam (cmv_pager__splice_append) when there is one.
 */
size_t cmv__pager_fold_bytes = 64 * 1024;

static void note_key(char *out, size_t cap, const char *key, const char *part)
{
	snprintf(out, cap, "%s:%s", key, part);
}

static int note_put(cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *part, const char *s,
		    size_t len)
{
	char k[CMV_REF_NAME_MAX + 96];
	cmv_buf b = CMV_BUF_INIT((size_t)1 << 30);
	int error;
	if (cmv_repo_is_readonly(repo))
		return 0; /* a read-only store keeps no table: each call decides afresh */
	note_key(k, sizeof(k), key, part);
	if ((error = cmv_buf_put(&b, s ? s : "", s ? len : 0)) == 0)
		error = cmv_branch_note_set(repo, o->state_branch, k, b.ptr ? b.ptr : "");
	cmv_buf_dispose(&b);
	return error;
}

/* 1 and the note in out when it is there; 0 when not. */
int cmv_pager__note_take(cmv_buf *out, cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *part)
{
	char k[CMV_REF_NAME_MAX + 96];
	note_key(k, sizeof(k), key, part);
	if (cmv_branch_note_get(out, repo, o->state_branch, k) < 0) {
		cmv_error_clear();
		return 0;
	}
	return 1;
}

/* A report's pages in the notes' order: turn by turn, each turn's bodies before the turn. */
static size_t *pages_turn_major(const cmv_materialize_report *r)
{
	size_t *ix = cmv__calloc(r->n_pages + 1, sizeof(size_t)), n = 0, b = 0, g = 0;
	if (!ix)
		return NULL;
	size_t n_bodies = 0;
	while (n_bodies < r->n_pages && r->pages[n_bodies].kind == CMV_PAGE_BODY)
		n_bodies++;
	for (g = n_bodies; g < r->n_pages; g++) {
		while (b < n_bodies && r->pages[b].turn <= r->pages[g].turn)
			ix[n++] = b++;
		ix[n++] = g;
	}
	while (b < n_bodies)
		ix[n++] = b++;
	return ix;
}

/* The lines of the pages (in the notes' order) of turns in [from, to). */
static int pages_text(cmv_buf *out, const cmv_materialize_report *r, const size_t *ix, size_t from, size_t to)
{
	int error = 0;
	cmv_buf_clear(out);
	for (size_t k = 0; k < r->n_pages && !error; k++) {
		const cmv_page *pg = &r->pages[ix[k]];
		if (pg->turn >= from && pg->turn < to)
			error = cmv_buf_printf(out, "%s %d %d %zu %llu\n", pg->id, (int)pg->kind, (int)pg->state, pg->turn,
					       (unsigned long long)pg->tokens);
	}
	return error;
}

/* Parse page lines onto r's pages (room for them all). 0, or 1 when a line is not one. */
static int pages_parse(cmv_materialize_report *r, size_t cap, const cmv_buf *text)
{
	const char *s = text->ptr ? text->ptr : "", *end = s + text->size;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		char *p;
		if (!nl || r->n_pages == cap || nl - s <= CMV_ID_HEXSZ || s[CMV_ID_HEXSZ] != ' ')
			return 1;
		cmv_page *pg = &r->pages[r->n_pages++];
		memcpy(pg->id, s, CMV_ID_HEXSZ);
		pg->id[CMV_ID_HEXSZ] = '\0';
		pg->kind = (cmv_page_kind)strtoul(s + CMV_ID_HEXSZ + 1, &p, 10);
		pg->state = (cmv_page_state)strtoul(p, &p, 10);
		pg->turn = (size_t)strtoull(p, &p, 10);
		pg->tokens = (uint64_t)strtoull(p, &p, 10);
		if (p != nl)
			return 1;
		s = nl + 1;
	}
	return 0;
}

/* Add v (taken; NULL when making it ran out of memory) to o as k: false when out of memory. */
static bool add_owned(cJSON *o, const char *k, cJSON *v)
{
	if (!v || !cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}

/*
 * Write the page table. `full`: every note (the whole work, or a fold);
 * else only the table and the tails, the request and pages before the
 * split being those of the table before (split_bytes, split_turn).
 * `evicted` (page ids, the whole work's) and `faulted` are taken over.
 */
static int table_write(cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *okey, const cmv_id *tip,
		       const cmv_buf *evicted, cJSON *faulted, const cmv_materialize_report *r, const cmv_buf *request,
		       const seam *sm, bool full, size_t split_bytes, size_t split_turn)
{
	cJSON *j = cJSON_CreateObject();
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
	char hex[CMV_ID_HEXSZ + 1], *json = NULL;
	size_t *ix = pages_turn_major(r);
	cmv_id req;
	int error = 0;

	if (!j || !ix || !faulted || !cJSON_AddItemToObject(j, "faulted", faulted)) {
		cJSON_Delete(faulted);
		error = cmv_error__oom();
		goto done;
	}
	if (evicted)
		error = note_put(repo, o, key, "evicted", evicted->ptr, evicted->size);
	if (full) {
		split_bytes = sm->found ? sm->offset : request->size;
		split_turn = sm->found ? r->turns - 1 : r->turns;
		if (!error)
			error = note_put(repo, o, key, "request", request->ptr, split_bytes);
		if (!error && !(error = pages_text(&text, r, ix, 0, split_turn)))
			error = note_put(repo, o, key, "pages", text.ptr, text.size);
	}
	if (!error)
		error = note_put(repo, o, key, "tail", request->ptr ? request->ptr + split_bytes : NULL,
				 request->size - split_bytes);
	if (!error && !(error = pages_text(&text, r, ix, split_turn, SIZE_MAX)))
		error = note_put(repo, o, key, "ptail", text.ptr, text.size);
	if (error)
		goto done;
	cmv_id_hash(&req, request->ptr ? request->ptr : "", request->size);
	/* a table short of a member would be taken for another (or half a seam): every one is checked */
	bool ok = cJSON_AddNumberToObject(j, "budget", (double)r->budget) &&
		  cJSON_AddStringToObject(j, "tip", cmv_id_tostr(hex, sizeof(hex), tip)) &&
		  cJSON_AddStringToObject(j, "options", okey) &&
		  cJSON_AddStringToObject(j, "request", cmv_id_tostr(hex, sizeof(hex), &req)) &&
		  cJSON_AddNumberToObject(j, "split_bytes", (double)split_bytes) &&
		  cJSON_AddNumberToObject(j, "split_turn", (double)split_turn);
	if (ok && sm->found) {
		cJSON *x = cJSON_AddObjectToObject(j, "seam");
		double v[8];
		stats_to_array(v, &sm->classes);
		ok = x && cJSON_AddNumberToObject(x, "offset", (double)sm->offset) &&
		     cJSON_AddNumberToObject(x, "tokens", (double)sm->tokens) &&
		     add_owned(x, "classes", cJSON_CreateDoubleArray(v, 8)) && cJSON_AddStringToObject(x, "node", sm->node);
		char *hexf = ok ? cmv__malloc(2 * CALLS_FILTER_BYTES + 1) : NULL;
		if (hexf) {
			cmv_pager__calls_to_hex(hexf, sm->calls);
			ok = cJSON_AddStringToObject(x, "calls", hexf) != NULL;
			free(hexf);
		} else {
			ok = false;
		}
		if (ok && sm->step)
			ok = cJSON_AddNumberToObject(x, "turn_tokens", (double)sm->turn_tokens) &&
			     cJSON_AddNumberToObject(x, "turn_bodies", (double)sm->turn_bodies) &&
			     cJSON_AddStringToObject(x, "turn_hash", sm->turn_hash);
	}
	if (!ok) {
		error = cmv_error__oom();
		goto done;
	}
	const double totals[] = { (double)r->tokens, (double)r->tokens_full, r->fits, r->exact, (double)r->turns,
				  (double)r->resident, (double)r->stubbed, (double)r->evicted, (double)r->pinned,
				  (double)r->pinned_tokens, (double)r->classes.text, (double)r->classes.tool_calls,
				  (double)r->classes.tool_results, (double)r->classes.thinking, (double)r->classes.images,
				  (double)r->classes.other, (double)r->classes.overhead, (double)r->classes.total };
	/* the pinned pages, by their place in the notes' order */
	cJSON *pins = add_owned(j, "totals", cJSON_CreateDoubleArray(totals, (int)CMV_ARRAY_SIZE(totals)))
			      ? cJSON_AddArrayToObject(j, "pinned") : NULL;
	for (size_t k = 0; k < r->n_pages && pins; k++)
		if (r->pages[ix[k]].pinned && !cJSON_AddItemToArray(pins, cJSON_CreateNumber((double)k)))
			pins = NULL;
	if (!pins || !(json = cJSON_PrintUnformatted(j)))
		error = cmv_error__oom();
	else if (!cmv_repo_is_readonly(repo))
		error = cmv_branch_note_set(repo, o->state_branch, key, json);
done:
	cJSON_free(json);
	cJSON_Delete(j);
	free(ix);
	cmv_buf_dispose(&text);
	return error;
}

/* The whole work's page table: the pages that left (the next call starts from them), the request, the report. */
int cmv_pager__table_save(cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *okey, const cmv_id *tip,
			  pager *p, const cmv_materialize_report *r, const cmv_buf *request, const cmv_render_options *ro)
{
	cmv_buf ev = CMV_BUF_INIT((size_t)1 << 30);
	cJSON *fa = cJSON_CreateArray();
	int error = fa ? 0 : cmv_error__oom();
	seam sm;
	for (size_t q = 0; q < p->n && !error; q++) {
		if (p->gone[q])
			error = cmv_buf_printf(&ev, "%s\n", p->pages[q].pub.id);
		if (!error && p->pages[q].faulted && !cJSON_AddItemToArray(fa, cJSON_CreateString(p->pages[q].pub.id)))
			error = cmv_error__oom();
	}
	if (!error && (error = seam_find(&sm, p, request, &r->classes, NULL, ro, NULL)) == 0) {
		error = table_write(repo, o, key, okey, tip, &ev, fa, r, request, &sm, true, 0, 0);
		fa = NULL;
		seam_dispose(&sm);
	}
	cJSON_Delete(fa);
	cmv_buf_dispose(&ev);
	return error;
}

/* The branch's page table for this model and format, parsed; NULL when it has none. */
cJSON *cmv_pager__table_read(cmv_repo *repo, const cmv_pager_options *o, const char *key)
{
	cmv_buf note = CMV_BUF_INIT((size_t)1 << 28);
	cJSON *j = NULL;
	if (cmv_branch_note_get(&note, repo, o->state_branch, key) == 0 && note.size)
		j = cJSON_ParseWithLength(note.ptr, note.size);
	cmv_error_clear();
	cmv_buf_dispose(&note);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = NULL;
	}
	return j;
}

/*
 * The report a table keeps, its pages in the report's order (bodies, then
 * turns): 1 when whole (*r filled), 0 when not, CMV_ENOMEM. *split_turn
 * (may be NULL): the first turn whose pages the table keeps in its tail.
 */
static int table_report(cmv_materialize_report *r, cmv_repo *repo, const cmv_pager_options *o, const char *key,
			const cJSON *j, uint64_t budget, size_t *split_turn)
{
	const cJSON *tot = cJSON_GetObjectItemCaseSensitive(j, "totals");
	const cJSON *pins = cJSON_GetObjectItemCaseSensitive(j, "pinned");
	cmv_buf pages = CMV_BUF_INIT((size_t)1 << 30), tail = CMV_BUF_INIT((size_t)1 << 30);
	cmv_materialize_report tm;
	double v[18];
	size_t i = 0;
	int found = 0;

	memset(r, 0, sizeof(*r));
	memset(&tm, 0, sizeof(tm));
	if (cJSON_GetArraySize(tot) != 18 || !cJSON_IsArray(pins) || !cmv_pager__note_take(&pages, repo, o, key, "pages") ||
	    !cmv_pager__note_take(&tail, repo, o, key, "ptail"))
		goto done;
	for (const cJSON *x = tot->child; x; x = x->next)
		v[i++] = x->valuedouble;
	r->budget = budget;
	r->tokens = (uint64_t)v[0];
	r->tokens_full = (uint64_t)v[1];
	r->fits = v[2] != 0;
	r->exact = v[3] != 0;
	r->turns = (size_t)v[4];
	r->resident = (size_t)v[5];
	r->stubbed = (size_t)v[6];
	r->evicted = (size_t)v[7];
	r->pinned = (size_t)v[8];
	r->pinned_tokens = (uint64_t)v[9];
	stats_from_array(&r->classes, v + 10);
	size_t cap = 1;
	for (size_t k = 0; k < pages.size; k++)
		cap += pages.ptr[k] == '\n';
	for (size_t k = 0; k < tail.size; k++)
		cap += tail.ptr[k] == '\n';
	if (!(tm.pages = cmv__calloc(cap, sizeof(*tm.pages)))) {
		found = cmv_error__oom();
		goto done;
	}
	if (pages_parse(&tm, cap, &pages) || pages_parse(&tm, cap, &tail))
		goto done;
	if (split_turn) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "split_turn");
		*split_turn = cJSON_IsNumber(st) ? (size_t)st->valuedouble : 0;
	}
	for (const cJSON *x = pins->child; x; x = x->next)
		if (cJSON_IsNumber(x) && x->valuedouble >= 0 && (size_t)x->valuedouble < tm.n_pages)
			tm.pages[(size_t)x->valuedouble].pinned = true;
	/* the report's order: the bodies, then the turns, each in conversation order */
	if (!(r->pages = cmv__calloc(tm.n_pages + 1, sizeof(*r->pages)))) {
		found = cmv_error__oom();
		goto done;
	}
	for (int kind = CMV_PAGE_BODY; kind <= CMV_PAGE_GROUP; kind++)
		for (size_t k = 0; k < tm.n_pages; k++)
			if ((int)tm.pages[k].kind == kind)
				r->pages[r->n_pages++] = tm.pages[k];
	found = r->n_pages == tm.n_pages;
done:
	free(tm.pages);
	if (found <= 0)
		cmv_materialize_report_dispose(r);
	cmv_buf_dispose(&pages);
	cmv_buf_dispose(&tail);
	return found;
}

/* The request the table was written with, into out: 1 when found whole, else 0. */
static int table_request(cmv_buf *out, cmv_repo *repo, const cmv_pager_options *o, const char *key, const cJSON *j)
{
	const char *rq = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "request"));
	cmv_buf tail = CMV_BUF_INIT((size_t)1 << 30);
	cmv_id req, got;
	int ok = rq && cmv_id_fromstr(&req, rq) == 0 && cmv_pager__note_take(out, repo, o, key, "request") &&
		 cmv_pager__note_take(&tail, repo, o, key, "tail") && cmv_buf_put(out, tail.ptr ? tail.ptr : "", tail.size) == 0;
	cmv_buf_dispose(&tail);
	if (!ok)
		return 0;
	/* the notes are the ones the table was written with (not half of an older set) */
	cmv_id_hash(&got, out->ptr ? out->ptr : "", out->size);
	return cmv_id_equal(&got, &req);
}

/* The request and report kept for this tip and these options: 1 when found (out and *r filled), else 0. */
int cmv_pager__table_lookup(cmv_buf *out, cmv_materialize_report *r, cmv_repo *repo, const cmv_pager_options *o,
			    const char *key, const cJSON *j, const char *ok, const cmv_id *tip, uint64_t budget)
{
	char hex[CMV_ID_HEXSZ + 1];
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tip"));
	const char *opts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "options"));
	if (!t || !opts || strcmp(t, cmv_id_tostr(hex, sizeof(hex), tip)) || strcmp(opts, ok) ||
	    !table_request(out, repo, o, key, j))
		return 0;
	return table_report(r, repo, o, key, j, budget, NULL);
}

bool cmv__pager_splice = true;
size_t cmv__pager_spliced;
size_t cmv__pager_spliced_steps;

/*
 * After an append: the request kept for an earlier tip is cut at its seam
 * (where its last turn begins, or its last assistant message: a step
 * seam) and the records from there on are rendered alone and put there,
 * when that gives the bytes the whole
 * work would: the table has a seam (seam_find), the options are the same
 * (no query, no pins, the same faults still pinning), the records read
 * alone begin a user's turn (or, from a step seam, the assistant's
 * message the seam is at) and answer no call before them, and the
 * request still fits the budget (as `pr` predicts it billed: anchored when
 * the kept request holds the last billed one, else scaled by the branch's
 * rate), so nothing leaves: the pages that left
 * stay gone and no stub moves, which the whole work decides too
 * (docs/pager.md, "The page table"). The last turn is always resident
 * (pinned), and counting is per message, so its tokens and the new ones
 * add to the seam's. 1 when done (out, *r and the table written), 0 when
 * the whole work must be done, or an error.
 */
int cmv_pager__splice_append(cmv_buf *out, cmv_materialize_report *r, pager *fp, const cmv_pager_options *o,
			     const char *key, const cJSON *j, const char *ok, const cmv_id *tip, uint64_t budget,
			     cmv_render_target target, const cmv_render_options *ro, const cmv_pager__predict *pr)
{
	const char *opts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "options"));
	const cJSON *faulted = cJSON_GetObjectItemCaseSensitive(j, "faulted");
	const cJSON *sj = cJSON_GetObjectItemCaseSensitive(j, "seam");
	const cJSON *scl = cJSON_GetObjectItemCaseSensitive(sj, "classes");
	const char *snode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sj, "node"));
	const char *scalls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sj, "calls"));
	cmv_materialize_report old, nr;
	cmv_buf frag = CMV_BUF_INIT((size_t)1 << 30);
	cmv_token_stats st;
	cmv_id first;
	seam was, next;
	int error = 0, done = 0;

	memset(&next, 0, sizeof(next));
	memset(&old, 0, sizeof(old));
	memset(&nr, 0, sizeof(nr));
	if (!cmv__pager_splice || !opts || strcmp(opts, ok) || !cJSON_IsArray(faulted) ||
	    !snode || cJSON_GetArraySize(scl) != 8 || !scalls || strlen(scalls) != 2 * CALLS_FILTER_BYTES ||
	    (o->query && *o->query) || o->n_pins ||
	    cmv_id_fromstr(&first, snode) < 0 || !cmv_pager__faults_hold(fp->repo, o->state_branch, tip, faulted))
		return 0;
	memset(&was, 0, sizeof(was));
	if (!cmv_pager__calls_from_hex(was.calls, scalls))
		return 0;
	double v[8];
	size_t i = 0;
	for (const cJSON *x = scl->child; x; x = x->next)
		v[i++] = x->valuedouble;
	stats_from_array(&was.classes, v);
	was.offset = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sj, "offset"));
	was.tokens = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sj, "tokens"));
	const char *thash = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sj, "turn_hash"));
	if (thash) {
		const cJSON *tt = cJSON_GetObjectItemCaseSensitive(sj, "turn_tokens");
		const cJSON *tb = cJSON_GetObjectItemCaseSensitive(sj, "turn_bodies");
		if (!cJSON_IsNumber(tt) || !cJSON_IsNumber(tb))
			return 0;
		was.step = true;
		was.turn_tokens = (uint64_t)tt->valuedouble;
		was.turn_bodies = (size_t)tb->valuedouble;
		was.turn_hash = (char *)thash; /* the table's: not freed here */
	}
	if ((error = cmv__conversation_load_since(&fp->cv, fp->repo, &first, tip, target, o->render_flags,
						  SPLICE_MAX_RECORDS)) < 0) {
		if (error != CMV_ENOTFOUND)
			return error;
		cmv_error_clear();
		return 0;
	}
	/*
	 * Reasoning the new turn carries is billed beside the fragment (count.c):
	 * the whole work counts it. (What the old turn carried stays in the old
	 * total, a few hundred tokens over: the safe side.)
	 */
	if (target == CMV_RENDER_OPENAI_RESPONSES) {
		uint64_t carried = 0;
		if ((error = cmv_pager__turn_reasoning(&carried, fp->repo, tip)) < 0)
			goto out;
		if (carried)
			goto out;
	}
	if (was.step) {
		/*
		 * Read alone, the records begin with the assistant's message;
		 * repair put a user message before it (Anthropic, Gemini), which
		 * the whole conversation does not have: it goes.
		 */
		cJSON *m0 = cJSON_GetArrayItem(fp->cv.msgs, 0);
		if (strcmp(fp->cv.raw_first_role, "assistant") || !m0)
			goto out;
		if (is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m0, "role")), "user")) {
			if (!cJSON_IsNull(cJSON_GetArrayItem(fp->cv.nodes, 0)))
				goto out;
			cJSON_DeleteItemFromArray(fp->cv.msgs, 0);
			cJSON_DeleteItemFromArray(fp->cv.nodes, 0);
		}
	}
	const cJSON *head = cJSON_GetArrayItem(fp->cv.msgs, 0);
	/* a call id the records reuse (from before the seam, or among themselves) is renamed by the whole work */
	if (!head ||
	    (was.step ? !is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(head, "role")), "assistant")
		      : !cmv_pager__starts_turn(head) || strcmp(fp->cv.raw_first_role, "user")) ||
	    fp->cv.st.orphan_results || fp->cv.st.renamed_calls ||
	    cmv_pager__calls_filter(was.calls, fp->cv.msgs, 0, SIZE_MAX, false))
		goto out;
	size_t split_turn = 0, split_bytes = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "split_bytes"));
	if ((error = table_report(&old, fp->repo, o, key, j, budget, &split_turn)) <= 0 || !old.turns ||
	    split_turn + 1 > old.turns || !table_request(out, fp->repo, o, key, j) || was.offset > out->size ||
	    split_bytes > was.offset)
		goto out;
	if ((error = cmv_pager__pages(fp)) < 0 || (error = cmv__conversation_write(&frag, &fp->cv, ro)) < 0 ||
	    (error = cmv_count_request(&st, fp->model, fp->tok, frag.ptr, frag.size)) < 0)
		goto out;
	uint64_t per_request = (uint64_t)fp->model->per_request, more = st.total - per_request;
	if (cmv_pager__predicted(fp->model, pr, was.tokens + more) > budget)
		goto out; /* a new batch must be cut (as predicted billed: anchored, or scaled by the rate): the whole work */
	const char *items;
	size_t len;
	if (!body_items(&items, &len, &frag, target))
		goto out;
	out->size = was.offset;
	if ((error = cmv_buf_put(out, items, len)) < 0 || (error = cmv_buf_puts(out, "]}\n")) < 0)
		goto out;

	/* the report: the kept pages before the last turn, then the fragment's, bodies before turns */
	size_t kept = old.turns - 1, n = 0, old_bodies = 0, new_bodies = 0;
	while (old_bodies < old.n_pages && old.pages[old_bodies].kind == CMV_PAGE_BODY)
		old_bodies++;
	while (new_bodies < fp->n && fp->pages[new_bodies].pub.kind == CMV_PAGE_BODY)
		new_bodies++;
	if (!(nr.pages = cmv__calloc(old.n_pages + fp->n + 1, sizeof(*nr.pages)))) {
		error = cmv_error__oom();
		goto out;
	}
	size_t nb = 0, turn_bodies = 0;
	/* a step seam keeps the last turn's bodies before it too */
	for (size_t q = 0; q < old_bodies; q++)
		if (old.pages[q].turn < kept || (was.step && old.pages[q].turn == kept && turn_bodies++ < was.turn_bodies))
			nr.pages[n++] = old.pages[q];
	if (was.step && turn_bodies < was.turn_bodies)
		goto out;
	for (size_t q = 0; q < new_bodies; q++, n++) {
		nr.pages[n] = fp->pages[q].pub;
		nr.pages[n].turn += kept;
	}
	nb = n;
	for (size_t q = old_bodies; q < old.n_pages; q++)
		if (old.pages[q].turn < kept)
			nr.pages[n++] = old.pages[q];
	for (size_t q = new_bodies; q < fp->n; q++, n++) {
		nr.pages[n] = fp->pages[q].pub;
		nr.pages[n].turn += kept;
		if (was.step && q == new_bodies) {
			/* the fragment's first turn is the rest of the last one: its page is the whole turn's */
			size_t in_first = fp->n_groups > 1 ? fp->group_first[1] : (size_t)cJSON_GetArraySize(fp->cv.msgs);
			nr.pages[n].tokens += was.turn_tokens;
			if ((error = cmv_pager__group_hash(NULL, nr.pages[n].id, was.turn_hash, fp->cv.msgs->child, 0,
							   in_first)) != 0)
				goto out;
		}
	}
	nr.n_pages = n;
	nr.budget = budget;
	nr.exact = old.exact;
	nr.turns = kept + fp->n_groups;
	nr.tokens = was.tokens + more;
	nr.tokens_full = old.tokens_full - (old.tokens - was.tokens) + more;
	nr.fits = true;
	nr.classes = was.classes;
	nr.classes.text += st.text;
	nr.classes.tool_calls += st.tool_calls;
	nr.classes.tool_results += st.tool_results;
	nr.classes.thinking += st.thinking;
	nr.classes.images += st.images;
	nr.classes.other += st.other;
	nr.classes.overhead += st.overhead - per_request;
	nr.classes.total = nr.tokens;
	cmv_pager__report_pins(&nr, o, fp->repo, tip, nb);

	/* the next seam: the fragment's last turn, in the new body */
	if ((error = seam_find(&next, fp, out, &nr.classes, was.calls, ro, was.step ? &was : NULL)) < 0)
		goto out;
	/* the request and pages before the split stay as they are written, until the tail has grown long */
	bool fold = out->size - split_bytes > cmv__pager_fold_bytes;
	if ((error = table_write(fp->repo, o, key, ok, tip, NULL, cJSON_Duplicate(faulted, 1), &nr, out, &next, fold,
				 split_bytes, split_turn)) < 0)
		goto out;
	*r = nr;
	nr.pages = NULL;
	done = 1;
	cmv__pager_spliced++;
	cmv__pager_spliced_steps += was.step;
out:
	seam_dispose(&next);
	free(nr.pages);
	cmv_materialize_report_dispose(&old);
	cmv_buf_dispose(&frag);
	return error < 0 ? error : done;
}
