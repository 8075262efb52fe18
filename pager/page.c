/* SPDX-License-Identifier: MIT */
/*
 * Pages: a loaded branch walked once to find its pages (the tool-result
 * bodies and large tool-input strings, then one page per turn), each with
 * its id, its tokens and what its leaving saves; and the request for a cut
 * (the first k pages of the order gone), built and counted (cmv_pager__eval).
 *
 * A page's id is the hash of what its stub recalls, so the same content
 * has the same id in every rendering and a stub never names anything else.
 * The walk that finds the bodies and the walk that stubs them visit the
 * same candidates in the same order (a body's number is the same in both);
 * a turn's stub or a run's is printed the same for the same turns. The
 * per-page tokens are estimates: they only say where the cut starts
 * looking, the request itself is counted.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "pager_priv.h"

/*
 * A text's tokens as the pager estimates them: counted as count.c counts
 * every text of pager/ (cmv_pager__count_text), or a quarter of its bytes
 * when the tokenizer fails.
 */
static uint64_t count_text(pager *p, const char *s, size_t len)
{
	uint64_t n;
	if (cmv_pager__count_text(&n, p->repo, p->model, p->tok, s, len) < 0) {
		cmv_error_clear();
		return len / 4;
	}
	return n;
}

static bool is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* What a message costs in the request, estimated: its contents and the framing of it and its blocks. */
static uint64_t estimate_message(pager *p, const cJSON *m)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	uint64_t n = p->model->per_message;
	if (cJSON_IsString(content))
		return n + p->model->per_block + count_text(p, content->valuestring, strlen(content->valuestring));
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text"));
		n += p->model->per_block;
		if (text) {
			n += count_text(p, text, strlen(text));
		} else if (t && !strcmp(t, "image")) {
			n += p->model->image_tokens;
		} else {
			/* a call or a result: its JSON is near enough */
			char *s = cJSON_PrintUnformatted(b);
			n += s ? count_text(p, s, strlen(s)) : 0;
			cJSON_free(s);
		}
	}
	return n;
}

/*
 * A user message that starts a turn: it says something and answers no
 * call. One that answers calls too (Claude Code sends what the user typed
 * mid-turn beside the results) belongs to the turn of those calls: a cut
 * before it would leave its results without their calls.
 */
bool cmv_pager__starts_turn(const cJSON *m)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	bool says = false;
	if (!is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role")), "user"))
		return false;
	if (cJSON_IsString(content))
		return true;
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		bool output;
		/* Codex's tool_search_output answers a call too (an openai_item) */
		if (is(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type")), "tool_result") ||
		    (cmv_formats__item_call_id(b, &output) && output))
			return false;
		says = true;
	}
	return says;
}

/* The text of a result's content: the string, or the JSON of its blocks. */
char *cmv_pager__body_text(const cJSON *content)
{
	if (cJSON_IsString(content))
		return cmv__strdup(content->valuestring);
	return cJSON_PrintUnformatted(content);
}

int cmv__stub_body(cmv_buf *out, size_t chars, size_t lines, const char *id)
{
	cmv_buf_clear(out);
	if (lines > 1)
		return cmv_buf_printf(out, "[%zu chars, %zu lines; recall %s]", chars, lines, id);
	return cmv_buf_printf(out, "[%zu chars; recall %s]", chars, id);
}

/* A body page's stub: its id cut to 7 digits. */
static int stub_for(cmv_buf *out, const page *pg)
{
	char id[CMV_ID_MINPREFIX + 1];
	memcpy(id, pg->pub.id, CMV_ID_MINPREFIX);
	id[CMV_ID_MINPREFIX] = '\0';
	return cmv__stub_body(out, pg->chars, pg->lines, id);
}

/*
 * The walk: every body page in conversation order, the same on the loaded
 * messages (to find them) and on a copy (to stub the ones that left), so
 * that a page's number is the same in both.
 */
typedef int (*body_fn)(pager *p, size_t msg, cJSON *holder, cJSON *item, size_t *k, bool finding);

static int walk_strings(pager *p, size_t msg, cJSON *v, size_t *k, bool finding, body_fn fn)
{
	int error = 0;
	for (cJSON *c = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL, *next; c && !error; c = next) {
		next = c->next; /* fn may replace c */
		if (cJSON_IsString(c))
			error = fn(p, msg, v, c, k, finding);
		else
			error = walk_strings(p, msg, c, k, finding, fn);
	}
	return error;
}

