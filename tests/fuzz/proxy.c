/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a client request as cmv proxy reads it (server/proxy_turn.c):
 * the first byte picks the API (Anthropic Messages, Chat Completions,
 * Responses) and whether a session header came with it; the rest is the
 * body. The request is parsed, matched against its session, appended and
 * paged into an upstream body, on a store that lives across inputs (so
 * later inputs meet sessions earlier ones made). A request is refused with
 * a message or answered with a JSON body, never a crash.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "fuzz.h"
#include "server/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static proxy *p;
	static const proxy_api apis[] = { PROXY_API_ANTHROPIC, PROXY_API_CHAT, PROXY_API_RESPONSES, PROXY_API_ANTHROPIC };
	proxy_turn *t = NULL;

	if (size < 1)
		return 0;
	if (!p) {
		proxy_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.budget = 4000;
		cfg.quiet = true;
		if (proxy_new(&p, fuzz_store(), &cfg) < 0)
			fuzz_fail("proxy_new: %s", cmv_error_last()->message);
	}
	int rc = proxy_turn_new(&t, p, apis[data[0] & 3], data[0] & 4 ? "fuzz-session" : NULL, (const char *)data + 1,
				size - 1);
	if (rc < 0) {
		if (!cmv_error_last()->message[0])
			fuzz_fail("a refusal without a message");
		cmv_error_clear();
		return 0;
	}
	size_t len = 0;
	const char *up = proxy_turn_upstream(t, &len);
	if (up) {
		cJSON *j = cJSON_ParseWithLength(up, len);
		if (!cJSON_IsObject(j))
			fuzz_fail("the upstream body is not a JSON object");
		cJSON_Delete(j);
		const proxy_turn_stats *s = proxy_turn_stats_get(t);
		if (s->tokens > s->budget)
			fuzz_fail("the upstream body counts %llu tokens, over its budget of %llu",
				  (unsigned long long)s->tokens, (unsigned long long)s->budget);
	}
	proxy_turn_free(t);
	return 0;
}
