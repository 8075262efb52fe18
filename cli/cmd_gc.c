/* SPDX-License-Identifier: MIT */
/* cmv gc: remove content no branch or snapshot reaches (parent, derived_from, covers). */
#include "cmd.h"

static bool g_dry, g_json;
const cli_opt opts_gc[] = {
	{ OPT_FLAG, "dry-run", 'n', NULL, "count what would go, remove nothing", NULL, &g_dry },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &g_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(gc)
{
	cmv_gc_stats s;

	CLI_PARSE("gc");
	if (cmv_gc(&s, ctx->repo, g_dry ? CMV_GC_DRY_RUN : 0) < 0)
		return cli_fail("gc failed");
	if (g_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddBoolToObject(o, "dry_run", g_dry);
		cJSON_AddNumberToObject(o, "nodes_kept", (double)s.nodes_kept);
		cJSON_AddNumberToObject(o, "nodes_removed", (double)s.nodes_removed);
		cJSON_AddNumberToObject(o, "blobs_kept", (double)s.blobs_kept);
		cJSON_AddNumberToObject(o, "blobs_removed", (double)s.blobs_removed);
		cJSON_AddNumberToObject(o, "bytes_removed", (double)s.bytes_removed);
		return cli_print_json(o);
	}
	printf("%s %llu nodes and %llu blobs (%llu bytes); kept %llu nodes and %llu blobs\n",
	       g_dry ? "would remove" : "removed", (unsigned long long)s.nodes_removed,
	       (unsigned long long)s.blobs_removed, (unsigned long long)s.bytes_removed,
	       (unsigned long long)s.nodes_kept, (unsigned long long)s.blobs_kept);
	return EXIT_OK;
}
