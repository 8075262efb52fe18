/* SPDX-License-Identifier: MIT */
/*
 * cmv recall ID: the exact bytes a stub stands for (a trim's or a page's);
 * cmv recall --query TEXT: the pages of a branch that match best, through
 * the pager's own query path, within a token budget.
 */
#include <stdlib.h>
#include "cmd.h"

static const char *r_id, *r_query, *r_budget, *r_ref, *r_model;
static bool r_json;
const cli_opt opts_recall[] = {
	{ OPT_ARG_OPT, "ID", 0, NULL, "the id a stub names (at least 7 hex digits)", &r_id, NULL },
	{ OPT_VALUE, "query", 'q', "TEXT", "instead: the pages that match TEXT best", &r_query, NULL },
	{ OPT_VALUE, "budget", 'b', "N", "with --query: at most N tokens of pages (default 2000)", &r_budget, NULL },
	{ OPT_VALUE, "from", 0, "BRANCH", "with --query: the branch to search (default: the current branch; a branch keeps a query index "
		   "that spares the next query loading it); with an ID: "
		   "record the fault on BRANCH, which keeps the page resident there for a while", &r_ref, NULL },
	{ OPT_VALUE, "model", 'm', "M", "with --query: count tokens as M does (default: the branch's, else claude-sonnet-4-5)", &r_model, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the recalled text as JSON ({\"id\" or \"query\", \"bytes\", \"text\"})", NULL, &r_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/*
 * The branch whose notes keep the query index: --from's, when it names a
 * branch, else the current one; none (an id, a detached head) is no error.
 */
static void query_branch(cmv_buf *out, cli_ctx *ctx)
{
	cmv_ref *r = NULL;
	cmv_buf_clear(out);
	if (r_ref ? cmv_ref_lookup(&r, ctx->repo, r_ref) < 0 || r->type != CMV_REF_BRANCH || cmv_buf_puts(out, r_ref) < 0
		  : cmv_head_get(out, ctx->repo) < 0)
		cmv_buf_clear(out);
	cmv_ref_free(r);
	cmv_error_clear();
}

CMD(recall)
{
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int rc = EXIT_OK;

	CLI_PARSE("recall");
	r_ref = cli_ref_arg(ctx, r_ref);
	if (!r_id == !r_query)
		return cli_usage_error(cli_find("recall"), "give an ID or --query TEXT");
	if (r_id && (r_budget || r_model))
		return cli_usage_error(cli_find("recall"), "--budget and --model go with --query");
	if (r_query) {
		cmv_models *models = NULL;
		const cmv_model *m = NULL;
		cmv_tok *tok = NULL;
		cmv_id tip;
		size_t n = 0;
		uint64_t budget = 2000;
		cmv_buf branch = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1);
		if (r_budget && (!cli_parse_u64(&budget, r_budget) || !budget))
			return cli_usage_error(cli_find("recall"), "--budget needs a positive number of tokens, not '%s'", r_budget);
		if ((rc = cli_resolve(&tip, ctx, r_ref)) != EXIT_OK)
			return rc;
		query_branch(&branch, ctx);
		cmv_buf own = CMV_BUF_INIT(CMV_BUF_SMALL);
		if (!r_model && cli_branch_model(&own, ctx, r_ref))
			r_model = cli_ref_arg_keep(cmv_buf_detach(&own));
		cmv_buf_dispose(&own);
		if (cmv_models_load(&models, NULL) < 0 || cli_model(&m, models, r_model ? r_model : CLI_DEFAULT_MODEL) < 0 ||
		    cmv_tok_load(&tok, m->tokenizer, NULL) < 0)
			rc = cli_fail("cannot load the model");
		else if (cmv_recall_query(&out, &n, ctx->repo, &tip, branch.size ? branch.ptr : NULL, m, tok, r_query, budget) < 0)
			rc = cli_fail("the query failed");
		else if (!n)
			fprintf(stderr, "cmv: no page matches '%s'\n", r_query);
		cmv_tok_free(tok);
		cmv_models_free(models);
		cmv_buf_dispose(&branch);
	} else if (cmv_recall(&out, ctx->repo, r_id) < 0) {
		rc = cli_fail("cannot recall it");
	} else if (r_ref && cmv_pager_fault(ctx->repo, r_ref, r_id) < 0) {
		rc = cli_fail("cannot record the fault");
	}
	if (rc == EXIT_OK && r_json) {
		cJSON *o = cJSON_CreateObject();
		if (r_id)
			cJSON_AddStringToObject(o, "id", r_id);
		else
			cJSON_AddStringToObject(o, "query", r_query);
		cJSON_AddNumberToObject(o, "bytes", (double)out.size);
		cJSON_AddStringToObject(o, "text", out.size ? out.ptr : "");
		rc = cli_print_json(o);
	} else if (rc == EXIT_OK && out.size && fwrite(out.ptr, 1, out.size, stdout) != out.size)
		rc = cli_failf("cannot write to stdout");
	cmv_buf_dispose(&out);
	return rc;
}
