/* SPDX-License-Identifier: MIT */
/*
 * Allocation failure along whole paths: import, trim, materialize and
 * bundle import are run once counting their allocations (the library's own,
 * cJSON's and SQLite's), then again failing the 1st, the 2nd, ... the last.
 * Each run must end in a clean error (a message, no crash) or in exactly
 * the result of the run that failed nothing, and leave the store as it was
 * (rows, refs) with fsck finding nothing. Leaks are caught by the sanitizer
 * and valgrind runs of this program. CMV_FAILALLOC_STRIDE=K tries every
 * K-th allocation only (default 1: every one).
 */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <unistd.h>
#include "test.h"
#include "base/base.h"

/* ---- routing cJSON and SQLite through the injection --------------------------- */

static sqlite3_mem_methods sqlite_default;

static void *sq_malloc(int n)
{
	return cmv__alloc_fails() ? NULL : sqlite_default.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
	return cmv__alloc_fails() ? NULL : sqlite_default.xRealloc(p, n);
}

static void *cj_malloc(size_t n)
{
	return cmv__alloc_fails() ? NULL : malloc(n);
}

static void route_allocators(void)
{
	static sqlite3_mem_methods m;
	/* before SQLite starts: its allocator cannot change after */
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_default) != SQLITE_OK) {
		fprintf(stderr, "alloc_fail: cannot read SQLite's allocator\n");
		exit(1);
	}
	m = sqlite_default;
	m.xMalloc = sq_malloc;
	m.xRealloc = sq_realloc;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) {
		fprintf(stderr, "alloc_fail: cannot route SQLite's allocator\n");
		exit(1);
	}
	cJSON_Hooks hooks = { cj_malloc, free };
	cJSON_InitHooks(&hooks);
}

/* ---- the operations ------------------------------------------------------------ */

typedef struct {
	char *dir;           /* fixture folder */
	char prepared[4096]; /* a store with the session imported */
	char empty[4096];    /* a store with nothing */
	char session[4096], bundle[4096];
	cmv_models *models;
	const cmv_model *model;
	cmv_tok *tok;
	cmv_id tip;          /* the session's branch in the prepared store */
} fixture;

/* What one run produced, compared with the run that failed nothing. */
typedef struct {
	cmv_id head;
	cmv_buf bytes;
} result;

typedef int (*op_fn)(result *out, cmv_repo *repo, const fixture *f);

static int op_import(result *out, cmv_repo *repo, const fixture *f)
{
	cmv_import_result res;
	int rc = cmv_import_file(&res, repo, f->session, NULL, NULL);
	if (rc == 0)
		out->head = res.head;
	return rc;
}

static int op_trim(result *out, cmv_repo *repo, const fixture *f)
{
	cmv_trim_options o = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	o.threshold = 100;
	o.branch = "trimmed";
	o.model = f->model;
	o.tok = f->tok;
	int rc = cmv_trim(&rep, repo, &f->tip, &o);
	if (rc == 0)
		out->head = rep.head;
	return rc;
}

static int op_materialize(result *out, cmv_repo *repo, const fixture *f)
{
	cmv_pager_options o = CMV_PAGER_OPTIONS_INIT;
	cmv_materialize_report rep = { 0 };
	o.budget = 900;
	o.state_branch = "s-1";
	int rc = cmv_materialize(&out->bytes, &rep, repo, &f->tip, f->model, f->tok, &o);
	if (rc == 0)
		cmv_materialize_report_dispose(&rep);
	return rc;
}

/* What calibration keeps is its note: the same text, or a clean error and no note. */
static int op_calibrate(result *out, cmv_repo *repo, const fixture *f)
{
	size_t pairs;
	(void)out;
	return cmv_calibrate(&pairs, repo, &f->tip, "cc/s-1", f->models);
}

/* The note, read once allocations stop failing (its reading is not what is tested). */
static int op_calibrate_result(result *out, cmv_repo *repo, const fixture *f)
{
	(void)f;
	return cmv_store_note_get(&out->bytes, repo, "calibration:claude-sonnet-4-5");
}

