/* SPDX-License-Identifier: MIT */
/* cmv's neutral JSONL: lossless round trip, idempotent re-import, and bad input. */
#include <cjson/cJSON.h>
#include "test.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef test_store fixture;

/* Every shape the format allows, one per line. */
static const char *const rich[] = {
	"{\"role\":\"system\",\"content\":\"You are a careful coding agent.\"}",
	"{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Fix the build \\u00e9\\u20ac \\ud83d\\ude00\"},"
	"{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}],"
	"\"uuid\":\"u-1\",\"timestamp\":\"2026-01-01T00:00:00Z\"}",
	"{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Check the Makefile.\",\"signature\":\"sig==\"},"
	"{\"type\":\"text\",\"text\":\"Looking.\"},"
	"{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"Bash\",\"input\":{\"command\":\"make\",\"opts\":{\"j\":2,\"env\":[\"A=1\",null,true]}}},"
	"{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"Read\",\"input\":{\"file_path\":\"/src/a.c\"},\"cache_control\":{\"type\":\"ephemeral\"}}]}",
	/* parenthesized: one element written on two lines (clang's -Wstring-concatenation) */
	("{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_01\",\"content\":\"make: *** Error 2\",\"is_error\":true},"
	 "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_02\",\"content\":[{\"type\":\"text\",\"text\":\"int main(void) {}\"}],\"is_error\":false}]}"),
	"{\"role\":\"assistant\",\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},{\"type\":\"text\",\"text\":\"\"}]}",
	"{\"role\":\"system\",\"kind\":\"event\",\"content\":[{\"type\":\"progress\",\"n\":1}],\"subtype\":\"hook\"}",
	"{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.invalid/a.png\"}}]}",
	"{\"role\":\"assistant\",\"kind\":\"summary\",\"content\":\"The build was fixed.\"}",
};

static char *join_lines(const char *const *lines, size_t n)
{
	size_t total = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		total += strlen(lines[i]) + 1;
	p = s = malloc(total);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(p, lines[i], l);
		p += l;
		*p++ = '\n';
	}
	*p = '\0';
	return s;
}

static int to_buf(const void *data, size_t len, void *payload)
{
	return cmv_buf_put(payload, data, len);
}

static void assert_json_lines_equal(const char *const *want, size_t n, const char *got)
{
	const char *p = got;

	for (size_t i = 0; i < n; i++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		cJSON *a = cJSON_Parse(want[i]), *b = cJSON_ParseWithLength(p, (size_t)(nl - p));
		assert_non_null(a);
		assert_non_null(b);
		if (!cJSON_Compare(a, b, 1))
			fail_msg("line %zu differs:\nwant %s\ngot  %.*s", i + 1, want[i], (int)(nl - p), p);
		cJSON_Delete(a);
		cJSON_Delete(b);
		p = nl + 1;
	}
	assert_string_equal(p, "");
}

static void test_formats_cmv__round_trip_is_json_equal(void **state)
{
	fixture *f = *state;
	char *content = join_lines(rich, N_OF(rich));
	char *path = test_write_file(f->dir, "rich.jsonl", content, strlen(content));
	cmv_import_result res;
	cmv_buf out = CMV_BUF_INIT(1 << 20);

	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_string_equal(res.branch, "rich");
	assert_int_equal(res.outcome, CMV_IMPORT_CREATED);
	assert_int_equal(res.records, N_OF(rich));
	assert_cmv_ok(cmv_export_cmv(f->repo, &res.head, to_buf, &out));
	assert_json_lines_equal(rich, N_OF(rich), out.ptr);

	/* the image is stored as its bytes, so `cmv show BLOB > a.png` gives the picture */
	cmv_id tip;
	cmv_node *n = NULL;
	cmv_buf img = CMV_BUF_INIT(1024);
	assert_cmv_ok(cmv_resolve(&tip, f->repo, "rich~6"));
	assert_cmv_ok(cmv_node_read(&n, f->repo, &tip));
	assert_string_equal(n->blocks[1].type, "image");
	assert_string_equal(n->blocks[1].media_type, "image/png");
	assert_cmv_ok(cmv_blob_read(&img, f->repo, &n->blocks[1].blob));
	assert_int_equal(img.size, 8);
	assert_memory_equal(img.ptr, "\x89PNG\r\n\x1a\n", 8);
	cmv_node_free(n);
	cmv_buf_dispose(&img);
	cmv_buf_dispose(&out);
	free(content);
	free(path);
}

