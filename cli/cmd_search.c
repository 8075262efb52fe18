/* SPDX-License-Identifier: MIT */
/* cmv search QUERY: full-text search (BM25) over every stored block, tool output included. */
#include <stdlib.h>
#include "cmd.h"

static const char *q_query, *q_limit;
static bool q_any, q_raw, q_json;
const cli_opt opts_search[] = {
	{ OPT_ARG, "QUERY", 0, NULL, "words to find (all of them, unless --any)", &q_query, NULL },
	{ OPT_VALUE, "limit", 'n', "N", "at most N matching blocks (default 20)", &q_limit, NULL },
	{ OPT_FLAG, "any", 0, NULL, "match any word instead of all", NULL, &q_any },
	{ OPT_FLAG, "raw", 0, NULL, "QUERY is FTS5 syntax (AND, OR, NEAR, \"phrases\", prefix*)", NULL, &q_raw },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &q_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static int hit_one(const cmv_search_hit *h, void *payload)
{
	cJSON *arr = payload;
	char hex[CMV_ID_HEXSZ + 1], hex2[CMV_ID_HEXSZ + 1];

	if (arr) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "node", cli_id(&h->node, hex));
		cJSON_AddNumberToObject(o, "block", (double)h->block);
		cJSON_AddStringToObject(o, "blob", cli_id(&h->blob, hex2));
		cJSON_AddNumberToObject(o, "score", h->score);
		cJSON_AddStringToObject(o, "snippet", h->snippet);
		cJSON_AddItemToArray(arr, o);
	} else {
		printf("%s #%zu  %s\n", cli_short(&h->node, hex), h->block, h->snippet);
	}
	return 0;
}

CMD(search)
{
	cJSON *arr = NULL;
	size_t limit = 20;

	CLI_PARSE("search");
	if (q_limit) {
		char *end;
		long long v = strtoll(q_limit, &end, 10);
		if (*end || v <= 0)
			return cli_usage_error(cli_find("search"), "--limit needs a positive number");
		limit = (size_t)v;
	}
	if (q_json)
		arr = cJSON_CreateArray();
	if (cmv_search(ctx->repo, q_query, limit, (q_any ? CMV_SEARCH_ANY : 0) | (q_raw ? CMV_SEARCH_RAW : 0),
		       hit_one, arr) < 0) {
		cJSON_Delete(arr);
		return cli_fail("search failed");
	}
	return q_json ? cli_print_json(arr) : EXIT_OK;
}
