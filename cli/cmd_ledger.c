/* SPDX-License-Identifier: MIT */
/*
 * cmv ledger [REF] [--json] [--in-flight] | --classify PATTERN=EFFECT |
 * --check NAME [--args JSON]: the side effects of a conversation
 * (docs/ledger.md). The ledger is read from the DAG each time; only the
 * user's classification of tools is kept (a store note).
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *l_ref, *l_classify, *l_check, *l_args;
static bool l_json, l_in_flight, l_classes;
const cli_opt opts_ledger[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &l_ref, NULL },
	{ OPT_FLAG, "in-flight", 0, NULL, "only the calls whose outcome is unknown", NULL, &l_in_flight },
	{ OPT_VALUE, "classify", 0, "PATTERN=EFFECT",
	  "classify tools (a name, or a prefix ending in '*') as none, side_effects or unset; kept in the store", &l_classify,
	  NULL },
	{ OPT_FLAG, "classification", 0, NULL, "print the classification set with --classify", NULL, &l_classes },
	{ OPT_VALUE, "check", 0, "NAME", "before running a call of tool NAME: has one with its key committed here?",
	  &l_check, NULL },
	{ OPT_VALUE, "args", 0, "JSON", "the call's arguments, with --check (default {})", &l_args, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &l_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* The branch REF names, for its tool definitions' annotations; NULL for a snapshot or a node. */
static const char *branch_of(cli_ctx *ctx, const char *ref, cmv_buf *out)
{
	cmv_ref *r = NULL;
	if (!ref) {
		if (cmv_head_get(out, ctx->repo) < 0) {
			cmv_error_clear();
			return NULL;
		}
		return out->ptr;
	}
	bool yes = cmv_ref_lookup(&r, ctx->repo, ref) == 0 && r->type == CMV_REF_BRANCH;
	cmv_ref_free(r);
	cmv_error_clear();
	return yes && cmv_buf_puts(out, ref) == 0 ? out->ptr : NULL;
}

static int classify_cmd(cli_ctx *ctx)
{
	const char *eq = strrchr(l_classify, '=');
	cmv_effect e;
	if (!eq)
		return cli_usage_error(cli_find("ledger"), "--classify needs PATTERN=EFFECT, not '%s'", l_classify);
	if (!strcmp(eq + 1, "none") || !strcmp(eq + 1, "read-only"))
		e = CMV_EFFECT_NONE;
	else if (!strcmp(eq + 1, "side_effects") || !strcmp(eq + 1, "side-effects"))
		e = CMV_EFFECT_SIDE;
	else if (!strcmp(eq + 1, "unset"))
		e = CMV_EFFECT_UNKNOWN;
	else
		return cli_usage_error(cli_find("ledger"), "unknown effect '%s' (none, side_effects, unset)", eq + 1);
	char *pattern = strndup(l_classify, (size_t)(eq - l_classify));
	if (!pattern)
		return cli_fail("out of memory");
	int error = cmv_ledger_classify(ctx->repo, pattern, e);
	if (!error && !l_json)
		printf("%s: %s\n", pattern, e == CMV_EFFECT_UNKNOWN ? "unset" : cmv_effect_name(e));
	free(pattern);
	return error < 0 ? cli_fail("cannot classify") : EXIT_OK;
}