static int op_bundle(result *out, cmv_repo *repo, const fixture *f)
{
	cmv_bundle_stats st;
	(void)out;
	return cmv_bundle_import(&st, repo, f->bundle, NULL);
}

/*
 * What the import made, read once allocations no longer fail: a read inside
 * the failing window, failing after the import had committed, would be taken
 * for a failed import that changed the store (which a committed one should).
 */
static int op_bundle_result(result *out, cmv_repo *repo, const fixture *f)
{
	(void)f;
	return cmv_resolve(&out->head, repo, "snap");
}

/* ---- the fixture ------------------------------------------------------------------ */

static void copy_file(const char *from, const char *to)
{
	cmv_buf b = CMV_BUF_INIT(CMV_BUF_CONTENT);
	assert_cmv_ok(cmv__read_file(&b, from));
	FILE *fp = fopen(to, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b.ptr, 1, b.size, fp), b.size);
	assert_int_equal(fclose(fp), 0);
	cmv_buf_dispose(&b);
}

/* A store file at `to` that is a copy of the (closed, so checkpointed) store file at `from`. */
static void copy_store(const char *from, const char *to)
{
	char side[4200];
	snprintf(side, sizeof(side), "%s-wal", to);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", to);
	unlink(side);
	copy_file(from, to);
}

