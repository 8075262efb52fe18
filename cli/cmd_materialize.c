/* SPDX-License-Identifier: MIT */
/*
 * cmv materialize: the request a model is sent for a branch, within its
 * budget (the pager decides what is resident); cmv fit: for each model,
 * whether the branch fits and what would be paged out, sending nothing;
 * cmv tool-schema: the recall tool's definition for a host to add.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *m_ref, *m_model, *m_budget, *m_format, *m_query, *m_pins, *m_report, *m_keep, *m_out;
static bool m_pretty, m_stateless, m_json;
const cli_opt opts_materialize[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &m_ref, NULL },
	{ OPT_VALUE, "model", 'm', "M", "the model the request is for (default: the branch's, see cmv model)", &m_model, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "tokens the request may use (default: window - output reserve - margin)", &m_budget, NULL },
	{ OPT_VALUE, "format", 'f', "FORMAT", "anthropic, openai-chat, openai-responses or gemini (default: the model's API)", &m_format, NULL },
	{ OPT_VALUE, "query", 'q', "TEXT", "fault in the pages that match TEXT best", &m_query, NULL },
	{ OPT_VALUE, "pin", 0, "ID,...", "keep these pages resident (ids from stubs)", &m_pins, NULL },
	{ OPT_VALUE, "keep-turns", 0, "K", "the last K turns stay verbatim (default 2)", &m_keep, NULL },
	{ OPT_VALUE, "report", 0, "FILE", "write the report as JSON to FILE (default: a short table on stderr)", &m_report, NULL },
	{ OPT_VALUE, "output", 'o', "FILE", "write the request to FILE instead of standard output", &m_out, NULL },
	{ OPT_FLAG, "pretty", 0, NULL, "indent the request", NULL, &m_pretty },
	{ OPT_FLAG, "stateless", 0, NULL, "ignore and keep no page table (a branch keeps one per model by default)", NULL, &m_stateless },
	{ OPT_FLAG, "json", 0, NULL, "print {\"report\", \"request\"} as one JSON document (with --output: the report only)", NULL, &m_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *sw_ref, *sw_model, *sw_budget, *sw_out, *sw_from;
static bool sw_json, sw_tools_as_text;
const cli_opt opts_switch[] = {
	{ OPT_ARG_OPT, "BRANCH", 0, NULL, "the branch (default: the current branch)", &sw_ref, NULL },
	{ OPT_VALUE, "from", 0, "REF", "restore, then switch: make BRANCH (new) at REF, a snapshot, in the same step", &sw_from,
	  NULL },
	{ OPT_VALUE, "model", 'm', "M", "the model to switch to (required)", &sw_model, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "tokens the request may use (default: the model's budget)", &sw_budget, NULL },
	{ OPT_VALUE, "output", 'o', "FILE", "also write the request to FILE", &sw_out, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the report as JSON", NULL, &sw_json },
	{ OPT_FLAG, "tools-as-text", 0, NULL, "to a model without tool calling or images: carry calls and results as text, images as placeholders (else refused)", NULL, &sw_tools_as_text },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *f_ref, *f_models, *f_budget;
static bool f_json;
const cli_opt opts_fit[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &f_ref, NULL },
	{ OPT_VALUE, "model", 'm', "M,...", "the models to check (default: the branch's, see cmv model)", &f_models, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "check against N tokens instead of each model's budget", &f_budget, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &f_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *s_format;
const cli_opt opts_tool_schema[] = {
	{ OPT_VALUE, "format", 'f', "FORMAT", "anthropic or openai (default anthropic)", &s_format, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *state_name(cmv_page_state s)
{
	return s == CMV_PAGE_RESIDENT ? "resident" : s == CMV_PAGE_STUBBED ? "stubbed" : "evicted";
}

/* The report as JSON: totals, classes, and the pages that are not resident. */
static cJSON *report_json(const cmv_materialize_report *r, const cmv_model *m)
{
	cJSON *o = cJSON_CreateObject(), *cl, *pages;
	cJSON_AddStringToObject(o, "model", m->id);
	cJSON_AddStringToObject(o, "tokenizer", m->tokenizer);
	cJSON_AddBoolToObject(o, "exact", r->exact);
	/* the promise: billed_budget is what may be billed; budget what the count may reach, margins kept */
	cJSON_AddNumberToObject(o, "budget", (double)r->budget);
	cJSON_AddNumberToObject(o, "billed_budget", (double)r->billed_budget);
	cJSON_AddNumberToObject(o, "margin", r->margin);
	cJSON_AddNumberToObject(o, "margin_tokens", (double)m->margin_tokens);
	cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
	cJSON_AddNumberToObject(o, "tokens_full", (double)r->tokens_full);
	cJSON_AddBoolToObject(o, "fits", r->fits);
	/* counted from what was billed for the branch's last call, plus what came since */
	cJSON_AddBoolToObject(o, "anchored", r->anchored);
	cJSON_AddNumberToObject(o, "correction", (double)r->correction);
	cJSON_AddNumberToObject(o, "turns", (double)r->turns);
	cJSON_AddNumberToObject(o, "pages", (double)r->n_pages);
	cJSON_AddNumberToObject(o, "resident", (double)r->resident);
	cJSON_AddNumberToObject(o, "stubbed", (double)r->stubbed);
	cJSON_AddNumberToObject(o, "evicted", (double)r->evicted);
	cJSON_AddNumberToObject(o, "pinned", (double)r->pinned);
	cl = cJSON_AddObjectToObject(o, "classes");
	cJSON_AddNumberToObject(cl, "text", (double)r->classes.text);
	cJSON_AddNumberToObject(cl, "tool_calls", (double)r->classes.tool_calls);
	cJSON_AddNumberToObject(cl, "tool_results", (double)r->classes.tool_results);
	cJSON_AddNumberToObject(cl, "thinking", (double)r->classes.thinking);
	cJSON_AddNumberToObject(cl, "images", (double)r->classes.images);
	cJSON_AddNumberToObject(cl, "other", (double)r->classes.other);
	cJSON_AddNumberToObject(cl, "overhead", (double)r->classes.overhead);
	pages = cJSON_AddArrayToObject(o, "paged_out");
	for (size_t i = 0; i < r->n_pages; i++) {
		const cmv_page *p = &r->pages[i];
		if (p->state == CMV_PAGE_RESIDENT)
			continue;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "id", p->id);
		cJSON_AddStringToObject(x, "kind", p->kind == CMV_PAGE_BODY ? "body" : "turn");
		cJSON_AddStringToObject(x, "state", state_name(p->state));
		cJSON_AddNumberToObject(x, "turn", (double)p->turn);
		cJSON_AddNumberToObject(x, "tokens", (double)p->tokens);
		cJSON_AddItemToArray(pages, x);
	}
	return o;
}

