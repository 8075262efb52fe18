/* SPDX-License-Identifier: MIT */
/* cmv sessions [--project P] [--sort date|size] [--json]: the agent sessions on this machine. */
#include <string.h>
#include "cmd.h"
#include "sessions.h"

static const char *ss_project, *ss_sort;
static bool ss_json;
const cli_opt opts_sessions[] = {
	{ OPT_VALUE, "project", 'p', "P", "only sessions whose project contains P", &ss_project, NULL },
	{ OPT_VALUE, "sort", 0, "date|size", "newest first (the default), or largest first", &ss_sort, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the list as JSON", NULL, &ss_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(sessions)
{
	cli_session_list l;
	char when[32];

	CLI_PARSE("sessions");
	(void)ctx;
	if (ss_sort && strcmp(ss_sort, "date") && strcmp(ss_sort, "size"))
		return cli_usage_error(cli_find("sessions"), "--sort takes date or size");
	cli_sessions_list(&l, ss_project, ss_sort && !strcmp(ss_sort, "size"));
	if (ss_json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < l.n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "agent", l.items[i].agent);
			cJSON_AddStringToObject(o, "id", l.items[i].id);
			cJSON_AddStringToObject(o, "project", l.items[i].project);
			cJSON_AddStringToObject(o, "path", l.items[i].path);
			cJSON_AddNumberToObject(o, "size", (double)l.items[i].size);
			cJSON_AddStringToObject(o, "modified", cli_rfc3339(l.items[i].mtime, when));
			cJSON_AddItemToArray(arr, o);
		}
		cli_sessions_free(&l);
		return cli_print_json(arr);
	}
	for (size_t i = 0; i < l.n; i++)
		printf("%-11s  %-36s  %s  %9llu  %s\n", l.items[i].agent, l.items[i].id, cli_time(l.items[i].mtime, when),
		       (unsigned long long)l.items[i].size, l.items[i].project);
	if (!l.n)
		fprintf(stderr, "cmv: no sessions found (looked in $CLAUDE_CONFIG_DIR or ~/.claude, and $CODEX_HOME or ~/.codex)\n");
	cli_sessions_free(&l);
	return EXIT_OK;
}
