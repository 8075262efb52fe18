/* SPDX-License-Identifier: MIT */
/* cmv branch NAME [--from REF | --at NODE]: a new branch; one row, whatever the history size. */
#include <string.h>
#include "cmd.h"

static const char *b_name, *b_from, *b_at;
static bool b_checkout, b_json;
const cli_opt opts_branch[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the new branch's name", &b_name, NULL },
	{ OPT_VALUE, "from", 0, "REF", "start from a branch or snapshot (default: the current branch)", &b_from, NULL },
	{ OPT_VALUE, "at", 0, "NODE", "start at a node (an id prefix, or REF~N)", &b_at, NULL },
	{ OPT_FLAG, "checkout", 'c', NULL, "make the new branch the current one", NULL, &b_checkout },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &b_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(branch)
{
	cmv_buf from = CMV_BUF_INIT(4096);
	cmv_ref *src = NULL;
	cmv_id at;
	char hex[CMV_ID_HEXSZ + 1];
	const char *from_ref = NULL;
	int rc = EXIT_OK;

	CLI_PARSE("branch");
	if (b_from && b_at)
		return cli_usage_error(cli_find("branch"), "--from and --at cannot be used together");
	if (b_at) {
		cmv_buf_puts(&from, b_at);
	} else if (b_from) {
		cmv_buf_puts(&from, b_from);
	} else if ((rc = cli_current_branch(&from, ctx)) != 0) {
		goto done;
	}
	if ((rc = cli_resolve(&at, ctx, from.ptr)) != 0)
		goto done;
	/* Lineage: the ref named, also when it is given as REF~N with --at. */
	if (b_at) {
		char *tilde = strrchr(from.ptr, '~');
		if (tilde)
			*tilde = '\0';
	}
	if (cmv_ref_lookup(&src, ctx->repo, from.ptr) == 0)
		from_ref = src->name;
	cmv_error_clear();
	if (cmv_branch_create(ctx->repo, b_name, &at, from_ref) < 0) {
		rc = cli_fail("cannot create the branch");
		goto done;
	}
	if (b_checkout && cmv_head_set(ctx->repo, b_name) < 0) {
		rc = cli_fail("cannot check out the branch");
		goto done;
	}
	if (b_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "branch", b_name);
		cJSON_AddStringToObject(o, "node", cli_id(&at, hex));
		if (from_ref)
			cJSON_AddStringToObject(o, "from", from_ref);
		else
			cJSON_AddNullToObject(o, "from");
		rc = cli_print_json(o);
	} else {
		printf("branch '%s' at %s%s%s\n", b_name, cli_short(&at, hex),
		       from_ref ? " from " : "", from_ref ? from_ref : "");
	}
done:
	cmv_ref_free(src);
	cmv_buf_dispose(&from);
	return rc;
}
