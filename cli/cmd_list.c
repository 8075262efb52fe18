/* SPDX-License-Identifier: MIT */
/* cmv list: branches and snapshots, oldest first; the current branch marked. */
#include <string.h>
#include "cmd.h"

static bool ls_json, ls_branches, ls_snapshots, ls_sessions;
const cli_opt opts_list[] = {
	{ OPT_FLAG, "branches", 0, NULL, "only branches", NULL, &ls_branches },
	{ OPT_FLAG, "snapshots", 0, NULL, "only snapshots", NULL, &ls_snapshots },
	{ OPT_FLAG, "sessions", 0, NULL, "only imported sessions", NULL, &ls_sessions },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &ls_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

typedef struct {
	const char *head;
	cJSON *arr;
} list_state;

cJSON *cli_ref_json(const cmv_ref *r, const char *head);
cJSON *cli_ref_json(const cmv_ref *r, const char *head)
{
	cJSON *o = cJSON_CreateObject(), *tags;
	char hex[CMV_ID_HEXSZ + 1], when[32];

	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "type", cli_ref_type_name(r->type));
	/* the tip is "head" in every output (docs/cli.md) */
	if (cmv_id_is_none(&r->target))
		cJSON_AddNullToObject(o, "head");
	else
		cJSON_AddStringToObject(o, "head", cli_id(&r->target, hex));
	cJSON_AddBoolToObject(o, "current", head && !strcmp(head, r->name));
	cJSON_AddStringToObject(o, "created", cli_rfc3339(r->created, when));
	cJSON_AddStringToObject(o, "updated", cli_rfc3339(r->updated, when));
	if (r->from_ref)
		cJSON_AddStringToObject(o, "from", r->from_ref);
	else
		cJSON_AddNullToObject(o, "from");
	if (r->description)
		cJSON_AddStringToObject(o, "description", r->description);
	else
		cJSON_AddNullToObject(o, "description");
	tags = cJSON_AddArrayToObject(o, "tags");
	for (size_t i = 0; i < r->n_tags; i++)
		cJSON_AddItemToArray(tags, cJSON_CreateString(r->tags[i]));
	return o;
}

static int list_one(const cmv_ref *r, void *payload)
{
	list_state *st = payload;
	char hex[CMV_ID_HEXSZ + 1], when[32];

	if ((ls_branches && r->type != CMV_REF_BRANCH) || (ls_snapshots && r->type != CMV_REF_SNAPSHOT) ||
	    (ls_sessions && r->type != CMV_REF_SESSION))
		return 0;
	if (st->arr) {
		cJSON_AddItemToArray(st->arr, cli_ref_json(r, st->head));
		return 0;
	}
	printf("%c %-8s %-12s %s  %s", st->head && !strcmp(st->head, r->name) ? '*' : ' ',
	       cli_ref_type_name(r->type),
	       cmv_id_is_none(&r->target) ? "(empty)" : cli_short(&r->target, hex),
	       cli_time(r->created, when), r->name);
	if (r->n_tags) {
		printf(" [");
		for (size_t i = 0; i < r->n_tags; i++)
			printf("%s%s", i ? "," : "", r->tags[i]);
		printf("]");
	}
	if (r->description)
		printf(" - %s", r->description);
	printf("\n");
	return 0;
}

CMD(list)
{
	cmv_buf head = CMV_BUF_INIT(4096);
	list_state st = { NULL, NULL };
	int error;

	CLI_PARSE("list");
	if (cmv_head_get(&head, ctx->repo) == 0)
		st.head = head.ptr;
	cmv_error_clear();
	if (ls_json)
		st.arr = cJSON_CreateArray();
	error = cmv_ref_foreach(ctx->repo, list_one, &st);
	cmv_buf_dispose(&head);
	if (error < 0) {
		cJSON_Delete(st.arr);
		return cli_fail("cannot list refs");
	}
	return ls_json ? cli_print_json(st.arr) : EXIT_OK;
}
