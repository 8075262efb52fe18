/* SPDX-License-Identifier: MIT */
/*
 * What other processes do to a store: a writer killed mid-import leaves
 * the store as it was; two writers appending to one branch lose nothing.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "test.h"

typedef struct {
	char *dir;
	char store[4096];
	char *big;  /* a large import file */
} fixture;

#define BIG_RECORDS 20000

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	cmv_repo *repo = NULL;
	FILE *fp;
	char path[4096];

	f->dir = test_tmpdir();
	snprintf(f->store, sizeof(f->store), "%s/.cmv", f->dir);
	if (cmv_repo_init(&repo, f->dir) < 0)
		return -1;
	test_append_n(repo, "main", "before", 10);
	cmv_repo_free(repo);
	snprintf(path, sizeof(path), "%s/big.jsonl", f->dir);
	f->big = strdup(path);
	fp = fopen(path, "w");
	for (int i = 0; i < BIG_RECORDS; i++)
		fprintf(fp, "{\"role\":\"%s\",\"content\":\"record %d with some padding text "
			    "to make the transaction large enough to spill to the WAL\"}\n",
			i % 2 ? "assistant" : "user", i);
	fclose(fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	test_rmdir(f->dir);
	free(f->dir);
	free(f->big);
	free(f);
	return 0;
}

static int signal_fd = -1;

/* In the child: after 5000 records, tell the parent and wait to be killed. */
static int pause_midway(size_t records, void *payload)
{
	(void)payload;
	if (records == 5000) {
		char c = 'x';
		if (write(signal_fd, &c, 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	return 0;
}

static void check_store_as_before(const fixture *f, uint64_t rows_before)
{
	cmv_repo *repo = NULL;
	cmv_ref *r = NULL;
	size_t problems = 99;

	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	assert_int_equal(test_total_rows(repo), rows_before);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_ref_lookup(&r, repo, "big"));
	assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
	assert_int_equal(problems, 0);
	cmv_repo_free(repo);
}

static uint64_t rows_now(const fixture *f)
{
	cmv_repo *repo = NULL;
	uint64_t n;

	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	n = test_total_rows(repo);
	cmv_repo_free(repo);
	return n;
}

static void test_dag_process__killed_import_changes_nothing(void **state)
{
	fixture *f = *state;
	uint64_t before = rows_now(f);
	int fds[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cmv_repo *repo = NULL;
		cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
		cmv_import_result res;
		close(fds[0]);
		signal_fd = fds[1];
		o.progress = pause_midway;
		if (cmv_repo_open(&repo, f->store, 0) < 0)
			_exit(2);
		cmv_import_cmv_file(&res, repo, f->big, &o);
		_exit(4); /* never reached: the parent kills us first */
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	check_store_as_before(f, before);
}

static void test_dag_process__killed_at_random_moments(void **state)
{
	fixture *f = *state;
	uint64_t before = rows_now(f);
	unsigned seed = (unsigned)time(NULL);

	/* Kills that land anywhere: parsing, writing, committing, or after. */
	for (int round = 0; round < 8; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			cmv_repo *repo = NULL;
			cmv_import_options o = CMV_IMPORT_OPTIONS_INIT;
			cmv_import_result res;
			o.branch = "big";
			if (cmv_repo_open(&repo, f->store, 0) < 0)
				_exit(2);
			_exit(cmv_import_cmv_file(&res, repo, f->big, &o) < 0 ? 1 : 0);
		}
		usleep((useconds_t)(rand_r(&seed) % 150000));
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		cmv_repo *repo = NULL;
		cmv_ref *r = NULL;
		size_t problems = 99;
		assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
		int found = cmv_ref_lookup(&r, repo, "big");
		if (found == 0) {
			/* the import finished before the kill: all of it is there */
			cmv_walk *w = NULL;
			assert_cmv_ok(cmv_walk_new(&w, repo, &r->target));
			assert_int_equal(cmv_walk_length(w), BIG_RECORDS);
			cmv_walk_free(w);
			cmv_ref_free(r);
			assert_cmv_ok(cmv_ref_delete(repo, "big"));
			cmv_gc_stats s;
			assert_cmv_ok(cmv_gc(&s, repo, 0));
		} else {
			assert_int_equal(found, CMV_ENOTFOUND);
		}
		assert_int_equal(test_total_rows(repo), before);
		assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
		assert_int_equal(problems, 0);
		cmv_repo_free(repo);
	}
}

#define PER_WRITER 150

static void append_as(const char *store, const char *who)
{
	cmv_repo *repo = NULL;
	char text[64];
	cmv_block_content b;

	if (cmv_repo_open(&repo, store, 0) < 0)
		_exit(2);
	for (int i = 0; i < PER_WRITER; i++) {
		snprintf(text, sizeof(text), "%s %d", who, i);
		cmv_message m = test_text_message(&b, CMV_ROLE_USER, text);
		if (cmv_append(NULL, repo, "main", &m, 1, 0) < 0) {
			fprintf(stderr, "%s: %s\n", who, cmv_error_last()->message);
			_exit(1);
		}
	}
	cmv_repo_free(repo);
	_exit(0);
}

static void test_dag_process__concurrent_appenders_lose_nothing(void **state)
{
	fixture *f = *state;
	pid_t a, b;
	int st;
	cmv_repo *repo = NULL;
	cmv_walk *w = NULL;
	const cmv_node *n;
	cmv_buf text = CMV_BUF_INIT(256);
	cmv_id tip;
	int next_a = 0, next_b = 0, before = 0;

	if ((a = fork()) == 0)
		append_as(f->store, "A");
	if ((b = fork()) == 0)
		append_as(f->store, "B");
	assert_int_equal(waitpid(a, &st, 0), a);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(waitpid(b, &st, 0), b);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	assert_cmv_ok(cmv_repo_open(&repo, f->store, 0));
	assert_cmv_ok(cmv_resolve(&tip, repo, "main"));
	assert_cmv_ok(cmv_walk_new(&w, repo, &tip));
	assert_int_equal(cmv_walk_length(w), 10 + 2 * PER_WRITER);
	/* each writer's messages are all there, in its own order */
	while (cmv_walk_next(&n, w) == 0) {
		int i;
		assert_cmv_ok(cmv_blob_read(&text, repo, &n->blocks[0].blob));
		if (sscanf(text.ptr, "A %d", &i) == 1)
			assert_int_equal(i, next_a++);
		else if (sscanf(text.ptr, "B %d", &i) == 1)
			assert_int_equal(i, next_b++);
		else
			before++;
	}
	assert_int_equal(next_a, PER_WRITER);
	assert_int_equal(next_b, PER_WRITER);
	assert_int_equal(before, 10);
	cmv_walk_free(w);
	cmv_buf_dispose(&text);
	cmv_repo_free(repo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dag_process__killed_import_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dag_process__killed_at_random_moments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dag_process__concurrent_appenders_lose_nothing, setup, teardown),
	};
	return cmocka_run_group_tests_name("dag processes", tests, NULL, NULL);
}
