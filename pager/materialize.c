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
#include <stddef.h>
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

void cmv_materialize_report_init(cmv_materialize_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->version = CMV_MATERIALIZE_REPORT_VERSION;
}

void cmv_pager_options_init(cmv_pager_options *opts)
{
	cmv_pager_options d = CMV_PAGER_OPTIONS_INIT;
	*opts = d;
}

/* One call of cmv_materialize: what its phases share. */
typedef struct {
	cmv_buf *out;             /* the request, as the phases build it */
	cmv_repo *repo;
	const cmv_id *tip;
	const cmv_model *model;
	cmv_tok *tok;
	cmv_pager_options o;      /* the caller's, the defaults filled in */
	cmv_render_options ro;
	cmv_render_target target;
	char note_key[CMV_REF_NAME_MAX + 64]; /* the page table's note, for this model and format */
	cmv_buf okey;             /* the options as the page table keys them */
	cJSON *table;             /* the page table as kept; NULL when none */
	pager p;
	size_t n_bodies;          /* the body pages, first in p.pages */
	cmv_materialize_report r;
	const char *fault_branch; /* whose faults pin pages: state_branch as the caller gave it, an anchor or not */
	struct {
		bool billed;              /* the last bill is for this key and target: an anchor where it is held */
		cmv_pager__live_call sent, bill;
		int64_t correction;       /* the bill's messages (prompt less extra) less their plain count */
		int conv;                 /* -1 not known yet; else whether the conversation holds the billed one's */
		bool k0, kept;            /* the whole work: the request with nothing out / the kept cut holds the bill */
		bool anchored;            /* the request made holds the billed one */
		cmv_pager__predict rate;  /* otherwise: the plain count scaled by the last bill's rate (none: 1000) */
		char why[CMV_PAGER_WHY_MAX];
	} live;
} materialization;

/* A pager with nothing loaded, for this call's store and model: what the splice and the whole work load into. */
static void pager_start(materialization *m)
{
	memset(&m->p, 0, sizeof(m->p));
	m->p.repo = m->repo;
	m->p.model = m->model;
	m->p.tok = m->tok;
	cmv_buf_init(&m->p.scratch, 1 << 16);
}

/* Resolve the options: what the caller left unset takes its default, and the model says what the request may hold. */
static void resolve_options(materialization *m, cmv_buf *out, cmv_repo *repo, const cmv_id *tip,
			    const cmv_model *model, cmv_tok *tok, const cmv_pager_options *opts)
{
	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;

	memset(m, 0, sizeof(*m));
	m->out = out;
	m->repo = repo;
	m->tip = tip;
	m->model = model;
	m->tok = tok;
	m->o = (cmv_pager_options)CMV_PAGER_OPTIONS_INIT;
	/* a caller built against an older version has a shorter struct */
	if (opts)
		memcpy(&m->o, opts, CMV_PAGER_OPTIONS_SIZE(opts->version));
	m->ro = ro;
	cmv_buf_init(&m->okey, 1 << 20);
	pager_start(m);
	/* each candidate cut counts the same messages again: count each once */
	cmv__tok_memo(tok, true);
	/* a budget is a ceiling on what the provider bills: the count keeps the model's margin below it */
	m->r.budget = cmv_count_ceiling(model, m->o.budget);
	if (!m->o.keep_turns)
		m->o.keep_turns = CMV_PAGER_KEEP_TURNS_DEFAULT;
	if (!m->o.low_water || m->o.low_water > 1000)
		m->o.low_water = CMV_PAGER_LOW_WATER_DEFAULT;
	m->ro.model = model->id;
	if (!model->tools)
		m->o.render_flags |= CMV_RENDER_TOOLS_AS_TEXT;
	if (!model->images)
		m->o.render_flags |= CMV_RENDER_NO_IMAGES;
	m->ro.flags = m->o.render_flags | CMV_RENDER_NO_DECORATIONS;
	m->target = cmv_pager__target_of(model, m->o.target);
	/*
	 * An anchor predicts the whole request from what was billed: the page
	 * table's kept totals are plain counts, so it is neither used nor kept.
	 */
	m->fault_branch = m->o.state_branch;
	if (m->o.anchor && m->o.anchor->found)
		m->o.state_branch = NULL;
	else
		m->o.anchor = NULL;
	if (!m->o.state_branch)
		m->o.live_key = NULL;
	m->live.conv = -1;
	m->live.rate.rate_pm = 1000;
	snprintf(m->note_key, sizeof(m->note_key), "pager:%s:%s", model->id, cmv_render_target_name(m->target));
}

