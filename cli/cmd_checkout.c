/* SPDX-License-Identifier: MIT */
/* cmv checkout BRANCH: make a branch the current one. */
#include "cmd.h"

static const char *c_branch;
const cli_opt opts_checkout[] = {
	{ OPT_ARG, "BRANCH", 0, NULL, "the branch to make current", &c_branch, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(checkout)
{
	CLI_PARSE("checkout");
	c_branch = cli_ref_arg(ctx, c_branch);
	if (cmv_head_set(ctx->repo, c_branch) < 0)
		return cli_fail("cannot check out");
	printf("on branch '%s'\n", c_branch);
	return EXIT_OK;
}
