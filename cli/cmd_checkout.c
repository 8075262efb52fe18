/* SPDX-License-Identifier: MIT */
/* cmv checkout BRANCH: make a branch the current one. */
#include "cmd.h"

static const char *c_branch;
static bool c_json;
const cli_opt opts_checkout[] = {
	{ OPT_ARG, "BRANCH", 0, NULL, "the branch to make current", &c_branch, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &c_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(checkout)
{
	CLI_PARSE("checkout");
	c_branch = cli_ref_arg(ctx, c_branch);
	if (cmv_head_set(ctx->repo, c_branch) < 0)
		return cli_fail("cannot check out");
	if (c_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "branch", c_branch);
		return cli_print_json(o);
	}
	printf("on branch '%s'\n", c_branch);
	return EXIT_OK;
}