/* The body candidates of message i, in order (k counts them across messages). */
static int walk_message(pager *p, size_t i, cJSON *m, size_t *k, bool finding, body_fn fn)
{
	cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	int error = 0;
	for (cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		if (is(t, "tool_result")) {
			cJSON *rc = cJSON_GetObjectItemCaseSensitive(b, "content");
			if (rc)
				error = fn(p, i, b, rc, k, finding);
		} else if (is(t, "tool_use")) {
			error = walk_strings(p, i, cJSON_GetObjectItemCaseSensitive(b, "input"), k, finding, fn);
		}
	}
	return error;
}

static int walk_bodies(pager *p, cJSON *msgs, bool finding, body_fn fn)
{
	size_t k = 0, i = 0;
	int error = 0;
	for (cJSON *m = msgs->child; m && !error; m = m->next, i++)
		error = walk_message(p, i, m, &k, finding, fn);
	return error;
}

/* Skipping an evicted message: its candidates are counted, nothing is touched. */
static int skip_body(pager *p, size_t msg, cJSON *holder, cJSON *item, size_t *k, bool finding)
{
	(void)p;
	(void)msg;
	(void)holder;
	(void)item;
	(void)finding;
	(*k)++;
	return 0;
}

static int push_page(pager *p, const page *pg)
{
	int error = cmv__array_grow((void **)&p->pages, &p->cap, p->n, sizeof(*p->pages));
	if (error < 0)
		return error;
	p->pages[p->n++] = *pg;
	return 0;
}

/* Finding: a body big enough to be a page becomes one (k counts candidates, pages or not). */
static int find_body(pager *p, size_t msg, cJSON *holder, cJSON *item, size_t *k, bool finding)
{
	(void)holder;
	(void)finding;
	char *text = cmv_pager__body_text(item);
	size_t len;
	page pg;
	int error = 0;
	if (!text)
		return cmv_error__oom();
	len = strlen(text);
	(*k)++;
	/* cheap first: under MIN tokens needs under MIN*8 bytes in any tokenizer we have */
	uint64_t tokens = len < CMV_PAGER_MIN_PAGE_TOKENS ? 0 : count_text(p, text, len);
	if (tokens >= CMV_PAGER_MIN_PAGE_TOKENS) {
		cmv_id id;
		memset(&pg, 0, sizeof(pg));
		cmv_id_hash(&id, text, len);
		cmv_id_tostr(pg.pub.id, sizeof(pg.pub.id), &id);
		pg.pub.kind = CMV_PAGE_BODY;
		pg.pub.state = CMV_PAGE_RESIDENT;
		pg.pub.tokens = tokens;
		pg.msg = msg;
		pg.chars = cmv__utf8_chars(text, len);
		pg.lines = cmv__count_lines(text, len);
		if ((error = stub_for(&p->scratch, &pg)) == 0) {
			pg.saving = (int64_t)tokens - (int64_t)count_text(p, p->scratch.ptr, p->scratch.size);
			pg.cand = *k - 1; /* the walk on a copy finds it by this */
			error = push_page(p, &pg);
		}
	}
	cJSON_free(text);
	return error;
}

/* Applying: a body page that left becomes its stub. */
static int apply_body(pager *p, size_t msg, cJSON *holder, cJSON *item, size_t *k, bool finding)
{
	(void)msg;
	(void)finding;
	size_t cand = (*k)++;
	while (p->next_body < p->n &&
	       (p->pages[p->next_body].pub.kind != CMV_PAGE_BODY || p->pages[p->next_body].cand < cand))
		p->next_body++;
	if (p->next_body >= p->n || p->pages[p->next_body].cand != cand || !p->gone[p->next_body])
		return 0;
	page *pg = &p->pages[p->next_body];
	if (p->writes) {
		char *text = cmv_pager__body_text(item);
		cJSON *w = text ? cJSON_CreateString(text) : NULL;
		cJSON_free(text);
		if (!w || !cJSON_AddItemToArray(p->writes, w)) {
			cJSON_Delete(w);
			return cmv_error__oom();
		}
	}
	int error = stub_for(&p->scratch, pg);
	cJSON *s = error ? NULL : cJSON_CreateString(p->scratch.ptr);
	if (!s)
		return error ? error : cmv_error__oom();
	bool member = item->string != NULL;
	if (!(member ? cJSON_ReplaceItemInObjectCaseSensitive(holder, item->string, s)
		     : cJSON_ReplaceItemViaPointer(holder, item, s))) {
		cJSON_Delete(s);
		return cmv_error__oom();
	}
	/* cJSON (1.7.15) replaces even when its copy of the key failed: a keyless member is out of memory */
	if (member && !s->string)
		return cmv_error__oom();
	return 0;
}

