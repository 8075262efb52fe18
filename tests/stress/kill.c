/* SPDX-License-Identifier: MIT */
/*
 * Crashes and crowds: a hundred writers killed (SIGKILL) at random moments
 * during imports, trims, compactions and append loops, each leaving the
 * store as it was or with the whole of what it wrote, never part of it,
 * with fsck clean; and many processes on one store at once (appenders, an
 * importer, a gc loop and a reader) losing nothing and meeting no lock
 * error. CMV_KILL_ROUNDS changes the number of kills (default 100).
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

#define BIG_RECORDS 6000
#define APPENDS 200

typedef struct {
	char *dir;
	char store[4096], big[4096];
	cmv_models *models;
	const cmv_model *model;
	cmv_tok *tok;
	cmv_id session;      /* the imported Claude Code session */
	cmv_id main_head;
	cmv_id trim_ref, compact_ref; /* what an unkilled trim and compaction write */
	double secs[4];      /* how long each operation takes unkilled */
} fixture;

enum { OP_IMPORT, OP_TRIM, OP_COMPACT, OP_APPEND, N_OPS };
static const char *const op_names[] = { "import", "trim", "compact", "append" };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One operation, as a child process runs it; returns its error. */
static int run_op(const fixture *f, int op, cmv_id *head)
{
	cmv_repo *repo = NULL;
	int rc = cmv_repo_open(&repo, f->store, 0);
	if (rc < 0)
		return rc;
	switch (op) {
	case OP_IMPORT: {
		cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
		cmv_import_result res;
		o.branch = "big";
		rc = cmv_import_cmv_file(&res, repo, f->big, &o);
		*head = res.head;
		break;
	}
	case OP_TRIM: {
		cmv_trim_options o = CMV_TRIM_OPTIONS_INIT;
		cmv_trim_report rep;
		o.branch = "t";
		o.model = f->model;
		o.tok = f->tok;
		rc = cmv_trim(&rep, repo, &f->session, &o);
		*head = rep.head;
		break;
	}
	case OP_COMPACT: {
		cmv_compact_options o = CMV_COMPACT_OPTIONS_INIT;
		cmv_compact_report rep;
		o.branch = "c";
		o.target = f->model;
		o.tok = f->tok;
		o.budget = 3000;
		rc = cmv_compact(&rep, repo, &f->session, &o);
		*head = rep.head;
		if (rc == 0)
			cmv_compact_report_dispose(&rep);
		break;
	}
	case OP_APPEND:
		for (int i = 0; i < APPENDS && rc == 0; i++) {
			char text[32];
			cmv_block_content b;
			snprintf(text, sizeof(text), "K %d", i);
			cmv_message m = test_text_message(&b, CMV_ROLE_USER, text);
			rc = cmv_append(head, repo, "main", &m, 1, 0);
		}
		break;
	}
	cmv_repo_free(repo);
	return rc;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	cmv_repo *repo = NULL;
	cmv_import_result res;
	FILE *fp;

	f->dir = test_tmpdir();
	snprintf(f->store, sizeof(f->store), "%s/.cmv", f->dir);
	snprintf(f->big, sizeof(f->big), "%s/big.jsonl", f->dir);
	if (!(fp = fopen(f->big, "w")))
		return -1;
	for (int i = 0; i < BIG_RECORDS; i++)
		fprintf(fp, "{\"role\":\"%s\",\"content\":\"record %d, long enough for the transaction to spill "
			    "into the WAL before it commits\"}\n", i % 2 ? "assistant" : "user", i);
	fclose(fp);
	if (cmv_models_load(&f->models, NULL) < 0 || cmv_models_find(&f->model, f->models, "gpt-4") < 0 ||
	    cmv_tok_load(&f->tok, f->model->tokenizer, NULL) < 0 || cmv_repo_init(&repo, f->dir) < 0)
		return -1;
	test_append_n(repo, "main", "before", 10);
	if (cmv_resolve(&f->main_head, repo, "main") < 0 ||
	    cmv_import_file(&res, repo, CMV_TEST_SOURCE "/examples/claude-code/2cba43de-c8d2-4a69-add8-9fae3ad93900.jsonl",
			    NULL, NULL) < 0)
		return -1;
	f->session = res.head;
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

static const char *const op_refs[] = { "big", "t", "c", NULL };

/* The store after a kill: all or nothing of what the operation wrote; then back to how it was. */
static void check_and_reset(fixture *f, int op, uint64_t rows_before, const cmv_id *want, int round)
{
	cmv_repo *repo = NULL;
	cmv_ref *r = NULL;
	size_t problems = 99;
	cmv_gc_stats gs;

	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
	if (problems)
		fail_msg("round %d (%s): fsck finds %zu problems after the kill", round, op_names[op], problems);
	if (op == OP_APPEND) {
		/* each append is its own transaction: main has the first k of them, in order, and nothing else */
		cmv_walk *w = NULL;
		const cmv_node *n;
		cmv_buf text = CMV_BUF_INIT(256);
		cmv_id tip;
		int next = 0, old = 0;
		assert_cmv_ok(cmv_resolve(&tip, repo, "main"));
		assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
		while (cmv_walk_next(&n, w) == 0) {
			int i;
			assert_cmv_ok(cmv_blob_read(&text, repo, &n->blocks[0].blob));
			if (sscanf(text.ptr, "K %d", &i) == 1) {
				if (i != next++)
					fail_msg("round %d (append): message %d where %d belongs", round, i, next - 1);
			} else {
				old++;
			}
		}
		assert_int_equal(old, 10);
		cmv_walk_free(w);
		cmv_buf_dispose(&text);
		assert_cmv_ok(cmv_branch_update(repo, "main", &f->main_head, &tip));
	} else if (cmv_ref_lookup(&r, repo, op_refs[op]) == 0) {
		/* it finished before the kill: the whole of it, the same as an unkilled run */
		if (!cmv_id_equal(&r->target, want))
			fail_msg("round %d (%s): the branch is not what an unkilled run writes", round, op_names[op]);
		cmv_ref_free(r);
		assert_cmv_ok(cmv_ref_delete(repo, op_refs[op]));
	} else {
		cmv_error_clear();
		if (rows_before != UINT64_MAX && test_total_rows(repo) != rows_before)
			fail_msg("round %d (%s): killed before the end, yet the store's rows changed", round, op_names[op]);
	}
	assert_cmv_ok(cmv_gc(&gs, repo, 0));
	if (rows_before != UINT64_MAX && test_total_rows(repo) != rows_before)
		fail_msg("round %d (%s): after gc the store is not as it was", round, op_names[op]);
	cmv_repo_free(repo);
}

static uint64_t rows_now(const fixture *f)
{
	cmv_repo *repo = NULL;
	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	uint64_t n = test_total_rows(repo);
	cmv_repo_free(repo);
	return n;
}

static void test_stress_kill__hundred_kills_at_random_moments(void **state)
{
	fixture *f = *state;
	const char *s = getenv("CMV_KILL_ROUNDS");
	int rounds = s && strtol(s, NULL, 10) > 0 ? (int)strtol(s, NULL, 10) : 100;
	unsigned seed = (unsigned)time(NULL);
	cmv_id want[N_OPS];
	int finished[N_OPS] = { 0 }, killed[N_OPS] = { 0 };

	/*
	 * Each operation once unkilled: what it writes, and how long it takes.
	 * It also fills the token cache, which gc keeps (a cache, not history):
	 * the rows counted after it are the store as every kill must leave it.
	 */
	for (int op = 0; op < N_OPS; op++) {
		double t0 = now();
		assert_cmv_ok(run_op(f, op, &want[op]));
		f->secs[op] = now() - t0;
		check_and_reset(f, op, UINT64_MAX, &want[op], -1);
	}
	uint64_t rows = rows_now(f);
	print_message("kill: seed %u; unkilled: import %.0f ms, trim %.0f ms, compact %.0f ms, %d appends %.0f ms\n",
		      seed, f->secs[0] * 1e3, f->secs[1] * 1e3, f->secs[2] * 1e3, APPENDS, f->secs[3] * 1e3);
	for (int round = 0; round < rounds; round++) {
		int op = round % N_OPS;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			cmv_id head;
			_exit(run_op(f, op, &head) < 0 ? 1 : 0);
		}
		/* anywhere from before the first write to after the commit */
		usleep((useconds_t)((double)(rand_r(&seed) % 1000) / 1000.0 * f->secs[op] * 1.2e6));
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFSIGNALED(st))
			killed[op]++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			finished[op]++;
		else
			fail_msg("round %d (%s): the writer failed before it was killed", round, op_names[op]);
		check_and_reset(f, op, rows, &want[op], round);
	}
	for (int op = 0; op < N_OPS; op++)
		print_message("kill: %-8s %3d killed, %3d finished first; the store whole every time\n", op_names[op],
			      killed[op], finished[op]);
}

