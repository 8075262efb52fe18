/* SPDX-License-Identifier: MIT */
/* gc keeps exactly what refs reach; fsck finds corruption and dangling refs. */
#include <sqlite3.h>
#include "test.h"
#include <cmv/sys/store_backend.h>
#include "dag/repo.h"

typedef test_store fixture;

/* Change the store behind the library's back, as a disk fault or a bad tool would. */
static void raw_sql(const fixture *f, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("raw sql failed: %s", msg);
	sqlite3_close(db);
}

static int node_exists(cmv_repo *repo, const cmv_id *id)
{
	cmv_node *n = NULL;
	int rc = cmv_node_read(&n, repo, id);

	cmv_node_free(n);
	cmv_error_clear();
	return rc == 0;
}

static void test_dag_gc__keeps_exactly_what_refs_reach(void **state)
{
	fixture *f = *state;
	cmv_repo *repo = f->repo;
	cmv_block_content b;
	cmv_message m;
	cmv_id tip, orphan_root, orphan, original, trimmed, covered, summary, snapped;
	cmv_gc_stats s;

	/* main: 5 messages */
	test_append_n(repo, "main", "kept", 5);
	assert_cmv_ok(cmv_resolve(&tip, repo, "main"));

	/* garbage: a chain no ref reaches */
	m = test_text_message(&b, CMV_ROLE_USER, "unreachable root");
	assert_cmv_ok(cmv_node_write(&orphan_root, repo, NULL, &m));
	m = test_text_message(&b, CMV_ROLE_USER, "unreachable child with unique text");
	assert_cmv_ok(cmv_node_write(&orphan, repo, &orphan_root, &m));

	/* an original reachable only through derived_from from a branch */
	m = test_text_message(&b, CMV_ROLE_ASSISTANT, "the long original");
	assert_cmv_ok(cmv_node_write(&original, repo, NULL, &m));
	m = test_text_message(&b, CMV_ROLE_ASSISTANT, "[trimmed]");
	m.derived_from = &original;
	m.n_derived_from = 1;
	assert_cmv_ok(cmv_node_write(&trimmed, repo, &tip, &m));
	assert_cmv_ok(cmv_branch_create(repo, "trimmed", &trimmed, "main"));

	/* a range reachable only through covers from a snapshot */
	m = test_text_message(&b, CMV_ROLE_USER, "covered detail");
	assert_cmv_ok(cmv_node_write(&covered, repo, NULL, &m));
	m = test_text_message(&b, CMV_ROLE_ASSISTANT, "summary of the detail");
	m.kind = CMV_KIND_SUMMARY;
	m.covers = &covered;
	m.n_covers = 1;
	assert_cmv_ok(cmv_node_write(&summary, repo, NULL, &m));
	assert_cmv_ok(cmv_snapshot_create(repo, "summarized", &summary, NULL, NULL));

	/* a record reachable only because a session manifest includes it */
	cmv_id record, manifest;
	m = test_text_message(&b, CMV_ROLE_USER, "a record of an imported session");
	assert_cmv_ok(cmv_node_write(&record, repo, NULL, &m));
	m = test_text_message(&b, CMV_ROLE_SYSTEM, "manifest");
	m.kind = CMV_KIND_EVENT;
	m.includes = &record;
	m.n_includes = 1;
	assert_cmv_ok(cmv_node_write(&manifest, repo, NULL, &m));
	assert_cmv_ok(cmv_snapshot_create(repo, "session-manifest", &manifest, NULL, NULL));

	/* a branch that is deleted: its tip becomes garbage */
	m = test_text_message(&b, CMV_ROLE_USER, "on a deleted branch");
	assert_cmv_ok(cmv_node_write(&snapped, repo, &tip, &m));
	assert_cmv_ok(cmv_branch_create(repo, "doomed", &snapped, "main"));
	assert_cmv_ok(cmv_ref_delete(repo, "doomed"));

	assert_cmv_ok(cmv_gc(&s, repo, CMV_GC_DRY_RUN));
	assert_int_equal(s.nodes_removed, 3);
	assert_true(node_exists(repo, &orphan)); /* dry run removed nothing */

	assert_cmv_ok(cmv_gc(&s, repo, 0));
	assert_int_equal(s.nodes_removed, 3);
	/* 5 + trimmed + original + covered + summary + record + manifest */
	assert_int_equal(s.nodes_kept, 11);
	assert_int_equal(s.blobs_removed, 3);
	assert_true(s.bytes_removed > 0);
	assert_false(node_exists(repo, &orphan));
	assert_false(node_exists(repo, &orphan_root));
	assert_false(node_exists(repo, &snapped));
	assert_true(node_exists(repo, &tip));
	assert_true(node_exists(repo, &original));
	assert_true(node_exists(repo, &covered));
	assert_true(node_exists(repo, &summary));
	assert_true(node_exists(repo, &record));

	/* removed text no longer matches a search; the store checks clean */
	size_t problems = 99;
	assert_cmv_ok(cmv_fsck(&problems, repo, NULL, NULL));
	assert_int_equal(problems, 0);

	/* gc again: nothing left to do */
	assert_cmv_ok(cmv_gc(&s, repo, 0));
	assert_int_equal(s.nodes_removed, 0);
	assert_int_equal(s.blobs_removed, 0);
}