/* A run of evicted turns: its messages as JSON (what its id recalls), and its stub. */
static int range_stub(cmv_buf *stub, char **json_out, pager *p, size_t g0, size_t g1)
{
	/* a run's id depends on its ends only: each candidate cut asks again, so remember it */
	for (size_t c = 0; !json_out && c < p->n_runs_known; c++)
		if (p->runs_known[c].g0 == g0 && p->runs_known[c].g1 == g1) {
			cmv_buf_clear(stub);
			return cmv_buf_printf(stub, "[%zu turn%s paged out; recall %.7s]", g1 - g0 + 1, g1 > g0 ? "s" : "",
					      p->runs_known[c].hex);
		}
	cJSON *arr = cJSON_CreateArray();
	size_t i = 0, end = g1 + 1 < p->n_groups ? p->group_first[g1 + 1] : (size_t)cJSON_GetArraySize(p->cv.msgs);
	char *text;
	cmv_id id;
	char hex[CMV_ID_HEXSZ + 1];

	if (!arr)
		return cmv_error__oom();
	for (const cJSON *m = p->cv.msgs->child; m; m = m->next, i++)
		if (i >= p->group_first[g0] && i < end && !cJSON_AddItemToArray(arr, cJSON_Duplicate(m, 1))) {
			cJSON_Delete(arr);
			return cmv_error__oom();
		}
	text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (!text)
		return cmv_error__oom();
	cmv_id_hash(&id, text, strlen(text));
	cmv_id_tostr(hex, sizeof(hex), &id);
	if (p->n_runs_known < CMV_ARRAY_SIZE(p->runs_known)) {
		p->runs_known[p->n_runs_known].g0 = g0;
		p->runs_known[p->n_runs_known].g1 = g1;
		memcpy(p->runs_known[p->n_runs_known].hex, hex, sizeof(hex));
		p->n_runs_known++;
	}
	cmv_buf_clear(stub);
	int error = cmv_buf_printf(stub, "[%zu turn%s paged out; recall %.7s]", g1 - g0 + 1, g1 > g0 ? "s" : "", hex);
	if (json_out && !error)
		*json_out = text;
	else
		cJSON_free(text);
	return error;
}

static int prepend_text(cJSON *m, const char *text)
{
	cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content"), *b = cJSON_CreateObject();
	if (!b || !cJSON_AddStringToObject(b, "type", "text") || !cJSON_AddStringToObject(b, "text", text)) {
		cJSON_Delete(b);
		return cmv_error__oom();
	}
	if (cJSON_IsString(content)) {
		/* a string becomes blocks: the stub, then the text as it was */
		cJSON *arr = cJSON_CreateArray(), *t = cJSON_CreateObject();
		if (!arr || !t || !cJSON_AddStringToObject(t, "type", "text") ||
		    !cJSON_AddStringToObject(t, "text", content->valuestring)) {
			cJSON_Delete(arr);
			cJSON_Delete(t);
			cJSON_Delete(b);
			return cmv_error__oom();
		}
		/* adding to an array allocates nothing: from here arr owns b and t */
		cJSON_AddItemToArray(arr, b);
		cJSON_AddItemToArray(arr, t);
		if (!cJSON_ReplaceItemInObjectCaseSensitive(m, "content", arr)) {
			cJSON_Delete(arr);
			return cmv_error__oom();
		}
		/* cJSON (1.7.15) replaces even when its copy of the key failed: a keyless member is out of memory */
		return arr->string ? 0 : cmv_error__oom();
	}
	if (!cJSON_IsArray(content) || !cJSON_InsertItemInArray(content, 0, b)) {
		if (!cJSON_IsArray(content) && cJSON_AddItemToArray(cJSON_AddArrayToObject(m, "content"), b))
			return 0;
		cJSON_Delete(b);
		return cmv_error__oom();
	}
	return 0;
}