static int load_model(const cmv_model **m, cmv_models **models, cmv_tok **tok, const char *name)
{
	if (cmv_models_load(models, NULL) < 0)
		return cli_fail("cannot load the model profiles");
	if (cli_model(m, *models, name) < 0)
		return cli_fail("unknown model");
	if (cmv_tok_load(tok, (*m)->tokenizer, NULL) < 0)
		return cli_fail("cannot load the tokenizer");
	return EXIT_OK;
}

CMD(materialize)
{
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep;
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	char **pins = NULL;
	size_t n_pins = 0;
	cmv_id tip;
	int rc;

	cmv_buf own = CMV_BUF_INIT(CMV_BUF_SMALL);

	cmv_materialize_report_init(&rep);
	CLI_PARSE("materialize");
	if (m_json && m_report)
		return cli_usage_error(cli_find("materialize"), "--json prints the report: no --report");
	m_ref = cli_ref_arg(ctx, m_ref);
	if (!m_model && cli_branch_model(&own, ctx, m_ref))
		m_model = cli_ref_arg_keep(cmv_buf_detach(&own));
	cmv_buf_dispose(&own);
	if (!m_model)
		return cli_usage_error(cli_find("materialize"), "--model is required: the branch has none (set one with cmv model NAME)");
	if (m_budget && (!cli_parse_u64(&po.budget, m_budget) || !po.budget))
		return cli_usage_error(cli_find("materialize"), "--budget needs a positive number of tokens, not '%s'", m_budget);
	if (m_keep) {
		uint64_t k;
		if (!cli_parse_u64(&k, m_keep) || !k)
			return cli_usage_error(cli_find("materialize"), "--keep-turns needs a positive number, not '%s'", m_keep);
		po.keep_turns = (size_t)k;
	}
	if (m_format) {
		cmv_render_target t;
		if (cmv_render_target_parse(&t, m_format) < 0)
			return cli_usage_error(cli_find("materialize"), "unknown format '%s' (anthropic, openai-chat, openai-responses, gemini)", m_format);
		po.target = (int)t;
	}
	if ((rc = cli_resolve(&tip, ctx, m_ref)) != EXIT_OK || (rc = load_model(&m, &models, &tok, m_model)) != EXIT_OK)
		goto done;
	if (m_pins) {
		pins = cli_split_commas(m_pins, &n_pins);
		po.pins = (const char *const *)pins;
		po.n_pins = n_pins;
	}
	po.query = m_query;
	po.render_flags = m_pretty ? CMV_RENDER_PRETTY : 0;
	/* a branch keeps its page table: an append does not move the cut (docs/pager.md) */
	cmv_buf branch = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
	if (!m_stateless) {
		cmv_ref *r = NULL;
		if (m_ref ? (cmv_ref_lookup(&r, ctx->repo, m_ref) == 0 && r->type == CMV_REF_BRANCH && cmv_buf_puts(&branch, m_ref) == 0)
			  : cli_current_branch(&branch, ctx) == 0)
			po.state_branch = branch.ptr;
		cmv_ref_free(r);
		cmv_error_clear();
	}
	int merr = cmv_materialize(&out, &rep, ctx->repo, &tip, m, tok, &po);
	cmv_buf_dispose(&branch);
	if (merr < 0) {
		rc = cli_fail("materialize failed");
		goto done;
	}
	FILE *fp = m_out ? fopen(m_out, "wb") : m_json ? NULL : stdout;
	if ((m_out || !m_json) && (!fp || fwrite(out.ptr, 1, out.size, fp) != out.size || (m_out && fclose(fp) != 0))) {
		rc = cli_failf("cannot write the request%s%s: %s", m_out ? " to " : "", m_out ? m_out : "", strerror(errno));
		goto done;
	}
	cJSON *j = report_json(&rep, m);
	if (m_json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON *req = m_out ? NULL : cJSON_ParseWithLength(out.ptr, out.size);
		cJSON_AddItemToObject(doc, "report", j);
		if (m_out)
			cJSON_AddStringToObject(doc, "output", m_out);
		else if (req)
			cJSON_AddItemToObject(doc, "request", req);
		else
			cJSON_AddNullToObject(doc, "request");
		rc = cli_print_json(doc);
		goto done;
	}
	if (m_report) {
		char *s = cJSON_Print(j);
		FILE *rf = fopen(m_report, "wb");
		if (!s || !rf || fputs(s, rf) < 0 || fclose(rf) != 0) {
			if (rf)
				fclose(rf);
			rc = cli_failf("cannot write '%s': %s", m_report, strerror(errno));
		}
		cJSON_free(s);
	} else {
		fprintf(stderr, "%s: %llu of %llu tokens (%s%s); %zu turns; pages %zu resident, %zu stubbed, %zu evicted, %zu pinned\n",
			m->id, (unsigned long long)rep.tokens, (unsigned long long)rep.budget, rep.fits ? "fits" : "does not fit",
			rep.exact ? "" : ", approximate tokenizer", rep.turns, rep.resident, rep.stubbed, rep.evicted, rep.pinned);
	}
	cJSON_Delete(j);
done:
	cmv_materialize_report_dispose(&rep);
	free(pins);
	cmv_tok_free(tok);
	cmv_models_free(models);
	cmv_buf_dispose(&out);
	return rc;
}

