/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench store: the store's speed and size.
 *
 *  1. import rate: a 100k-message cmv JSONL file imported into a fresh
 *     store, against bare SQLite inserting the same lines into one table in
 *     one transaction (the floor any SQLite-backed store stands on);
 *  2. snapshot and branch latency at 1k, 100k and 1M nodes of history,
 *     against a one-row INSERT + COMMIT into a bare SQLite table;
 *  3. store bytes for one 10 MB conversation, then with 100 branches and
 *     100 snapshots of it;
 *  4. with --store URL, a PostgreSQL store beside SQLite (bench_store_shared.c):
 *     appends, ref latency, bytes, 1/4/16 writers, push. --shared-only skips 1-3;
 *  5. --ops (with --store): only each store operation's p50 at 10k and 100k
 *     nodes (--quick: 1k and 10k), SQLite and PostgreSQL in the same run.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static const char *const words[] = {
	"the", "build", "fails", "with", "an", "undefined", "reference", "to", "symbol", "in",
	"module", "let", "me", "check", "Makefile", "linker", "flags", "pass", "test", "error",
	"function", "returns", "null", "pointer", "when", "buffer", "is", "full", "fix", "commit",
	"branch", "merge", "review", "config", "parse", "token", "window", "model", "context", "agent",
};

static unsigned rng_state = 12345;

static unsigned rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 8) & 0xffffff;
}

static void random_text(cmv_buf *b, size_t approx_bytes)
{
	while (b->size < approx_bytes) {
		cmv_buf_puts(b, words[rng() % (sizeof(words) / sizeof(words[0]))]);
		cmv_buf_putc(b, rng() % 12 ? ' ' : '\n');
	}
}

/* Write n messages as cmv JSONL; ~avg_bytes of text each. Returns the file's bytes. */
static uint64_t write_conversation(const char *path, size_t n, size_t avg_bytes)
{
	FILE *fp = fopen(path, "w");
	cmv_buf text = CMV_BUF_INIT(1 << 24);

	if (!fp) {
		perror(path);
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		cJSON *line = cJSON_CreateObject();
		char *s;
		cmv_buf_clear(&text);
		cmv_buf_printf(&text, "[%zu] ", i);
		random_text(&text, avg_bytes / 2 + rng() % (avg_bytes + 1));
		if (i % 5 == 3) {
			/* a tool round trip: the call on one line, its result on the next */
			cJSON *arr = cJSON_CreateArray(), *blk = cJSON_CreateObject();
			char id[32];
			snprintf(id, sizeof(id), "toolu_%zu", i);
			cJSON_AddStringToObject(line, "role", "user");
			cJSON_AddStringToObject(blk, "type", "tool_result");
			cJSON_AddStringToObject(blk, "tool_use_id", id);
			cJSON_AddStringToObject(blk, "content", text.ptr);
			cJSON_AddItemToArray(arr, blk);
			cJSON_AddItemToObject(line, "content", arr);
		} else {
			cJSON_AddStringToObject(line, "role", i % 2 ? "assistant" : "user");
			cJSON_AddStringToObject(line, "content", text.ptr);
		}
		s = cJSON_PrintUnformatted(line);
		fputs(s, fp);
		fputc('\n', fp);
		free(s);
		cJSON_Delete(line);
	}
	fclose(fp);
	cmv_buf_dispose(&text);
	return bench_file_bytes(path);
}

static void die_cmv(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench: %s: %s\n", what, e ? e->message : "unknown error");
	exit(1);
}

static void sq(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "cmv-bench: sqlite: %s\n", msg);
		exit(1);
	}
}

