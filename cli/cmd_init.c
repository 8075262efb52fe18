/* SPDX-License-Identifier: MIT */
/*
 * cmv init [DIR]: create DIR/.cmv/ with an empty store and an empty "main"
 * branch. Without DIR the store is where every other command looks first:
 * --store PATH, else $CMV_DIR, else ./.cmv.
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *init_dir;
static bool init_json;
const cli_opt opts_init[] = {
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &init_json },
	{ OPT_ARG_OPT, "DIR", 0, NULL, "the project directory (default: --store's or $CMV_DIR's store, else the current directory)", &init_dir, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(init)
{
	cmv_repo *repo = NULL;
	cmv_buf head = CMV_BUF_INIT(4096);
	char abs[PATH_MAX];
	bool fresh;
	int rc = EXIT_OK;

	const char *store = ctx->store_arg, *env = getenv("CMV_DIR");
	struct stat st;

	CLI_PARSE("init");
	if (init_dir && store)
		return cli_usage_error(cli_find("init"), "DIR or --store, not both");
	/* `cmv init postgresql://...`: a URL names a store, not a project directory */
	if (init_dir && cmv_store_is_url(init_dir)) {
		store = init_dir;
		init_dir = NULL;
	}
	if (!init_dir && !store && env && *env)
		store = env;
	if (store && cmv_store_is_url(store)) {
		if (cmv_repo_open(&repo, store, CMV_REPO_OPEN_CREATE) < 0)
			return cli_fail("cannot create the store");
	} else if (store) {
		/* a store named by path is a folder (as cmv init makes them), unless it is an existing file */
		if (stat(store, &st) != 0 && cli_mkdirs(store) != 0)
			return cli_failf("cannot create %s: %s", store, strerror(errno));
		if (cmv_repo_open(&repo, store, CMV_REPO_OPEN_CREATE) < 0)
			return cli_fail("cannot create the store");
	} else {
		if (!init_dir)
			init_dir = ".";
		if (cmv_repo_init(&repo, init_dir) < 0)
			return cli_fail("cannot create the store");
	}
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
	cmv_buf where = CMV_BUF_INIT(PATH_MAX + 16);
	if (store && cmv_store_is_url(store))
		cmv_store_display(&where, store); /* never the password */
	else if (store)
		cmv_buf_puts(&where, realpath(store, abs) ? abs : store);
	else
		cmv_buf_printf(&where, "%s/%s", realpath(init_dir, abs) ? abs : init_dir, CMV_DIRNAME);
	if (rc == EXIT_OK && init_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "store", where.ptr);
		cJSON_AddBoolToObject(o, "fresh", fresh);
		rc = cli_print_json(o);
	} else if (rc == EXIT_OK) {
		printf("%s cmv store in %s\n", fresh ? "Initialized empty" : "Reinitialized existing", where.ptr);
	}
	cmv_buf_dispose(&where);
	cmv_buf_dispose(&head);
	cmv_repo_free(repo);
	return rc;
}