static int no_hit(const cmv_search_hit *h, void *payload)
{
	(void)h;
	(*(int *)payload)++;
	return 0;
}

static void test_dag_gc__removed_text_leaves_the_index(void **state)
{
	fixture *f = *state;
	cmv_block_content b;
	cmv_message m;
	cmv_id id;
	cmv_gc_stats s;
	int hits = 0;

	test_append_n(f->repo, "main", "kept", 2);
	m = test_text_message(&b, CMV_ROLE_USER, "xylophonic garbage");
	assert_cmv_ok(cmv_node_write(&id, f->repo, NULL, &m));
	assert_cmv_ok(cmv_search(f->repo, "xylophonic", 10, 0, no_hit, &hits));
	assert_int_equal(hits, 1);
	assert_cmv_ok(cmv_gc(&s, f->repo, 0));
	hits = 0;
	assert_cmv_ok(cmv_search(f->repo, "xylophonic", 10, 0, no_hit, &hits));
	assert_int_equal(hits, 0);
}

/*
 * SQLite reuses the rowid of the newest row once it is deleted; the lazy
 * index finds pending text by rowid above a watermark, so gc must lower the
 * watermark or text written after a gc would never be searchable.
 */
static void test_dag_gc__text_written_after_gc_is_searchable(void **state)
{
	fixture *f = *state;
	cmv_block_content b;
	cmv_message m;
	cmv_id id;
	cmv_gc_stats s;
	int hits = 0;

	test_append_n(f->repo, "main", "alpha", 1);
	assert_cmv_ok(cmv_search(f->repo, "alpha", 10, 0, no_hit, &hits));
	m = test_text_message(&b, CMV_ROLE_USER, "beta unreachable");
	assert_cmv_ok(cmv_node_write(&id, f->repo, NULL, &m));
	assert_cmv_ok(cmv_search(f->repo, "beta", 10, 0, no_hit, &hits)); /* indexes beta */
	assert_cmv_ok(cmv_gc(&s, f->repo, 0));                            /* deletes the newest blob */
	assert_int_equal(s.blobs_removed, 1);
	test_append_n(f->repo, "main", "gamma", 1); /* takes beta's rowid */
	hits = 0;
	assert_cmv_ok(cmv_search(f->repo, "gamma", 10, 0, no_hit, &hits));
	assert_int_equal(hits, 1);
	size_t n = 99;
	assert_cmv_ok(cmv_repo_index(&n, f->repo));
	assert_int_equal(n, 0); /* nothing left pending */
}

typedef struct {
	double score[16];
	int n;
} scores;

static int keep_score(const cmv_search_hit *h, void *payload)
{
	scores *s = payload;
	if (s->n < 16)
		s->score[s->n++] = h->score;
	return 0;
}

