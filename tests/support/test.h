/* SPDX-License-Identifier: MIT */
/* Shared test helpers: assertions that print the library's last error, and fixtures. */
#ifndef CMV_TEST_H
#define CMV_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cmv/cmv.h>

/* Fail with the text of cmv_error_last() when expr returns < 0. */
#define assert_cmv_ok(expr)                                                                 \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		if (rc_ < 0) {                                                              \
			const cmv_error *e_ = cmv_error_last();                             \
			fail_msg("%s failed with %d (%s): %s", #expr, rc_, cmv_strerror(rc_), \
				 e_ ? e_->message : "(no message)");                        \
		}                                                                           \
	} while (0)

#define assert_cmv_fails_with(code, expr)                                                   \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		if (rc_ != (code))                                                          \
			fail_msg("%s returned %d (%s), expected %d (%s)", #expr, rc_,        \
				 cmv_strerror(rc_), (int)(code), cmv_strerror(code));       \
	} while (0)

/* The last error message contains `needle`. */
#define assert_error_mentions(needle)                                                       \
	do {                                                                                \
		const cmv_error *e_ = cmv_error_last();                                     \
		if (!e_ || !strstr(e_->message, (needle)))                                  \
			fail_msg("error message '%s' does not mention '%s'",                 \
				 e_ ? e_->message : "(none)", (needle));                    \
	} while (0)

/* The usual fixture: a fresh store in a temporary directory (state is a test_store *). */
typedef struct test_store {
	char *dir;       /* the project directory; the store is dir/.cmv */
	char db[4096];   /* the SQLite file, for tests that damage it on purpose */
	cmv_repo *repo;
} test_store;
int test_store_setup(void **state);
int test_store_teardown(void **state);

/* A fresh temporary directory (removed with test_rmdir). */
char *test_tmpdir(void);
void test_rmdir(const char *dir);
/* Write a file; returns its path (malloc'd) under dir. */
char *test_write_file(const char *dir, const char *name, const char *content, size_t len);
/* A one-text-block message. */
cmv_message test_text_message(cmv_block_content *block, cmv_role role, const char *text);
/* Total rows of every kind in the store. */
uint64_t test_total_rows(cmv_repo *repo);
/* Append n text messages "prefix i" to a branch. */
void test_append_n(cmv_repo *repo, const char *branch, const char *prefix, size_t n);
/* Encode text and compare with the expected ids (printing both on a
 * mismatch); the count must agree with the encoding. */
void test_expect_ids(cmv_tok *t, const char *text, size_t len, const uint32_t *want, size_t n_want);
#define EXPECT_IDS(t, text, ...)                                                     \
	do {                                                                         \
		const uint32_t want_[] = { __VA_ARGS__ };                            \
		test_expect_ids(t, text, strlen(text), want_, sizeof(want_) / sizeof(want_[0])); \
	} while (0)

/* A whole file into out (fails the test when it cannot be read). */
void test_read_file(cmv_buf *out, const char *path);
/* A cmv_write_fn that appends to the cmv_buf in payload. */
int test_buf_writer(const void *data, size_t len, void *payload);
/*
 * The transcripts a test reads: $CMV_TRANSCRIPTS, else `fallback` (fails the
 * test when missing). ctest gives the curated set, tests/resources/transcripts
 * (a few small real sessions, shipped; the quick tier), or the full corpus,
 * ../shared/transcripts (the corpus tier, registered when it is there).
 */
const char *test_transcripts_dir(const char *fallback);
/* Append the .jsonl files under dir (recursively) to *files (strdup'd, realloc'd), and sort all of them by path. */
void test_collect_jsonl(char ***files, size_t *n, const char *dir);
/* Whether dir is the full corpus (it has MANIFEST.md; the curated set has NOTICE.md instead). */
bool test_transcripts_full(const char *dir);
/*
 * The path of the named file of the transcripts in dir (rel: its path in the
 * set), in out: true when it is there. A file the curated set does not ship:
 * prints that `what` is not run here and that the corpus tier runs it, and
 * returns false (the caller leaves that check out, or skips). A file the full
 * corpus lacks fails the test.
 */
bool test_transcript(cmv_buf *out, const char *dir, const char *rel, const char *what);
/* Call fn for each session file of one agent (the .jsonl files in each folder of root/agent), in directory order. */
void test_each_session(const char *root, const char *agent, void (*fn)(const char *path, void *payload), void *payload);

/* Run a shell command; returns its exit status. */
int test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * PostgreSQL stores (builds with CMV_WITH_POSTGRESQL): the URL of a fresh,
 * empty schema `name` in the test cluster that tests/support/pg_cluster.sh
 * started, named by the file in $CMV_TEST_PG (a missing cluster fails the
 * test: it is never skipped). malloc'd.
 */
char *test_pg_url(const char *name);
/* Run one SQL command on the test cluster's database (fails the test on error). */
void test_pg_exec(const char *sql);

#endif
