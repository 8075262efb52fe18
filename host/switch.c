/* SPDX-License-Identifier: MIT */
/*
 * Switching a branch's model, and booking usage to models.
 *
 * Invariants
 *  1. A switch is one transaction: the fit check (whose page table is kept),
 *     the branch made (restore-then-switch), the reference, the usage
 *     segment and the one switch event; refused, nothing of it is written.
 *  2. Usage is booked to the model that was called, by signature, never to
 *     whatever segment happens to be current (cmv_usage_record_for).
 *  3. Costs are priced from the registry as it is today: a segment stores
 *     tokens, which do not go stale; a price may.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include "host_priv.h"

void cmv_switch_options_init(cmv_switch_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->version = CMV_SWITCH_OPTIONS_VERSION;
}

int cmv_switch(cmv_switch_report *rep, cmv_repo *repo, const char *branch, const cmv_model_handle *model,
	       const cmv_switch_options *opts)
{
	cmv_switch_options o;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report mr = { 0 };
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), old = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_switch_report r;
	cmv_ref *ref = NULL;
	cmv_id tip;
	char detail[2048];
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(model);
	memset(&r, 0, sizeof(r));
	memset(&mr, 0, sizeof(mr));
	r.version = CMV_SWITCH_REPORT_VERSION;
	cmv_id_clear(&tip);
	cmv_switch_options_init(&o);
	if (opts)
		memcpy(&o, opts, opts->version >= 2 ? sizeof(o) : offsetof(cmv_switch_options, tools_as_text));
	po.budget = o.budget;
	po.keep_turns = o.keep_turns;
	po.stub_pinned = o.stub_pinned;
	po.state_branch = branch;
	if ((error = cmv_repo_txn_begin(repo)) < 0)
		return error;
	if (o.from) {
		/* restore, then switch: the branch is made where the snapshot is, in the same step */
		if ((error = cmv_resolve(&tip, repo, o.from)) < 0 ||
		    (error = cmv_branch_create(repo, branch, &tip, o.from)) < 0)
			goto done;
		r.created = true;
	} else {
		if ((error = cmv_ref_lookup(&ref, repo, branch)) < 0)
			goto done;
		if (ref->type != CMV_REF_BRANCH) {
			error = cmv_error__set(CMV_EINVALID, "'%s' is not a branch: a switch is recorded on a branch "
					       "(restore it first: switch with a from)", branch);
			goto done;
		}
		tip = ref->target;
	}
	if (cmv_branch_llm_get(&old, repo, branch) < 0)
		cmv_error_clear();
	if (!cmv_id_is_none(&tip) && !o.tools_as_text) {
		/* what the session uses and the model lacks, before anything else: named, nothing recorded */
		const cmv_model *m = cmv_model_handle_profile(model);
		cmv_token_stats ts;
		memset(&ts, 0, sizeof(ts));
		if ((!m->tools || !m->images) &&
		    (error = cmv_count_conversation(&ts, repo, &tip, m, cmv_model_handle_tok(model))) < 0)
			goto done;
		if ((!m->tools && ts.tool_calls) || (!m->images && ts.images)) {
			error = cmv_error__set(CMV_EINVALID,
					       "cannot switch %s to %s: the model has no %s%s%s, and the session uses %s "
					       "(switch with tools as text to carry them as text)",
					       branch, cmv_model_handle_ref(model), !m->tools && ts.tool_calls ? "tool calling" : "",
					       !m->tools && ts.tool_calls && !m->images && ts.images ? " and no " : "",
					       !m->images && ts.images ? "images" : "",
					       !m->tools && ts.tool_calls && !m->images && ts.images ? "both"
					       : !m->tools && ts.tool_calls ? "tool calls" : "images");
			goto done;
		}
	}
	if (!cmv_id_is_none(&tip)) {
		/*
		 * Anchored when the branch's last billed call was billed for this
		 * model (a return to it): the request is predicted from that bill.
		 */
		cmv_count_anchor an;
		if (cmv_count_anchor_find(&an, repo, &tip, cmv_model_handle_profile(model), cmv_model_handle_tok(model),
					  model->models) < 0) {
			cmv_error_clear();
			an.found = false;
		}
		if (an.found)
			po.anchor = &an;
		/* the working set for the new model first: a switch that cannot fit records nothing */
		if ((error = cmv_materialize_for(&body, &mr, repo, &tip, model, &po)) < 0) {
			if (error == CMV_EBUDGET)
				cmv_error__prefix("cannot switch %s to %s: ", branch, cmv_model_handle_ref(model));
			goto done;
		}
		r.budget = mr.budget;
		r.tokens = mr.tokens;
		r.tokens_full = mr.tokens_full;
		r.stubbed = mr.stubbed;
		r.evicted = mr.evicted;
		/* what the new model cannot know from the conversation alone: calls whose outcome is unknown */
		cmv_ledger *l = NULL;
		if ((error = cmv_ledger_build(&l, repo, &tip, branch)) < 0)
			goto done;
		r.in_flight = l->in_flight;
		r.in_flight_effects = l->in_flight_effects;
		cmv_ledger_free(l);
	}
	snprintf(detail, sizeof(detail),
		 "{\"budget\":%llu,\"tokens\":%llu,\"tokens_full\":%llu,\"stubbed\":%zu,\"evicted\":%zu%s",
		 (unsigned long long)r.budget, (unsigned long long)r.tokens, (unsigned long long)r.tokens_full,
		 r.stubbed, r.evicted, r.in_flight_effects ? "" : "}");
	if (r.in_flight_effects)
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), ",\"in_flight_side_effects\":%zu}",
			 r.in_flight_effects);
	if (o.version >= 2 && o.reason) {
		/* the reason, escaped as JSON, inside the object */
		char cut[512];
		snprintf(cut, sizeof(cut), "%s", o.reason); /* a long upstream message is cut: the event is a record, not a log */
		cJSON *s = cJSON_CreateString(cut);
		char *q = s ? cJSON_PrintUnformatted(s) : NULL;
		size_t n = strlen(detail);
		if (q && n + strlen(q) + 12 < sizeof(detail))
			snprintf(detail + n - 1, sizeof(detail) - n + 1, ",\"reason\":%s}", q);
		cJSON_free(q);
		cJSON_Delete(s);
	}
	if ((error = cmv_branch_llm_switch(&r.event, repo, branch, cmv_model_handle_ref(model),
					   cmv_model_handle_signature(model), detail)) < 0)
		goto done;
	r.changed = !old.size || strcmp(old.ptr, cmv_model_handle_ref(model)) != 0;
