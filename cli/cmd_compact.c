/* SPDX-License-Identifier: MIT */
/*
 * cmv compact, cmv handoff, cmv uncompact (docs/compaction.md).
 *
 * The summarizer is an LLM only when asked for (--summarizer or --llm-url);
 * otherwise, and always with --offline, the handoff is extracted from the
 * store: deterministic, and no byte leaves the machine.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

typedef struct {
	cmv_models *models;
	const cmv_model *target, *summarizer;
	cmv_tok *tok, *stok;
	cmv_llm *llm;
} setup;

static void setup_dispose(setup *s)
{
	cmv_llm_free(s->llm);
	if (s->stok != s->tok)
		cmv_tok_free(s->stok);
	cmv_tok_free(s->tok);
	cmv_models_free(s->models);
	memset(s, 0, sizeof(*s));
}

static int setup_load(setup *s, const char *target, const char *summarizer, const char *url, bool offline)
{
	memset(s, 0, sizeof(*s));
	if (cmv_models_load(&s->models, NULL) < 0)
		return cli_fail("cannot load the model profiles");
	if (cli_model(&s->target, s->models, target) < 0)
		return cli_fail("unknown model");
	if (cmv_tok_load(&s->tok, s->target->tokenizer, NULL) < 0)
		return cli_fail("cannot load the tokenizer");
	if (offline || (!summarizer && !url))
		return EXIT_OK;
	if (cli_model(&s->summarizer, s->models, summarizer ? summarizer : target) < 0)
		return cli_fail("unknown summarizer model");
	if (s->summarizer == s->target)
		s->stok = s->tok;
	else if (cmv_tok_load(&s->stok, s->summarizer->tokenizer, NULL) < 0)
		return cli_fail("cannot load the summarizer's tokenizer");
	cmv_llm_options lo = CMV_LLM_OPTIONS_INIT;
	lo.base_url = url;
	if (cmv_llm_new(&s->llm, s->summarizer, &lo) < 0)
		return cli_fail("cannot set up the summarizer");
	return EXIT_OK;
}

/* ---- compact --------------------------------------------------------------------- */