/* ---- live anchoring (docs/tokenizers.md, "Anchored live") ----------------------- */

/* The last bill of this branch for this model, when it can anchor this request (m->live.billed), else why not. */
static void live_setup(materialization *m)
{
	if (!m->o.live_key)
		return;
	cmv_pager__live_read(&m->live.sent, &m->live.bill, m->repo, m->o.state_branch, m->model->id);
	/*
	 * Whatever the key and API: the rate is this model's bills on this
	 * branch's content, which a change of tools moves by their share only.
	 * Not another model's (the note is per model).
	 */
	cmv_pager__live_rate(&m->live.rate, &m->live.sent, &m->live.bill, m->o.live_beside);
	if (!m->live.bill.ok)
		snprintf(m->live.why, sizeof(m->live.why), "no reply billed yet for %.60s", m->model->id);
	else if (strcmp(m->live.bill.target, cmv_render_target_name(m->target)))
		snprintf(m->live.why, sizeof(m->live.why), "the last bill was for the %.30s API", m->live.bill.target);
	else if (strcmp(m->live.bill.key, m->o.live_key))
		snprintf(m->live.why, sizeof(m->live.why), "the system prompt or tools differ from the billed request's");
	else {
		m->live.billed = true;
		m->live.correction = (int64_t)m->live.bill.prompt - (int64_t)m->live.bill.extra - (int64_t)m->live.bill.tokens;
		snprintf(m->live.why, sizeof(m->live.why), "the request no longer holds the billed one (a new cut, or the "
			 "history changed)");
	}
}

/* A plain count as the request not holding the billed one is predicted billed: scaled by the rate, when there is one. */
static uint64_t live_plain(const materialization *m, uint64_t plain)
{
	return cmv_pager__predicted(m->model, &m->live.rate, plain);
}

/* Whether the request kept for `t` (the page table's) holds the billed one: made there, or made anchored on it. */
static bool live_holds_kept(const materialization *m, const cmv_id *t)
{
	const cmv_pager__live_call *s = &m->live.sent, *b = &m->live.bill;
	return m->live.billed &&
	       (cmv_id_equal(&b->tip, t) || (s->ok && cmv_id_equal(&s->tip, t) && cmv_id_equal(&s->held, &b->tip)));
}

/* Whether the conversation at the tip holds the billed one's whole (the whole work's check; rendered once). */
static int live_conv_holds(materialization *m, bool *out)
{
	if (m->live.conv < 0) {
		bool h = false;
		int error = cmv_count_anchor_holds(&h, m->repo, &m->live.bill.tip, m->tip, m->model);
		if (error < 0)
			return error;
		m->live.conv = h;
	}
	*out = m->live.conv > 0;
	return 0;
}

/* The page table's tip, when it has one. */
static bool table_tip(cmv_id *out, const cJSON *table)
{
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(table, "tip"));
	if (t && cmv_id_fromstr(out, t) == 0)
		return true;
	cmv_error_clear();
	return false;
}