#define WRITERS 4
#define PER_WRITER 120

static int appender(const char *store, int who)
{
	cmv_repo *repo = NULL;
	if (cmv_repo_open(&repo, store, 0) < 0)
		return 1;
	for (int i = 0; i < PER_WRITER; i++) {
		char text[64];
		cmv_block_content b;
		snprintf(text, sizeof(text), "W%d %d", who, i);
		cmv_message m = test_text_message(&b, CMV_ROLE_USER, text);
		if (cmv_append(NULL, repo, "main", &m, 1, 0) < 0) {
			fprintf(stderr, "appender %d: %s\n", who, cmv_error_last()->message);
			return 1;
		}
	}
	cmv_repo_free(repo);
	return 0;
}

static int hit_count(const cmv_search_hit *hit, void *payload)
{
	(void)hit;
	++*(size_t *)payload;
	return 0;
}

/* gc or search in a loop until the file `stop` exists. */
static int looper(const char *store, const char *stop, bool gc)
{
	cmv_repo *repo = NULL;
	if (cmv_repo_open(&repo, store, 0) < 0)
		return 1;
	while (access(stop, F_OK) != 0) {
		cmv_gc_stats gs;
		size_t hits = 0;
		int rc = gc ? cmv_gc(&gs, repo, 0) : cmv_search(repo, "record", 5, 0, hit_count, &hits);
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", gc ? "gc" : "reader", cmv_error_last()->message);
			return 1;
		}
		usleep(2000);
	}
	cmv_repo_free(repo);
	return 0;
}