static const char *c_ref, *c_for, *c_budget, *c_summarizer, *c_url, *c_branch, *c_threshold;
static bool c_offline, c_json, c_dry;
const cli_opt opts_compact[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "what to compact (default: the current branch)", &c_ref, NULL },
	{ OPT_VALUE, "for", 0, "MODEL", "the model the result must fit (default: the branch's, see cmv model)", &c_for, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "aim below the target's window: at most N tokens", &c_budget, NULL },
	{ OPT_VALUE, "summarizer", 0, "MODEL", "summarize with this model (default: extract, no network)", &c_summarizer, NULL },
	{ OPT_VALUE, "llm-url", 0, "URL", "the summarizer's base URL (an OpenAI-compatible or Anthropic endpoint)", &c_url, NULL },
	{ OPT_FLAG, "offline", 0, NULL, "never call a model: the extractive handoff", NULL, &c_offline },
	{ OPT_VALUE, "branch", 'n', "NAME", "the new branch (default REF.compact-MODEL)", &c_branch, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "the trim stage's stub threshold (default 500)", &c_threshold, NULL },
	{ OPT_FLAG, "dry-run", 0, NULL, "report what would be done; change nothing", NULL, &c_dry },
	{ OPT_FLAG, "json", 0, NULL, "print the report as JSON", NULL, &c_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static cJSON *compact_json(const cmv_compact_report *r, const char *branch, const setup *s)
{
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *o = cJSON_CreateObject(), *cap = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "branch", branch);
	cJSON_AddStringToObject(o, "head", cli_id(&r->head, hex));
	cJSON_AddStringToObject(o, "target", s->target->id);
	cJSON_AddNumberToObject(o, "budget", (double)r->budget);
	cJSON_AddNumberToObject(o, "tokens_before", (double)r->tokens_before);
	cJSON_AddNumberToObject(o, "tokens_trimmed", (double)r->tokens_trimmed);
	cJSON_AddNumberToObject(o, "tokens_after", (double)r->tokens_after);
	cJSON_AddBoolToObject(o, "fits", r->fits);
	cJSON_AddBoolToObject(o, "passes_check", r->problems == 0);
	cJSON_AddNumberToObject(o, "problems", (double)r->problems);
	cJSON_AddNumberToObject(o, "stage", r->stage);
	cJSON_AddNumberToObject(o, "passes", r->passes);
	cJSON_AddStringToObject(o, "summarizer", s->llm ? s->summarizer->id : r->covered_nodes ? "extractive" : "none");
	cJSON_AddNumberToObject(o, "summary_tokens", (double)r->summary_tokens);
	cJSON_AddNumberToObject(o, "covered_messages", (double)r->covered_messages);
	cJSON_AddNumberToObject(o, "kept_messages", (double)r->kept_messages);
	cJSON_AddNumberToObject(o, "coverage", r->coverage);
	cJSON_AddNumberToObject(o, "entities", (double)r->entities);
	cJSON_AddNumberToObject(o, "entities_found", (double)r->entities_found);
	if (r->recall[0])
		cJSON_AddStringToObject(o, "recall", r->recall);
	cJSON_AddNumberToObject(cap, "tool_calls", (double)r->tool_calls);
	cJSON_AddStringToObject(cap, "tools_used", r->tools_used ? r->tools_used : "");
	cJSON_AddBoolToObject(cap, "target_tools", s->target->tools);
	cJSON_AddBoolToObject(cap, "tools_as_text", r->tools_as_text);
	cJSON_AddNumberToObject(cap, "images", (double)r->images);
	cJSON_AddBoolToObject(cap, "images_dropped", r->images_dropped);
	cJSON_AddNumberToObject(cap, "thinking", (double)r->thinking);
	cJSON_AddNumberToObject(cap, "in_flight_side_effects", (double)r->in_flight_effects);
	cJSON *pl = cJSON_AddArrayToObject(cap, "in_flight_calls");
	const char *line = r->in_flight && *r->in_flight ? r->in_flight : NULL;
	while (line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *one = strndup(line, n);
		cJSON_AddItemToArray(pl, cJSON_CreateString(one ? one : ""));
		free(one);
		line = nl ? nl + 1 : NULL;
	}
	cJSON_AddItemToObject(o, "capabilities", cap);
	return o;
}