/* Try the kept page table: the same tip and options as last time are a lookup, the bytes written then. */
static int try_table(materialization *m)
{
	int kept;
	if (!m->o.state_branch)
		return 0;
	m->table = cmv_pager__table_read(m->repo, &m->o, m->note_key);
	cmv_pager__options_key(&m->okey, m->repo, &m->o, m->r.budget);
	kept = m->table ? cmv_pager__table_lookup(m->out, &m->r, m->repo, &m->o, m->note_key, m->table, m->okey.ptr,
						  m->tip, m->r.budget)
			: 0;
	if (kept > 0 && live_holds_kept(m, m->tip)) {
		/* the request kept is the billed one, or grew from it: as billed, over the budget, a new batch is cut */
		if (cmv_count_anchored(m->model, m->r.tokens, m->live.correction) > m->r.budget) {
			uint64_t budget = m->r.budget;
			cmv_materialize_report_dispose(&m->r);
			memset(&m->r, 0, sizeof(m->r));
			m->r.budget = budget;
			return 0;
		}
		m->live.anchored = true;
	} else if (kept > 0 && live_plain(m, m->r.tokens) > m->r.budget) {
		/* kept when it fit as counted; scaled by what the branch's bills taught since, it does not: cut anew */
		uint64_t budget = m->r.budget;
		cmv_materialize_report_dispose(&m->r);
		memset(&m->r, 0, sizeof(m->r));
		m->r.budget = budget;
		return 0;
	}
	return kept;
}

/* Try the splice: after an append, the kept request grows by what came since, its prefix untouched. */
static int try_splice(materialization *m)
{
	cmv_id t;
	int kept;
	if (!m->table)
		return 0;
	/* grown from the request kept: it holds the billed one when that one did, and fits as billed or is cut anew */
	bool holds = table_tip(&t, m->table) && live_holds_kept(m, &t);
	cmv_pager__predict held = { true, m->live.correction, 1000, 0 };
	kept = cmv_pager__splice_append(m->out, &m->r, &m->p, &m->o, m->note_key, m->table, m->okey.ptr, m->tip,
					m->r.budget, m->target, &m->ro, holds ? &held : &m->live.rate);
	if (kept > 0 && holds)
		m->live.anchored = true;
	return kept;
}

/* Load the branch and find its pages: the whole work starts afresh, not from what a splice tried left in the pager. */
static int load_pages(materialization *m)
{
	int error;
	if (m->o.state_branch) {
		cmv_pager__dispose(&m->p);
		pager_start(m);
	}
	if ((error = cmv_pager__load(&m->p, m->tip, m->target, m->o.render_flags)) < 0)
		return error;
	while (m->n_bodies < m->p.n && m->p.pages[m->n_bodies].pub.kind == CMV_PAGE_BODY)
		m->n_bodies++;
	return 0;
}

/* Pin the query's hits, within the room the pinned turns leave: a question's pages must not push out the last turns. */
static int pin_query(materialization *m)
{
	pager *p = &m->p;
	/*
	 * What the query may bring back: its allowance, and never more
	 * than the budget leaves after the pinned turns (less 3% for the
	 * estimates' error). Up to the budget, not the low-water mark:
	 * what a question faults in is what this request is for.
	 */
	uint64_t room = m->r.budget - m->r.budget * 3 / 100, pinned_tokens = (uint64_t)p->model->per_request;
	for (size_t g = 0; g < p->n_groups; g++)
		if (p->pages[p->group_page[g]].pub.pinned)
			pinned_tokens += p->pages[p->group_page[g]].pub.tokens;
	room = room > pinned_tokens + QUERY_STUB_TOKENS ? room - pinned_tokens - QUERY_STUB_TOKENS : 0;
	uint64_t allowance = m->o.query_allowance ? m->o.query_allowance : m->r.budget / 4;
	return cmv_pager__query(p, m->o.query, allowance < room ? allowance : room, NULL);
}