static int check_cmd(cli_ctx *ctx, const cmv_id *tip, const char *branch)
{
	cmv_ledger_check_result r;
	const char *args = l_args ? l_args : "{}";
	char hex[CMV_ID_HEXSZ + 1];

	if (cmv_ledger_check(&r, ctx->repo, tip, branch, l_check, args, strlen(args)) < 0)
		return cli_fail("cannot check the call");
	if (l_json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", l_check);
		cJSON_AddStringToObject(j, "key", r.key);
		cJSON_AddStringToObject(j, "args_hash", r.args_hash);
		cJSON_AddStringToObject(j, "effect", cmv_effect_name(r.effect));
		cJSON_AddBoolToObject(j, "committed", r.committed);
		if (r.committed) {
			cJSON_AddStringToObject(j, "call_node", cli_id(&r.call_node, hex));
			cJSON_AddStringToObject(j, "result_node", cli_id(&r.result_node, hex));
			cJSON_AddStringToObject(j, "result", r.error ? "error" : "ok");
		}
		return cli_print_json(j);
	}
	if (r.committed)
		printf("committed: key %s ran at %s (result %s, %s)\n", r.key, cli_short(&r.call_node, hex),
		       r.error ? "error" : "ok", cmv_effect_name(r.effect));
	else
		printf("not committed: key %s (%s)\n", r.key, cmv_effect_name(r.effect));
	return EXIT_OK;
}

CMD(ledger)
{
	cmv_buf bname = CMV_BUF_INIT(CMV_REF_NAME_MAX + 1), text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_ledger *l = NULL;
	cmv_id tip;
	int rc;

	CLI_PARSE("ledger");
	if (l_args && !l_check)
		return cli_usage_error(cli_find("ledger"), "--args goes with --check");
	if (l_classify) {
		if ((rc = classify_cmd(ctx)) != EXIT_OK || !l_classes)
			return rc;
	}
	if (l_classes) {
		if (cmv_ledger_classification(&text, ctx->repo) < 0)
			rc = cli_fail("cannot read the classification");
		else
			rc = (printf("%s\n", text.ptr), EXIT_OK);
		cmv_buf_dispose(&text);
		return rc;
	}
	l_ref = cli_ref_arg(ctx, l_ref);
	if ((rc = cli_resolve(&tip, ctx, l_ref)) != EXIT_OK)
		goto done;
	const char *branch = branch_of(ctx, l_ref, &bname);
	if (l_check) {
		rc = check_cmd(ctx, &tip, branch);
		goto done;
	}
	if (cmv_ledger_build(&l, ctx->repo, &tip, branch) < 0) {
		rc = cli_fail("cannot read the ledger");
		goto done;
	}
	if (l_json) {
		if (cmv_ledger_json(&text, l) < 0) {
			rc = cli_fail("cannot write the ledger");
			goto done;
		}
		cJSON *j = cJSON_Parse(text.ptr);
		if (j && l_in_flight) {
			cJSON *calls = cJSON_GetObjectItem(j, "calls"), *c = calls ? calls->child : NULL, *next;
			for (; c; c = next) {
				next = c->next;
				if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "state")), "in_flight"))
					cJSON_Delete(cJSON_DetachItemViaPointer(calls, c));
			}
		}
		rc = j ? cli_print_json(j) : cli_fail("out of memory");
		goto done;
	}
	printf("%zu calls in %zu turns: %zu committed, %zu in flight, %zu superseded; %zu with side effects "
	       "(%zu unclassified), %zu in flight\n",
	       l->n, l->turns, l->committed, l->in_flight, l->superseded, l->side_effects, l->unclassified,
	       l->in_flight_effects);
	if (l->duplicates)
		printf("%zu re-issued after they had committed (duplicates downstream)\n", l->duplicates);
	for (size_t i = 0; i < l->n; i++) {
		const cmv_ledger_entry *e = &l->entries[i];
		if (l_in_flight && e->state != CMV_CALL_IN_FLIGHT)
			continue;
		size_t cut = cli_utf8_cut(e->args, strlen(e->args), 70);
		printf("%4zu  %-10s %-6s %-12s t%-4zu %.12s  %-22s %.*s%s\n", i, cmv_call_state_name(e->state),
		       !e->has_result ? "-" : e->error ? "error" : "ok", cmv_effect_name(e->effect), e->turn, e->key,
		       e->name, (int)cut, e->args, cut < strlen(e->args) ? "..." : "");
	}
	rc = EXIT_OK;
done:
	cmv_ledger_free(l);
	cmv_buf_dispose(&bname);
	cmv_buf_dispose(&text);
	return rc;
}
