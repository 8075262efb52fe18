/* SPDX-License-Identifier: MIT */
/* Fixtures shared by the test programs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"

char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path = malloc(4096);

	snprintf(path, 4096, "%s/cmv-test-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(path))
		fail_msg("cannot create a temporary directory");
	return path;
}

void test_rmdir(const char *dir)
{
	char cmd[8192];

	if (!dir || strncmp(dir, "/tmp/", 5) != 0 || strstr(dir, ".."))
		return; /* never remove anything outside /tmp */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", dir);
}

char *test_write_file(const char *dir, const char *name, const char *content, size_t len)
{
	char *path = malloc(4096);
	FILE *fp;

	snprintf(path, 4096, "%s/%s", dir, name);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(content, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return path;
}

cmv_message test_text_message(cmv_block_content *block, cmv_role role, const char *text)
{
	cmv_message m;

	memset(block, 0, sizeof(*block));
	block->type = "text";
	block->data = text;
	block->len = strlen(text);
	memset(&m, 0, sizeof(m));
	m.role = role;
	m.kind = CMV_KIND_MESSAGE;
	m.n_blocks = 1;
	m.blocks = block;
	return m;
}

uint64_t test_total_rows(cmv_repo *repo)
{
	cmv_store_stats s;

	assert_cmv_ok(cmv_repo_stats(&s, repo));
	return s.n_blobs + s.n_nodes + s.n_blocks + s.n_edges + s.n_refs + s.n_other_rows;
}

void test_append_n(cmv_repo *repo, const char *branch, const char *prefix, size_t n)
{
	char text[256];
	cmv_block_content b;

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%s %zu", prefix, i);
		cmv_message m = test_text_message(&b, i % 2 ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER, text);
		assert_cmv_ok(cmv_append(NULL, repo, branch, &m, 1, CMV_APPEND_CREATE));
	}
}