/* Pin what must stay whatever the budget: a pinned page never enters the order, so no cut takes it. */
static int pin_pages(materialization *m)
{
	pager *p = &m->p;
	const cmv_pager_options *o = &m->o;
	int error;

	/* the pins: the last turns, pages faulted in lately, the caller's pages, the query's hits; a pinned body pins its turn */
	for (size_t g = p->n_groups > o->keep_turns ? p->n_groups - o->keep_turns : 0; g < p->n_groups; g++)
		cmv_pager__pin_group(p, g);
	/* an anchored request keeps no page table, and still the branch's faults: a page asked back stays */
	if (m->fault_branch) {
		size_t n_faulted = 0;
		cmv_pager__pin_faulted(p, m->fault_branch, m->tip, &n_faulted);
	}
	for (size_t j = 0; j < o->n_pins; j++) {
		size_t len = o->pins[j] ? strlen(o->pins[j]) : 0;
		bool found = false;
		if (len < CMV_ID_MINPREFIX || !cmv_id_is_prefix(o->pins[j]))
			return cmv_error__set(CMV_EINVALID, "'%s' is not a page id (7 or more hex digits)",
					      o->pins[j] ? o->pins[j] : "");
		for (size_t q = 0; q < p->n; q++)
			if (!strncmp(p->pages[q].pub.id, o->pins[j], len)) {
				p->pages[q].pub.pinned = found = true;
				cmv_pager__pin_group(p, p->pages[q].pub.turn);
			}
		if (!found)
			return cmv_error__set(CMV_ENOTFOUND, "no page '%s' in this branch", o->pins[j]);
	}
	if (o->query && *o->query && (error = pin_query(m)) < 0)
		return error;
	/* the last turns are resident verbatim, bodies and all (unless the caller lets their bodies go last) */
	for (size_t b = 0; b < m->n_bodies && !o->stub_pinned; b++)
		if (p->pages[b].pub.turn + o->keep_turns >= p->n_groups)
			p->pages[b].pub.pinned = true;
	return 0;
}

/* Put the pages that may leave in one order, independent of the budget, so a larger budget never makes a page leave. */
static int leave_order(materialization *m)
{
	pager *p = &m->p;
	/* the order pages leave in: bodies oldest first, then whole turns oldest first */
	if (!(p->order = cmv__calloc(p->n + 1, sizeof(size_t))) || !(p->gone = cmv__calloc(p->n + 1, sizeof(bool))))
		return cmv_error__oom();
	bool last;
	for (size_t b = 0; b < m->n_bodies; b++)
		if (!p->pages[b].pub.pinned && p->pages[b].saving > 0 &&
		    !(m->o.stub_pinned && p->pages[b].pub.turn + m->o.keep_turns >= p->n_groups))
			p->order[p->n_order++] = b;
	for (size_t g = 0; g < p->n_groups; g++)
		if (!p->pages[p->group_page[g]].pub.pinned)
			p->order[p->n_order++] = p->group_page[g];
	/* with stub_pinned, the bodies of the last turns: after everything else, oldest first */
	for (size_t b = 0; b < m->n_bodies && m->o.stub_pinned; b++)
		if (!p->pages[b].pub.pinned && p->pages[b].saving > 0 &&
		    (last = p->pages[b].pub.turn + m->o.keep_turns >= p->n_groups))
			p->order[p->n_order++] = b;
	return 0;
}

/*
 * Cut: the shortest prefix of the order whose request, counted itself, fits
 * the target (*k: its length). `force`: a new batch whatever the count (the
 * kept cut, as billed, is over the budget), at least one page.
 */