static void append_text(cmv_repo *repo, const char *text)
{
	cmv_block_content b;
	cmv_message m = test_text_message(&b, CMV_ROLE_USER, text);
	assert_cmv_ok(cmv_append(NULL, repo, "main", &m, 1, CMV_APPEND_CREATE));
}

/* FTS5's own bm25() of each row the query matches, best first, from a connection of its own. */
static void raw_bm25(const fixture *f, const char *query, scores *out)
{
	sqlite3 *db;
	sqlite3_stmt *s;

	memset(out, 0, sizeof(*out));
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT bm25(fts) AS score FROM fts WHERE fts MATCH ?1 ORDER BY score, rowid",
					    -1, &s, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(s, 1, query, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW && out->n < 16)
		out->score[out->n++] = sqlite3_column_double(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
}

/* The store's scores for a word are FTS5's own bm25() to the last bit, n of them. */
static void same_as_fts5(const fixture *f, const char *word, int n)
{
	scores got = { 0 }, want;
	char quoted[64];

	snprintf(quoted, sizeof(quoted), "\"%s\"", word);
	assert_cmv_ok(cmv_search(f->repo, word, 10, CMV_SEARCH_BLOBS | CMV_SEARCH_NO_SNIPPET, keep_score, &got));
	raw_bm25(f, quoted, &want);
	assert_int_equal(got.n, n);
	assert_int_equal(want.n, n);
	assert_memory_equal(got.score, want.score, sizeof(double) * (size_t)n);
}

/*
 * The store scores with bm25() recomputed, each text's length kept by
 * rowid: its scores are FTS5's own to the last bit, also once a rowid has
 * been given to another text (gc deletes the newest blob; the next text
 * takes its rowid, much shorter: a kept length of the old one would change
 * the score).
 */
static void test_dag_search__scores_are_fts5s_bm25_after_a_rowid_is_reused(void **state)
{
	fixture *f = *state;
	char long_text[4096] = "beta";
	cmv_block_content b;
	cmv_message m;
	cmv_id id;
	cmv_gc_stats st;

	for (size_t i = 0, o = strlen(long_text); i < 200; i++)
		o += (size_t)snprintf(long_text + o, sizeof(long_text) - o, " filler");
	test_append_n(f->repo, "main", "alpha beta", 3);
	test_append_n(f->repo, "main", "beta beta gamma and more words here", 2);
	m = test_text_message(&b, CMV_ROLE_USER, long_text);
	assert_cmv_ok(cmv_node_write(&id, f->repo, NULL, &m));
	for (int pass = 0; pass < 3; pass++) {
		/* passes 0 and 1: lengths asked of the index, then kept; 2: after the long text's rowid went to another */
		if (pass == 2) {
			assert_cmv_ok(cmv_gc(&st, f->repo, 0)); /* the long text, unreachable and newest */
			assert_int_equal(st.blobs_removed, 1);
			test_append_n(f->repo, "main", "beta", 1); /* takes its rowid */
		}
		same_as_fts5(f, "beta", 6);
	}
	/* the same through another handle: its gc, then its text at the rowid this one kept a length for */
	cmv_repo *other = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&other, path, 0));
	assert_cmv_ok(cmv_node_write(&id, other, NULL, &m));
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			assert_cmv_ok(cmv_gc(&st, other, 0));
			assert_int_equal(st.blobs_removed, 1);
			append_text(other, "beta too");
			assert_cmv_ok(cmv_repo_index(NULL, other));
		}
		same_as_fts5(f, "beta", 7);
	}
	cmv_repo_free(other);
}

/*
 * The counts cmv_search_count keeps are each store's true counts at every
 * step of a live store's life, compared with a handle opened afresh (which
 * keeps nothing): texts indexed by this handle (counted up as they go in)
 * and by another (counted over the texts since), a text with no word, a
 * transaction that counted and rolled back, another handle's gc and this
 * one's. Queries of one stemmed term share their count ("herons", "heron").
 */