/* The floor: bare SQLite, same lines, one table, one transaction. */
static double baseline_import_rate(const char *dir, const char *jsonl, size_t *n_out)
{
	char path[4096], *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	sqlite3 *db;
	sqlite3_stmt *st;
	FILE *fp = fopen(jsonl, "r");
	double t0;

	snprintf(path, sizeof(path), "%s/baseline.db", dir);
	sqlite3_open(path, &db);
	sq(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	       "CREATE TABLE m(id INTEGER PRIMARY KEY, line TEXT NOT NULL)");
	sqlite3_prepare_v2(db, "INSERT INTO m(line) VALUES(?)", -1, &st, NULL);
	t0 = bench_now();
	sq(db, "BEGIN");
	while ((len = getline(&line, &cap, fp)) > 0) {
		sqlite3_bind_text(st, 1, line, (int)len, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_reset(st);
		n++;
	}
	sq(db, "COMMIT");
	double dt = bench_now() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	fclose(fp);
	free(line);
	*n_out = n;
	return (double)n / dt;
}

static double baseline_row_commit_p50(const char *dir, size_t rounds)
{
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *st;
	double *lat = calloc(rounds, sizeof(double)), p50;

	snprintf(path, sizeof(path), "%s/baseline-rows.db", dir);
	sqlite3_open(path, &db);
	sq(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
	       "CREATE TABLE r(name TEXT PRIMARY KEY, target BLOB, created INTEGER)");
	sqlite3_prepare_v2(db, "INSERT INTO r VALUES(?, randomblob(16), 0)", -1, &st, NULL);
	for (size_t i = 0; i < rounds; i++) {
		char name[64];
		snprintf(name, sizeof(name), "row-%zu", i);
		double t0 = bench_now();
		sq(db, "BEGIN IMMEDIATE");
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
		sqlite3_step(st);
		sqlite3_reset(st);
		sq(db, "COMMIT");
		lat[i] = bench_now() - t0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	p50 = bench_percentile(lat, rounds, 0.5);
	free(lat);
	return p50;
}

/* Grow `branch` to `target` nodes with short messages, in batches of one transaction. */
static void grow_to(cmv_repo *repo, const char *branch, size_t *have, size_t target)
{
	char text[96];
	cmv_block_content b;
	cmv_message m;

	memset(&b, 0, sizeof(b));
	memset(&m, 0, sizeof(m));
	b.type = "text";
	m.kind = CMV_KIND_MESSAGE;
	m.n_blocks = 1;
	m.blocks = &b;
	while (*have < target) {
		size_t batch = target - *have < 50000 ? target - *have : 50000;
		if (cmv_repo_txn_begin(repo) < 0)
			die_cmv("begin");
		for (size_t i = 0; i < batch; i++, (*have)++) {
			snprintf(text, sizeof(text), "turn %zu: %s %s %s", *have,
				 words[*have % 40], words[(*have / 40) % 40], words[(*have / 1600) % 40]);
			b.data = text;
			b.len = strlen(text);
			m.role = *have % 2 ? CMV_ROLE_ASSISTANT : CMV_ROLE_USER;
			if (cmv_append(NULL, repo, branch, &m, 1, CMV_APPEND_CREATE) < 0)
				die_cmv("append");
		}
		if (cmv_repo_txn_commit(repo) < 0)
			die_cmv("commit");
	}
}

typedef struct {
	size_t nodes;
	double snap_p50_ms, snap_p95_ms, branch_p50_ms, branch_p95_ms, grow_s;
} latency_row;

static latency_row measure_refs(cmv_repo *repo, size_t nodes, size_t rounds, double grow_s)
{
	latency_row row = { nodes, 0, 0, 0, 0, grow_s };
	double *s = calloc(rounds, sizeof(double)), *b = calloc(rounds, sizeof(double));
	cmv_id tip;

	if (cmv_resolve(&tip, repo, "main") < 0)
		die_cmv("resolve");
	for (size_t i = 0; i < rounds; i++) {
		char name[64];
		double t0;
		snprintf(name, sizeof(name), "snap-%zu-%zu", nodes, i);
		t0 = bench_now();
		if (cmv_snapshot_create(repo, name, &tip, "main", NULL) < 0)
			die_cmv("snapshot");
		s[i] = bench_now() - t0;
		snprintf(name, sizeof(name), "branch-%zu-%zu", nodes, i);
		t0 = bench_now();
		if (cmv_branch_create(repo, name, &tip, "main") < 0)
			die_cmv("branch");
		b[i] = bench_now() - t0;
	}
	row.snap_p50_ms = bench_percentile(s, rounds, 0.5) * 1e3;
	row.snap_p95_ms = bench_percentile(s, rounds, 0.95) * 1e3;
	row.branch_p50_ms = bench_percentile(b, rounds, 0.5) * 1e3;
	row.branch_p95_ms = bench_percentile(b, rounds, 0.95) * 1e3;
	free(s);
	free(b);
	return row;
}

int bench_store(int argc, char **argv)
{
	bool quick = false, json = false, shared_only = false, ops = false;
	const char *shared_url = NULL;
	char machine[512], path[4096], store[4096];
	char *dir = bench_tmpdir();
	cmv_repo *repo = NULL;
	cmv_import_result res;
	size_t n_import, baseline_n;
	size_t sizes_full[] = { 1000, 100000, 1000000 }, sizes_quick[] = { 1000, 10000, 100000 };
	size_t *sizes = sizes_full, rounds = 200;
	size_t convo_msgs = 5000, convo_avg = 2000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--store") && i + 1 < argc)
			shared_url = argv[++i];
		else if (!strcmp(argv[i], "--shared-only"))
			shared_only = true;
		else if (!strcmp(argv[i], "--ops"))
			ops = true;
		else {
			fprintf(stderr, "usage: cmv-bench store [--quick] [--json] [--store postgresql://URL [--shared-only | --ops]]\n");
			return 2;
		}
	}
	if (quick) {
		sizes = sizes_quick;
		convo_msgs = 500;
	}
	n_import = quick ? 10000 : 100000;
	bench_machine(machine, sizeof(machine));
	if (!json)
		printf("cmv-bench store on %s\n\n", machine);
	if (shared_only || ops) {
		if (!shared_url) {
			fprintf(stderr, "cmv-bench: %s needs --store URL\n", ops ? "--ops" : "--shared-only");
			return 2;
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "machine", machine);
		if (ops)
			cJSON_AddItemToObject(o, "ops", bench_store_ops(shared_url, quick, json));
		else
			cJSON_AddItemToObject(o, "shared", bench_store_shared(shared_url, quick, json));
		if (json) {
			char *s = cJSON_Print(o);
			puts(s);
			free(s);
		}
		cJSON_Delete(o);
		bench_rmdir(dir);
		free(dir);
		return 0;
	}

	/* 1. import rate */
	snprintf(path, sizeof(path), "%s/import.jsonl", dir);
	uint64_t in_bytes = write_conversation(path, n_import, 300);
	snprintf(store, sizeof(store), "%s/import", dir);
	double t0 = bench_now();
	if (cmv_repo_init(&repo, store) < 0 ||
	    cmv_import_cmv_file(&res, repo, path, NULL) < 0)
		die_cmv("import");
	double import_s = bench_now() - t0;
	cmv_repo_free(repo);
	repo = NULL;
	double import_rate = (double)res.records / import_s;
	double base_rate = baseline_import_rate(dir, path, &baseline_n);
	if (!json)
		printf("import: %zu messages (%.1f MB) in %.2f s: %.0f nodes/s, %.1f MB/s\n"
		       "        bare SQLite, same lines, one table: %.0f rows/s (cmv = %.2fx of it)\n\n",
		       res.records, (double)in_bytes / 1e6, import_s, import_rate,
		       (double)in_bytes / 1e6 / import_s, base_rate, import_rate / base_rate);

	/* 2. snapshot and branch latency by history size */
	latency_row rows[3];
	size_t have = 0;
	snprintf(store, sizeof(store), "%s/latency", dir);
	if (cmv_repo_init(&repo, store) < 0)
		die_cmv("open");
	for (int k = 0; k < 3; k++) {
		double g0 = bench_now();
		grow_to(repo, "main", &have, sizes[k]);
		rows[k] = measure_refs(repo, sizes[k], rounds, bench_now() - g0);
	}
	cmv_repo_free(repo);
	repo = NULL;
	double row_p50 = baseline_row_commit_p50(dir, rounds);
	if (!json) {
		printf("snapshot / branch latency (%zu each, own transaction; ms):\n", rounds);
		printf("  %9s  %9s %9s  %9s %9s   append rate while growing\n", "nodes", "snap p50",
		       "snap p95", "branch p50", "branch p95");
		for (int k = 0; k < 3; k++)
			printf("  %9zu  %9.3f %9.3f  %9.3f %9.3f   %.0f nodes/s\n", rows[k].nodes,
			       rows[k].snap_p50_ms, rows[k].snap_p95_ms, rows[k].branch_p50_ms,
			       rows[k].branch_p95_ms,
			       (double)(rows[k].nodes - (k ? rows[k - 1].nodes : 0)) / rows[k].grow_s);
		printf("  bare SQLite one-row INSERT + COMMIT: p50 %.3f ms\n\n", row_p50 * 1e3);
	}

	/* 3. bytes: one conversation, then with 100 branches and 100 snapshots */
	snprintf(path, sizeof(path), "%s/convo.jsonl", dir);
	uint64_t convo_bytes = write_conversation(path, convo_msgs, convo_avg);
	snprintf(store, sizeof(store), "%s/bytes", dir);
	char dbfile[4200];
	snprintf(dbfile, sizeof(dbfile), "%s/.cmv/store.db", store);
	if (cmv_repo_init(&repo, store) < 0 ||
	    cmv_import_cmv_file(&res, repo, path, NULL) < 0)
		die_cmv("import");
	cmv_repo_free(repo); /* the last close checkpoints the WAL into the file */
	uint64_t one = bench_file_bytes(dbfile);
	if (cmv_repo_init(&repo, store) < 0)
		die_cmv("open");
	for (int i = 0; i < 100; i++) {
		char name[64], spec[96];
		cmv_id at;
		snprintf(spec, sizeof(spec), "convo~%zu", (size_t)rng() % convo_msgs);
		if (cmv_resolve(&at, repo, spec) < 0)
			die_cmv("resolve");
		snprintf(name, sizeof(name), "branch-%d", i);
		if (cmv_branch_create(repo, name, &at, "convo") < 0)
			die_cmv("branch");
		snprintf(name, sizeof(name), "snapshot-%d", i);
		if (cmv_snapshot_create(repo, name, &at, "convo", NULL) < 0)
			die_cmv("snapshot");
	}
	cmv_repo_free(repo);
	repo = NULL;
	uint64_t with_refs = bench_file_bytes(dbfile);
	if (!json)
		printf("bytes: a %.1f MB conversation (%zu messages) -> store %.1f MB (%.2fx the input)\n"
		       "       with 100 branches + 100 snapshots: %.1f MB = %.4fx the single copy\n",
		       (double)convo_bytes / 1e6, convo_msgs, (double)one / 1e6,
		       (double)one / (double)convo_bytes, (double)with_refs / 1e6,
		       (double)with_refs / (double)one);

	if (!json && shared_url)
		cJSON_Delete(bench_store_shared(shared_url, quick, json));
	if (json) {
		cJSON *o = cJSON_CreateObject(), *imp, *lat, *bytes;
		char *s;
		cJSON_AddStringToObject(o, "machine", machine);
		imp = cJSON_AddObjectToObject(o, "import");
		cJSON_AddNumberToObject(imp, "messages", (double)res.records);
		cJSON_AddNumberToObject(imp, "input_bytes", (double)in_bytes);
		cJSON_AddNumberToObject(imp, "seconds", import_s);
		cJSON_AddNumberToObject(imp, "nodes_per_s", import_rate);
		cJSON_AddNumberToObject(imp, "baseline_sqlite_rows_per_s", base_rate);
		cJSON_AddNumberToObject(imp, "ratio_to_baseline", import_rate / base_rate);
		lat = cJSON_AddArrayToObject(o, "ref_latency_ms");
		for (int k = 0; k < 3; k++) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "nodes", (double)rows[k].nodes);
			cJSON_AddNumberToObject(r, "snapshot_p50", rows[k].snap_p50_ms);
			cJSON_AddNumberToObject(r, "snapshot_p95", rows[k].snap_p95_ms);
			cJSON_AddNumberToObject(r, "branch_p50", rows[k].branch_p50_ms);
			cJSON_AddNumberToObject(r, "branch_p95", rows[k].branch_p95_ms);
			cJSON_AddItemToArray(lat, r);
		}
		cJSON_AddNumberToObject(o, "baseline_row_commit_p50_ms", row_p50 * 1e3);
		bytes = cJSON_AddObjectToObject(o, "bytes");
		cJSON_AddNumberToObject(bytes, "conversation_input", (double)convo_bytes);
		cJSON_AddNumberToObject(bytes, "store_one_copy", (double)one);
		cJSON_AddNumberToObject(bytes, "store_with_100_branches_100_snapshots", (double)with_refs);
		cJSON_AddNumberToObject(bytes, "ratio", (double)with_refs / (double)one);
		if (shared_url)
			cJSON_AddItemToObject(o, "shared", bench_store_shared(shared_url, quick, json));
		s = cJSON_Print(o);
		puts(s);
		free(s);
		cJSON_Delete(o);
	}
	bench_rmdir(dir);
	free(dir);
	return 0;
}
