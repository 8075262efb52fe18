/* SPDX-License-Identifier: MIT */
/* cmv info NAME: a branch or snapshot in detail, with its model and usage. */
#include <string.h>
#include "cmd.h"

cJSON *cli_ref_json(const cmv_ref *r, const char *head);

static const char *in_name;
static bool in_json;
const cli_opt opts_info[] = {
	{ OPT_ARG_OPT, "NAME", 0, NULL, "a branch or snapshot (default: the current branch)", &in_name, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &in_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

typedef struct {
	cJSON *arr;
} usage_state;

static int usage_one(const cmv_usage_segment *s, void *payload)
{
	usage_state *st = payload;
	char when[32];

	if (st->arr) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "model", s->signature);
		cJSON_AddNumberToObject(o, "start_turn", (double)s->start_turn);
		cJSON_AddStringToObject(o, "started", cli_time(s->started, when));
		cJSON_AddNumberToObject(o, "calls", (double)s->calls);
		cJSON_AddNumberToObject(o, "input_tokens", (double)s->input_tokens);
		cJSON_AddNumberToObject(o, "output_tokens", (double)s->output_tokens);
		cJSON_AddNumberToObject(o, "cache_read_tokens", (double)s->cache_read_tokens);
		cJSON_AddNumberToObject(o, "cache_write_tokens", (double)s->cache_write_tokens);
		cJSON_AddItemToArray(st->arr, o);
	} else {
		printf("  %-30s from turn %llu: %llu calls, %llu in, %llu out tokens\n", s->signature,
		       (unsigned long long)s->start_turn, (unsigned long long)s->calls,
		       (unsigned long long)s->input_tokens, (unsigned long long)s->output_tokens);
	}
	return 0;
}

CMD(info)
{
	cmv_buf name = CMV_BUF_INIT(4096), head = CMV_BUF_INIT(4096), llm = CMV_BUF_INIT(8192);
	cmv_ref *r = NULL;
	cmv_walk *walk = NULL;
	const cmv_node *n;
	usage_state us = { NULL };
	char hex[CMV_ID_HEXSZ + 1], when[32];
	size_t counts[4] = { 0 }, n_msgs = 0, n_events = 0, n_summaries = 0;
	int rc = EXIT_OK, error;

	CLI_PARSE("info");
	if (in_name)
		cmv_buf_puts(&name, in_name);
	else if ((rc = cli_current_branch(&name, ctx)) != 0)
		return rc;
	if (cmv_ref_lookup(&r, ctx->repo, name.ptr) < 0) {
		rc = cli_fail("not found");
		goto done;
	}
	if (!cmv_id_is_none(&r->target)) {
		if (cmv_walk_new(&walk, ctx->repo, &r->target) < 0) {
			rc = cli_fail("cannot walk the conversation");
			goto done;
		}
		while ((error = cmv_walk_next(&n, walk)) == 0) {
			if (n->kind == CMV_KIND_EVENT)
				n_events++;
			else if (n->kind == CMV_KIND_SUMMARY)
				n_summaries++;
			else
				n_msgs++;
			if (n->role >= 1 && n->role <= 4 && n->kind != CMV_KIND_EVENT)
				counts[n->role - 1]++;
		}
		if (error != CMV_ITEROVER) {
			rc = cli_fail("cannot read the conversation");
			goto done;
		}
	}
	bool has_llm = r->type == CMV_REF_BRANCH && cmv_branch_llm_get(&llm, ctx->repo, r->name) == 0;
	bool is_head = cmv_head_get(&head, ctx->repo) == 0 && !strcmp(head.ptr, r->name);
	cmv_error_clear();
	if (in_json) {
		cJSON *o = cli_ref_json(r, is_head ? r->name : NULL);
		cJSON_AddNumberToObject(o, "messages", (double)n_msgs);
		cJSON_AddNumberToObject(o, "events", (double)n_events);
		cJSON_AddNumberToObject(o, "summaries", (double)n_summaries);
		cJSON *roles = cJSON_AddObjectToObject(o, "roles");
		for (int i = 0; i < 4; i++)
			cJSON_AddNumberToObject(roles, cmv_role_name((cmv_role)(i + 1)), (double)counts[i]);
		if (has_llm)
			cJSON_AddStringToObject(o, "model", llm.ptr);
		else
			cJSON_AddNullToObject(o, "model");
		us.arr = cJSON_AddArrayToObject(o, "usage");
		if (r->type == CMV_REF_BRANCH)
			cmv_usage_foreach(ctx->repo, r->name, usage_one, &us);
		cmv_ref_free(r);
		r = NULL;
		rc = cli_print_json(o);
		goto done;
	}
	printf("%s: %s%s\n", cli_ref_type_name(r->type), r->name,
	       is_head ? " (current)" : "");
	printf("node:     %s\n", cmv_id_is_none(&r->target) ? "(empty)" : cli_id(&r->target, hex));
	printf("created:  %s UTC\n", cli_time(r->created, when));
	if (r->type == CMV_REF_BRANCH)
		printf("updated:  %s UTC\n", cli_time(r->updated, when));
	if (r->from_ref)
		printf("from:     %s\n", r->from_ref);
	if (r->description)
		printf("description: %s\n", r->description);
	if (r->n_tags) {
		printf("tags:     ");
		for (size_t i = 0; i < r->n_tags; i++)
			printf("%s%s", i ? ", " : "", r->tags[i]);
		printf("\n");
	}
	printf("messages: %zu (system %zu, user %zu, assistant %zu, tool %zu), events %zu, summaries %zu\n",
	       n_msgs, counts[0], counts[1], counts[2], counts[3], n_events, n_summaries);
	if (has_llm)
		printf("model:    %s\n", llm.ptr);
	if (r->type == CMV_REF_BRANCH)
		cmv_usage_foreach(ctx->repo, r->name, usage_one, &us);
done:
	cmv_walk_free(walk);
	cmv_ref_free(r);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&head);
	cmv_buf_dispose(&llm);
	return rc;
}