static const char *const live_q[] = { "heron", "herons", "painted", "paint", "grey heron", "zzz" };
#define LIVE_NQ (sizeof(live_q) / sizeof(live_q[0]))

static void live_counts(cmv_repo *repo, uint64_t *df, uint64_t *total)
{
	assert_cmv_ok(cmv_search_count(repo, (const char *const *)live_q, LIVE_NQ, 0, df, total));
}

static void live_compare(const fixture *f, uint64_t want_heron)
{
	uint64_t got[LIVE_NQ], want[LIVE_NQ], got_total = 0, want_total = 0;
	char path[4096];
	cmv_repo *fresh = NULL;

	live_counts(f->repo, got, &got_total);
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&fresh, path, 0));
	live_counts(fresh, want, &want_total);
	cmv_repo_free(fresh);
	assert_memory_equal(got, want, sizeof(got));
	assert_int_equal(got_total, want_total);
	assert_int_equal(got[0], want_heron); /* the step did what it says */
	assert_int_equal(got[1], want_heron);
}

static void test_dag_search__kept_counts_are_exact_on_a_live_store(void **state)
{
	fixture *f = *state;
	cmv_dag__search_cache_stats a, b;
	uint64_t df[LIVE_NQ], total;
	cmv_repo *other = NULL;
	char path[4096];
	cmv_id id;
	cmv_block_content blk;
	cmv_message m;
	cmv_gc_stats gc;

	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&other, path, 0));
	test_append_n(f->repo, "main", "a heron", 3);
	live_compare(f, 3);
	/* this handle indexes: the counts of one term are counted up, none taken again */
	cmv_dag__sqlite_search_cache_stats(f->repo->backend, &a);
	test_append_n(f->repo, "main", "grey herons painted, herons", 2);
	live_compare(f, 5);
	cmv_dag__sqlite_search_cache_stats(f->repo->backend, &b);
	assert_int_equal(b.counted_all, a.counted_all);
	assert_int_equal(b.counted_since, a.counted_since + 1); /* "grey heron", two terms */
	assert_int_equal(b.count_drops, 0);
	/* another handle appends and indexes: the new texts are counted, the rest kept */
	test_append_n(other, "main", "herons again", 2);
	assert_cmv_ok(cmv_repo_index(NULL, other));
	live_compare(f, 7);
	cmv_dag__sqlite_search_cache_stats(f->repo->backend, &a);
	assert_int_equal(a.counted_all, b.counted_all);
	assert_int_equal(a.count_drops, 0);
	/* another handle appends, this one indexes: a text with no word is an indexed text all the same */
	append_text(other, "... !!");
	append_text(other, "heron?");
	live_compare(f, 8);
	/* counted inside a transaction that is rolled back: the counts go back */
	assert_cmv_ok(cmv_repo_txn_begin(f->repo));
	test_append_n(f->repo, "main", "a heron for nothing", 2);
	live_counts(f->repo, df, &total);
	assert_int_equal(df[0], 10);
	cmv_repo_txn_rollback(f->repo);
	live_compare(f, 8);
	/* another handle unindexes (gc): every handle's counts go */
	m = test_text_message(&blk, CMV_ROLE_USER, "a lost heron");
	assert_cmv_ok(cmv_node_write(&id, other, NULL, &m));
	append_text(other, "not the newest then"); /* so that gc unindexes and leaves the watermark */
	assert_cmv_ok(cmv_repo_index(NULL, other));
	live_compare(f, 9);
	cmv_dag__sqlite_search_cache_stats(f->repo->backend, &a);
	assert_cmv_ok(cmv_gc(&gc, other, 0));
	assert_int_equal(gc.blobs_removed, 1);
	live_compare(f, 8);
	cmv_dag__sqlite_search_cache_stats(f->repo->backend, &b);
	assert_int_equal(b.count_drops, a.count_drops + 1);
	/* and this one's */
	assert_cmv_ok(cmv_node_write(&id, f->repo, NULL, &m));
	live_compare(f, 9);
	assert_cmv_ok(cmv_gc(&gc, f->repo, 0));
	live_compare(f, 8);
	/* another handle indexes a text at an old rowid: its bytes were first stored as not indexed */
	assert_cmv_ok(cmv_blob_write(&id, other, "an old heron", 12));
	append_text(other, "past the old one");
	assert_cmv_ok(cmv_repo_index(NULL, other));
	live_compare(f, 8);
	append_text(other, "an old heron");
	live_compare(f, 9);
	cmv_repo_free(other);
}