CMD(fit)
{
	cmv_models *models = NULL;
	char **names = NULL;
	size_t n = 0;
	uint64_t budget = 0;
	cmv_id tip;
	cJSON *arr = NULL;
	int rc;

	CLI_PARSE("fit");
	f_ref = cli_ref_arg(ctx, f_ref);
	cmv_buf own = CMV_BUF_INIT(CMV_BUF_SMALL);
	if (!f_models && cli_branch_model(&own, ctx, f_ref))
		f_models = cli_ref_arg_keep(cmv_buf_detach(&own));
	cmv_buf_dispose(&own);
	if (!f_models)
		return cli_usage_error(cli_find("fit"), "--model is required (one or more, comma-separated): the branch has none (set one with cmv model NAME)");
	if (f_budget && (!cli_parse_u64(&budget, f_budget) || !budget))
		return cli_usage_error(cli_find("fit"), "--budget needs a positive number of tokens, not '%s'", f_budget);
	if ((rc = cli_resolve(&tip, ctx, f_ref)) != EXIT_OK)
		return rc;
	if (cmv_models_load(&models, NULL) < 0)
		return cli_fail("cannot load the model profiles");
	names = cli_split_commas(f_models, &n);
	arr = cJSON_CreateArray();
	if (!f_json)
		printf("%-22s %10s %10s %10s  %-5s %s\n", "model", "budget", "branch", "sent", "fits", "paged out");
	for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
		const cmv_model *m;
		cmv_tok *tok = NULL;
		cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
		cmv_materialize_report rep;
		cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
		cmv_materialize_report_init(&rep);
		po.budget = budget;
		if (cli_model(&m, models, names[i]) < 0) {
			rc = cli_fail("unknown model");
		} else if (cmv_tok_load(&tok, m->tokenizer, NULL) < 0) {
			rc = cli_fail("cannot load the tokenizer");
		} else {
			/*
			 * Anchored on the branch's last billed call, when it was
			 * billed for this model: the request is predicted from
			 * what the provider billed for it (cmv_count_anchor_find).
			 */
			cmv_count_anchor an;
			if (cmv_count_anchor_find(&an, ctx->repo, &tip, m, tok, models) < 0) {
				cmv_error_clear();
				memset(&an, 0, sizeof(an));
				snprintf(an.why, sizeof(an.why), "the branch's records could not be read for it");
			}
			po.anchor = &an;
			int e = cmv_materialize(&out, &rep, ctx->repo, &tip, m, tok, &po);
			cJSON *j;
			if (e == CMV_EBUDGET) {
				/* not an error of fit's: the answer is "no, not even with everything paged out" */
				j = cJSON_CreateObject();
				cJSON_AddStringToObject(j, "model", m->id);
				cJSON_AddNumberToObject(j, "budget", (double)(budget ? budget : cmv_model_input_budget(m)));
				cJSON_AddBoolToObject(j, "fits", false);
				cJSON_AddStringToObject(j, "why", cmv_error_last() ? cmv_error_last()->message : "");
				cmv_error_clear();
				/*
				 * The pager's reason, less what the columns say: the pinned
				 * part alone over the budget, or (anchored) the request as
				 * billed over it with no page that may leave.
				 */
				const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "why")), *c;
				if (why && !strncmp(why, "cannot fit ", 11) && (c = strstr(why, " tokens: ")) != NULL)
					why = c + 9;
				if (!f_json)
					printf("%-22s %10.0f %10s %10s  %-5s %s\n", m->id,
					       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "budget")), "-", "-", "no",
					       why && *why ? why : "it cannot fit");
				cJSON_AddItemToArray(arr, j);
			} else if (e < 0) {
				rc = cli_fail("fit failed");
			} else {
				size_t turns_out = 0;
				for (size_t q = 0; q < rep.n_pages; q++)
					turns_out += rep.pages[q].kind == CMV_PAGE_GROUP && rep.pages[q].state == CMV_PAGE_EVICTED;
				cmv_model again;
				cmv_buf source = CMV_BUF_INIT(4096);
				j = report_json(&rep, m);
				cJSON_AddNumberToObject(j, "turns_left_out", (double)turns_out);
				/* where the counts and their margin come from: a calibration, or the profile */
				if (cmv_model_calibrated(&again, &source, m, ctx->repo) == 0) {
					if (rep.anchored)
						cmv_buf_printf(&source, "; anchored on the branch's last billed call (a prompt "
							       "of %llu tokens): the count corrected by %+lld",
							       (unsigned long long)an.prompt, (long long)an.correction);
					else if (an.found)
						cmv_buf_printf(&source, "; not anchored: pages left, so the request is not "
							       "the billed one");
					else if (strncmp(an.why, "no call", 7))
						cmv_buf_printf(&source, "; not anchored: %s", an.why);
					cJSON_AddStringToObject(j, "counted_as", source.ptr);
				}
				cmv_error_clear();
				cJSON_AddItemToArray(arr, j);
				if (!f_json)
					printf("%-22s %10llu %10llu %10llu  %-5s %zu bodies stubbed, %zu of %zu turns left out\n"
					       "%-22s %s; billed at most %llu\n",
					       m->id, (unsigned long long)rep.budget, (unsigned long long)rep.tokens_full,
					       (unsigned long long)rep.tokens, rep.fits ? "yes" : "no", rep.stubbed, turns_out,
					       rep.turns, "", source.ptr, (unsigned long long)rep.billed_budget);
				cmv_buf_dispose(&source);
			}
		}
		cmv_materialize_report_dispose(&rep);
		cmv_buf_dispose(&out);
		cmv_tok_free(tok);
	}
	free(names);
	cmv_models_free(models);
	if (rc == EXIT_OK && f_json)
		return cli_print_json(arr);
	cJSON_Delete(arr);
	return rc;
}