/*
 * What stays of a message of a turn that left: its developer items (Codex's
 * instructions, sent in place in a Responses input) as a message of their
 * own, or *out NULL. In `instructions` they were never paged out; in the
 * input they must not be either. The turn's stub still recalls them whole.
 */
static int instructions_kept(cJSON **out, const cJSON *m)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
	cJSON *kept = NULL, *arr = NULL;

	*out = NULL;
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		if (!cmv_formats__is_instruction_item(b))
			continue;
		if (!kept && (!(kept = cJSON_CreateObject()) ||
			      !cJSON_AddStringToObject(kept, "role", role ? role : "user") ||
			      !(arr = cJSON_AddArrayToObject(kept, "content"))))
			goto oom;
		cJSON *d = cJSON_Duplicate(b, 1);
		if (!d || !cJSON_AddItemToArray(arr, d)) {
			cJSON_Delete(d);
			goto oom;
		}
	}
	*out = kept;
	return 0;
oom:
	cJSON_Delete(kept);
	return cmv_error__oom();
}

/*
 * The messages with the first k pages of the order gone (k == SIZE_MAX: the
 * pages p->gone says); writes collects the texts stubs name (may be NULL).
 */
static int build(cJSON **out, pager *p, size_t k, cJSON *writes)
{
	cJSON *copy = NULL, *msgs = NULL;
	cmv_buf stub = CMV_BUF_INIT(1 << 16);
	int error = 0;

	if (k != GONE_AS_SET) {
		memset(p->gone, 0, p->n * sizeof(*p->gone));
		for (size_t i = 0; i < k; i++)
			p->gone[p->order[i]] = true;
	}
	/* only what stays is copied: with a small window most of the history is not */
	if (!(msgs = cJSON_CreateArray())) {
		error = cmv_error__oom();
		goto done;
	}
	p->next_body = 0;
	/*
	 * Whole turns: the runs of them that leave. One run gets one stub, at
	 * the start of the turn after it. Several get one stub in all, at the
	 * start of the request, whose id recalls an index of the runs (each
	 * with the id that recalls it): a stub per run would cost more than a
	 * short turn, and a query that brings back scattered turns splits many.
	 */
	size_t runs[64][2], n_runs = 0, total = 0, i = 0, g = 0, run_start = SIZE_MAX;
	bool many = false;
	for (size_t q = 0; q < p->n_groups; q++) {
		bool gone = p->gone[p->group_page[q]];
		if (gone && run_start == SIZE_MAX)
			run_start = q;
		if (!gone && run_start != SIZE_MAX) {
			if (n_runs < 64) {
				runs[n_runs][0] = run_start;
				runs[n_runs][1] = q - 1;
			}
			many = ++n_runs > 1;
			total += q - run_start;
			run_start = SIZE_MAX;
		}
	}
	if (many) {
		/* the index, and each run's blob (for the final rendering) */
		cJSON *index = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(index, "paged_out");
		run_start = SIZE_MAX;
		for (size_t q = 0; q <= p->n_groups && !error; q++) {
			bool gone = q < p->n_groups && p->gone[p->group_page[q]];
			if (gone && run_start == SIZE_MAX)
				run_start = q;
			if (!gone && run_start != SIZE_MAX) {
				char *json = NULL, hex[CMV_ID_HEXSZ + 1];
				cmv_id rid;
				if ((error = range_stub(&stub, &json, p, run_start, q - 1)) == 0) {
					cmv_id_hash(&rid, json, strlen(json));
					cJSON *x = cJSON_CreateObject();
					cJSON *t = cJSON_AddArrayToObject(x, "turns");
					cJSON_AddItemToArray(t, cJSON_CreateNumber((double)run_start));
					cJSON_AddItemToArray(t, cJSON_CreateNumber((double)(q - 1)));
					cJSON_AddStringToObject(x, "recall", cmv_id_tostr(hex, sizeof(hex), &rid));
					cJSON_AddItemToArray(arr, x);
					if (writes && !cJSON_AddItemToArray(writes, cJSON_CreateString(json)))
						error = cmv_error__oom();
				}
				cJSON_free(json);
				run_start = SIZE_MAX;
			}
		}
		char *itext = error ? NULL : cJSON_PrintUnformatted(index);
		cJSON_Delete(index);
		if (!error && !itext)
			error = cmv_error__oom();
		if (error)
			goto done;
		cmv_id iid;
		char ihex[CMV_ID_HEXSZ + 1];
		cmv_id_hash(&iid, itext, strlen(itext));
		cmv_id_tostr(ihex, sizeof(ihex), &iid);
		cmv_buf_clear(&stub);
		error = cmv_buf_printf(&stub, "[%zu turns paged out, in %zu runs; recall %.7s]", total, n_runs, ihex);
		if (!error && writes && !cJSON_AddItemToArray(writes, cJSON_CreateString(itext)))
			error = cmv_error__oom();
		cJSON_free(itext);
		if (error)
			goto done;
	}
	run_start = SIZE_MAX;
	cJSON *m = p->cv.msgs->child;
	bool first = true;
	size_t bk = 0; /* body candidates seen, as the finding walk numbered them */
	while (m) {
		cJSON *next = m->next;
		while (g + 1 < p->n_groups && p->group_first[g + 1] <= i)
			g++;
		bool gone = p->n_groups && p->gone[p->group_page[g]];
		if (gone) {
			if (writes) {
				/* the final rendering stores the bodies of evicted turns too: each page id recalls */
				cJSON *scrap = cJSON_Duplicate(m, 1);
				if (!scrap) {
					error = cmv_error__oom();
					goto done;
				}
				p->writes = writes;
				error = walk_message(p, i, scrap, &bk, false, apply_body);
				p->writes = NULL;
				cJSON_Delete(scrap);
			} else {
				error = walk_message(p, i, m, &bk, false, skip_body);
			}
			if (error < 0)
				goto done;
			if (run_start == SIZE_MAX)
				run_start = g;
			cJSON *kept;
			if ((error = instructions_kept(&kept, m)) < 0)
				goto done;
			if (kept)
				cJSON_AddItemToArray(msgs, kept);
		} else {
			cJSON *orig = m;
			if (!(copy = cJSON_Duplicate(orig, 1))) {
				error = cmv_error__oom();
				goto done;
			}
			m = copy;
			p->writes = writes;
			error = walk_message(p, i, m, &bk, false, apply_body);
			p->writes = NULL;
			if (error < 0)
				goto done;
			if (many && first) {
				if ((error = prepend_text(m, stub.ptr)) < 0)
					goto done;
			} else if (!many && run_start != SIZE_MAX && i == p->group_first[g]) {
				char *json = NULL;
				if ((error = range_stub(&stub, writes ? &json : NULL, p, run_start, g - 1)) < 0 ||
				    (error = prepend_text(m, stub.ptr)) < 0) {
					cJSON_free(json);
					goto done;
				}
				if (json && !cJSON_AddItemToArray(writes, cJSON_CreateString(json)))
					error = cmv_error__oom();
				cJSON_free(json);
				if (error)
					goto done;
			}
			if (i == p->group_first[g])
				run_start = SIZE_MAX;
			first = false;
			cJSON_AddItemToArray(msgs, copy);
			copy = NULL;
		}
		m = next;
		i++;
	}
	(void)runs;
	*out = msgs;
	msgs = NULL;
done:
	cJSON_Delete(copy);
	cJSON_Delete(msgs);
	cmv_buf_dispose(&stub);
	return error;
}