/*
 * A search with nothing to index takes no write lock, so it does not wait
 * on a writer; with text pending it must index it, so it waits (and, past
 * the busy timeout, says the store is locked).
 */
static void test_dag_search__waits_on_a_writer_only_to_index(void **state)
{
	fixture *f = *state;
	cmv_repo *writer = NULL, *reader = NULL;
	char path[4096];
	int hits = 0;

	test_append_n(f->repo, "main", "alpha", 2);
	assert_cmv_ok(cmv_search(f->repo, "alpha", 10, 0, no_hit, &hits));
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	setenv("CMV_BUSY_TIMEOUT_MS", "50", 1);
	assert_cmv_ok(cmv_repo_open(&writer, path, 0));
	assert_cmv_ok(cmv_repo_open(&reader, path, 0));
	unsetenv("CMV_BUSY_TIMEOUT_MS");
	assert_cmv_ok(cmv_repo_txn_begin(writer)); /* the write lock, held */
	hits = 0;
	assert_cmv_ok(cmv_search(reader, "alpha", 10, 0, no_hit, &hits));
	assert_int_equal(hits, 2);
	assert_cmv_ok(cmv_repo_txn_commit(writer));
	/* text pending, the lock held again: the search must wait for it */
	test_append_n(writer, "main", "beta", 1);
	assert_cmv_ok(cmv_repo_txn_begin(writer));
	assert_cmv_fails_with(CMV_ELOCKED, cmv_search(reader, "beta", 10, 0, no_hit, &hits));
	assert_cmv_ok(cmv_repo_txn_commit(writer));
	hits = 0;
	assert_cmv_ok(cmv_search(reader, "beta", 10, 0, no_hit, &hits));
	assert_int_equal(hits, 1);
	cmv_repo_free(writer);
	cmv_repo_free(reader);
}

/* A backend built against another interface version is refused, and freed. */
static void test_dag_store__refuses_another_backend_version(void **state)
{
	(void)state;
	cmv_store_backend *b = NULL;
	cmv_repo *r = NULL;
	assert_cmv_ok(cmv_store_sqlite_open(&b, ":memory:", CMV_REPO_OPEN_CREATE));
	b->version = CMV_STORE_BACKEND_VERSION - 1;
	assert_cmv_fails_with(CMV_EVERSION, cmv_repo_wrap_backend(&r, b, 0));
	assert_null(r);
}

typedef struct {
	size_t n;
	int types[16];
	char first[512];
} problems;

static int collect_problem(const cmv_fsck_problem *p, void *payload)
{
	problems *ps = payload;

	if (ps->n < 16)
		ps->types[ps->n] = p->type;
	if (!ps->n)
		snprintf(ps->first, sizeof(ps->first), "%s", p->message);
	ps->n++;
	return 0;
}