done:
	if (error < 0)
		cmv_repo_txn_rollback(repo);
	else
		error = cmv_repo_txn_commit(repo);
	if (error == 0 && rep) {
		unsigned int v = rep->version;
		*rep = r;
		rep->version = v ? v : CMV_SWITCH_REPORT_VERSION;
	}
	cmv_materialize_report_dispose(&mr);
	cmv_ref_free(ref);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&old);
	return error;
}

double cmv_usage_price(const cmv_model *m, const cmv_usage *u)
{
	const cmv_model_prices *p = &m->prices;
	double usd = 0;
	/* a price is needed only for what was used: a model with no cache price bills no cache tokens */
	if ((u->input_tokens && p->input < 0) || (u->output_tokens && p->output < 0) ||
	    (u->cache_read_tokens && p->cache_read < 0) || (u->cache_write_tokens && p->cache_write < 0))
		return -1;
	if (u->input_tokens)
		usd += (double)u->input_tokens * p->input;
	if (u->output_tokens)
		usd += (double)u->output_tokens * p->output;
	if (u->cache_read_tokens)
		usd += (double)u->cache_read_tokens * p->cache_read;
	if (u->cache_write_tokens)
		usd += (double)u->cache_write_tokens * p->cache_write;
	return usd / 1e6;
}

int cmv_usage_add(double *cost, cmv_repo *repo, const char *branch, const cmv_model_handle *model,
		  const cmv_usage *u)
{
	int error;

	CMV_ASSERT_ARG(model);
	CMV_ASSERT_ARG(u);
	if (cost)
		*cost = -1;
	if ((error = cmv_usage_record_for(repo, branch, cmv_model_handle_signature(model), u->input_tokens,
					  u->output_tokens, u->cache_read_tokens, u->cache_write_tokens)) < 0)
		return error;
	if (cost)
		*cost = cmv_usage_price(cmv_model_handle_profile(model), u);
	return 0;
}

/* ---- the usage report --------------------------------------------------------- */

typedef struct {
	cJSON *segments;
	cmv_models *models;
} usage_walk;

/* A signature's profile: "provider/id[@url]" names the id; NULL when the registry has no such model. */
static const cmv_model *signature_model(cmv_models *models, const char *sig)
{
	const char *slash = strchr(sig, '/'), *at;
	const cmv_model *m = NULL;
	char id[512];
	size_t n;

	if (!slash)
		slash = sig - 1; /* a bare registry key, as older stores keep it */
	at = strchr(slash + 1, '@');
	n = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
	if (n >= sizeof(id))
		return NULL;
	memcpy(id, slash + 1, n);
	id[n] = '\0';
	if (cmv_models_resolve(&m, models, id) < 0) {
		cmv_error_clear();
		return NULL;
	}
	/* a self-hosted copy's price is not the provider's */
	return at ? NULL : m;
}

