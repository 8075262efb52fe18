/* SPDX-License-Identifier: MIT */
/*
 * The pager: which pages of a branch are resident for a model, and the
 * request that model is sent (docs/pager.md).
 *
 * The branch is loaded once, rendered-and-repaired for the target API
 * (formats' two-step rendering), and walked once to find the pages in
 * conversation order: tool-result bodies and large tool-input strings
 * (body pages), and turn groups. The pages that may leave are put in one
 * fixed order: bodies oldest first, then whole turns oldest first; pinned
 * ones (the last turns, the caller's pins, query hits, and the turns that
 * hold them) never enter it. What leaves is always a prefix of that order,
 * the shortest whose request fits the target: nothing, when the branch fits
 * the budget; else the low-water mark. Because the order does not depend
 * on the budget and more eviction never costs more tokens, a larger budget
 * never makes a page leave, and the same inputs give the same bytes.
 *
 * Each candidate prefix is checked on the request itself, rendered and
 * counted in the model's tokenizer (per-message overhead included): the
 * per-page estimates only choose where to start looking.
 *
 * This file is the pager's one entry for a request, cmv_materialize, and
 * says these rules once: the other files of pager/ find the pages
 * (page.c), rank a query's (query.c), pin faulted ones (fault.c), and keep
 * the result in the branch's page table (table.c).
 */
#include <cjson/cJSON.h>
#include <string.h>
#include "pager_priv.h"
#include "tok/tok_int.h"

void cmv_materialize_report_dispose(cmv_materialize_report *rep)
{
	if (!rep)
		return;
	free(rep->pages);
	rep->pages = NULL;
	rep->n_pages = 0;
}

