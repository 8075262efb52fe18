/* SPDX-License-Identifier: MIT */
/* cmv init [DIR]: create DIR/.cmv/ with an empty store and an empty "main" branch. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *init_dir;
const cli_opt opts_init[] = {
	{ OPT_ARG_OPT, "DIR", 0, NULL, "the project directory (default: the current one)", &init_dir, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(init)
{
	cmv_repo *repo = NULL;
	cmv_buf head = CMV_BUF_INIT(4096);
	char abs[PATH_MAX];
	bool fresh;
	int rc = EXIT_OK;

	(void)ctx;
	CLI_PARSE("init");
	if (!init_dir)
		init_dir = ".";
	if (cmv_repo_init(&repo, init_dir) < 0)
		return cli_fail("cannot create the store");
	fresh = cmv_head_get(&head, repo) == CMV_ENOTFOUND;
	cmv_error_clear();
	if (fresh) {
		cmv_ref *existing = NULL;
		int found = cmv_ref_lookup(&existing, repo, "main");
		cmv_ref_free(existing);
		if ((found == CMV_ENOTFOUND && cmv_branch_create(repo, "main", NULL, NULL) < 0) ||
		    cmv_head_set(repo, "main") < 0)
			rc = cli_fail("cannot create the main branch");
	}
	if (rc == EXIT_OK)
		printf("%s cmv store in %s/%s\n", fresh ? "Initialized empty" : "Reinitialized existing",
		       realpath(init_dir, abs) ? abs : init_dir, CMV_DIRNAME);
	cmv_buf_dispose(&head);
	cmv_repo_free(repo);
	return rc;
}
