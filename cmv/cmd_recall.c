/* SPDX-License-Identifier: MIT */
/* cmv recall ID: the exact bytes a trim stub stands for (the id it prints). */
#include <stdlib.h>
#include "cmd.h"

static const char *r_id;
const cli_opt opts_recall[] = {
	{ OPT_ARG, "ID", 0, NULL, "the id a stub names (at least 7 hex digits)", &r_id, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(recall)
{
	cmv_buf out = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int rc = EXIT_OK;

	CLI_PARSE("recall");
	if (cmv_recall(&out, ctx->repo, r_id) < 0)
		rc = cli_fail("cannot recall it");
	else if (out.size && fwrite(out.ptr, 1, out.size, stdout) != out.size)
		rc = cli_failf("cannot write to stdout");
	cmv_buf_dispose(&out);
	return rc;
}