/* The request for the first k pages gone, and its tokens. */
int cmv_pager__eval(uint64_t *tokens, cmv_token_stats *classes, cmv_buf *body, pager *p, size_t k, cJSON *writes,
		    const cmv_render_options *ro)
{
	cmv__conversation tmp = p->cv;
	cmv_token_stats st;
	cJSON *msgs = NULL;
	int error;

	if ((error = build(&msgs, p, k, writes)) < 0)
		return error;
	tmp.msgs = msgs;
	error = cmv__conversation_write(body, &tmp, ro);
	cJSON_Delete(msgs);
	if (error < 0 || (error = cmv_count_request(&st, p->model, p->tok, body->ptr, body->size)) < 0)
		return error;
	st.thinking += p->carried;
	st.total += p->carried;
	*tokens = st.total;
	if (classes)
		*classes = st;
	return 0;
}

cmv_render_target cmv_pager__target_of(const cmv_model *m, int want)
{
	cmv_render_target t = want ? (cmv_render_target)want : cmv_model_render_target(m);
	return t ? t : CMV_RENDER_OPENAI_CHAT;
}

/* Messages [first, first + n) into a turn's hash, each after a comma but the array's first (*count: hashed so far). */
static int group_hash_update(XXH3_state_t *st, size_t *count, const cJSON *first, size_t n)
{
	char buf[16384];
	for (const cJSON *m = first; m && n; m = m->next, n--) {
		char *big = NULL;
		const char *text = buf;
		if (!cJSON_PrintPreallocated((cJSON *)m, buf, (int)sizeof(buf), 0) && !(text = big = cJSON_PrintUnformatted(m)))
			return cmv_error__oom();
		if ((*count)++)
			XXH3_128bits_update(st, ",", 1);
		XXH3_128bits_update(st, text, strlen(text));
		cJSON_free(big);
	}
	return 0;
}