static const char session_text[] =
	"{\"parentUuid\":null,\"isSidechain\":false,\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"list the files and say what each is\"},\"uuid\":\"u1\",\"sessionId\":\"s-1\"}\n"
	"{\"parentUuid\":\"u1\",\"isSidechain\":false,\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"claude-sonnet-4-5-20250929\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Listing.\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls -l\"}}],\"usage\":{\"input_tokens\":3010,\"output_tokens\":20}},\"uuid\":\"u2\",\"sessionId\":\"s-1\"}\n"
	"{\"parentUuid\":\"u2\",\"isSidechain\":false,\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\""
	"alpha.c beta.c gamma.c delta.c epsilon.c zeta.c eta.c theta.c iota.c kappa.c lambda.c mu.c nu.c xi.c omicron.c pi.c rho.c sigma.c tau.c upsilon.c phi.c chi.c psi.c omega.c "
	"alpha.h beta.h gamma.h delta.h epsilon.h zeta.h eta.h theta.h iota.h kappa.h lambda.h mu.h nu.h xi.h omicron.h pi.h rho.h sigma.h tau.h upsilon.h phi.h chi.h psi.h omega.h\"}]},\"uuid\":\"u3\",\"sessionId\":\"s-1\"}\n"
	"{\"parentUuid\":\"u3\",\"isSidechain\":false,\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"model\":\"claude-sonnet-4-5-20250929\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Forty-eight C sources and headers, one pair per Greek letter.\"}],\"usage\":{\"input_tokens\":3260,\"output_tokens\":15}},\"uuid\":\"u4\",\"sessionId\":\"s-1\"}\n"
	"{\"parentUuid\":\"u4\",\"isSidechain\":false,\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"and which is largest?\"},\"uuid\":\"u5\",\"sessionId\":\"s-1\"}\n"
	"{\"parentUuid\":\"u5\",\"isSidechain\":false,\"type\":\"assistant\",\"message\":{\"id\":\"m3\",\"model\":\"claude-sonnet-4-5-20250929\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"omega.c, by a little.\"}],\"usage\":{\"input_tokens\":3330,\"output_tokens\":9}},\"uuid\":\"u6\",\"sessionId\":\"s-1\"}\n";

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	cmv_repo *repo = NULL;
	cmv_import_result res;
	cmv_bundle_stats bs;
	FILE *fp;

	f->dir = test_tmpdir();
	snprintf(f->prepared, sizeof(f->prepared), "%s/prepared.db", f->dir);
	snprintf(f->empty, sizeof(f->empty), "%s/empty.db", f->dir);
	snprintf(f->session, sizeof(f->session), "%s/session.jsonl", f->dir);
	snprintf(f->bundle, sizeof(f->bundle), "%s/snap.tar", f->dir);
	assert_non_null(fp = fopen(f->session, "wb"));
	fputs(session_text, fp);
	fclose(fp);
	assert_cmv_ok(cmv_models_load(&f->models, NULL));
	assert_cmv_ok(cmv_models_find(&f->model, f->models, "gpt-4o"));
	assert_cmv_ok(cmv_tok_load(&f->tok, f->model->tokenizer, NULL));
	assert_cmv_ok(cmv_repo_open(&repo, f->empty, CMV_REPO_OPEN_CREATE));
	cmv_repo_free(repo);
	assert_cmv_ok(cmv_repo_open(&repo, f->prepared, CMV_REPO_OPEN_CREATE));
	assert_cmv_ok(cmv_import_file(&res, repo, f->session, NULL, NULL));
	f->tip = res.head;
	assert_cmv_ok(cmv_snapshot_create(repo, "snap", &f->tip, NULL, NULL));
	const char *snaps[1] = { "snap" };
	cmv_buf tar = CMV_BUF_INIT(CMV_BUF_CONTENT);
	assert_cmv_ok(cmv_bundle_export(&bs, repo, snaps, 1, 0, test_buf_writer, &tar));
	free(test_write_file(f->dir, "snap.tar", tar.ptr, tar.size));
	cmv_buf_dispose(&tar);
	cmv_repo_free(repo);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	cmv_tok_free(f->tok);
	cmv_models_free(f->models);
	test_rmdir(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int count_ref(const cmv_ref *ref, void *payload)
{
	cmv_buf *names = payload;
	char hex[CMV_ID_HEXSZ + 1];
	cmv_buf_printf(names, "%s=%s\n", ref->name, cmv_id_tostr(hex, sizeof(hex), &ref->target));
	return 0;
}

static void refs_of(cmv_buf *out, cmv_repo *repo)
{
	cmv_buf_clear(out);
	assert_cmv_ok(cmv_ref_foreach(repo, count_ref, out));
}

/*
 * Run `op` on a copy of `store`, failing its n-th allocation (0: none).
 * Returns how many allocations the run made; *out the result when it succeeded
 * (with what `after`, which may be NULL, reads of it once nothing fails).
 */
static cmv_repo *open_repo; /* closed before the next copy, even when a check failed with it open */

static size_t run_failing(const fixture *f, const char *store, op_fn op, op_fn after, size_t n, result *out,
			  result *reference, const char *what)
{
	char work[4096];
	cmv_repo *repo = NULL;

	cmv__alloc_inject(false, 0);
	cmv_repo_free(open_repo);
	open_repo = NULL;
	cmv_buf refs_before = CMV_BUF_INIT(1 << 20), refs_after = CMV_BUF_INIT(1 << 20);
	size_t problems = 99;

	snprintf(work, sizeof(work), "%s/work.db", f->dir);
	copy_store(store, work);
	assert_cmv_ok(cmv_repo_open(&repo, work, 0));
	open_repo = repo;
	uint64_t rows = test_total_rows(repo);
	refs_of(&refs_before, repo);
	cmv_error_clear();
	cmv_buf_clear(&out->bytes);
	cmv__alloc_inject(true, n);
	int rc = op(out, repo, f);
	size_t calls = cmv__alloc_injected_calls();
	cmv__alloc_inject(false, 0);
	if (rc == 0 && after)
		assert_cmv_ok(after(out, repo, f));
	if (rc < 0) {
		const cmv_error *e = cmv_error_last();
		if (!e || !e->message[0])
			fail_msg("%s, allocation %zu failed: error %d with no message", what, n, rc);
		if (test_total_rows(repo) != rows)
			fail_msg("%s, allocation %zu failed (%s): the store's rows changed", what, n, e->message);
		refs_of(&refs_after, repo);
		if (strcmp(refs_before.ptr, refs_after.ptr))
			fail_msg("%s, allocation %zu failed (%s): the refs changed", what, n, e->message);
	} else if (reference) {
		/* a failure the library got round (a cache it could not fill): the same result all the same */
		if (!cmv_id_equal(&out->head, &reference->head) || out->bytes.size != reference->bytes.size ||
		    (out->bytes.size && memcmp(out->bytes.ptr, reference->bytes.ptr, out->bytes.size)))
		{
			size_t at = 0;
			while (at < out->bytes.size && at < reference->bytes.size && out->bytes.ptr[at] == reference->bytes.ptr[at])
				at++;
			fail_msg("%s, allocation %zu failed: it succeeded with another result (%zu bytes against %zu, "
				 "first difference at %zu: ...%.80s)", what, n, out->bytes.size, reference->bytes.size, at,
				 out->bytes.ptr ? out->bytes.ptr + (at > 40 ? at - 40 : 0) : "");
		}
	}
	assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
	if (problems)
		fail_msg("%s, allocation %zu failed: fsck finds %zu problems", what, n, problems);
	cmv_repo_free(repo);
	open_repo = NULL;
	cmv_buf_dispose(&refs_before);
	cmv_buf_dispose(&refs_after);
	return calls;
}

static void fail_every_allocation(const fixture *f, const char *store, op_fn op, op_fn after, const char *what)
{
	result reference = { .bytes = CMV_BUF_INIT(CMV_BUF_CONTENT) }, r = { .bytes = CMV_BUF_INIT(CMV_BUF_CONTENT) };
	const char *s = getenv("CMV_FAILALLOC_STRIDE");
	size_t stride = s && strtoul(s, NULL, 10) > 0 ? (size_t)strtoul(s, NULL, 10) : 1, failed = 0;

	size_t total = run_failing(f, store, op, after, 0, &reference, NULL, what);
	assert_true(total > 0);
	/* CMV_FAILALLOC_FIRST=N: start at the N-th allocation (to look at one failure) */
	const char *first = getenv("CMV_FAILALLOC_FIRST");
	size_t from = first && strtoul(first, NULL, 10) > 0 ? (size_t)strtoul(first, NULL, 10) : 1;
	for (size_t n = from; n <= total; n += stride) {
		run_failing(f, store, op, after, n, &r, &reference, what);
		failed++;
	}
	print_message("%s: %zu allocations, %zu runs each failing one: every failure clean\n", what, total, failed);
	cmv_buf_dispose(&reference.bytes);
	cmv_buf_dispose(&r.bytes);
}

static void test_alloc_fail__import(void **state)
{
	fixture *f = *state;
	fail_every_allocation(f, f->empty, op_import, NULL, "import");
}

static void test_alloc_fail__trim(void **state)
{
	fixture *f = *state;
	fail_every_allocation(f, f->prepared, op_trim, NULL, "trim");
}

static void test_alloc_fail__materialize(void **state)
{
	fixture *f = *state;
	fail_every_allocation(f, f->prepared, op_materialize, NULL, "materialize");
}

static void test_alloc_fail__calibrate(void **state)
{
	fixture *f = *state;
	fail_every_allocation(f, f->prepared, op_calibrate, op_calibrate_result, "calibrate");
}

static void test_alloc_fail__bundle_import(void **state)
{
	fixture *f = *state;
	fail_every_allocation(f, f->empty, op_bundle, op_bundle_result, "bundle import");
}

int main(void)
{
	/* calibration dates its note: one clock for the runs to compare */
	setenv("CMV_NOW", "1767225600", 1);
	route_allocators();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_fail__import),
		cmocka_unit_test(test_alloc_fail__trim),
		cmocka_unit_test(test_alloc_fail__materialize),
		cmocka_unit_test(test_alloc_fail__calibrate),
		cmocka_unit_test(test_alloc_fail__bundle_import),
	};
	return cmocka_run_group_tests_name("allocation failure", tests, setup, teardown);
}