static void test_formats_cmv__reimport_adds_nothing_and_grown_file_adds_tail(void **state)
{
	fixture *f = *state;
	char *content = join_lines(rich, 4);
	char *path = test_write_file(f->dir, "s.jsonl", content, strlen(content));
	cmv_import_result res;
	cmv_store_stats s1, s2;
	uint64_t rows;

	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, NULL));
	rows = test_total_rows(f->repo);
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UNCHANGED);
	assert_int_equal(test_total_rows(f->repo), rows);

	/* the session file grows: only the new tail is written */
	free(content);
	free(path);
	content = join_lines(rich, 6);
	path = test_write_file(f->dir, "s.jsonl", content, strlen(content));
	assert_cmv_ok(cmv_repo_stats(&s1, f->repo));
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_int_equal(res.outcome, CMV_IMPORT_UPDATED);
	assert_cmv_ok(cmv_repo_stats(&s2, f->repo));
	assert_int_equal(s2.n_nodes - s1.n_nodes, 2);
	assert_int_equal(s2.n_refs, s1.n_refs);

	/* the same file into another branch shares every node */
	cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
	o.branch = "copy";
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, &o));
	assert_cmv_ok(cmv_repo_stats(&s1, f->repo));
	assert_int_equal(s1.n_nodes, s2.n_nodes);
	assert_int_equal(s1.n_refs, s2.n_refs + 1);

	/* a rewritten history has diverged: refused unless forced, and nothing changes */
	free(content);
	free(path);
	const char *other[] = { rich[0], "{\"role\":\"user\",\"content\":\"a different question\"}" };
	content = join_lines(other, 2);
	path = test_write_file(f->dir, "s.jsonl", content, strlen(content));
	rows = test_total_rows(f->repo);
	assert_cmv_fails_with(CMV_EMODIFIED, cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_error_mentions("diverged");
	assert_int_equal(test_total_rows(f->repo), rows);
	o.branch = NULL;
	o.flags = CMV_IMPORT_FORCE;
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, &o));
	assert_int_equal(res.outcome, CMV_IMPORT_REPLACED);
	free(content);
	free(path);
}

/* Each bad file fails with `code`, names file:line, says why, and changes nothing (len 0: strlen). */
static void expect_rejected(fixture *f, const char *name, const char *content, size_t len, int code,
			    const char *where, const char *why)
{
	char *path = test_write_file(f->dir, name, content, len ? len : strlen(content));
	cmv_import_result res;
	uint64_t rows = test_total_rows(f->repo);
	char loc[4200];

	assert_cmv_fails_with(code, cmv_import_cmv_file(&res, f->repo, path, NULL));
	snprintf(loc, sizeof(loc), "%s%s", path, where);
	assert_error_mentions(loc);
	assert_error_mentions(why);
	assert_int_equal(test_total_rows(f->repo), rows);
	free(path);
}

#define GOOD "{\"role\":\"user\",\"content\":\"fine\"}\n"

static void test_formats_cmv__bad_input_is_rejected_with_file_line_reason(void **state)
{
	fixture *f = *state;
	char *deep;
	size_t depth = 5000;

	test_append_n(f->repo, "main", "existing", 3);
	expect_rejected(f, "a.jsonl", GOOD GOOD "{\"role\":\"user\",\"content\":\"x\"\n", 0,
			CMV_EINVALID, ":3:", "malformed JSON");
	expect_rejected(f, "b.jsonl", GOOD "{\"content\":\"no role\"}\n", 0, CMV_EINVALID,
			":2:", "missing field \"role\"");
	expect_rejected(f, "c.jsonl", "{\"role\":\"user\",\"content\":42}\n", 0, CMV_EINVALID, ":1:",
			"must be a string or an array");
	expect_rejected(f, "d.jsonl", GOOD "{\"role\":\"user\",\"content\":\"bad \xff byte\"}\n",
			strlen(GOOD) + 37, CMV_EINVALID, ":2:", "invalid UTF-8");
	expect_rejected(f, "e.jsonl", GOOD GOOD GOOD "{\"role\":\"user\",\"content\":\"a\"}{\"role\":\"user\",\"content\":\"b\"}\n",
			strlen(GOOD) * 3 + 59, CMV_EINVALID, ":4:", "glued");
	expect_rejected(f, "f.jsonl", "{\"role\":\"wizard\",\"content\":\"x\"}\n", 0, CMV_EINVALID, ":1:",
			"unknown role 'wizard'");
	expect_rejected(f, "g.jsonl", "[1,2]\n", 0, CMV_EINVALID, ":1:", "expected a JSON object");
	expect_rejected(f, "h.jsonl", "{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\",\"name\":\"x\",\"input\":{}}]}\n",
			0, CMV_EINVALID, ":1:", "needs \"id\" and \"name\"");
	expect_rejected(f, "i.jsonl", "{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
				      "\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgp=\"}}]}\n",
			0, CMV_EINVALID, ":1:", "base64");
	expect_rejected(f, "j.jsonl", "\n\n  \n", 0, CMV_EINVALID, "", "no messages");

	/* deeply nested JSON: refused by the parser's depth limit, not by the stack */
	deep = malloc(depth * 2 + 64);
	size_t n = (size_t)snprintf(deep, 64, "{\"role\":\"user\",\"content\":");
	for (size_t i = 0; i < depth; i++)
		deep[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n++] = '\n';
	expect_rejected(f, "k.jsonl", deep, n, CMV_EINVALID, ":1:", "malformed JSON");
	free(deep);

	/* a file that is not there */
	cmv_import_result res;
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_import_cmv_file(&res, f->repo, "/nonexistent/x.jsonl", NULL));
	assert_error_mentions("/nonexistent/x.jsonl");
}