static void group_hash_finish(char *out, XXH3_state_t *st)
{
	XXH128_canonical_t c;
	cmv_id id;
	XXH3_128bits_update(st, "]", 1);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	id.type = CMV_ID_XXH3_128;
	memcpy(id.raw, c.digest, CMV_ID_RAWSZ);
	cmv_id_tostr(out, CMV_ID_HEXSZ + 1, &id);
}

/* A turn's page id: the xxh128 of its n messages (from first on) as JSON, the blob that recalls it. */
int cmv_pager__group_id(char *out, const cJSON *first, size_t n)
{
	/* the bytes cJSON prints for the array, hashed as they come: no copy of the messages, no whole text */
	XXH3_state_t *st = XXH3_createState();
	size_t count = 0;
	int error;
	if (!st)
		return cmv_error__oom();
	XXH3_128bits_reset(st);
	XXH3_128bits_update(st, "[", 1);
	if ((error = group_hash_update(st, &count, first, n)) == 0)
		group_hash_finish(out, st);
	XXH3_freeState(st);
	return error;
}

/*
 * The hash state is kept as hex up to its secret's pointer (the library's
 * own default secret, set again by a reset in this process), after the
 * library's version and the state's size: a state from another build of
 * xxhash does not read.
 */
#define GROUP_STATE_BYTES offsetof(XXH3_state_t, extSecret)

int cmv_pager__group_hash(char **state_out, char *id_out, const char *state_in, const cJSON *first, size_t n_state,
			  size_t n_all)
{
	static const char digits[] = "0123456789abcdef";
	XXH3_state_t *st = XXH3_createState();
	unsigned char *raw = (unsigned char *)st;
	char head[48];
	size_t count = 0;
	int error = 0, hl = snprintf(head, sizeof(head), "%u:%zu:", XXH_versionNumber(), (size_t)GROUP_STATE_BYTES);

	if (!st)
		return cmv_error__oom();
	/* the bytes a reset leaves alone (the buffer past what it holds) are kept as zeros, not as garbage */
	memset(st, 0, sizeof(*st));
	XXH3_128bits_reset(st);
	if (!state_in) {
		XXH3_128bits_update(st, "[", 1);
	} else {
		const char *h = state_in + hl;
		if (strncmp(state_in, head, (size_t)hl) || strlen(h) != 2 * GROUP_STATE_BYTES ||
		    strspn(h, digits) != 2 * GROUP_STATE_BYTES) {
			error = 1;
			goto out;
		}
		for (size_t k = 0; k < GROUP_STATE_BYTES; k++)
			raw[k] = (unsigned char)((strchr(digits, h[2 * k]) - digits) << 4 | (strchr(digits, h[2 * k + 1]) - digits));
		count = 1; /* a kept state holds a message at least: the next one follows a comma */
	}
	if ((error = group_hash_update(st, &count, first, n_state)) < 0)
		goto out;
	if (state_out) {
		char *x = cmv__malloc((size_t)hl + 2 * GROUP_STATE_BYTES + 1);
		if (!x) {
			error = cmv_error__oom();
			goto out;
		}
		memcpy(x, head, (size_t)hl);
		for (size_t k = 0; k < GROUP_STATE_BYTES; k++) {
			x[hl + 2 * k] = digits[raw[k] >> 4];
			x[hl + 2 * k + 1] = digits[raw[k] & 15];
		}
		x[hl + 2 * GROUP_STATE_BYTES] = '\0';
		*state_out = x;
	}
	if (id_out) {
		const cJSON *m = first;
		for (size_t k = 0; k < n_state && m; k++)
			m = m->next;
		if ((error = group_hash_update(st, &count, m, n_all - n_state)) == 0)
			group_hash_finish(id_out, st);
	}
out:
	XXH3_freeState(st);
	return error;
}