CMD(tool_schema)
{
	cmv_buf out = CMV_BUF_INIT(1 << 16);
	int rc = EXIT_OK;
	(void)ctx;
	CLI_PARSE("tool-schema");
	if (cmv_recall_tool_schema(&out, s_format ? s_format : "anthropic") < 0)
		rc = cli_usage_error(cli_find("tool-schema"), "unknown format '%s' (anthropic, openai)", s_format);
	else
		printf("%s\n", out.ptr);
	cmv_buf_dispose(&out);
	return rc;
}

CMD(switch)
{
	cmv_switch_options so;
	cmv_switch_report rep = { 0 };
	cmv_model_handle *h = NULL;
	const cmv_model *m = NULL;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT), branch = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1),
		old = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_ref *r = NULL;
	cmv_id tip;
	int rc;

	cmv_switch_options_init(&so);
	CLI_PARSE("switch");
	sw_ref = cli_ref_arg(ctx, sw_ref);
	if (!sw_model)
		return cli_usage_error(cli_find("switch"), "--model is required");
	if (sw_budget && (!cli_parse_u64(&so.budget, sw_budget) || !so.budget))
		return cli_usage_error(cli_find("switch"), "--budget needs a positive number of tokens, not '%s'", sw_budget);
	so.from = sw_from;
	so.tools_as_text = sw_tools_as_text;
	if (sw_from && !sw_ref)
		return cli_usage_error(cli_find("switch"), "--from needs the BRANCH to make");
	if (sw_from) {
		cmv_buf_puts(&branch, sw_ref);
	} else if (sw_ref) {
		if (cmv_ref_lookup(&r, ctx->repo, sw_ref) < 0 || r->type != CMV_REF_BRANCH) {
			cmv_ref_free(r);
			cmv_error_clear();
			return cli_failf("'%s' is not a branch (a switch is recorded on a branch)", sw_ref);
		}
		cmv_ref_free(r);
		cmv_buf_puts(&branch, sw_ref);
	} else if ((rc = cli_current_branch(&branch, ctx)) != EXIT_OK) {
		return rc;
	}
	if ((rc = cli_resolve(&tip, ctx, sw_from ? sw_from : branch.ptr)) != EXIT_OK)
		goto done;
	/* a registry key, an alias or an inline descriptor: the library resolves them all alike */
	if (cmv_model_handle_open(&h, ctx->repo, sw_model) < 0) {
		rc = cli_fail("unknown model");
		goto done;
	}
	m = cmv_model_handle_profile(h);
	if (cmv_branch_llm_get(&old, ctx->repo, branch.ptr) < 0)
		cmv_error_clear();
	/* the fit check, the reference, the segment and the one event, in one transaction */
	int merr = cmv_switch(&rep, ctx->repo, branch.ptr, h, &so);
	if (merr < 0) {
		/* what is pinned cannot fit: paging is not enough, a summary is (it is the user's call) */
		rc = cli_failf("%s%s%s%s", cmv_error_last() ? cmv_error_last()->message : "switch failed",
			       merr == CMV_EBUDGET ? "\nhint: 'cmv compact " : "", merr == CMV_EBUDGET ? branch.ptr : "",
			       merr == CMV_EBUDGET ? " --for MODEL' summarizes only what does not fit, into a new branch" : "");
		goto done;
	}
	if (sw_out) {
		cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
		cmv_materialize_report mr = { .version = CMV_MATERIALIZE_REPORT_VERSION };
		po.budget = so.budget;
		po.state_branch = branch.ptr;
		int e = cmv_materialize_for(&out, &mr, ctx->repo, &tip, h, &po);
		cmv_materialize_report_dispose(&mr);
		if (e < 0) {
			rc = cli_fail("cannot write the request");
			goto done;
		}
	}
	if (sw_out) {
		FILE *fp = fopen(sw_out, "wb");
		if (!fp || fwrite(out.ptr, 1, out.size, fp) != out.size || fclose(fp) != 0) {
			rc = cli_failf("cannot write '%s': %s", sw_out, strerror(errno));
			goto done;
		}
	}
	/* calls whose outcome is unknown: the new model is told with each call; the user is told here */
	cmv_buf pending = CMV_BUF_INIT(CMV_BUF_CONTENT);
	if (rep.in_flight_effects) {
		cmv_ledger *l = NULL;
		if (cmv_ledger_build(&l, ctx->repo, &tip, branch.ptr) == 0)
			cmv_ledger_in_flight_text(&pending, l, 10);
		cmv_ledger_free(l);
		cmv_error_clear();
		fprintf(stderr, "cmv: warning: %zu call%s with side effects %s in flight (outcome unknown; 'cmv ledger %s "
				"--in-flight'):\n%s\n",
			rep.in_flight_effects, rep.in_flight_effects == 1 ? "" : "s", rep.in_flight_effects == 1 ? "is" : "are",
			branch.ptr, pending.ptr ? pending.ptr : "");
	}
	if (sw_json) {
		cJSON *j = cJSON_CreateObject();
		char hex[CMV_ID_HEXSZ + 1];
		cJSON_AddNumberToObject(j, "in_flight", (double)rep.in_flight);
		cJSON_AddNumberToObject(j, "in_flight_side_effects", (double)rep.in_flight_effects);
		cJSON *pl = cJSON_AddArrayToObject(j, "in_flight_calls");
		for (char *line = pending.size ? pending.ptr : NULL, *nl; line; line = nl ? nl + 1 : NULL) {
			if ((nl = strchr(line, '\n')))
				*nl = '\0';
			cJSON_AddItemToArray(pl, cJSON_CreateString(line));
		}
		cJSON_AddStringToObject(j, "model", m->id);
		cJSON_AddStringToObject(j, "to", cmv_model_handle_ref(h));
		cJSON_AddStringToObject(j, "signature", cmv_model_handle_signature(h));
		cJSON_AddStringToObject(j, "tokenizer", m->tokenizer);
		cJSON_AddBoolToObject(j, "exact", m->exact);
		cJSON_AddNumberToObject(j, "budget", (double)rep.budget);
		cJSON_AddNumberToObject(j, "tokens", (double)rep.tokens);
		cJSON_AddNumberToObject(j, "tokens_full", (double)rep.tokens_full);
		cJSON_AddBoolToObject(j, "fits", rep.tokens <= rep.budget);
		cJSON_AddNumberToObject(j, "stubbed", (double)rep.stubbed);
		cJSON_AddNumberToObject(j, "evicted", (double)rep.evicted);
		cJSON_AddBoolToObject(j, "changed", rep.changed);
		if (!cmv_id_is_none(&rep.event))
			cJSON_AddStringToObject(j, "event", cli_id(&rep.event, hex));
		cJSON_AddStringToObject(j, "branch", branch.ptr);
		if (old.size)
			cJSON_AddStringToObject(j, "from", old.ptr);
		rc = cli_print_json(j);
	} else {
		printf("%s: %s -> %s; %llu of %llu tokens (%s); pages %zu stubbed, %zu evicted\n", branch.ptr,
		       old.size ? old.ptr : "(no model)", m->id, (unsigned long long)rep.tokens, (unsigned long long)rep.budget,
		       rep.tokens <= rep.budget ? "fits" : "does not fit", rep.stubbed, rep.evicted);
	}
	cmv_buf_dispose(&pending);
done:
	cmv_model_handle_free(h);
	cmv_buf_dispose(&out);
	cmv_buf_dispose(&branch);
	cmv_buf_dispose(&old);
	return rc;
}
