/* SPDX-License-Identifier: MIT */
/*
 * Bundles: a snapshot and its trimmed branch travel to another store with
 * the same ids, their lineage and every stub's original; hostile archives
 * (absolute paths, "..", links, oversized or damaged entries) are refused
 * with a reason and leave the store as it was.
 */
#include <stdio.h>
#include <string.h>
#include "test.h"
#include <cmv/compaction.h>
#include <cmv/formats.h>

#ifndef CMV_TEST_SOURCE
#define CMV_TEST_SOURCE "."
#endif

static const char session_file[] = CMV_TEST_SOURCE "/examples/claude-code/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl";

/* Import the example session, snapshot it and trim the snapshot: the refs a bundle carries. */
static void make_history(cmv_repo *repo, cmv_id *snap_head, cmv_id *trim_head)
{
	cmv_import_result res;
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	cmv_snapshot_options so = CMV_SNAPSHOT_OPTIONS_INIT;
	const char *tags[] = { "demo" };
	so.description = "before the trim";
	so.tags = tags;
	so.n_tags = 1;
	assert_cmv_ok(cmv_import_file(&res, repo, session_file, "claude-code", NULL));
	assert_cmv_ok(cmv_snapshot_create(repo, "snap", &res.head, res.branch, &so));
	to.branch = "snap.trim";
	to.from_ref = "snap";
	assert_cmv_ok(cmv_trim(&rep, repo, &res.head, &to));
	*snap_head = res.head;
	*trim_head = rep.head;
}

static char *write_bundle(test_store *ts, cmv_repo *repo, unsigned int flags)
{
	cmv_buf b = CMV_BUF_INIT((size_t)1 << 30);
	const char *snaps[] = { "snap" };
	cmv_bundle_stats st;
	assert_cmv_ok(cmv_bundle_export(&st, repo, snaps, 1, flags, test_buf_writer, &b));
	assert_int_equal(st.bytes, b.size);
	assert_true(st.nodes > 0 && st.blobs > 0);
	char *path = test_write_file(ts->dir, "b.cmvb", b.ptr, b.size);
	cmv_buf_dispose(&b);
	return path;
}

static void assert_ref(cmv_repo *repo, const char *name, const cmv_id *target, const char *from)
{
	cmv_ref *r = NULL;
	assert_cmv_ok(cmv_ref_lookup(&r, repo, name));
	assert_true(cmv_id_equal(&r->target, target));
	if (from)
		assert_string_equal(r->from_ref, from);
	cmv_ref_free(r);
}

