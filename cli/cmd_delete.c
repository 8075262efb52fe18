/* SPDX-License-Identifier: MIT */
/*
 * cmv delete NAME: drop a branch or snapshot; its content stays until
 * `cmv gc`. It never asks, so -f/--force (claude-code-cmv's "do not ask")
 * is accepted and changes nothing.
 */
#include "cmd.h"

static const char *d_name;
static bool d_force, d_json;
const cli_opt opts_delete[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the branch or snapshot to delete", &d_name, NULL },
	{ OPT_FLAG, "force", 'f', NULL, "accepted for claude-code-cmv's scripts: cmv delete never asks", NULL, &d_force },
	{ OPT_FLAG, "json", 0, NULL, "print what was deleted as JSON", NULL, &d_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(delete)
{
	cmv_ref *r = NULL;
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;

	CLI_PARSE("delete");
	if (cmv_ref_lookup(&r, ctx->repo, d_name) < 0 || cmv_ref_delete(ctx->repo, d_name) < 0) {
		cmv_ref_free(r);
		return cli_fail("cannot delete");
	}
	if (d_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "deleted", r->name);
		cJSON_AddStringToObject(o, "type", cli_ref_type_name(r->type));
		if (cmv_id_is_none(&r->target))
			cJSON_AddNullToObject(o, "head");
		else
			cJSON_AddStringToObject(o, "head", cli_id(&r->target, hex));
		rc = cli_print_json(o);
	} else {
		printf("deleted '%s' (its content stays until 'cmv gc')\n", d_name);
	}
	cmv_ref_free(r);
	return rc;
}