static int cut(materialization *m, size_t *k_out, bool force)
{
	pager *p = &m->p;
	cmv_materialize_report *r = &m->r;
	uint64_t full = 0, tokens = 0;
	size_t k = 0, min_k = 0;
	int error;

	/* the shortest prefix of the order whose request fits the target */
	if ((error = cmv_pager__eval(&full, NULL, m->out, p, 0, NULL, &m->ro)) < 0)
		return error;
	/*
	 * Anchored: the whole request is what was billed for its prefix plus
	 * the count of what came since. Once a page leaves it holds the billed
	 * request no more and its plain count holds, so an anchored request
	 * over the budget loses at least one page, whatever its plain count.
	 */
	uint64_t whole = live_plain(m, full);
	bool anchored = m->o.anchor || m->live.k0;
	if (anchored) {
		int64_t c = m->o.anchor ? m->o.anchor->correction : m->live.correction;
		whole = cmv_count_anchored(m->model, full, c);
		r->correction = (int64_t)whole - (int64_t)full; /* as applied: a correction down is bounded */
	}
	/* the page table keeps plain counts: a live prediction (anchored or scaled) is the report's, made at the end */
	r->tokens_full = m->o.anchor ? whole : full;
	if (whole > r->budget || force) {
		min_k = (anchored && whole > full) || force ? 1 : 0;
		bool live = force || (m->live.k0 && whole > full);
		if (live)
			snprintf(m->live.why, sizeof(m->live.why), "over the budget as billed: a new batch paged out");
		if (min_k && !p->n_order)
			return cmv_error__set(CMV_EBUDGET,
					      "cannot fit %s's budget of %llu tokens: the request as billed before, with "
					      "what came since, is %llu tokens (counted, %llu), and no page may leave: every "
					      "one is pinned (the last %zu turn%s, %zu page%s the caller or the query pinned, "
					      "the branch's faults)",
					      m->model->id, (unsigned long long)r->budget, (unsigned long long)whole,
					      (unsigned long long)full, m->o.keep_turns, m->o.keep_turns == 1 ? "" : "s",
					      m->o.n_pins, m->o.n_pins == 1 ? "" : "s");
		uint64_t mark = r->budget * m->o.low_water / 1000, target = mark;
		/*
		 * The new batch leaves the room the low-water mark leaves as
		 * billed, or the next request, anchored, is over again (a cut every
		 * request once the bill runs more than that room over the count):
		 * the candidates hold the billed request no more, and are
		 * predicted at the rate. Where the rate is bounded (a bill more
		 * than twice its count), a live anchor's cut also takes the
		 * correction off the mark, as it did before there was a rate.
		 */
		target = cmv_pager__plain_within(&m->live.rate, mark);
		if (live && m->live.correction > 0 && m->live.rate.rate_pm >= CMV_PAGER__RATE_MAX_PM) {
			uint64_t less = mark > (uint64_t)m->live.correction ? mark - (uint64_t)m->live.correction : 0;
			target = less < target ? less : target;
		}
		int64_t need = (int64_t)full - (int64_t)target, saved = 0;
		/* the estimates say where to start; the request itself says where to stop */
		while (k < p->n_order && saved < need)
			saved += p->pages[p->order[k++]].saving;
		if ((error = cmv_pager__eval(&tokens, NULL, m->out, p, k, NULL, &m->ro)) < 0)
			return error;
		while (tokens > target && k < p->n_order) {
			/* short of the mark: a step sized by what is still missing */
			int64_t more = (int64_t)tokens - (int64_t)target, got = 0;
			while (k < p->n_order && got < more)
				got += p->pages[p->order[k++]].saving;
			if ((error = cmv_pager__eval(&tokens, NULL, m->out, p, k, NULL, &m->ro)) < 0)
				return error;
		}
		if (k < min_k) {
			k = min_k;
			if ((error = cmv_pager__eval(&tokens, NULL, m->out, p, k, NULL, &m->ro)) < 0)
				return error;
		}
		while (k > min_k) {
			uint64_t t;
			if ((error = cmv_pager__eval(&t, NULL, m->out, p, k - 1, NULL, &m->ro)) < 0)
				return error;
			if (t > target)
				break;
			k--;
			tokens = t;
		}
		if (tokens > target && live_plain(m, tokens) > r->budget) {
			uint64_t pin_tokens = 0;
			size_t n_pinned = 0;
			for (size_t q = 0; q < p->n; q++)
				if (p->pages[q].pub.pinned && p->pages[q].pub.kind == CMV_PAGE_GROUP) {
					pin_tokens += p->pages[q].pub.tokens;
					n_pinned++;
				}
			/* at a rate: the count the budget was held to is the scaled one, and the message says both */
			char rated[96] = "";
			if (live_plain(m, tokens) != tokens)
				snprintf(rated, sizeof(rated), " as billed at the last bill's rate (counted, %llu)",
					 (unsigned long long)tokens);
			return cmv_error__set(CMV_EBUDGET,
					      "cannot fit %s's budget of %llu tokens: with every page that may leave gone, the "
					      "request is %llu tokens%s; pinned: the system prompt, the last %zu turn%s and %zu "
					      "page%s the caller or the query pinned (%zu turns, about %llu tokens)",
					      m->model->id, (unsigned long long)r->budget,
					      (unsigned long long)live_plain(m, tokens), rated, m->o.keep_turns,
					      m->o.keep_turns == 1 ? "" : "s", m->o.n_pins, m->o.n_pins == 1 ? "" : "s", n_pinned,
					      (unsigned long long)pin_tokens);
		}
	}
	*k_out = k;
	return 0;
}