uint64_t cmv_pager__estimate_messages(pager *p, const cJSON *first, size_t n)
{
	uint64_t t = 0;
	for (const cJSON *m = first; m && n; m = m->next, n--)
		t += estimate_message(p, m);
	return t;
}

/*
 * Load the branch for the target and find its pages: the bodies in
 * conversation order, then one page per turn. p->repo, model and tok set.
 */
int cmv_pager__load(pager *p, const cmv_id *tip, cmv_render_target target, unsigned int flags)
{
	int error;
	if ((error = cmv__conversation_load(&p->cv, p->repo, tip, target, flags)) < 0)
		return error;
	/* the current turn stays resident: its reasoning is billed whatever else leaves */
	p->carried = 0;
	if (target == CMV_RENDER_OPENAI_RESPONSES && (error = cmv_pager__turn_reasoning(&p->carried, p->repo, tip)) < 0)
		return error;
	return cmv_pager__pages(p);
}

/* The pages of p->cv: the bodies in conversation order, then one page per turn. */
int cmv_pager__pages(pager *p)
{
	int error;
	if (!cJSON_GetArraySize(p->cv.msgs)) {
		return cmv_error__set(CMV_EINVALID, "nothing to page: the conversation has no messages");
	}

	/* the turns */
	size_t n_msgs = (size_t)cJSON_GetArraySize(p->cv.msgs), i = 0;
	if (!(p->group_first = cmv__calloc(n_msgs + 1, sizeof(size_t)))) {
		return cmv_error__oom();
	}
	for (const cJSON *m = p->cv.msgs->child; m; m = m->next, i++)
		if (i == 0 || cmv_pager__starts_turn(m))
			p->group_first[p->n_groups++] = i;
	/* the bodies, then one page per turn */
	if ((error = walk_bodies(p, p->cv.msgs, true, find_body)) < 0)
		return error;
	size_t n_bodies = p->n;
	for (size_t b = 0, g = 0; b < n_bodies; b++) {
		while (g + 1 < p->n_groups && p->group_first[g + 1] <= p->pages[b].msg)
			g++;
		p->pages[b].pub.turn = g;
	}
	if (!(p->group_page = cmv__calloc(p->n_groups + 1, sizeof(size_t)))) {
		return cmv_error__oom();
	}
	/* one pass over the messages, a group at a time (a message list is linked: no indexing) */
	const cJSON *cur = p->cv.msgs->child;
	size_t bi = 0;
	for (size_t g = 0; g < p->n_groups; g++) {
		size_t end = g + 1 < p->n_groups ? p->group_first[g + 1] : n_msgs;
		page pg;
		memset(&pg, 0, sizeof(pg));
		if (!p->lazy_ids && (error = cmv_pager__group_id(pg.pub.id, cur, end - p->group_first[g])) < 0)
			return error;
		for (size_t k = p->group_first[g]; k < end && cur; k++, cur = cur->next)
			pg.pub.tokens += estimate_message(p, cur);
		pg.pub.kind = CMV_PAGE_GROUP;
		pg.pub.state = CMV_PAGE_RESIDENT;
		pg.pub.turn = g;
		pg.msg = p->group_first[g];
		pg.saving = (int64_t)pg.pub.tokens;
		/* the bodies are in conversation order: those of this group follow those of the last */
		while (bi < n_bodies && p->pages[bi].pub.turn < g)
			bi++;
		for (size_t b = bi; b < n_bodies && p->pages[b].pub.turn == g; b++)
			pg.saving -= p->pages[b].saving;
		p->group_page[g] = p->n;
		if ((error = push_page(p, &pg)) < 0)
			return error;
	}
	return 0;
}

void cmv_pager__dispose(pager *p)
{
	cmv__conversation_dispose(&p->cv);
	free(p->pages);
	free(p->group_first);
	free(p->group_page);
	free(p->order);
	free(p->gone);
	cmv_buf_dispose(&p->scratch);
}

/* Pin turn g's page. */
void cmv_pager__pin_group(pager *p, size_t g)
{
	page *gp = &p->pages[p->group_page[g]];
	gp->pub.pinned = true;
}