static void test_stress_kill__crowd_on_one_store_loses_nothing(void **state)
{
	fixture *f = *state;
	char stop[4200];
	pid_t pids[WRITERS + 3];
	int n = 0, st;
	cmv_repo *repo = NULL;
	cmv_walk *w = NULL;
	const cmv_node *nd;
	cmv_buf text = CMV_BUF_INIT(256);
	cmv_id tip;
	int next[WRITERS] = { 0 };

	snprintf(stop, sizeof(stop), "%s/stop", f->dir);
	for (int i = 0; i < WRITERS; i++)
		if ((pids[n++] = fork()) == 0)
			_exit(appender(f->store, i));
	if ((pids[n++] = fork()) == 0) {
		cmv_id head;
		_exit(run_op(f, OP_IMPORT, &head) < 0 ? 1 : 0);
	}
	pid_t gc = fork(), reader;
	if (gc == 0)
		_exit(looper(f->store, stop, true));
	if ((reader = fork()) == 0)
		_exit(looper(f->store, stop, false));
	for (int i = 0; i < n; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("writer %d failed (see its message above)", i);
	}
	free(test_write_file(f->dir, "stop", "", 0));
	assert_int_equal(waitpid(gc, &st, 0), gc);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(waitpid(reader, &st, 0), reader);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	assert_cmv_ok(cmv_resolve(&tip, repo, "main"));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	while (cmv_walk_next(&nd, w) == 0) {
		int who, i;
		assert_cmv_ok(cmv_blob_read(&text, repo, &nd->blocks[0].blob));
		if (sscanf(text.ptr, "W%d %d", &who, &i) == 2) {
			assert_true(who >= 0 && who < WRITERS);
			assert_int_equal(i, next[who]++);
		}
	}
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(next[i], PER_WRITER);
	cmv_walk_free(w);
	assert_cmv_ok(cmv_resolve(&tip, repo, "big"));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	assert_int_equal(cmv_walk_length(w), BIG_RECORDS);
	cmv_walk_free(w);
	size_t problems = 99;
	assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
	assert_int_equal(problems, 0);
	print_message("crowd: %d appenders x %d, an import of %d records, a gc loop and a reader: nothing lost\n",
		      WRITERS, PER_WRITER, BIG_RECORDS);
	cmv_buf_dispose(&text);
	cmv_repo_free(repo);
}

int main(void)
{
	/* a compaction dates what it writes: one clock, so an unkilled run and a finished one write the same */
	setenv("CMV_NOW", "1767225600", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stress_kill__hundred_kills_at_random_moments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stress_kill__crowd_on_one_store_loses_nothing, setup, teardown),
	};
	return cmocka_run_group_tests_name("kills and crowds", tests, NULL, NULL);
}