int test_system(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int test_store_setup(void **state)
{
	test_store *f = calloc(1, sizeof(*f));

	f->dir = test_tmpdir();
	snprintf(f->db, sizeof(f->db), "%s/.cmv/store.db", f->dir);
	if (cmv_repo_init(&f->repo, f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

int test_store_teardown(void **state)
{
	test_store *f = *state;

	cmv_repo_free(f->repo);
	test_rmdir(f->dir);
	free(f->dir);
	free(f);
	cmv_error_clear();
	return 0;
}

void test_expect_ids(cmv_tok *t, const char *text, size_t len, const uint32_t *want, size_t n_want)
{
	uint32_t *ids = NULL;
	size_t n = 0, count = 0;

	assert_cmv_ok(cmv_tok_encode(&ids, &n, t, text, len));
	if (n != n_want || (n && memcmp(ids, want, n * sizeof(uint32_t)))) {
		fprintf(stderr, "%s: '%.*s' gave %zu ids:", cmv_tok_name(t), (int)(len > 60 ? 60 : len), text, n);
		for (size_t i = 0; i < n && i < 20; i++)
			fprintf(stderr, " %u", ids[i]);
		fprintf(stderr, "\n  expected %zu:", n_want);
		for (size_t i = 0; i < n_want && i < 20; i++)
			fprintf(stderr, " %u", want[i]);
		fprintf(stderr, "\n");
		fail();
	}
	assert_cmv_ok(cmv_tok_count(&count, t, text, len));
	assert_int_equal(count, n);
	free(ids);
}

void test_read_file(cmv_buf *out, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (!fp)
		fail_msg("cannot read %s", path);
	cmv_buf_clear(out);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		assert_cmv_ok(cmv_buf_put(out, chunk, n));
	fclose(fp);
}

int test_buf_writer(const void *data, size_t len, void *payload)
{
	return cmv_buf_put(payload, data, len);
}

void test_each_session(const char *root, const char *agent, void (*fn)(const char *path, void *payload), void *payload)
{
	char dir[4096], project[4096], file[4096];
	snprintf(dir, sizeof(dir), "%s/%s", root, agent);
	DIR *top = opendir(dir);
	if (!top)
		fail_msg("no %s sessions in %s", agent, root);
	struct dirent *p;
	while ((p = readdir(top))) {
		if (p->d_name[0] == '.')
			continue;
		snprintf(project, sizeof(project), "%s/%s", dir, p->d_name);
		DIR *d = opendir(project);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			size_t len = strlen(e->d_name);
			if (len < 6 || strcmp(e->d_name + len - 6, ".jsonl"))
				continue;
			snprintf(file, sizeof(file), "%s/%s", project, e->d_name);
			fn(file, payload);
		}
		if (d)
			closedir(d);
	}
	closedir(top);
}

const char *test_transcripts_dir(const char *fallback)
{
	const char *d = getenv("CMV_TRANSCRIPTS");
	struct stat st;

	if (!d || !*d)
		d = fallback;
	if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
		fail_msg("the transcripts are missing (CMV_TRANSCRIPTS=%s)", d ? d : "(unset)");
	return d;
}

static bool file_in(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool test_transcripts_full(const char *dir)
{
	if (file_in(dir, "MANIFEST.md"))
		return true;
	if (!file_in(dir, "NOTICE.md"))
		fail_msg("%s is neither the full corpus (no MANIFEST.md) nor the curated set (no NOTICE.md)", dir);
	return false;
}

bool test_transcript(cmv_buf *out, const char *dir, const char *rel, const char *what)
{
	cmv_buf_clear(out);
	assert_cmv_ok(cmv_buf_printf(out, "%s/%s", dir, rel));
	if (file_in(dir, rel))
		return true;
	if (test_transcripts_full(dir))
		fail_msg("%s is missing from the full corpus", out->ptr);
	print_message("NOT RUN HERE: %s: it needs %s, which the curated set (%s) does not ship; "
		      "the corpus tier runs it (ctest -L corpus, with ../shared/transcripts beside the repository)\n",
		      what, rel, dir);
	return false;
}

static void collect_jsonl(char ***files, size_t *n, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[4096];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			collect_jsonl(files, n, path);
		} else if (strstr(e->d_name, ".jsonl")) {
			*files = realloc(*files, (*n + 1) * sizeof(**files));
			(*files)[(*n)++] = strdup(path);
		}
	}
	closedir(d);
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void test_collect_jsonl(char ***files, size_t *n, const char *dir)
{
	collect_jsonl(files, n, dir);
	qsort(*files, *n, sizeof(**files), cmp_path);
}

#ifdef CMV_WITH_POSTGRESQL
#include <libpq-fe.h>

static void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static char *pg_base_url(void)
{
	const char *state = getenv("CMV_TEST_PG");
	char line[4096], *url = NULL;
	FILE *f;

	if (!state || !*state || !(f = fopen(state, "r")))
		fail_msg("no test PostgreSQL cluster: CMV_TEST_PG names no state file (ctest starts one)");
	/* line 1 is the cluster's folder, line 2 its URL */
	for (int i = 0; i < 2 && fgets(line, sizeof(line), f); i++)
		if (i == 1) {
			line[strcspn(line, "\n")] = '\0';
			url = strdup(line);
		}
	fclose(f);
	if (!url)
		fail_msg("the test cluster's state file '%s' has no URL", state);
	return url;
}

void test_pg_exec(const char *sql)
{
	char *url = pg_base_url();
	PGconn *c = PQconnectdb(url);
	PGresult *r;

	free(url);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test cluster: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, pg_quiet, NULL); /* DROP ... IF EXISTS notices */
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

char *test_pg_url(const char *name)
{
	char sql[512], *base = pg_base_url(), *url;

	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS \"%s\" CASCADE; CREATE SCHEMA \"%s\"", name, name);
	test_pg_exec(sql);
	/* the store lives in the schema first on its search_path */
	size_t n = strlen(base) + strlen(name) + 64;
	url = malloc(n);
	snprintf(url, n, "%s&options=-csearch_path%%3D%s", base, name);
	free(base);
	return url;
}
#endif
