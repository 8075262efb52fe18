/* SPDX-License-Identifier: MIT */
/* cmv import [--format cmv] FILE: a conversation file becomes (or updates) a branch. */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *i_format, *i_branch, *i_file, *i_max_line;
static bool i_lenient, i_force, i_json;
const cli_opt opts_import[] = {
	{ OPT_ARG, "FILE", 0, NULL, "the file to import", &i_file, NULL },
	{ OPT_VALUE, "format", 'f', "FORMAT", "claude-code or cmv (default: detected from the content)", &i_format, NULL },
	{ OPT_VALUE, "branch", 'b', "NAME", "the branch to import into (default: the file's name)", &i_branch, NULL },
	{ OPT_FLAG, "lenient", 0, NULL, "skip bad records instead of failing, and list them", NULL, &i_lenient },
	{ OPT_FLAG, "force", 0, NULL, "move the branch even if it has diverged from the file", NULL, &i_force },
	{ OPT_VALUE, "max-line-bytes", 0, "N", "longest line accepted (default 67108864)", &i_max_line, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print what was imported as JSON", NULL, &i_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *outcome_name(cmv_import_outcome o)
{
	switch (o) {
	case CMV_IMPORT_CREATED: return "created";
	case CMV_IMPORT_UPDATED: return "updated";
	case CMV_IMPORT_UNCHANGED: return "unchanged";
	case CMV_IMPORT_REPLACED: return "replaced";
	}
	return "?";
}

CMD(import)
{
	cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;
	cmv_buf head = CMV_BUF_INIT(4096);
	char hex[CMV_ID_HEXSZ + 1];

	CLI_PARSE("import");
	if (i_format && strcmp(i_format, "cmv") && strcmp(i_format, "claude-code"))
		return cli_usage_error(cli_find("import"), "unknown format '%s' (known: claude-code, cmv)",
				       i_format);
	if (i_max_line) {
		char *end;
		unsigned long long v = strtoull(i_max_line, &end, 10);
		if (*end || !v || i_max_line[0] == '-')
			return cli_usage_error(cli_find("import"), "--max-line-bytes needs a positive number");
		opts.max_line_bytes = (size_t)v;
	}
	opts.branch = i_branch;
	opts.flags = (i_lenient ? CMV_IMPORT_LENIENT : 0) | (i_force ? CMV_IMPORT_FORCE : 0);
	const char *format = i_format;
	if (!format && cmv_format_detect(&format, i_file) < 0)
		return cli_fail("cannot tell the format");
	if (!strcmp(format, "claude-code") ? cmv_import_claude_code_file(&res, ctx->repo, i_file, &opts) < 0
					   : cmv_import_cmv_file(&res, ctx->repo, i_file, &opts) < 0)
		return cli_fail("import failed");
	/* The first import into a fresh store becomes the current branch. */
	if (cmv_head_get(&head, ctx->repo) == CMV_ENOTFOUND)
		cmv_head_set(ctx->repo, res.branch);
	else {
		cmv_ref *r = NULL;
		/* ...as it does when the current branch is the empty "main" of `cmv init`. */
		if (cmv_ref_lookup(&r, ctx->repo, head.ptr) == 0 && cmv_id_is_none(&r->target) &&
		    strcmp(head.ptr, res.branch))
			cmv_head_set(ctx->repo, res.branch);
		cmv_ref_free(r);
	}
	cmv_error_clear();
	cmv_buf_dispose(&head);
	if (i_json) {
		cJSON *arr = cJSON_CreateArray(), *o = cJSON_CreateObject(), *skipped;
		cJSON_AddStringToObject(o, "branch", res.branch);
		if (!strcmp(format, "claude-code")) {
			cmv_ref *br = NULL;
			if (cmv_ref_lookup(&br, ctx->repo, res.branch) == 0 && br->from_ref)
				cJSON_AddStringToObject(o, "session", br->from_ref);
			else
				cJSON_AddNullToObject(o, "session");
			cmv_ref_free(br);
			cmv_error_clear();
		} else {
			cJSON_AddNullToObject(o, "session");
		}
		cJSON_AddStringToObject(o, "format", format);
		cJSON_AddNumberToObject(o, "records", (double)res.records);
		cJSON_AddStringToObject(o, "outcome", outcome_name(res.outcome));
		cJSON_AddStringToObject(o, "head", cli_id(&res.head, hex));
		cJSON_AddNumberToObject(o, "skipped", (double)res.skipped);
		skipped = cJSON_AddArrayToObject(o, "skipped_lines");
		for (size_t k = 0; k < res.skipped && k < CMV_IMPORT_SKIPPED_LISTED; k++)
			cJSON_AddItemToArray(skipped, cJSON_CreateNumber((double)res.skipped_lines[k]));
		cJSON_AddItemToArray(arr, o);
		return cli_print_json(arr);
	}
	printf("%s: %zu %s, branch '%s' %s at %s\n", i_file, res.records,
	       !strcmp(format, "cmv") ? "messages" : "records", res.branch, outcome_name(res.outcome),
	       cli_short(&res.head, hex));
	if (res.skipped && !strcmp(format, "claude-code")) {
		fprintf(stderr, "cmv: the last line is incomplete (the session is still being written); "
				"it will be imported next time\n");
	} else if (res.skipped) {
		fprintf(stderr, "cmv: skipped %zu bad record%s at line%s", res.skipped,
			res.skipped == 1 ? "" : "s", res.skipped == 1 ? "" : "s");
		for (size_t k = 0; k < res.skipped && k < CMV_IMPORT_SKIPPED_LISTED; k++)
			fprintf(stderr, "%s %zu", k ? "," : "", res.skipped_lines[k]);
		fprintf(stderr, "%s\n", res.skipped > CMV_IMPORT_SKIPPED_LISTED ? ", ..." : "");
	}
	return EXIT_OK;
}
