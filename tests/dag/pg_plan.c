/* SPDX-License-Identifier: MIT */
/*
 * The PostgreSQL store's plans, read from EXPLAIN rather than timed: a
 * search for a word in one text of thousands reads the GIN index, never
 * the whole table, in the custom plan and in the generic one a prepared
 * statement may switch to, on a store whose index no vacuum has touched
 * (a GIN pending list, which every search reads whole, made the planner
 * scan the table: O(texts) per search, docs/store.md). A store of schema
 * version 1 is migrated to the same plans when it is opened. The check for
 * pending texts before each search reads the pending index, not the table.
 */
#include "test.h"
#include "dag/repo.h"

#define TEXTS 3000

static cmv_repo *open_store(const char *url)
{
	cmv_repo *repo = NULL;
	assert_cmv_ok(cmv_repo_open(&repo, url, CMV_REPO_OPEN_CREATE));
	return repo;
}

/* `what`'s plans (custom and generic) read `index` and never scan the blobs. */
static void assert_plans_read(cmv_repo *repo, const char *what, const char *word, const char *index)
{
	cmv_buf plan = CMV_BUF_INIT(CMV_BUF_CONTENT);

	for (int generic = 0; generic < 2; generic++) {
		assert_cmv_ok(cmv_dag__pg_explain(&plan, repo->backend, what, word, generic));
		if (!strstr(plan.ptr, index) || strstr(plan.ptr, "Seq Scan on blobs"))
			fail_msg("%s (%s plan) does not read %s:\n%s", what, generic ? "generic" : "custom", index,
				 plan.ptr);
	}
	cmv_buf_dispose(&plan);
}

/* Both plans of both statements use the index; `word` is in one text. */
static void assert_index_plans(cmv_repo *repo, const char *word)
{
	cmv_buf plan = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const char *whats[] = { "search", "search_count" };

	for (int w = 0; w < 2; w++)
		for (int generic = 0; generic < 2; generic++) {
			assert_cmv_ok(cmv_dag__pg_explain(&plan, repo->backend, whats[w], word,
							  generic));
			if (!strstr(plan.ptr, "Index Scan on blobs_fts") || strstr(plan.ptr, "Seq Scan on blobs"))
				fail_msg("%s (%s plan) does not read the index:\n%s", whats[w],
					 generic ? "generic" : "custom", plan.ptr);
		}
	cmv_buf_dispose(&plan);
}

static int on_hit(const cmv_search_hit *hit, void *payload)
{
	(void)hit;
	(*(size_t *)payload)++;
	return 0;
}

/* TEXTS texts in one transaction: the autovacuum that would merge a pending list has had no chance */
static void fill(cmv_repo *repo)
{
	assert_cmv_ok(cmv_repo_txn_begin(repo));
	test_append_n(repo, "main", "the build fails with an undefined reference in module", TEXTS);
	assert_cmv_ok(cmv_repo_txn_commit(repo));
}

static void search_one(cmv_repo *repo, const char *word)
{
	size_t hits = 0;

	assert_cmv_ok(cmv_search(repo, word, 20, 0, on_hit, &hits)); /* indexes everything first */
	assert_int_equal(hits, 1);
}

static void test_dag_pg_plan__rare_word_search_reads_the_index(void **state)
{
	char *url = test_pg_url("plan_test");
	cmv_repo *repo = open_store(url);

	(void)state;
	fill(repo);
	search_one(repo, "1234");
	assert_index_plans(repo, "1234");
	cmv_repo_free(repo);
	free(url);
}

/* A store of version 1 (fastupdate on, every text in the pending list) is migrated when it is opened. */
static void test_dag_pg_plan__version_1_is_migrated(void **state)
{
	char *url = test_pg_url("plan_test_v1");
	cmv_repo *repo = open_store(url);

	(void)state;
	test_pg_exec("SET search_path = plan_test_v1; ALTER INDEX blobs_fts SET (fastupdate = on)");
	fill(repo);
	assert_cmv_ok(cmv_repo_index(NULL, repo));
	cmv_repo_free(repo);
	test_pg_exec("SET search_path = plan_test_v1; UPDATE cmv_schema SET version = 1");
	repo = open_store(url);
	search_one(repo, "2345");
	assert_index_plans(repo, "2345");
	cmv_repo_free(repo);
	free(url);
}

/*
 * "Is anything pending?" (asked before every search) and the indexer's
 * batch read the pending index, even when the table was analyzed while
 * every text was pending (an import, then autovacuum): indexing many texts
 * analyzes the column again. Before, the check scanned the table until
 * autovacuum came back (19 ms a search at 100k texts).
 */
static void test_dag_pg_plan__pending_check_reads_the_pending_index(void **state)
{
	char *url = test_pg_url("plan_test_pending");
	cmv_repo *repo = open_store(url);
	size_t n = 0;

	(void)state;
	fill(repo);
	test_pg_exec("SET search_path = plan_test_pending; ANALYZE blobs");
	assert_cmv_ok(cmv_repo_index(&n, repo));
	assert_int_equal(n, TEXTS);
	assert_plans_read(repo, "index_behind", NULL, "blobs_pending");
	assert_plans_read(repo, "pending", NULL, "blobs_pending");
	cmv_repo_free(repo);
	free(url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dag_pg_plan__rare_word_search_reads_the_index),
		cmocka_unit_test(test_dag_pg_plan__version_1_is_migrated),
		cmocka_unit_test(test_dag_pg_plan__pending_check_reads_the_pending_index),
	};
	return cmocka_run_group_tests_name("dag pg_plan", tests, NULL, NULL);
}