int cmv_materialize(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip,
		    const cmv_model *model, cmv_tok *tok, const cmv_pager_options *opts)
{
	cmv_pager_options o = opts ? *opts : (cmv_pager_options)CMV_PAGER_OPTIONS_INIT;
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	pager p;
	cmv_materialize_report r;
	cJSON *writes = NULL, *table = NULL;
	cmv_buf okey = CMV_BUF_INIT(1 << 20);
	uint64_t full = 0, tokens = 0;
	size_t k = 0;
	int error = 0;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	memset(&p, 0, sizeof(p));
	memset(&r, 0, sizeof(r));
	if (rep)
		memset(rep, 0, sizeof(*rep));
	p.repo = repo;
	p.model = model;
	p.tok = tok;
	/* each candidate cut counts the same messages again: count each once */
	cmv__tok_memo(tok, true);
	cmv_buf_init(&p.scratch, 1 << 16);
	r.budget = o.budget ? o.budget : cmv_model_input_budget(model);
	if (!o.keep_turns)
		o.keep_turns = CMV_PAGER_KEEP_TURNS_DEFAULT;
	if (!o.low_water || o.low_water > 1000)
		o.low_water = CMV_PAGER_LOW_WATER_DEFAULT;
	ro.model = model->id;
	if (!model->tools)
		o.render_flags |= CMV_RENDER_TOOLS_AS_TEXT;
	if (!model->images)
		o.render_flags |= CMV_RENDER_NO_IMAGES;
	ro.flags = o.render_flags | CMV_RENDER_NO_DECORATIONS;
	/*
	 * One transaction for the whole call: the hundreds of reads of a load
	 * take the store's lock once, not once each, and the blobs and the page
	 * table land together or not at all.
	 */
	if ((error = cmv_repo_txn_begin(repo)) < 0) {
		cmv_buf_dispose(&p.scratch);
		return error;
	}
	/* the branch's page table: the same tip and options as last time are a lookup */
	char note_key[CMV_REF_NAME_MAX + 64];
	snprintf(note_key, sizeof(note_key), "pager:%s:%s", model->id, cmv_render_target_name(cmv_pager__target_of(model, o.target)));
	if (o.state_branch) {
		table = cmv_pager__table_read(repo, &o, note_key);
		cmv_pager__options_key(&okey, repo, &o, r.budget);
		int hit = table ? cmv_pager__table_lookup(out, &r, repo, &o, note_key, table, okey.ptr, tip, r.budget) : 0;
		/* after an append, the kept request grows by what came since */
		if (table && !hit)
			hit = cmv_pager__splice_append(out, &r, &p, &o, note_key, table, okey.ptr, tip, r.budget,
						       cmv_pager__target_of(model, o.target), &ro);
		if (hit < 0) {
			error = hit;
			goto done;
		}
		if (hit) {
			if (rep)
				*rep = r;
			else
				cmv_materialize_report_dispose(&r);
			goto done;
		}
		cmv_pager__dispose(&p);
		memset(&p, 0, sizeof(p));
		p.repo = repo;
		p.model = model;
		p.tok = tok;
		cmv_buf_init(&p.scratch, 1 << 16);
	}
	if ((error = cmv_pager__load(&p, tip, cmv_pager__target_of(model, o.target), o.render_flags)) < 0)
		goto done;
	size_t n_bodies = 0;
	while (n_bodies < p.n && p.pages[n_bodies].pub.kind == CMV_PAGE_BODY)
		n_bodies++;

	/* the pins: the last turns, pages faulted in lately, the caller's pages, the query's hits; a pinned body pins its turn */
	for (size_t g = p.n_groups > o.keep_turns ? p.n_groups - o.keep_turns : 0; g < p.n_groups; g++)
		cmv_pager__pin_group(&p, g);
	if (o.state_branch) {
		size_t n_faulted = 0;
		cmv_pager__pin_faulted(&p, o.state_branch, tip, &n_faulted);
	}
	for (size_t j = 0; j < o.n_pins; j++) {
		size_t len = o.pins[j] ? strlen(o.pins[j]) : 0;
		bool found = false;
		if (len < CMV_ID_MINPREFIX || !cmv_id_is_prefix(o.pins[j])) {
			error = cmv_error__set(CMV_EINVALID, "'%s' is not a page id (7 or more hex digits)",
					       o.pins[j] ? o.pins[j] : "");
			goto done;
		}
		for (size_t q = 0; q < p.n; q++)
			if (!strncmp(p.pages[q].pub.id, o.pins[j], len)) {
				p.pages[q].pub.pinned = found = true;
				cmv_pager__pin_group(&p, p.pages[q].pub.turn);
			}
		if (!found) {
			error = cmv_error__set(CMV_ENOTFOUND, "no page '%s' in this branch", o.pins[j]);
			goto done;
		}
	}
	if (o.query && *o.query) {
		/*
		 * What the query may bring back: its allowance, and never more
		 * than the budget leaves after the pinned turns (less 3% for the
		 * estimates' error). Up to the budget, not the low-water mark:
		 * what a question faults in is what this request is for.
		 */
		uint64_t room = r.budget - r.budget * 3 / 100, pinned_tokens = (uint64_t)p.model->per_request;
		for (size_t g = 0; g < p.n_groups; g++)
			if (p.pages[p.group_page[g]].pub.pinned)
				pinned_tokens += p.pages[p.group_page[g]].pub.tokens;
		room = room > pinned_tokens + QUERY_STUB_TOKENS ? room - pinned_tokens - QUERY_STUB_TOKENS : 0;
		uint64_t allowance = o.query_allowance ? o.query_allowance : r.budget / 4;
		if ((error = cmv_pager__query(&p, o.query, allowance < room ? allowance : room, NULL)) < 0)
			goto done;
	}
	/* the last turns are resident verbatim, bodies and all */
	for (size_t b = 0; b < n_bodies; b++)
		if (p.pages[b].pub.turn + o.keep_turns >= p.n_groups)
			p.pages[b].pub.pinned = true;

	/* the order pages leave in: bodies oldest first, then whole turns oldest first */
	if (!(p.order = cmv__calloc(p.n + 1, sizeof(size_t))) || !(p.gone = cmv__calloc(p.n + 1, sizeof(bool)))) {
		error = CMV_ENOMEM;
		goto done;
	}
	for (size_t b = 0; b < n_bodies; b++)
		if (!p.pages[b].pub.pinned && p.pages[b].saving > 0)
			p.order[p.n_order++] = b;
	for (size_t g = 0; g < p.n_groups; g++)
		if (!p.pages[p.group_page[g]].pub.pinned)
			p.order[p.n_order++] = p.group_page[g];

	/* the shortest prefix of the order whose request fits the target */
	if ((error = cmv_pager__eval(&full, NULL, out, &p, 0, NULL, &ro)) < 0)
		goto done;
	r.tokens_full = full;
	if (full > r.budget) {
		uint64_t target = r.budget * o.low_water / 1000;
		int64_t need = (int64_t)full - (int64_t)target, saved = 0;
		/* the estimates say where to start; the request itself says where to stop */
		while (k < p.n_order && saved < need)
			saved += p.pages[p.order[k++]].saving;
		if ((error = cmv_pager__eval(&tokens, NULL, out, &p, k, NULL, &ro)) < 0)
			goto done;
		while (tokens > target && k < p.n_order) {
			/* short of the mark: a step sized by what is still missing */
			int64_t more = (int64_t)tokens - (int64_t)target, got = 0;
			while (k < p.n_order && got < more)
				got += p.pages[p.order[k++]].saving;
			if ((error = cmv_pager__eval(&tokens, NULL, out, &p, k, NULL, &ro)) < 0)
				goto done;
		}
		while (k > 0) {
			uint64_t t;
			if ((error = cmv_pager__eval(&t, NULL, out, &p, k - 1, NULL, &ro)) < 0)
				goto done;
			if (t > target)
				break;
			k--;
			tokens = t;
		}
		if (tokens > target && tokens > r.budget) {
			uint64_t pin_tokens = 0;
			size_t n_pinned = 0;
			for (size_t q = 0; q < p.n; q++)
				if (p.pages[q].pub.pinned && p.pages[q].pub.kind == CMV_PAGE_GROUP) {
					pin_tokens += p.pages[q].pub.tokens;
					n_pinned++;
				}
			error = cmv_error__set(CMV_EBUDGET,
					       "cannot fit %s's budget of %llu tokens: with every page that may leave gone, the "
					       "request is %llu tokens; pinned: the system prompt, the last %zu turn%s and %zu "
					       "page%s the caller or the query pinned (%zu turns, about %llu tokens)",
					       model->id, (unsigned long long)r.budget, (unsigned long long)tokens, o.keep_turns,
					       o.keep_turns == 1 ? "" : "s", o.n_pins, o.n_pins == 1 ? "" : "s", n_pinned,
					       (unsigned long long)pin_tokens);
			goto done;
		}
	}
	/*
	 * The page table of the branch (for this model and format): what left
	 * last time stays gone while the request fits, so an append does not
	 * move the cut and the provider's prompt cache survives. A new batch is
	 * cut only past the budget; pages come back when the budget grew (a
	 * switch to a larger model) and the cut above leaves fewer out.
	 */
	size_t final_k = k;
	if (o.state_branch) {
		cmv__strmap was = { 0 };
		size_t n_was = 0;
		cmv_buf ev = CMV_BUF_INIT((size_t)1 << 30);
		const cJSON *fa = cJSON_GetObjectItemCaseSensitive(table, "faulted");
		const char *topts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(table, "options"));
		/* the same options as last time: what left stays gone while it fits, whatever a fresh cut would take */
		bool same = topts && !strcmp(topts, okey.ptr) && full > r.budget;
		if (table && cmv_pager__note_take(&ev, repo, &o, note_key, "evicted")) {
			for (char *s = ev.ptr, *nl; s && !error && (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
				*nl = '\0';
				error = cmv__strmap_put(&was, s, 0, NULL);
			}
		}
		cmv_buf_dispose(&ev);
		/* a page a fault brought back goes again when its pin runs out (while pinned it is no candidate) */
		for (const cJSON *e = cJSON_IsArray(fa) ? fa->child : NULL; e && !error; e = e->next)
			if (cJSON_IsString(e))
				error = cmv__strmap_put(&was, e->valuestring, 0, NULL);
		if (!error && was.n) {
			memset(p.gone, 0, p.n * sizeof(*p.gone));
			for (size_t q = 0; q < p.n_order; q++)
				if (cmv__strmap_get(&was, p.pages[p.order[q]].pub.id, NULL, NULL)) {
					p.gone[p.order[q]] = true;
					n_was++;
				}
			uint64_t t = 0;
			if (n_was && (n_was <= k || same) && (error = cmv_pager__eval(&t, NULL, out, &p, GONE_AS_SET, NULL, &ro)) == 0 &&
			    t <= r.budget)
				final_k = GONE_AS_SET;
		}
		cmv__strmap_dispose(&was);
		if (error)
			goto done;
	}
	/* the final rendering, and the blobs its stubs name */
	if (!(writes = cJSON_CreateArray())) {
		error = CMV_ENOMEM;
		goto done;
	}
	if ((error = cmv_pager__eval(&tokens, &r.classes, out, &p, final_k, writes, &ro)) < 0)
		goto done;
	for (const cJSON *w = writes->child; w && !error; w = w->next) {
		cmv_id id;
		error = cmv_blob_write(&id, repo, w->valuestring, strlen(w->valuestring));
	}
	for (size_t q = 0; q < p.n && !error; q++) {
		page *pg = &p.pages[q];
		if (p.gone[q])
			pg->pub.state = pg->pub.kind == CMV_PAGE_BODY ? CMV_PAGE_STUBBED : CMV_PAGE_EVICTED;
	}
	if (error)
		goto done;
	r.tokens = tokens;
	r.fits = tokens <= r.budget;
	r.exact = model->exact;
	r.turns = p.n_groups;
	for (size_t q = 0; q < p.n; q++) {
		page *pg = &p.pages[q];
		/* a body inside an evicted turn went with it */
		if (pg->pub.kind == CMV_PAGE_BODY && p.gone[p.group_page[pg->pub.turn]])
			pg->pub.state = CMV_PAGE_EVICTED;
		r.resident += pg->pub.state == CMV_PAGE_RESIDENT;
		r.stubbed += pg->pub.state == CMV_PAGE_STUBBED;
		r.evicted += pg->pub.state == CMV_PAGE_EVICTED;
		if (pg->pub.pinned) {
			r.pinned++;
			if (pg->pub.kind == CMV_PAGE_GROUP)
				r.pinned_tokens += pg->pub.tokens;
		}
	}
	if (p.n && !(r.pages = cmv__calloc(p.n, sizeof(*r.pages)))) {
		error = CMV_ENOMEM;
		goto done;
	}
	for (size_t q = 0; q < p.n; q++)
		r.pages[q] = p.pages[q].pub;
	r.n_pages = p.n;
	if (o.state_branch && (error = cmv_pager__table_save(repo, &o, note_key, okey.ptr, tip, &p, &r, out, &ro)) < 0) {
		cmv_materialize_report_dispose(&r);
		goto done;
	}
	if (rep)
		*rep = r;
	else
		cmv_materialize_report_dispose(&r);
done:
	if (error < 0)
		cmv_repo_txn_rollback(repo);
	else
		error = cmv_repo_txn_commit(repo);
	cJSON_Delete(writes);
	cJSON_Delete(table);
	cmv_buf_dispose(&okey);
	cmv_pager__dispose(&p);
	return error;
}