/* Keep the last cut while it fits: an append then does not move the cut, and the provider's prompt cache survives. */
static int keep_last_cut(materialization *m, size_t k, size_t *final_k)
{
	pager *p = &m->p;
	int error = 0;
	/*
	 * The page table of the branch (for this model and format): what left
	 * last time stays gone while the request fits, so an append does not
	 * move the cut and the provider's prompt cache survives. A new batch is
	 * cut only past the budget; pages come back when the budget grew (a
	 * switch to a larger model) and the cut above leaves fewer out.
	 */
	*final_k = k;
	if (!m->o.state_branch)
		return 0;
	cmv__strmap was = { 0 };
	size_t n_was = 0;
	cmv_buf ev = CMV_BUF_INIT((size_t)1 << 30);
	const cJSON *fa = cJSON_GetObjectItemCaseSensitive(m->table, "faulted");
	const char *topts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->table, "options"));
	/* the same options as last time: what left stays gone while it fits, whatever a fresh cut would take */
	bool same = topts && !strcmp(topts, m->okey.ptr) && live_plain(m, m->r.tokens_full) > m->r.budget;
	/*
	 * Each id with how many of its pages left: two pages of the same
	 * content (a result read twice) have one id, and only as many of them
	 * as left last time leave again, the first in the order as a cut takes
	 * them. Marking every page of the id would stub one the last request
	 * had whole, and break its prefix.
	 */
	size_t c;
	if (m->table && cmv_pager__note_take(&ev, m->repo, &m->o, m->note_key, "evicted")) {
		for (char *s = ev.ptr, *nl; s && !error && (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
			*nl = '\0';
			c = 0;
			cmv__strmap_get(&was, s, &c, NULL);
			error = cmv__strmap_put(&was, s, c + 1, NULL);
		}
	}
	cmv_buf_dispose(&ev);
	/* a page a fault brought back goes again when its pin runs out (while pinned it is no candidate) */
	for (const cJSON *e = cJSON_IsArray(fa) ? fa->child : NULL; e && !error; e = e->next)
		if (cJSON_IsString(e)) {
			c = 0;
			cmv__strmap_get(&was, e->valuestring, &c, NULL);
			error = cmv__strmap_put(&was, e->valuestring, c + 1, NULL);
		}
	if (!error && was.n) {
		memset(p->gone, 0, p->n * sizeof(*p->gone));
		for (size_t q = 0; q < p->n_order && !error; q++)
			if (cmv__strmap_get(&was, p->pages[p->order[q]].pub.id, &c, NULL) && c > 0) {
				p->gone[p->order[q]] = true;
				n_was++;
				error = cmv__strmap_put(&was, p->pages[p->order[q]].pub.id, c - 1, NULL);
			}
		uint64_t t = 0;
		if (n_was && (n_was <= k || same) &&
		    (error = cmv_pager__eval(&t, NULL, m->out, p, GONE_AS_SET, NULL, &m->ro)) == 0) {
			/* the kept cut, when it is the billed request grown: as billed */
			if (!m->live.kept || cmv_count_anchored(m->model, t, m->live.correction) <= m->r.budget)
				*final_k = live_plain(m, t) <= m->r.budget || m->live.kept ? GONE_AS_SET : *final_k;
			else if (live_plain(m, t) <= m->r.budget) {
				/* it fits as counted, not as billed: a new batch, counted plainly from then on */
				error = cut(m, final_k, true);
			}
		}
	}
	cmv__strmap_dispose(&was);
	return error;
}