static cJSON *usage_obj(const char *sig, const cmv_usage_segment *s, double cost)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "signature", sig);
	cJSON_AddNumberToObject(o, "calls", (double)s->calls);
	cJSON_AddNumberToObject(o, "input_tokens", (double)s->input_tokens);
	cJSON_AddNumberToObject(o, "output_tokens", (double)s->output_tokens);
	cJSON_AddNumberToObject(o, "cache_read_tokens", (double)s->cache_read_tokens);
	cJSON_AddNumberToObject(o, "cache_write_tokens", (double)s->cache_write_tokens);
	if (cost >= 0)
		cJSON_AddNumberToObject(o, "cost_usd", round(cost * 1e6) / 1e6);
	else
		cJSON_AddNullToObject(o, "cost_usd");
	return o;
}

static int usage_cb(const cmv_usage_segment *s, void *payload)
{
	usage_walk *w = payload;
	const cmv_model *m = signature_model(w->models, s->signature);
	cmv_usage u = { CMV_USAGE_VERSION, s->input_tokens, s->output_tokens, s->cache_read_tokens,
			s->cache_write_tokens };
	cJSON *o = usage_obj(s->signature, s, m ? cmv_usage_price(m, &u) : -1);
	char hex[CMV_ID_HEXSZ + 1];
	cJSON_AddNumberToObject(o, "start_turn", (double)s->start_turn);
	cJSON_AddNumberToObject(o, "started", (double)s->started);
	if (cmv_id_is_none(&s->start_node))
		cJSON_AddNullToObject(o, "start_node");
	else
		cJSON_AddStringToObject(o, "start_node", cmv_id_tostr(hex, sizeof(hex), &s->start_node));
	cJSON_AddItemToArray(w->segments, o);
	return 0;
}

static double num(const cJSON *o, const char *k)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

int cmv_usage_json(cmv_buf *out, cmv_repo *repo, const char *branch)
{
	usage_walk w = { 0 };
	cJSON *root = cJSON_CreateObject(), *totals = cJSON_CreateArray();
	char *text = NULL;
	double all = 0;
	bool all_known = true;
	int error;

	CMV_ASSERT_ARG(out);
	if (!root || !totals || !(w.segments = cJSON_CreateArray())) {
		error = cmv_error__oom();
		goto done;
	}
	if ((error = cmv_models_load(&w.models, NULL)) < 0 ||
	    (error = cmv_usage_foreach(repo, branch, usage_cb, &w)) < 0)
		goto done;
	/* totals per signature, in order of first use */
	for (const cJSON *s = w.segments->child; s; s = s->next) {
		const char *sig = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "signature"));
		cJSON *t = NULL;
		for (cJSON *c = totals->child; c && !t; c = c->next)
			if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "signature")), sig))
				t = c;
		cmv_usage_segment sum = { 0 };
		sum.calls = (uint64_t)num(s, "calls") + (t ? (uint64_t)num(t, "calls") : 0);
		sum.input_tokens = (uint64_t)num(s, "input_tokens") + (t ? (uint64_t)num(t, "input_tokens") : 0);
		sum.output_tokens = (uint64_t)num(s, "output_tokens") + (t ? (uint64_t)num(t, "output_tokens") : 0);
		sum.cache_read_tokens =
			(uint64_t)num(s, "cache_read_tokens") + (t ? (uint64_t)num(t, "cache_read_tokens") : 0);
		sum.cache_write_tokens =
			(uint64_t)num(s, "cache_write_tokens") + (t ? (uint64_t)num(t, "cache_write_tokens") : 0);
		const cmv_model *m = signature_model(w.models, sig);
		cmv_usage u = { CMV_USAGE_VERSION, sum.input_tokens, sum.output_tokens, sum.cache_read_tokens,
				sum.cache_write_tokens };
		cJSON *nt = usage_obj(sig, &sum, m ? cmv_usage_price(m, &u) : -1);
		cJSON_AddNumberToObject(nt, "segments", 1 + (t ? num(t, "segments") : 0));
		if (t)
			cJSON_ReplaceItemViaPointer(totals, t, nt);
		else
			cJSON_AddItemToArray(totals, nt);
	}
	for (const cJSON *t = totals->child; t; t = t->next) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "cost_usd");
		if (cJSON_IsNumber(c))
			all += c->valuedouble;
		else if (num(t, "calls") > 0)
			all_known = false;
	}
	cJSON_AddItemToObject(root, "segments", w.segments);
	w.segments = NULL;
	cJSON_AddItemToObject(root, "totals", totals);
	totals = NULL;
	if (all_known)
		cJSON_AddNumberToObject(root, "cost_usd", round(all * 1e6) / 1e6);
	else
		cJSON_AddNullToObject(root, "cost_usd");
	if (!(text = cJSON_PrintUnformatted(root)))
		error = cmv_error__oom();
	else
		error = cmv_buf_puts(out, text);
done:
	free(text);
	cJSON_Delete(root);
	cJSON_Delete(totals);
	cJSON_Delete(w.segments);
	cmv_models_free(w.models);
	return error;
}
