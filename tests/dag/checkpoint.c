/* SPDX-License-Identifier: MIT */
/*
 * Background WAL checkpoints (cmv_repo_checkpoint_background): a server's
 * stream of small commits keeps the WAL bounded, the thread checkpoints and
 * stops cleanly, and every commit is there after a reopen; the requests'
 * thread makes no sync once the thread runs (it pays the WAL's restart too);
 * a process killed while it appends loses no append that had returned.
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/*
 * A VFS over SQLite's default one that counts the syncs made on the test's
 * own thread (the "requests'" thread here): what strace shows of a proxy,
 * in-process.
 */
typedef struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* right after this struct, in the same allocation */
} shim_file;

static sqlite3_vfs *real_vfs, shim_vfs;
static pthread_t main_thread;
static atomic_int main_syncs, other_syncs;

#define REAL(f) (((shim_file *)(f))->real)
static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), p, n, o); }
static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xWrite(REAL(f), p, n, o); }
static int shim_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int shim_sync(sqlite3_file *f, int flags)
{
	atomic_fetch_add(pthread_equal(pthread_self(), main_thread) ? &main_syncs : &other_syncs, 1);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_check(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int shim_fcntl(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int shim_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_caps(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int shim_shm_map(sqlite3_file *f, int i, int sz, int ext, void volatile **p) { return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p); }
static int shim_shm_lock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void shim_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int shim_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods shim_methods = {
	3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock,
	shim_unlock, shim_check, shim_fcntl, shim_sector, shim_caps, shim_shm_map, shim_shm_lock,
	shim_shm_barrier, shim_shm_unmap, shim_fetch, shim_unfetch,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	shim_file *sf = (shim_file *)f;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out_flags);
	/* the unix VFS's files are version 3: all of the methods above exist */
	f->pMethods = sf->real->pMethods ? &shim_methods : NULL;
	return rc;
}

static void shim_install(void)
{
	if (real_vfs)
		return;
	main_thread = pthread_self();
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "cmv-test-sync-counter";
	shim_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

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

/*
 * Requests (the test's thread) appending with pauses between them, as a
 * proxy's wait for its upstream: once the thread runs, none of their
 * commits syncs; not a checkpoint's, not a restarted WAL's header, which
 * the thread writes first. The same appends with SQLite's own checkpoints
 * do sync on this thread: the count can fail.
 */
static size_t appends_syncing(cmv_repo *repo, bool background)
{
	cmv_dag__ckpt_stats st;

	if (background) {
		assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
		/* its first round pays the header of a WAL that the next write would start */
		cmv_dag__sqlite_checkpoint_wait_idle(repo->backend);
		cmv_dag__sqlite_checkpoint_stats(repo->backend, &st);
		assert_true(st.n_restarts >= 1);
	}
	atomic_store(&main_syncs, 0);
	for (int turn = 0; turn < 40; turn++) {
		test_append_n(repo, background ? "thread" : "inline", "request", 10);
		cmv_dag__sqlite_checkpoint_wait_idle(repo->backend);
	}
	size_t n = (size_t)atomic_load(&main_syncs);
	if (background) {
		cmv_dag__sqlite_checkpoint_stats(repo->backend, &st);
		printf("# thread: checkpoints %lu, restarts %lu, fallbacks %lu; syncs on the requests' thread %zu\n",
		       st.n_done, st.n_restarts, st.n_fallback, n);
		/* 400 appends cross the lowered trigger many times over */
		assert_true(st.n_restarts >= 4);
		assert_int_equal(st.n_fallback, 0);
		assert_cmv_ok(cmv_repo_checkpoint_background(repo, 0));
	} else {
		printf("# SQLite's own checkpoints: syncs on the requests' thread %zu\n", n);
	}
	return n;
}

static void test_dag_checkpoint__requests_never_sync(void **state)
{
	char *dir = test_tmpdir();
	cmv_repo *repo = NULL;
	(void)state;

	shim_install();
	cmv_dag__ckpt_trigger_pages = TRIGGER;
	cmv_dag__ckpt_fallback_pages = FALLBACK;
	assert_cmv_ok(cmv_repo_init(&repo, dir));
	assert_true(appends_syncing(repo, false) > 0);
	assert_int_equal(appends_syncing(repo, true), 0);
	assert_true(atomic_load(&other_syncs) > 0);
	cmv_repo_free(repo);
	cmv_dag__ckpt_trigger_pages = 1000;
	cmv_dag__ckpt_fallback_pages = 16000;
	test_rmdir(dir);
	free(dir);
}

/*
 * A server killed while it appends, the thread checkpointing and restarting
 * the WAL under it: every append that had returned is in the store.
 */
#define KILL_AFTER 600

static void test_dag_checkpoint__kill_loses_nothing(void **state)
{
	char *dir = test_tmpdir(), store[4096];
	cmv_repo *repo = NULL;
	cmv_walk *w = NULL;
	cmv_id tip;
	int fds[2], status;
	unsigned acked = 0, n;
	pid_t pid;
	(void)state;

	assert_cmv_ok(cmv_repo_init(&repo, dir));
	cmv_repo_free(repo);
	snprintf(store, sizeof(store), "%s/.cmv", dir);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cmv_repo *r = NULL;
		close(fds[0]);
		cmv_dag__ckpt_trigger_pages = TRIGGER;
		cmv_dag__ckpt_fallback_pages = FALLBACK;
		if (cmv_repo_open(&r, store, 0) < 0 || cmv_repo_checkpoint_background(r, 1) < 0)
			_exit(2);
		for (unsigned i = 0;; i++) {
			char text[64];
			cmv_block_content b;
			snprintf(text, sizeof(text), "kept %u", i);
			cmv_message m = test_text_message(&b, CMV_ROLE_USER, text);
			if (cmv_append(NULL, r, "main", &m, 1, CMV_APPEND_CREATE) < 0)
				_exit(3);
			/* acknowledged only once the append has returned */
			if (write(fds[1], &i, sizeof(i)) != sizeof(i))
				_exit(4);
		}
	}
	close(fds[1]);
	while (acked < KILL_AFTER && read(fds[0], &n, sizeof(n)) == sizeof(n))
		acked = n + 1;
	kill(pid, SIGKILL);
	/* what the child wrote before the kill landed may be acknowledged after: count it too */
	while (read(fds[0], &n, sizeof(n)) == sizeof(n))
		acked = n + 1;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(acked >= KILL_AFTER, 1);

	assert_cmv_ok(cmv_repo_open(&repo, store, 0));
	assert_cmv_ok(cmv_resolve(&tip, repo, "main"));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	printf("# acknowledged %u appends before the kill, %zu in the store\n", acked, cmv_walk_length(w));
	/* the one in flight at the kill may be there too, or not */
	assert_true(cmv_walk_length(w) >= acked);
	assert_true(cmv_walk_length(w) <= acked + 1);
	cmv_walk_free(w);
	cmv_repo_free(repo);
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

/*
 * The thread's WAL restart is a commit by another connection (a row put
 * into config and deleted): the search caches, which only a change to the
 * index drops, are kept across it. The version moved (the index's state was
 * read again), and no count or length was dropped or taken again.
 */
static int no_hit(const cmv_search_hit *h, void *payload)
{
	(void)h;
	(*(int *)payload)++;
	return 0;
}

static void test_dag_checkpoint__search_caches_survive_a_restart(void **state)
{
	char *dir = test_tmpdir();
	cmv_repo *repo = NULL;
	cmv_dag__ckpt_stats st;
	cmv_dag__search_cache_stats a, b;
	const char *q[] = { "heron", "grey" };
	uint64_t df[2], n;
	int hits = 0;
	(void)state;

	assert_cmv_ok(cmv_repo_init(&repo, dir));
	test_append_n(repo, "main", "a grey heron", 20);
	assert_cmv_ok(cmv_search_count(repo, q, 2, 0, df, &n));
	assert_cmv_ok(cmv_search(repo, "heron", 10, CMV_SEARCH_NO_SNIPPET, no_hit, &hits));
	cmv_dag__sqlite_search_cache_stats(repo->backend, &a);
	assert_cmv_ok(cmv_repo_checkpoint_background(repo, 1));
	cmv_dag__sqlite_checkpoint_wait_idle(repo->backend);
	cmv_dag__sqlite_checkpoint_stats(repo->backend, &st);
	assert_true(st.n_restarts >= 1);
	assert_cmv_ok(cmv_search_count(repo, q, 2, 0, df, &n));
	assert_cmv_ok(cmv_search(repo, "heron", 10, CMV_SEARCH_NO_SNIPPET, no_hit, &hits));
	cmv_dag__sqlite_search_cache_stats(repo->backend, &b);
	assert_int_equal(df[0], 20);
	assert_int_equal(n, 20);
	assert_true(b.state_reads > a.state_reads);
	assert_int_equal(b.count_drops, 0);
	assert_int_equal(b.length_drops, 0);
	assert_int_equal(b.counted_all, a.counted_all);
	assert_int_equal(b.counted_since, a.counted_since);
	assert_int_equal(hits, 20);
	cmv_repo_free(repo);
	test_rmdir(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dag_checkpoint__bounded_and_complete),
		cmocka_unit_test(test_dag_checkpoint__requests_never_sync),
		cmocka_unit_test(test_dag_checkpoint__kill_loses_nothing),
		cmocka_unit_test(test_dag_checkpoint__noop_without_wal),
		cmocka_unit_test(test_dag_checkpoint__search_caches_survive_a_restart),
	};
	return cmocka_run_group_tests_name("dag checkpoints", tests, NULL, NULL);
}