static void test_round_trip(void **state)
{
	test_store *ts = *state;
	cmv_id snap, trim;
	cmv_repo *other = NULL;
	cmv_bundle_stats st;
	cmv_buf a = CMV_BUF_INIT((size_t)1 << 30), b = CMV_BUF_INIT((size_t)1 << 30), got = CMV_BUF_INIT(1 << 26);
	char *dir = test_tmpdir();

	make_history(ts->repo, &snap, &trim);
	char *path = write_bundle(ts, ts->repo, CMV_BUNDLE_WITH_BRANCHES);
	assert_int_equal(cmv_bundle_detect(path), 1);
	assert_int_equal(cmv_bundle_detect(session_file), 0);

	assert_cmv_ok(cmv_repo_init(&other, dir));
	assert_cmv_ok(cmv_bundle_import(&st, other, path, NULL));
	assert_int_equal(st.refs, 2);
	/* the same ids: content addressing made the same objects */
	assert_ref(other, "snap", &snap, NULL);
	assert_ref(other, "snap.trim", &trim, "snap");
	cmv_ref *r = NULL;
	assert_cmv_ok(cmv_ref_lookup(&r, other, "snap"));
	assert_string_equal(r->description, "before the trim");
	assert_int_equal(r->n_tags, 1);
	assert_string_equal(r->tags[0], "demo");
	cmv_ref_free(r);
	assert_cmv_ok(cmv_branch_note_get(&got, other, "snap.trim", "trim"));
	assert_non_null(strstr(got.ptr, "\"threshold\":500"));
	/* the same session, written from either store */
	assert_cmv_ok(cmv_claude_session_write_as(&a, "same", ts->repo, &trim));
	assert_cmv_ok(cmv_claude_session_write_as(&b, "same", other, &trim));
	assert_int_equal(a.size, b.size);
	assert_memory_equal(a.ptr, b.ptr, a.size);
	/* every stub recalls in the other store what it recalls here */
	size_t stubs = 0;
	for (const char *p = a.ptr; (p = strstr(p, "; recall ")) != NULL; p++, stubs++) {
		char id[CMV_ID_HEXSZ + 1];
		size_t n = 0;
		p += strlen("; recall ");
		while (n < CMV_ID_HEXSZ && ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')))
			n++;
		memcpy(id, p, n);
		id[n] = '\0';
		cmv_buf here = CMV_BUF_INIT(1 << 26);
		assert_cmv_ok(cmv_recall(&here, ts->repo, id));
		assert_cmv_ok(cmv_recall(&got, other, id));
		assert_int_equal(here.size, got.size);
		assert_memory_equal(here.ptr, got.ptr, got.size);
		cmv_buf_dispose(&here);
	}
	assert_true(stubs > 0);
	/* the other store is sound */
	size_t problems = 1;
	assert_cmv_ok(cmv_fsck(&problems, other, NULL, NULL));
	assert_int_equal(problems, 0);
	/* twice is harmless; a prefix gives a second copy of the refs, lineage kept */
	assert_cmv_ok(cmv_bundle_import(&st, other, path, NULL));
	assert_int_equal(st.refs, 0);
	assert_int_equal(st.unchanged, 2);
	cmv_bundle_import_options o = CMV_BUNDLE_IMPORT_OPTIONS_INIT;
	o.prefix = "from-laptop";
	assert_cmv_ok(cmv_bundle_import(&st, other, path, &o));
	assert_ref(other, "from-laptop/snap.trim", &trim, "from-laptop/snap");
	/* a ref of that name pointing elsewhere is not overwritten */
	assert_cmv_ok(cmv_ref_delete(other, "snap"));
	assert_cmv_ok(cmv_snapshot_create(other, "snap", &trim, NULL, NULL));
	uint64_t rows = test_total_rows(other);
	assert_int_equal(cmv_bundle_import(&st, other, path, NULL), CMV_EEXISTS);
	assert_error_mentions("points elsewhere");
	assert_int_equal(test_total_rows(other), rows);
	/* only snapshots are bundled */
	const char *br[] = { "snap.trim" };
	cmv_buf x = CMV_BUF_INIT(1 << 20);
	assert_int_equal(cmv_bundle_export(&st, ts->repo, br, 1, 0, test_buf_writer, &x), CMV_EINVALID);
	cmv_buf_dispose(&x);

	cmv_repo_free(other);
	test_rmdir(dir);
	free(dir);
	free(path);
	cmv_buf_dispose(&a);
	cmv_buf_dispose(&b);
	cmv_buf_dispose(&got);
}

/* ---- hostile archives, built by hand ------------------------------------------ */

static void octal(char *f, size_t w, unsigned long long v)
{
	snprintf(f, w, "%0*llo", (int)w - 1, v);
}

/* One tar entry; `claimed` is the size its header states (normally len). */
static void tar_add(cmv_buf *b, const char *name, char type, const void *data, size_t len, unsigned long long claimed)
{
	char h[512];
	unsigned sum = 0;
	memset(h, 0, sizeof(h));
	strncpy(h, name, 100);
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, claimed);
	octal(h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	h[156] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (size_t i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	cmv_buf_put(b, h, 512);
	cmv_buf_put(b, data, len);
	static const char zero[512];
	if (len % 512)
		cmv_buf_put(b, zero, 512 - len % 512);
}

static void tar_end(cmv_buf *b)
{
	static const char zero[1024];
	cmv_buf_put(b, zero, sizeof(zero));
}

static const char manifest[] = "{\"format\":\"cmv-bundle\",\"version\":1,\"refs\":[]}";

typedef struct {
	const char *what;
	int code;
	const char *says;
} hostile_case;

/* Import `b`: it fails with `code`, saying `says`, and the store has the rows it had. */
static void expect_refused(test_store *ts, cmv_buf *b, const hostile_case *c, const cmv_bundle_import_options *o)
{
	char *path = test_write_file(ts->dir, "hostile.tar", b->ptr ? b->ptr : "", b->size);
	uint64_t rows = test_total_rows(ts->repo);
	cmv_bundle_stats st;
	int rc = cmv_bundle_import(&st, ts->repo, path, o);
	if (rc != c->code)
		fail_msg("%s: import returned %d, not %d (%s)", c->what, rc, c->code,
			 cmv_error_last() ? cmv_error_last()->message : "");
	assert_error_mentions(c->says);
	assert_error_mentions("hostile.tar");
	assert_int_equal(test_total_rows(ts->repo), rows);
	free(path);
}

static void test_hostile_bundles(void **state)
{
	test_store *ts = *state;
	cmv_buf b = CMV_BUF_INIT(1 << 24);
	const char payload[] = "hello";
	char blob_name[64], hex[CMV_ID_HEXSZ + 1];
	cmv_id id;
	cmv_id_hash(&id, payload, strlen(payload));
	snprintf(blob_name, sizeof(blob_name), "blobs/%s", cmv_id_tostr(hex, sizeof(hex), &id));

	static const struct {
		const char *name;
		char type;
		hostile_case c;
	} entries[] = {
		{ "/etc/passwd", '0', { "absolute", CMV_EINVALID, "absolute path" } },
		{ "../outside", '0', { "dotdot", CMV_EINVALID, "'..'" } },
		{ "blobs/../../outside", '0', { "nested dotdot", CMV_EINVALID, "'..'" } },
		{ "blobs/link", '2', { "symlink", CMV_EINVALID, "symbolic link" } },
		{ "blobs/hard", '1', { "hard link", CMV_EINVALID, "hard link" } },
		{ "blobs", '5', { "directory", CMV_EINVALID, "not a regular file" } },
		{ "run.sh", '0', { "unknown entry", CMV_EINVALID, "not part of a cmv bundle" } },
	};
	for (size_t i = 0; i < sizeof(entries) / sizeof(*entries); i++) {
		cmv_buf_clear(&b);
		tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
		tar_add(&b, entries[i].name, entries[i].type, payload, strlen(payload), strlen(payload));
		tar_end(&b);
		expect_refused(ts, &b, &entries[i].c, NULL);
	}

	/* oversized: an entry over the cap, and one whose header claims more than is there */
	cmv_bundle_import_options o = CMV_BUNDLE_IMPORT_OPTIONS_INIT;
	o.max_entry_bytes = 100;
	hostile_case big = { "oversized", CMV_ETOOBIG, "over the limit" };
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	tar_add(&b, blob_name, '0', payload, strlen(payload), 1ull << 20);
	tar_end(&b);
	expect_refused(ts, &b, &big, &o);
	hostile_case trunc = { "truncated", CMV_EINVALID, "truncated" };
	expect_refused(ts, &b, &trunc, NULL); /* under the default cap, the archive ends inside it */
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	tar_add(&b, blob_name, '0', payload, strlen(payload), strlen(payload));
	b.size -= 100; /* cut inside the blob's padding... */
	b.size -= 400; /* ...and into its bytes */
	expect_refused(ts, &b, &trunc, NULL);
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	expect_refused(ts, &b, &(hostile_case){ "no end marker", CMV_EINVALID, "end marker" }, NULL);

	/* damage: a bad checksum, a blob that is not what its name says, a node that is not its id */
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	size_t at = b.size;
	tar_add(&b, blob_name, '0', payload, strlen(payload), strlen(payload));
	b.ptr[at + 10] ^= 1;
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "checksum", CMV_EINVALID, "checksum" }, NULL);
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	tar_add(&b, blob_name, '0', "jello", 5, 5);
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "blob mismatch", CMV_EMISMATCH, "hash to" }, NULL);
	cmv_buf nodes = CMV_BUF_INIT(1 << 16);
	cmv_buf_printf(&nodes, "{\"id\":\"%032d\",\"parent\":null,\"role\":\"user\",\"kind\":\"message\",\"blocks\":"
			       "[{\"type\":\"text\",\"blob\":\"%s\"}]}\n", 0, hex);
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	tar_add(&b, blob_name, '0', payload, strlen(payload), strlen(payload));
	tar_add(&b, "nodes.jsonl", '0', nodes.ptr, nodes.size, nodes.size);
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "node mismatch", CMV_EMISMATCH, "nodes.jsonl:1" }, NULL);
	/* a node whose blob the bundle does not carry */
	cmv_buf_clear(&b);
	tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
	tar_add(&b, "nodes.jsonl", '0', nodes.ptr, nodes.size, nodes.size);
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "missing blob", CMV_EINVALID, "nodes.jsonl:1" }, NULL);
	cmv_buf_dispose(&nodes);