CMD(compact)
{
	cmv_compact_options co = CMV_COMPACT_OPTIONS_INIT;
	cmv_compact_report rep;
	cmv_buf from = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 64);
	setup s;
	cmv_id tip;
	size_t threshold = 0;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&s, 0, sizeof(s));
	CLI_PARSE("compact");
	if (!c_for && cli_branch_model(&name, ctx, c_ref))
		c_for = cli_ref_arg_keep(cmv_buf_detach(&name));
	if (!c_for)
		return cli_usage_error(cli_find("compact"), "--for MODEL is required: the branch has none (set one with cmv model NAME)");
	if (c_budget && (!cli_parse_u64(&co.budget, c_budget) || !co.budget))
		return cli_usage_error(cli_find("compact"), "--budget needs a positive number of tokens, not '%s'", c_budget);
	if (cli_parse_threshold(&threshold, c_threshold) < 0)
		return cli_usage_error(cli_find("compact"), "--threshold needs a whole number of characters, at least %d",
				       CMV_TRIM_THRESHOLD_MIN);
	if (c_ref)
		cli_ref_canon(&from, ctx, c_ref);
	else if ((rc = cli_current_branch(&from, ctx)) != EXIT_OK)
		goto done;
	if ((rc = cli_resolve(&tip, ctx, from.ptr)) != EXIT_OK)
		goto done;
	if (c_branch)
		cmv_buf_puts(&name, c_branch);
	else
		cmv_buf_printf(&name, "%s.compact-%s", from.ptr, c_for);
	if ((rc = setup_load(&s, c_for, c_summarizer, c_url, c_offline)) != EXIT_OK)
		goto done;
	co.branch = name.ptr;
	co.from_ref = from.ptr;
	co.target = s.target;
	co.tok = s.tok;
	co.llm = s.llm;
	co.summarizer = s.summarizer;
	co.summarizer_tok = s.stok;
	co.trim_threshold = threshold;
	co.flags = c_dry ? CMV_COMPACT_DRY_RUN : 0;
	if (cmv_compact(&rep, ctx->repo, &tip, &co) < 0) {
		rc = cli_failf("cannot compact %s for %s: %s", from.ptr, s.target->id,
			       cmv_error_last() ? cmv_error_last()->message : "compaction failed");
		goto done;
	}
	if (c_json) {
		cJSON *o = compact_json(&rep, name.ptr, &s);
		cJSON_AddBoolToObject(o, "dry_run", c_dry);
		rc = cli_print_json(o);
	} else {
		printf("%s%s: %llu -> %llu tokens of %s (budget %llu; %s; checker %s)\n", c_dry ? "(dry run) " : "", name.ptr,
		       (unsigned long long)rep.tokens_before, (unsigned long long)rep.tokens_after, s.target->id,
		       (unsigned long long)rep.budget, rep.fits ? "fits" : "DOES NOT FIT",
		       rep.problems ? "FAILS" : "passes");
		printf("  trim: %llu tokens", (unsigned long long)rep.tokens_trimmed);
		if (rep.stage == 1)
			printf("; that was enough: nothing summarized\n");
		else
			printf("; summary (%s, %u passes) of %zu messages in %llu tokens, %zu messages kept verbatim\n"
			       "  coverage %.1f%% (%zu of %zu paths, numbers, identifiers and names); originals: cmv recall %.7s\n",
			       s.llm ? s.summarizer->id : "extractive", rep.passes, rep.covered_messages,
			       (unsigned long long)rep.summary_tokens, rep.kept_messages, 100.0 * rep.coverage,
			       rep.entities_found, rep.entities, rep.recall);
		if (rep.tool_calls)
			printf("  tools used: %s (%zu calls)%s\n", rep.tools_used, rep.tool_calls,
			       rep.tools_as_text ? "; the target has no tool calling: calls and results become text" : "");
		if (rep.images_dropped)
			printf("  %zu images: the target takes none; they are left out of its requests\n", rep.images);
		if (rep.thinking)
			printf("  %zu thinking blocks: replayed only where the target's provider accepts them\n", rep.thinking);
	}
	if (rep.in_flight_effects)
		fprintf(stderr, "cmv: warning: %zu call%s with side effects %s in flight: the requests to %s say the outcome is unknown "
				"('cmv ledger --in-flight'):\n%s\n",
			rep.in_flight_effects, rep.in_flight_effects == 1 ? "" : "s", rep.in_flight_effects == 1 ? "is" : "are",
			co.target->id, rep.in_flight ? rep.in_flight : "");
done:
	cmv_compact_report_dispose(&rep);
	setup_dispose(&s);
	cmv_buf_dispose(&from);
	cmv_buf_dispose(&name);
	return rc;
}

/* ---- handoff ---------------------------------------------------------------------- */