static void test_dag_fsck__reports_corrupted_blob(void **state)
{
	fixture *f = *state;
	problems ps;
	size_t n = 0;
	cmv_id tip;
	cmv_node *node = NULL;
	cmv_buf data = CMV_BUF_INIT(1024);
	char hex[CMV_ID_HEXSZ + 1];

	test_append_n(f->repo, "main", "intact", 3);
	assert_cmv_ok(cmv_fsck(&n, f->repo, NULL, NULL));
	assert_int_equal(n, 0);
	assert_cmv_ok(cmv_resolve(&tip, f->repo, "main"));
	assert_cmv_ok(cmv_node_read(&node, f->repo, &tip));
	cmv_id_tostr(hex, CMV_ID_HEXSZ, &node->blocks[0].blob);

	char sql[256];
	snprintf(sql, sizeof(sql), "UPDATE blobs SET data = CAST('tampered' AS BLOB) WHERE hex(id) = upper('%s')", hex);
	raw_sql(f, sql);

	memset(&ps, 0, sizeof(ps));
	assert_cmv_ok(cmv_fsck(&n, f->repo, collect_problem, &ps));
	assert_int_equal(n, 1);
	assert_int_equal(ps.types[0], CMV_FSCK_BLOB_MISMATCH);
	assert_non_null(strstr(ps.first, hex));
	/* verified reads refuse the bad bytes too */
	cmv_repo_free(f->repo);
	char path[4096];
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&f->repo, path, CMV_REPO_OPEN_VERIFY));
	assert_cmv_fails_with(CMV_EMISMATCH, cmv_blob_read(&data, f->repo, &node->blocks[0].blob));
	cmv_node_free(node);
	cmv_buf_dispose(&data);
}

static void test_dag_fsck__reports_dangling_ref_and_missing_parent(void **state)
{
	fixture *f = *state;
	problems ps;
	size_t n = 0;

	test_append_n(f->repo, "main", "m", 3);
	assert_cmv_ok(cmv_head_set(f->repo, "main"));
	raw_sql(f, "INSERT INTO refs(name, type, target, created, updated) VALUES"
		   " ('ghost', 1, x'00112233445566778899aabbccddeeff', 0, 0)");
	memset(&ps, 0, sizeof(ps));
	assert_cmv_ok(cmv_fsck(&n, f->repo, collect_problem, &ps));
	assert_int_equal(n, 1);
	assert_int_equal(ps.types[0], CMV_FSCK_DANGLING_REF);
	assert_non_null(strstr(ps.first, "ghost"));

	/* delete a middle node: its child's parent is gone, and gc refuses to run */
	raw_sql(f, "DELETE FROM refs WHERE name = 'ghost';"
		   " DELETE FROM nodes WHERE depth = 1;");
	memset(&ps, 0, sizeof(ps));
	assert_cmv_ok(cmv_fsck(&n, f->repo, collect_problem, &ps));
	assert_int_equal(n, 1);
	assert_int_equal(ps.types[0], CMV_FSCK_MISSING_NODE);
	cmv_gc_stats s;
	assert_cmv_fails_with(CMV_ECORRUPT, cmv_gc(&s, f->repo, 0));
	/*
	 * and a walk says so instead of returning a short conversation: from its
	 * first node, since it reads the chain only as far up as it goes
	 */
	cmv_walk *w = NULL;
	const cmv_node *node;
	cmv_id tip;
	assert_cmv_ok(cmv_resolve(&tip, f->repo, "main"));
	assert_cmv_ok(cmv_walk_new(&w, f->repo, &tip));
	assert_int_equal(cmv_walk_length(w), 3);
	assert_cmv_fails_with(CMV_ECORRUPT, cmv_walk_next(&node, w));
	cmv_walk_seek(w, 2); /* the tip alone needs no parent */
	assert_cmv_ok(cmv_walk_next(&node, w));
	assert_true(cmv_id_equal(&node->id, &tip));
	cmv_walk_free(w);

	/* a current branch that is not a branch */
	raw_sql(f, "UPDATE config SET value = 'nowhere' WHERE key = 'HEAD'");
	memset(&ps, 0, sizeof(ps));
	assert_cmv_ok(cmv_fsck(&n, f->repo, collect_problem, &ps));
	assert_int_equal(n, 2);
	assert_int_equal(ps.types[1], CMV_FSCK_BAD_HEAD);
}

static void test_dag_fsck__reports_tampered_node(void **state)
{
	fixture *f = *state;
	problems ps;
	size_t n = 0;

	test_append_n(f->repo, "main", "m", 2);
	raw_sql(f, "UPDATE nodes SET role = 4 WHERE depth = 0");
	memset(&ps, 0, sizeof(ps));
	assert_cmv_ok(cmv_fsck(&n, f->repo, collect_problem, &ps));
	assert_int_equal(n, 1);
	assert_int_equal(ps.types[0], CMV_FSCK_NODE_MISMATCH);
}

