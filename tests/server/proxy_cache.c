/* SPDX-License-Identifier: MIT */
/*
 * The proxy keeps, by their bytes, what it learns from a tools array (which
 * stubs are shorter, the last stubs' text) and from each window item (its
 * calls and recall stubs, for the fault keys), across turns and sessions
 * (docs/proxy.md, "Measured"). What it sends must be what it would send
 * without them: two sessions with the same tools, paged to stubs, calling
 * different tools and calling again what was paged out, are run through
 * one proxy turn by turn, and each through a proxy of its own; every
 * upstream body and every turn's fault count are the same both ways.
 */
#include "test.h"
#include <cjson/cJSON.h>
#include "server/proxy.h"

#define MODEL "claude-sonnet-4-5"
#define TURNS 10

/* a schema long enough that its stub is shorter */
#define SCHEMA(what)                                                                                                 \
	"{\"type\":\"object\",\"properties\":{\"" what "\":{\"type\":\"string\",\"description\":\"The " what          \
	" to use, given in full: a path relative to the working directory, or an absolute one.\"},"                    \
	"\"timeout\":{\"type\":\"number\",\"description\":\"Milliseconds to wait before giving up on it.\"}},"          \
	"\"required\":[\"" what "\"]}"
#define TOOLS                                                                                                        \
	"[{\"name\":\"Bash\",\"description\":\"Runs a shell command. It runs in the working directory, with the "    \
	"session's environment, and returns what the command wrote.\",\"input_schema\":" SCHEMA("command") "},"          \
	"{\"name\":\"Read\",\"description\":\"Reads a file. The file's text comes back with its line numbers, "        \
	"from the offset given.\",\"input_schema\":" SCHEMA("file_path") "}]"

typedef struct {
	const char *sid, *tool, *key;
	cmv_buf msgs; /* the history the client resends */
} session;

static void session_init(session *s, const char *sid, const char *tool, const char *key)
{
	s->sid = sid;
	s->tool = tool;
	s->key = key;
	cmv_buf_init(&s->msgs, (size_t)1 << 26);
	assert_cmv_ok(cmv_buf_puts(&s->msgs, "{\"role\":\"user\",\"content\":\"Look at the files.\"}"));
}

/* A tool output of about `n` bytes, different per session and turn. */
static void output(cmv_buf *b, const char *sid, size_t k, size_t n)
{
	for (size_t i = 0; b->size < n; i++)
		assert_cmv_ok(cmv_buf_printf(b, "%s line %zu of turn %zu: value %zu, index %zu, node %zu\\n", sid, i, k,
					     (i * 7919 + k) % 1009, i * k, (i + 3) * 31));
}

/*
 * Turn k of s through p: the request, its upstream body (returned, malloc'd),
 * the model's call (every third turn the same input again: a fault when its
 * output was paged out) and its output appended to the history.
 */
static char *turn(proxy *p, session *s, size_t k, size_t *faults)
{
	cmv_buf req = CMV_BUF_INIT((size_t)1 << 26), rep = CMV_BUF_INIT(1 << 20), out = CMV_BUF_INIT(1 << 20);
	proxy_turn *t = NULL;
	size_t len = 0;
	bool again = false;

	assert_cmv_ok(cmv_buf_printf(&req,
				     "{\"model\":\"" MODEL "\",\"max_tokens\":1000,"
				     "\"metadata\":{\"user_id\":\"{\\\"session_id\\\":\\\"%s\\\"}\"},"
				     "\"system\":\"You help.\",\"tools\":" TOOLS ",\"messages\":[%s]}",
				     s->sid, s->msgs.ptr));
	assert_cmv_ok(proxy_turn_new(&t, p, PROXY_API_ANTHROPIC, NULL, req.ptr, req.size));
	const char *up = proxy_turn_upstream(t, &len);
	assert_non_null(up);
	char *body = strndup(up, len);
	char input[128];
	snprintf(input, sizeof(input), "{\"%s\":\"f%zu\"}", s->key, k % 3 == 2 ? k - 2 : k);
	assert_cmv_ok(cmv_buf_printf(&rep,
				     "{\"id\":\"msg_%s_%zu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" MODEL "\","
				     "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_%s_%zu\",\"name\":\"%s\",\"input\":%s}],"
				     "\"stop_reason\":\"tool_use\",\"stop_sequence\":null}",
				     s->sid, k, s->sid, k, s->tool, input));
	assert_cmv_ok(proxy_turn_reply(t, rep.ptr, rep.size, &again));
	assert_false(again);
	*faults = proxy_turn_stats_get(t)->faults;
	proxy_turn_free(t);
	output(&out, s->sid, k, 6000);
	cJSON *q = cJSON_CreateString(out.ptr);
	char *qs = cJSON_PrintUnformatted(q);
	assert_cmv_ok(cmv_buf_printf(&s->msgs,
				     ",{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_%s_%zu\","
				     "\"name\":\"%s\",\"input\":%s}]}"
				     ",{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_%s_%zu\","
				     "\"content\":%s}]}",
				     s->sid, k, s->tool, input, s->sid, k, qs));
	cJSON_free(qs);
	cJSON_Delete(q);
	cmv_buf_dispose(&req);
	cmv_buf_dispose(&rep);
	cmv_buf_dispose(&out);
	return body;
}