/* Render the final request and store the blobs its stubs name: every stub it holds must recall. */
static int render_final(materialization *m, size_t final_k)
{
	pager *p = &m->p;
	cJSON *writes;
	uint64_t tokens = 0;
	int error;

	/* the final rendering, and the blobs its stubs name */
	if (!(writes = cJSON_CreateArray()))
		return cmv_error__oom();
	if ((error = cmv_pager__eval(&tokens, &m->r.classes, m->out, p, final_k, writes, &m->ro)) < 0)
		goto done;
	/* a read-only store keeps nothing: its stubs recall what an earlier materialization stored, or nothing */
	for (const cJSON *w = writes->child; w && !error && !cmv_repo_is_readonly(m->repo); w = w->next) {
		cmv_id id;
		error = cmv_blob_write(&id, m->repo, w->valuestring, strlen(w->valuestring));
	}
	for (size_t q = 0; q < p->n && !error; q++) {
		page *pg = &p->pages[q];
		if (p->gone[q])
			pg->pub.state = pg->pub.kind == CMV_PAGE_BODY ? CMV_PAGE_STUBBED : CMV_PAGE_EVICTED;
	}
	if (!error)
		m->r.tokens = tokens;
	/* nothing left out: the request holds the billed one, and the anchored prediction is its size */
	if (!error && m->o.anchor && final_k == 0) {
		m->r.tokens = m->r.tokens_full;
		m->r.anchored = true;
	}
done:
	cJSON_Delete(writes);
	return error;
}

/* Fill the report from the pages as they ended: the caller (and the page table) see what was sent. */
static int fill_report(materialization *m)
{
	pager *p = &m->p;
	cmv_materialize_report *r = &m->r;

	r->fits = r->tokens <= r->budget;
	r->exact = m->model->exact;
	r->turns = p->n_groups;
	for (size_t q = 0; q < p->n; q++) {
		page *pg = &p->pages[q];
		/* a body inside an evicted turn went with it */
		if (pg->pub.kind == CMV_PAGE_BODY && p->gone[p->group_page[pg->pub.turn]])
			pg->pub.state = CMV_PAGE_EVICTED;
		r->resident += pg->pub.state == CMV_PAGE_RESIDENT;
		r->stubbed += pg->pub.state == CMV_PAGE_STUBBED;
		r->evicted += pg->pub.state == CMV_PAGE_EVICTED;
		if (pg->pub.pinned) {
			r->pinned++;
			if (pg->pub.kind == CMV_PAGE_GROUP)
				r->pinned_tokens += pg->pub.tokens;
		}
	}
	if (p->n && !(r->pages = cmv__calloc(p->n, sizeof(*r->pages))))
		return cmv_error__oom();
	for (size_t q = 0; q < p->n; q++)
		r->pages[q] = p->pages[q].pub;
	r->n_pages = p->n;
	return 0;
}

/* Write the page table back: the next call with this tip is a lookup, and the next after an append may splice. */
static int save_table(materialization *m)
{
	if (!m->o.state_branch || cmv_repo_is_readonly(m->repo))
		return 0;
	return cmv_pager__table_save(m->repo, &m->o, m->note_key, m->okey.ptr, m->tip, &m->p, &m->r, m->out, &m->ro);
}

/*
 * The whole work's candidates that hold the billed request: the one with
 * nothing out, when nothing was out then; the kept cut, when the page
 * table's request is the billed one (or grew from it). Either only while
 * the conversation holds the billed one's whole.
 */
static int live_whole(materialization *m)
{
	cmv_id t;
	bool holds = false;
	int error;
	m->live.k0 = m->live.kept = false;
	if (!m->live.billed)
		return 0;
	bool kept = m->live.bill.gone && m->table && table_tip(&t, m->table) && live_holds_kept(m, &t);
	if ((m->live.bill.gone && !kept) || (error = live_conv_holds(m, &holds)) < 0)
		return m->live.bill.gone && !kept ? 0 : error;
	m->live.k0 = holds && !m->live.bill.gone;
	m->live.kept = holds && kept;
	return 0;
}

/* The whole work: the branch loaded, pinned, cut to fit, rendered, and its report and page table written. */
static int materialize_whole(materialization *m)
{
	size_t k = 0, final_k = 0;
	int error;

	if ((error = load_pages(m)) < 0 || (error = pin_pages(m)) < 0 || (error = leave_order(m)) < 0 ||
	    (error = live_whole(m)) < 0 || (error = cut(m, &k, false)) < 0 || (error = keep_last_cut(m, k, &final_k)) < 0)
		return error;
	/* the request holds the billed one: nothing out when nothing was out then, or the kept cut */
	m->live.anchored = (m->live.k0 && final_k == 0) || (m->live.kept && final_k == GONE_AS_SET);
	if ((error = render_final(m, final_k)) < 0 || (error = fill_report(m)) < 0)
		return error;
	return save_table(m);
}

