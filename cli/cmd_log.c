/* SPDX-License-Identifier: MIT */
/* cmv log [REF] [-n N]: the conversation at a ref, oldest first. */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *l_ref, *l_count;
static bool l_json;
const cli_opt opts_log[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &l_ref, NULL },
	{ OPT_VALUE, "count", 'n', "N", "show only the last N entries", &l_count, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &l_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(log)
{
	cmv_walk *walk = NULL;
	const cmv_node *n;
	cmv_buf preview = CMV_BUF_INIT(CMV_BUF_SMALL);
	cJSON *arr = NULL;
	cmv_id tip;
	char hex[CMV_ID_HEXSZ + 1];
	size_t total, skip = 0;
	int rc, error;

	CLI_PARSE("log");
	if (l_count) {
		char *end;
		long long v = strtoll(l_count, &end, 10);
		if (*end || v < 0)
			return cli_usage_error(cli_find("log"), "-n needs a non-negative number");
		skip = (size_t)v;
	}
	if ((rc = cli_resolve(&tip, ctx, l_ref)) != 0)
		return rc;
	if (cmv_walk_new(&walk, ctx->repo, &tip) < 0)
		return cli_fail("cannot walk the conversation");
	total = cmv_walk_length(walk);
	if (l_count)
		cmv_walk_seek(walk, total > skip ? total - skip : 0);
	if (l_json)
		arr = cJSON_CreateArray();
	size_t index = l_count && total > skip ? total - skip : 0;
	while ((error = cmv_walk_next(&n, walk)) == 0) {
		if (cli_preview(&preview, ctx, n, l_json ? 200 : 100) < 0)
			break;
		if (l_json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", cli_id(&n->id, hex));
			cJSON_AddNumberToObject(o, "index", (double)index);
			cJSON_AddStringToObject(o, "role", cmv_role_name(n->role));
			cJSON_AddStringToObject(o, "kind", cmv_kind_name(n->kind));
			cJSON_AddNumberToObject(o, "blocks", (double)n->n_blocks);
			cJSON_AddStringToObject(o, "preview", preview.ptr);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%s %s%s%s\n", cli_short(&n->id, hex), cmv_role_name(n->role),
			       n->kind == CMV_KIND_MESSAGE ? "" : " ",
			       n->kind == CMV_KIND_MESSAGE ? "" : cmv_kind_name(n->kind));
			printf("    %s\n", preview.ptr);
		}
		index++;
	}
	cmv_walk_free(walk);
	cmv_buf_dispose(&preview);
	if (error != CMV_ITEROVER) {
		cJSON_Delete(arr);
		return cli_fail("cannot read the conversation");
	}
	return l_json ? cli_print_json(arr) : EXIT_OK;
}