/* The tools array of an upstream body (malloc'd): the request puts it just before the messages. */
static char *tools_of(const char *body)
{
	const char *p = strstr(body, "\"tools\":"), *e = p ? strstr(p, ",\"messages\":") : NULL;
	assert_non_null(p);
	assert_non_null(e);
	return strndup(p, (size_t)(e - p));
}

static void test_proxy_cache__shared_caches_change_no_body(void **state)
{
	test_store *ts = *state;
	proxy_config cfg = { 0 };
	proxy *shared = NULL, *own[2] = { NULL, NULL };
	cmv_repo *repo[2] = { NULL, NULL };
	session a[2], b[2]; /* the same two sessions: a through the shared proxy, b each through its own */
	size_t faults = 0, stubs_differ = 0;

	cfg.quiet = true;
	cfg.budget = 9000; /* about three tool outputs: older ones are paged out to stubs */
	cfg.tool_window = 1;
	assert_cmv_ok(proxy_new(&shared, ts->repo, &cfg));
	for (int i = 0; i < 2; i++) {
		assert_cmv_ok(cmv_repo_open(&repo[i], ":memory:", CMV_REPO_OPEN_CREATE));
		assert_cmv_ok(proxy_new(&own[i], repo[i], &cfg));
	}
	session_init(&a[0], "cache-s1", "Bash", "command");
	session_init(&a[1], "cache-s2", "Read", "file_path");
	session_init(&b[0], "cache-s1", "Bash", "command");
	session_init(&b[1], "cache-s2", "Read", "file_path");
	for (size_t k = 0; k < TURNS; k++) {
		char *body[2];
		for (int i = 0; i < 2; i++) {
			size_t fa = 0, fb = 0;
			body[i] = turn(shared, &a[i], k, &fa);
			char *alone = turn(own[i], &b[i], k, &fb);
			if (strcmp(body[i], alone))
				fail_msg("session %d turn %zu: the shared proxy sent\n%s\nits own proxy\n%s", i, k, body[i], alone);
			assert_int_equal(fa, fb);
			faults += fa;
			free(alone);
		}
		/* each session's called tool whole, the other's stub: the tools' text differs between them */
		char *tools[2] = { tools_of(body[0]), tools_of(body[1]) };
		stubs_differ += strcmp(tools[0], tools[1]) != 0;
		/* from the second turn each session's own tool goes whole, the other stays a stub */
		bool whole[2] = { strstr(tools[0], "Runs a shell command. It runs") != NULL,
				  strstr(tools[1], "Reads a file. The file's text") != NULL };
		bool stubbed[2] = { strstr(tools[0], "Reads a file. [abridged]") != NULL,
				    strstr(tools[1], "Runs a shell command. [abridged]") != NULL };
		for (int i = 0; i < 2; i++)
			if (k > 0 && (!whole[i] || !stubbed[i]))
				fail_msg("session %d turn %zu: its tool not whole or the other not a stub: %s", i, k, tools[i]);
		free(tools[0]);
		free(tools[1]);
		free(body[0]);
		free(body[1]);
	}
	assert_true(faults > 0);
	assert_true(stubs_differ > 0);
	for (int i = 0; i < 2; i++) {
		cmv_buf_dispose(&a[i].msgs);
		cmv_buf_dispose(&b[i].msgs);
		proxy_free(own[i]);
		cmv_repo_free(repo[i]);
	}
	proxy_free(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_cache__shared_caches_change_no_body, test_store_setup,
						test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
