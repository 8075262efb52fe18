/* SPDX-License-Identifier: MIT */
/*
 * Background WAL checkpoints (cmv_repo_checkpoint_background): a server's
 * stream of small commits keeps the WAL bounded, the thread checkpoints and
 * stops cleanly, and every commit is there after a reopen.
 */
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "dag/repo.h"

#define TRIGGER 50   /* pages: low, so that a quick test crosses them often */
#define FALLBACK 400
#define BATCHES 30
#define PER_BATCH 100
#define PAGE 4096
/* a commit appends a few pages past the fallback before its hook runs */
#define WAL_BOUND ((off_t)(FALLBACK + 100) * PAGE)

static off_t wal_size(const char *dir)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/.cmv/store.db-wal", dir);
	return stat(path, &st) == 0 ? st.st_size : 0;
}

static void test_dag_checkpoint__bounded_and_complete(void **state)
{
	char *dir = test_tmpdir();
	cmv_repo *repo = NULL;
	char store[4096];
	cmv_dag__ckpt_stats st;
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_id tip;
	off_t max_wal = 0;
	(void)state;

	cmv_dag__ckpt_trigger_pages = TRIGGER;
	cmv_dag__ckpt_fallback_pages = FALLBACK;
	assert_cmv_ok(cmv_repo_init(&repo, dir));
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1)); /* a second start is a no-op */
	for (int b = 0; b < BATCHES; b++) {
		test_append_n(repo, "main", "turn", PER_BATCH);
		if (wal_size(dir) > max_wal)
			max_wal = wal_size(dir);
	}
	/* with checkpoints off and no thread, these commits make a WAL of megabytes */
	assert_true(max_wal > 0);
	printf("# largest WAL %lld bytes (bound %lld)\n", (long long)max_wal, (long long)WAL_BOUND);
	assert_true(max_wal <= WAL_BOUND);
	/* the commits crossed the trigger: the thread was woken; wait for it, however slow */
	for (int i = 0; i < 6000; i++) {
		cmv_dag__sqlite_checkpoint_stats(repo->backend, &st);
		if (st.n_done)
			break;
		usleep(10000);
	}
	assert_true(st.n_done > 0);
	printf("# thread checkpoints %lu, fallbacks %lu\n", st.n_done, st.n_fallback);
	unsigned long before = st.n_done;

	/* stop: joined after one last checkpoint, which copies the whole WAL back (no reader holds it) */
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 0));
	cmv_dag__sqlite_checkpoint_stats(repo->backend, &st);
	assert_true(st.n_done > before);
	assert_true(st.wal_frames >= 0);
	assert_int_equal(st.backfilled, st.wal_frames);
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 0)); /* a second stop too */
	assert_true(wal_size(dir) <= WAL_BOUND);
	/* SQLite's own checkpoints are back: more commits stay bounded without the thread */
	test_append_n(repo, "more", "after", 300);
	cmv_repo_free(repo);

	/* everything is there after a reopen; and a thread left running is stopped by free */
	snprintf(store, sizeof(store), "%s/.cmv", dir);
	assert_cmv_ok(cmv_repo_open(&repo, store, 0));
	assert_cmv_ok(cmv_resolve(&tip, repo, "main"));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	assert_int_equal(cmv_walk_length(w), BATCHES * PER_BATCH);
	cmv_walk_seek(w, BATCHES * PER_BATCH - 1);
	assert_cmv_ok(cmv_walk_next(&n, w));
	assert_int_equal(n->n_blocks, 1);
	cmv_walk_free(w);
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
	test_append_n(repo, "main", "reopened", 10);
	cmv_repo_free(repo);

	cmv_dag__ckpt_trigger_pages = 1000;
	cmv_dag__ckpt_fallback_pages = 16000;
	test_rmdir(dir);
	free(dir);
}

/* Stores with no WAL of ours: nothing to start, nothing fails. */
static void test_dag_checkpoint__noop_without_wal(void **state)
{
	char *dir = test_tmpdir(), store[4096];
	cmv_repo *repo = NULL;
	(void)state;

	assert_cmv_ok(cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE));
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
	test_append_n(repo, "main", "m", 5);
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 0));
	cmv_repo_free(repo);

	assert_cmv_ok(cmv_repo_init(&repo, dir));
	test_append_n(repo, "main", "m", 5);
	cmv_repo_free(repo);
	snprintf(store, sizeof(store), "%s/.cmv", dir);
	assert_cmv_ok(cmv_repo_open(&repo, store, CMV_REPO_OPEN_READONLY));
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
	cmv_repo_free(repo);
	test_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dag_checkpoint__bounded_and_complete),
		cmocka_unit_test(test_dag_checkpoint__noop_without_wal),
	};
	return cmocka_run_group_tests_name("dag checkpoints", tests, NULL, NULL);
}
