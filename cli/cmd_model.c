/* SPDX-License-Identifier: MIT */
/*
 * cmv model [REF] [NAME]: show or set the LLM a branch runs on. NAME is a
 * registry key or alias (stored as the canonical id) or an inline JSON
 * descriptor; never an API key (the store refuses secrets). With one
 * argument: a branch name shows that branch, anything else sets the
 * current branch's model. A change starts a new usage segment.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *md_a, *md_b;
static bool md_json;
const cli_opt opts_model[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "the branch (default: the current branch)", &md_a, NULL },
	{ OPT_ARG_OPT, "NAME", 0, NULL, "a model id from 'cmv models', or a JSON descriptor", &md_b, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &md_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static bool is_branch(cli_ctx *ctx, const char *name)
{
	cmv_ref *ref = NULL;
	bool yes = cmv_ref_lookup(&ref, ctx->repo, name) == 0 && ref->type == CMV_REF_BRANCH;
	cmv_ref_free(ref);
	cmv_error_clear();
	return yes;
}

CMD(model)
{
	cmv_buf branch = CMV_BUF_INIT(CMV_BUF_SMALL), llm = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	const char *ref, *name;
	int rc = EXIT_OK;

	CLI_PARSE("model");
	md_a = cli_ref_arg(ctx, md_a);
	ref = md_a;
	name = md_b;
	if (md_a && !md_b && !is_branch(ctx, md_a)) {
		ref = NULL;
		name = md_a;
	}
	if (ref) {
		if (!is_branch(ctx, ref)) {
			rc = cli_failf("'%s' is not a branch (a snapshot's model cannot change)", ref);
			goto done;
		}
		cmv_buf_puts(&branch, ref);
	} else if ((rc = cli_current_branch(&branch, ctx)) != 0) {
		goto done;
	}
	if (cmv_models_load(&models, NULL) < 0) {
		rc = cli_fail("cannot load the model registry");
		goto done;
	}
	if (name) {
		if (name[0] != '{') {
			if (cli_model(&m, models, name) < 0) {
				rc = cli_fail("unknown model");
				goto done;
			}
			name = m->id;
		}
		if (cmv_branch_llm_set(ctx->repo, branch.ptr, name) < 0) {
			rc = cli_fail("cannot set the model");
			goto done;
		}
	}
	if (cmv_branch_llm_get(&llm, ctx->repo, branch.ptr) < 0) {
		if (cmv_error_last()->code != CMV_ENOTFOUND) {
			rc = cli_fail("cannot read the branch's model");
			goto done;
		}
		cmv_error_clear();
		cmv_buf_clear(&llm);
	}
	if (!m && llm.size && llm.ptr[0] != '{' && cli_model(&m, models, llm.ptr) < 0)
		cmv_error_clear();
	if (md_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "branch", branch.ptr);
		if (llm.size)
			cJSON_AddStringToObject(o, "model", llm.ptr);
		else
			cJSON_AddNullToObject(o, "model");
		if (m) {
			cJSON_AddStringToObject(o, "provider", m->provider);
			cJSON_AddStringToObject(o, "tokenizer", m->tokenizer);
			cJSON_AddBoolToObject(o, "exact", m->exact);
			cJSON_AddNumberToObject(o, "input_budget", (double)cmv_model_input_budget(m));
		}
		rc = cli_print_json(o);
	} else if (!llm.size) {
		printf("%s: no model set (cmv model %s NAME)\n", branch.ptr, branch.ptr);
	} else if (m) {
		printf("%s: %s (%s, %s tokens, %s; input budget %llu of %llu)\n", branch.ptr, llm.ptr,
		       m->provider, m->tokenizer, m->exact ? "exact" : "approximate",
		       (unsigned long long)cmv_model_input_budget(m), (unsigned long long)m->context_window);
	} else {
		printf("%s: %s\n", branch.ptr, llm.ptr);
	}
done:
	cmv_models_free(models);
	cmv_buf_dispose(&branch);
	cmv_buf_dispose(&llm);
	return rc;
}
