/* SPDX-License-Identifier: MIT */
/*
 * cmv info NAME: a branch or snapshot in detail: its model and usage, the
 * tokens it sends to each model asked for, its lineage (what it was made
 * from, up the chain), what was made from it, and, for a trim, what the
 * trim cut.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

cJSON *cli_ref_json(const cmv_ref *r, const char *head);

static const char *in_name, *in_models;
static bool in_json, in_no_tokens;
const cli_opt opts_info[] = {
	{ OPT_ARG_OPT, "NAME", 0, NULL, "a branch or snapshot (default: the current branch)", &in_name, NULL },
	{ OPT_VALUE, "models", 'm', "M,...", "count the tokens it sends to these models (default: its own, see cmv model, else claude-sonnet-4-5)", &in_models, NULL },
	{ OPT_FLAG, "no-tokens", 0, NULL, "do not count tokens", NULL, &in_no_tokens },
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
		cJSON_AddStringToObject(o, "started", cli_rfc3339(s->started, when));
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

typedef struct {
	const char *name;
	cJSON *names;
} children_state;

static int child_of(const cmv_ref *r, void *payload)
{
	children_state *st = payload;
	if (r->from_ref && !strcmp(r->from_ref, st->name))
		cJSON_AddItemToArray(st->names, cJSON_CreateString(r->name));
	return 0;
}

/* What the ref was made from, and what that was made from, up to a root (or a deleted source). */
static cJSON *lineage(cmv_repo *repo, const cmv_ref *r)
{
	cJSON *arr = cJSON_CreateArray();
	char name[CMV_REF_NAME_MAX + 1];
	if (!r->from_ref)
		return arr;
	snprintf(name, sizeof(name), "%s", r->from_ref);
	for (int guard = 0; guard < 1000; guard++) {
		cmv_ref *up = NULL;
		cJSON_AddItemToArray(arr, cJSON_CreateString(name));
		if (cmv_ref_lookup(&up, repo, name) < 0) {
			cmv_error_clear();
			break;
		}
		bool more = up->from_ref != NULL;
		if (more)
			snprintf(name, sizeof(name), "%s", up->from_ref);
		cmv_ref_free(up);
		if (!more)
			break;
	}
	return arr;
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

	cli_counter counter = { 0 };
	cJSON *tokens = NULL, *lin = NULL, *kids = NULL, *trim = NULL;
	char num[16];

	CLI_PARSE("info");
	if (in_models && in_no_tokens)
		return cli_usage_error(cli_find("info"), "--models or --no-tokens, not both");
	if (in_name)
		cli_ref_canon(&name, ctx, in_name);
	else if ((rc = cli_current_branch(&name, ctx)) != 0)
		return rc;
	/* counted in the branch's own model, as stats does, unless told otherwise */
	if (!in_models && cli_branch_model(&llm, ctx, name.ptr))
		in_models = cli_ref_arg_keep(cmv_buf_detach(&llm));
	cmv_buf_clear(&llm);
	if (!in_no_tokens && (rc = cli_counter_init(&counter, cli_find("info"), in_models)) != EXIT_OK) {
		cmv_buf_dispose(&name);
		return rc;
	}
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
	tokens = cJSON_CreateObject();
	for (size_t m = 0; m < counter.n; m++) {
		uint64_t v;
		if (cli_counter_count(&v, &counter, m, ctx->repo, &r->target) < 0) {
			cmv_error_clear();
			cJSON_AddNullToObject(tokens, counter.m[m]->id);
		} else {
			cJSON_AddNumberToObject(tokens, counter.m[m]->id, (double)v);
		}
	}
	lin = lineage(ctx->repo, r);
	children_state cs = { r->name, kids = cJSON_CreateArray() };
	cmv_ref_foreach(ctx->repo, child_of, &cs);
	cmv_error_clear();
	{
		cmv_buf note = CMV_BUF_INIT(1 << 20);
		if (r->type == CMV_REF_BRANCH && cmv_branch_note_get(&note, ctx->repo, r->name, "trim") == 0 && note.size)
			trim = cJSON_Parse(note.ptr);
		cmv_error_clear();
		cmv_buf_dispose(&note);
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
		cJSON_AddItemToObject(o, "tokens", tokens);
		cJSON_AddItemToObject(o, "lineage", lin);
		cJSON_AddItemToObject(o, "made_from_it", kids);
		if (trim)
			cJSON_AddItemToObject(o, "trim", trim);
		tokens = lin = kids = trim = NULL;
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
	for (cJSON *t = tokens->child; t; t = t->next)
		if (cJSON_IsNumber(t))
			printf("tokens:   %s sent to %s (%.0f)\n", cli_human((uint64_t)t->valuedouble, num), t->string,
			       t->valuedouble);
	if (lin->child) {
		printf("lineage:  %s", r->name);
		for (cJSON *l = lin->child; l; l = l->next)
			printf(" <- %s", l->valuestring);
		printf("\n");
	}
	if (kids->child) {
		printf("made from it:");
		for (cJSON *l = kids->child; l; l = l->next)
			printf(" %s", l->valuestring);
		printf("\n");
	}
	if (trim) {
		double b0 = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "bytes_before"));
		double b1 = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "bytes_after"));
		const char *of = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(trim, "from_ref"));
		printf("trim:     of %s, threshold %g, bytes %.0f -> %.0f (-%.0f%%); stubs recall with cmv recall ID\n",
		       of ? of : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(trim, "from")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(trim, "threshold")), b0, b1,
		       b0 > 0 ? 100.0 * (b0 - b1) / b0 : 0.0);
	}
	if (r->type == CMV_REF_BRANCH)
		cmv_usage_foreach(ctx->repo, r->name, usage_one, &us);
done:
	cJSON_Delete(tokens);
	cJSON_Delete(lin);
	cJSON_Delete(kids);
	cJSON_Delete(trim);
	cli_counter_free(&counter);
	cmv_walk_free(walk);
	cmv_ref_free(r);
	cmv_buf_dispose(&name);
	cmv_buf_dispose(&head);
	cmv_buf_dispose(&llm);
	return rc;
}