size_t cmv__pager_whole;

int cmv_materialize(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip,
		    const cmv_model *model, cmv_tok *tok, const cmv_pager_options *opts)
{
	materialization m;
	int error = 0, kept;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(tok);
	if (rep) {
		/* a report used before: what it held goes, so a loop that reuses one leaks nothing */
		unsigned int version = rep->version ? rep->version : 1;
		cmv_materialize_report_dispose(rep);
		/* a caller built against an older layout has a shorter struct */
		memset(rep, 0, CMV_MATERIALIZE_REPORT_SIZE(version));
		rep->version = version;
	}
	resolve_options(&m, out, repo, tip, model, tok, opts);
	/*
	 * One transaction for the whole call: the hundreds of reads of a load
	 * take the store's lock once, not once each, and the blobs and the page
	 * table land together or not at all.
	 */
	if ((error = cmv_repo_txn_begin(repo)) < 0) {
		cmv_buf_dispose(&m.p.scratch);
		return error;
	}
	live_setup(&m);
	if ((kept = try_table(&m)) == 0)
		kept = try_splice(&m);
	if (kept < 0)
		error = kept;
	else if (!kept && (error = materialize_whole(&m)) == 0)
		cmv__pager_whole++;
	if (error < 0)
		cmv_repo_txn_rollback(repo);
	else
		error = cmv_repo_txn_commit(repo);
	/* after the commit, which can fail too: a failed call hands back no report */
	if (error == 0 && rep) {
		unsigned int version = rep->version >= 2 ? CMV_MATERIALIZE_REPORT_VERSION : 1;
		memcpy(rep, &m.r, CMV_MATERIALIZE_REPORT_SIZE(version));
		rep->version = version;
		/* whichever path made it (the table, a splice, the whole work), the promise it keeps */
		rep->margin = model->margin;
		rep->billed_budget = m.o.budget ? m.o.budget
			: model->context_window > model->max_output ? model->context_window - model->max_output : 0;
		if (m.live.anchored && version >= 2) {
			/* the page table keeps plain counts; the report says the request as it will be billed */
			uint64_t plain = rep->tokens;
			rep->anchored = true;
			rep->tokens = cmv_count_anchored(model, plain, m.live.correction);
			rep->correction = (int64_t)rep->tokens - (int64_t)plain; /* as applied: a correction down is bounded */
			if (!rep->stubbed && !rep->evicted)
				rep->tokens_full = rep->tokens;
			rep->fits = rep->tokens <= rep->budget;
		} else if (m.o.live_key && version >= 2) {
			/* not anchored: the plain count, scaled by the rate where the branch's bills ran over its counts */
			uint64_t plain = rep->tokens;
			rep->anchored = false;
			rep->tokens = live_plain(&m, plain);
			rep->correction = (int64_t)rep->tokens - (int64_t)plain;
			rep->tokens_full = live_plain(&m, rep->tokens_full);
			rep->fits = rep->tokens <= rep->budget;
		}
	}
	else
		cmv_materialize_report_dispose(&m.r);
	if (opts && opts->version >= 3 && opts->live_key && opts->live_why) {
		uint32_t pm = m.live.rate.rate_pm;
		if (error == 0 && m.live.anchored)
			opts->live_why[0] = '\0';
		else if (pm > 1000)
			snprintf(opts->live_why, CMV_PAGER_WHY_MAX, "%.80s; scaled x%u.%03u, the last bill's rate", m.live.why,
				 pm / 1000, pm % 1000);
		else
			snprintf(opts->live_why, CMV_PAGER_WHY_MAX, "%s", m.live.why);
	}
	cJSON_Delete(m.table);
	cmv_buf_dispose(&m.okey);
	cmv_pager__dispose(&m.p);
	return error;
}
