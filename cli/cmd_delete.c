/* SPDX-License-Identifier: MIT */
/* cmv delete NAME: drop a branch or snapshot; its content stays until `cmv gc`. */
#include "cmd.h"

static const char *d_name;
const cli_opt opts_delete[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the branch or snapshot to delete", &d_name, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(delete)
{
	CLI_PARSE("delete");
	if (cmv_ref_delete(ctx->repo, d_name) < 0)
		return cli_fail("cannot delete");
	printf("deleted '%s' (its content stays until 'cmv gc')\n", d_name);
	return EXIT_OK;
}