/*
 * A version 2 store (branch notes in a WITHOUT ROWID table) opens as
 * version 3 with every note kept, read and written as before.
 */
static void test_dag_store__upgrades_branch_notes(void **state)
{
	fixture *f = *state;
	cmv_buf out = CMV_BUF_INIT(1 << 24);
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *s;

	test_append_n(f->repo, "main", "m", 2);
	cmv_repo_free(f->repo);
	f->repo = NULL;
	raw_sql(f, "DROP TABLE branch_state;"
		   "CREATE TABLE branch_state(branch TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
		   " PRIMARY KEY(branch, key)) WITHOUT ROWID;"
		   "INSERT INTO branch_state VALUES('main', 'a', 'one'), ('main', 'b', 'two');"
		   "PRAGMA user_version = 2");
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_ok(cmv_repo_open(&f->repo, path, 0));
	assert_cmv_ok(cmv_branch_note_get(&out, f->repo, "main", "a"));
	assert_string_equal(out.ptr, "one");
	assert_cmv_ok(cmv_branch_note_get(&out, f->repo, "main", "b"));
	assert_string_equal(out.ptr, "two");
	assert_cmv_ok(cmv_branch_note_set(f->repo, "main", "a", "uno"));
	assert_cmv_ok(cmv_branch_note_get(&out, f->repo, "main", "a"));
	assert_string_equal(out.ptr, "uno");
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_branch_note_get(&out, f->repo, "main", "c"));
	/* a rowid table now, at the version this cmv writes */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT rowid FROM branch_state", -1, &s, NULL), SQLITE_OK);
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 3);
	sqlite3_finalize(s);
	sqlite3_close(db);
	cmv_buf_dispose(&out);
}

static void test_dag_store__refuses_foreign_and_newer_files(void **state)
{
	fixture *f = *state;
	cmv_repo *r = NULL;
	char path[4096];
	sqlite3 *db;

	/* a newer schema than this cmv knows */
	raw_sql(f, "PRAGMA user_version = 999");
	cmv_repo_free(f->repo);
	f->repo = NULL;
	snprintf(path, sizeof(path), "%s/.cmv", f->dir);
	assert_cmv_fails_with(CMV_EVERSION, cmv_repo_open(&r, path, 0));
	assert_error_mentions("999");

	/* somebody else's SQLite database */
	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_cmv_fails_with(CMV_ECORRUPT, cmv_repo_open(&r, path, 0));
	assert_error_mentions("not a cmv store");

	/* not a database at all */
	free(test_write_file(f->dir, "junk.db", "this is not sqlite, just text that is long enough", 50));
	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	assert_int_not_equal(cmv_repo_open(&r, path, 0), 0);
	assert_null(r);

	/* a missing store is "not found", and is not created without asking */
	snprintf(path, sizeof(path), "%s/none/.cmv", f->dir);
	assert_cmv_fails_with(CMV_ENOTFOUND, cmv_repo_open(&r, path, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dag_gc__keeps_exactly_what_refs_reach, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_gc__removed_text_leaves_the_index, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_gc__text_written_after_gc_is_searchable, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_search__kept_counts_are_exact_on_a_live_store, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_search__scores_are_fts5s_bm25_after_a_rowid_is_reused, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_search__waits_on_a_writer_only_to_index, test_store_setup, test_store_teardown),
		cmocka_unit_test(test_dag_store__refuses_another_backend_version),
		cmocka_unit_test_setup_teardown(test_dag_fsck__reports_corrupted_blob, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_fsck__reports_dangling_ref_and_missing_parent, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_fsck__reports_tampered_node, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_store__upgrades_branch_notes, test_store_setup, test_store_teardown),
		cmocka_unit_test_setup_teardown(test_dag_store__refuses_foreign_and_newer_files, test_store_setup, test_store_teardown),
	};
	return cmocka_run_group_tests_name("dag maintenance", tests, NULL, NULL);
}