static void test_formats_cmv__a_100_mb_line_is_refused(void **state)
{
	fixture *f = *state;
	char path[4096];
	FILE *fp;
	char chunk[65536];
	cmv_import_result res;
	uint64_t rows;

	snprintf(path, sizeof(path), "%s/huge.jsonl", f->dir);
	fp = fopen(path, "w");
	fputs(GOOD, fp);
	fputs("{\"role\":\"user\",\"content\":\"", fp);
	memset(chunk, 'a', sizeof(chunk));
	for (size_t i = 0; i < (100u << 20) / sizeof(chunk); i++)
		fwrite(chunk, 1, sizeof(chunk), fp);
	fputs("\"}\n", fp);
	fclose(fp);
	test_append_n(f->repo, "main", "existing", 1);
	rows = test_total_rows(f->repo);
	assert_cmv_fails_with(CMV_ETOOBIG, cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_error_mentions(":2:");
	assert_error_mentions("line longer than");
	assert_int_equal(test_total_rows(f->repo), rows);

	/* with a cap that fits, the same line imports whole */
	cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
	o.max_line_bytes = (size_t)128 << 20;
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, &o));
	assert_int_equal(res.records, 2);
}

static void test_formats_cmv__lenient_skips_and_lists_bad_lines(void **state)
{
	fixture *f = *state;
	const char *content = GOOD "not json\n" GOOD "{\"role\":\"user\"}\n" GOOD;
	char *path = test_write_file(f->dir, "l.jsonl", content, strlen(content));
	cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;

	o.flags = CMV_IMPORT_LENIENT;
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, &o));
	assert_int_equal(res.records, 3);
	assert_int_equal(res.skipped, 2);
	assert_int_equal(res.skipped_lines[0], 2);
	assert_int_equal(res.skipped_lines[1], 4);
	free(path);
}

static void test_formats_cmv__truncated_last_line_and_crlf(void **state)
{
	fixture *f = *state;
	const char *crlf = "{\"role\":\"user\",\"content\":\"a\"}\r\n{\"role\":\"assistant\",\"content\":\"b\"}";
	char *path = test_write_file(f->dir, "w.jsonl", crlf, strlen(crlf));
	cmv_import_result res;

	/* CRLF endings and a complete final line without '\n' both import */
	assert_cmv_ok(cmv_import_cmv_file(&res, f->repo, path, NULL));
	assert_int_equal(res.records, 2);
	free(path);
	/* a final line cut off mid-write is an error that says so */
	const char *cut = "{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"assistant\",\"cont";
	expect_rejected(f, "cut.jsonl", cut, 0, CMV_EINVALID, ":2:", "truncated");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_formats_cmv__round_trip_is_json_equal, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_cmv__reimport_adds_nothing_and_grown_file_adds_tail, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_cmv__bad_input_is_rejected_with_file_line_reason, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_cmv__a_100_mb_line_is_refused, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_cmv__lenient_skips_and_lists_bad_lines, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_formats_cmv__truncated_last_line_and_crlf, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("formats: cmv jsonl", tests, NULL, NULL);
}