static const char *h_ref, *h_for, *h_budget, *h_summarizer, *h_url;
static bool h_offline, h_json;
const cli_opt opts_handoff[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "the conversation (default: the current branch)", &h_ref, NULL },
	{ OPT_VALUE, "for", 0, "MODEL", "count in this model's tokens (default: the branch's, else claude-sonnet-4-5)", &h_for, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "the longest document, in tokens (default 4096)", &h_budget, NULL },
	{ OPT_VALUE, "summarizer", 0, "MODEL", "write it with this model (default: extract, no network)", &h_summarizer, NULL },
	{ OPT_VALUE, "llm-url", 0, "URL", "the summarizer's base URL", &h_url, NULL },
	{ OPT_FLAG, "offline", 0, NULL, "never call a model", NULL, &h_offline },
	{ OPT_FLAG, "json", 0, NULL, "the document and its figures as JSON", NULL, &h_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(handoff)
{
	cmv_handoff_options ho = CMV_HANDOFF_OPTIONS_INIT;
	cmv_handoff_stats st;
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	setup s;
	cmv_id tip;
	int rc;

	memset(&s, 0, sizeof(s));
	CLI_PARSE("handoff");
	h_ref = cli_ref_arg(ctx, h_ref);
	if (!h_for && cli_branch_model(&out, ctx, h_ref))
		h_for = cli_ref_arg_keep(cmv_buf_detach(&out));
	if (h_budget && (!cli_parse_u64(&ho.max_tokens, h_budget) || !ho.max_tokens))
		return cli_usage_error(cli_find("handoff"), "--budget needs a positive number of tokens, not '%s'", h_budget);
	if ((rc = cli_resolve(&tip, ctx, h_ref)) != EXIT_OK ||
	    (rc = setup_load(&s, h_for ? h_for : CLI_DEFAULT_MODEL, h_summarizer, h_url, h_offline)) != EXIT_OK)
		goto done;
	ho.model = s.target;
	ho.tok = s.tok;
	ho.llm = s.llm;
	ho.summarizer = s.summarizer;
	ho.summarizer_tok = s.stok;
	if (cmv_handoff(&out, &st, ctx->repo, &tip, &ho) < 0) {
		rc = cli_fail("cannot write the handoff document");
		goto done;
	}
	if (h_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "document", out.ptr);
		cJSON_AddNumberToObject(o, "tokens", (double)st.tokens);
		cJSON_AddStringToObject(o, "model", s.target->id);
		cJSON_AddStringToObject(o, "summarizer", s.llm ? s.summarizer->id : "extractive");
		cJSON_AddNumberToObject(o, "passes", st.passes);
		cJSON_AddNumberToObject(o, "coverage", st.coverage);
		cJSON_AddNumberToObject(o, "entities", (double)st.entities);
		cJSON_AddNumberToObject(o, "entities_found", (double)st.entities_found);
		rc = cli_print_json(o);
	} else {
		fputs(out.ptr, stdout);
		fprintf(stderr, "handoff: %llu tokens of %s; coverage %.1f%% (%zu of %zu)\n", (unsigned long long)st.tokens,
			s.target->id, 100.0 * st.coverage, st.entities_found, st.entities);
	}
done:
	setup_dispose(&s);
	cmv_buf_dispose(&out);
	return rc;
}

/* ---- uncompact ------------------------------------------------------------------------ */

static const char *u_ref, *u_branch;
static bool u_json;
const cli_opt opts_uncompact[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "a compacted branch (default: the current branch)", &u_ref, NULL },
	{ OPT_VALUE, "branch", 'n', "NAME", "the restored branch (default REF.uncompacted)", &u_branch, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &u_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(uncompact)
{
	cmv_buf from = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), name = CMV_BUF_INIT(CMV_REF_NAME_MAX + 64);
	cmv_id tip, orig;
	size_t n = 0;
	char hex[CMV_ID_HEXSZ + 1];
	int rc;

	CLI_PARSE("uncompact");
	if (u_ref)
		cli_ref_canon(&from, ctx, u_ref);
	else if ((rc = cli_current_branch(&from, ctx)) != EXIT_OK)
		goto done;
	if ((rc = cli_resolve(&tip, ctx, from.ptr)) != EXIT_OK)
		goto done;
	if (cmv_uncompact(&orig, &n, ctx->repo, &tip) < 0) {
		rc = cli_failf("cannot uncompact %s: %s", from.ptr, cmv_error_last() ? cmv_error_last()->message : "failed");
		goto done;
	}
	if (u_branch)
		cmv_buf_puts(&name, u_branch);
	else
		cmv_buf_printf(&name, "%s.uncompacted", from.ptr);
	if (cmv_branch_create(ctx->repo, name.ptr, &orig, from.ptr) < 0) {
		rc = cli_fail("cannot create the restored branch");
		goto done;
	}
	rc = EXIT_OK;
	if (u_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "branch", name.ptr);
		cJSON_AddStringToObject(o, "from", from.ptr);
		cJSON_AddStringToObject(o, "head", cli_id(&orig, hex));
		cJSON_AddNumberToObject(o, "checked", (double)n);
		rc = cli_print_json(o);
	} else {
		printf("%s: the conversation %s was compacted from (%zu nodes checked), at %s\n", name.ptr, from.ptr, n,
		       cli_id(&orig, hex));
	}
done:
	cmv_buf_dispose(&from);
	cmv_buf_dispose(&name);
	return rc;
}