#define Z32 "00000000000000000000000000000000"
	/* a node without "kind" or "role", or with a value that is not a string (it used to crash) */
	static const char *const partial[] = {
		"{\"id\":\"" Z32 "\",\"parent\":null,\"role\":\"user\",\"blocks\":[]}\n",
		"{\"id\":\"" Z32 "\",\"parent\":null,\"kind\":\"message\",\"blocks\":[]}\n",
		"{\"id\":\"" Z32 "\",\"parent\":null,\"role\":7,\"kind\":\"message\",\"blocks\":[]}\n",
		"{\"id\":\"" Z32 "\",\"parent\":null,\"role\":\"user\",\"kind\":[],\"blocks\":[]}\n",
		"{\"id\":\"" Z32 "\",\"parent\":null,\"role\":\"user\",\"kind\":\"message\",\"blocks\":"
		"[{\"type\":\"text\",\"blob\":\"" Z32 "\",\"flags\":-1e300}]}\n",
	};
	for (size_t i = 0; i < sizeof(partial) / sizeof(*partial); i++) {
		cmv_buf_clear(&b);
		tar_add(&b, "cmv-bundle.json", '0', manifest, strlen(manifest), strlen(manifest));
		tar_add(&b, "nodes.jsonl", '0', partial[i], strlen(partial[i]), strlen(partial[i]));
		tar_end(&b);
		expect_refused(ts, &b, &(hostile_case){ "partial node", CMV_EINVALID, "nodes.jsonl:1" }, NULL);
	}

	/* not a bundle at all */
	cmv_buf_clear(&b);
	tar_add(&b, "README", '0', payload, strlen(payload), strlen(payload));
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "no manifest", CMV_EINVALID, "not a cmv bundle" }, NULL);
	cmv_buf_clear(&b);
	expect_refused(ts, &b, &(hostile_case){ "empty", CMV_EINVALID, "truncated" }, NULL);
	cmv_buf_clear(&b);
	static const char newer[] = "{\"format\":\"cmv-bundle\",\"version\":9,\"refs\":[]}";
	tar_add(&b, "cmv-bundle.json", '0', newer, strlen(newer), strlen(newer));
	tar_end(&b);
	expect_refused(ts, &b, &(hostile_case){ "newer", CMV_EVERSION, "newer" }, NULL);
	cmv_buf_dispose(&b);
}

/* A failure at the very end (a ref that cannot be made) rolls back every object before it. */
static void test_failed_import_leaves_nothing(void **state)
{
	test_store *ts = *state;
	cmv_id snap, trim;
	cmv_repo *other = NULL;
	cmv_bundle_stats st;
	char *dir = test_tmpdir();
	make_history(ts->repo, &snap, &trim);
	char *path = write_bundle(ts, ts->repo, 0);
	assert_cmv_ok(cmv_repo_init(&other, dir));
	/* "snap" taken by a branch in the other store */
	assert_cmv_ok(cmv_branch_create(other, "snap", NULL, NULL));
	uint64_t rows = test_total_rows(other);
	assert_int_equal(cmv_bundle_import(&st, other, path, NULL), CMV_EEXISTS);
	assert_int_equal(test_total_rows(other), rows);
	cmv_repo_free(other);
	test_rmdir(dir);
	free(dir);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_bundles, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_failed_import_leaves_nothing, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
