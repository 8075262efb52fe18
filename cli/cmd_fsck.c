/* SPDX-License-Identifier: MIT */
/* cmv fsck: check every blob, node and ref; exit 1 when anything is wrong. */
#include "cmd.h"

static bool f_json;
const cli_opt opts_fsck[] = {
	{ OPT_FLAG, "json", 0, NULL, "print the problems as JSON", NULL, &f_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *problem_name(cmv_fsck_problem_type t)
{
	switch (t) {
	case CMV_FSCK_BLOB_MISMATCH: return "blob_mismatch";
	case CMV_FSCK_NODE_MISMATCH: return "node_mismatch";
	case CMV_FSCK_MISSING_BLOB: return "missing_blob";
	case CMV_FSCK_MISSING_NODE: return "missing_node";
	case CMV_FSCK_DANGLING_REF: return "dangling_ref";
	case CMV_FSCK_BAD_HEAD: return "bad_head";
	case CMV_FSCK_BAD_DEPTH: return "bad_depth";
	case CMV_FSCK_INTEGRITY: return "integrity";
	}
	return "unknown";
}

static int problem_one(const cmv_fsck_problem *p, void *payload)
{
	cJSON *arr = payload;

	if (arr) {
		cJSON *o = cJSON_CreateObject();
		char hex[CMV_ID_HEXSZ + 1];
		cJSON_AddStringToObject(o, "type", problem_name(p->type));
		if (!cmv_id_is_none(&p->id))
			cJSON_AddStringToObject(o, "id", cli_id(&p->id, hex));
		if (p->name)
			cJSON_AddStringToObject(o, "ref", p->name);
		cJSON_AddStringToObject(o, "message", p->message);
		cJSON_AddItemToArray(arr, o);
	} else {
		printf("%s: %s\n", problem_name(p->type), p->message);
	}
	return 0;
}

CMD(fsck)
{
	cJSON *o = NULL, *arr = NULL;
	size_t n = 0;

	CLI_PARSE("fsck");
	if (f_json) {
		o = cJSON_CreateObject();
		arr = cJSON_AddArrayToObject(o, "problems");
	}
	if (cmv_fsck(&n, ctx->repo, problem_one, arr) < 0) {
		cJSON_Delete(o);
		return cli_fail("fsck could not run");
	}
	if (f_json) {
		cJSON_AddBoolToObject(o, "ok", n == 0);
		cli_print_json(o);
	} else if (n == 0) {
		printf("ok\n");
	} else {
		fprintf(stderr, "cmv: %zu problem%s found\n", n, n == 1 ? "" : "s");
	}
	return n ? EXIT_ERROR : EXIT_OK;
}
