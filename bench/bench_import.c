/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench import DIR: import and export throughput over a folder of
 * sessions, the store's bytes against the input's, and the cost of
 * importing the same folder again.
 *
 *  - baseline: the same bytes inserted line by line into one SQLite table
 *    (no parsing), in the same run;
 *  - import: every file whose format is recognized, each in its own
 *    transaction, into a fresh store;
 *  - again: the same folder a second time (nothing changed: dedup);
 *  - export: every session written back (byte-identical, checked);
 *  - render: every branch as an Anthropic request, checked.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

static int count_bytes(const void *data, size_t len, void *payload)
{
	(void)data;
	*(uint64_t *)payload += len;
	return 0;
}

static double baseline_insert(const char *dir, const bench_files *l)
{
	char path[4096];
	sqlite3 *db;
	sqlite3_stmt *st;
	cmv_buf file = CMV_BUF_INIT((size_t)1 << 31);

	snprintf(path, sizeof(path), "%s/baseline.db", dir);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE m(id INTEGER PRIMARY KEY, line TEXT)",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO m(line) VALUES(?)", -1, &st, NULL);
	double t0 = bench_now();
	for (size_t i = 0; i < l->n; i++) {
		FILE *fp = fopen(l->paths[i], "rb");
		char chunk[65536];
		size_t n;
		cmv_buf_clear(&file);
		while (fp && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			cmv_buf_put(&file, chunk, n);
		if (fp)
			fclose(fp);
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (char *p = file.ptr, *end = file.ptr + file.size; p && p < end;) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			sqlite3_bind_text(st, 1, p, (int)len, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_reset(st);
			p = nl ? nl + 1 : end;
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double dt = bench_now() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	cmv_buf_dispose(&file);
	return dt;
}

static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench: %s: %s\n", what, e ? e->message : "failed");
	exit(1);
}

int bench_import(int argc, char **argv)
{
	const char *src = NULL;
	bool json = false;
	bench_files l = { 0 };
	char machine[256], store[4096], dbfile[4200];
	cmv_repo *repo;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			src = argv[i];
	if (!src) {
		fprintf(stderr, "usage: cmv-bench import DIR [--json]\n");
		return 2;
	}
	bench_collect(&l, src, NULL);
	if (!l.n) {
		fprintf(stderr, "cmv-bench: no sessions under %s\n", src);
		return 1;
	}
	char *dir = bench_tmpdir();
	bench_machine(machine, sizeof(machine));
	double base_s = baseline_insert(dir, &l);

	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(dbfile, sizeof(dbfile), "%s/.cmv/store.db", store);
	if (cmv_repo_init(&repo, store) < 0)
		die("init");
	cmv_import_result *res = calloc(l.n, sizeof(*res));
	size_t records = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < l.n; i++) {
		if (cmv_import_file(&res[i], repo, l.paths[i], NULL, NULL) < 0)
			die(l.paths[i]);
		records += res[i].records;
	}
	double import_s = bench_now() - t0;

	t0 = bench_now();
	for (size_t i = 0; i < l.n; i++) {
		cmv_import_result again;
		if (cmv_import_file(&again, repo, l.paths[i], NULL, NULL) < 0)
			die(l.paths[i]);
		if (again.outcome != CMV_IMPORT_UNCHANGED) {
			fprintf(stderr, "cmv-bench: %s changed on a second import\n", l.paths[i]);
			return 1;
		}
	}
	double again_s = bench_now() - t0;

	uint64_t out_bytes = 0;
	t0 = bench_now();
	for (size_t i = 0; i < l.n; i++)
		if (res[i].session[0] && cmv_export_session(repo, res[i].session, count_bytes, &out_bytes) < 0)
			die("export");
	double export_s = bench_now() - t0;
	if (out_bytes != l.bytes) {
		fprintf(stderr, "cmv-bench: export gave %llu bytes for %llu\n", (unsigned long long)out_bytes,
			(unsigned long long)l.bytes);
		return 1;
	}

	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31);
	uint64_t rendered = 0;
	size_t problems = 0;
	t0 = bench_now();
	for (size_t i = 0; i < l.n; i++) {
		if (cmv_render(&body, NULL, repo, &res[i].head, CMV_RENDER_ANTHROPIC, NULL) < 0)
			die("render");
		rendered += body.size;
		problems += (size_t)cmv_check_request(NULL, CMV_RENDER_ANTHROPIC, body.ptr, body.size);
	}
	double render_s = bench_now() - t0;
	cmv_buf_dispose(&body);
	cmv_repo_free(repo); /* checkpoints the WAL into the file */
	uint64_t store_bytes = bench_file_bytes(dbfile);

	double mb = (double)l.bytes / 1e6;
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "machine", machine);
		cJSON_AddNumberToObject(o, "files", (double)l.n);
		cJSON_AddNumberToObject(o, "input_bytes", (double)l.bytes);
		cJSON_AddNumberToObject(o, "records", (double)records);
		cJSON_AddNumberToObject(o, "baseline_mb_per_s", mb / base_s);
		cJSON_AddNumberToObject(o, "import_mb_per_s", mb / import_s);
		cJSON_AddNumberToObject(o, "import_ratio_to_baseline", base_s / import_s);
		cJSON_AddNumberToObject(o, "second_import_fraction", again_s / import_s);
		cJSON_AddNumberToObject(o, "export_mb_per_s", mb / export_s);
		cJSON_AddNumberToObject(o, "render_anthropic_s", render_s);
		cJSON_AddNumberToObject(o, "render_problems", (double)problems);
		cJSON_AddNumberToObject(o, "store_bytes", (double)store_bytes);
		cJSON_AddNumberToObject(o, "store_to_input", (double)store_bytes / (double)l.bytes);
		char *s = cJSON_Print(o);
		puts(s);
		free(s);
		cJSON_Delete(o);
	} else {
		printf("machine: %s\n", machine);
		printf("input: %zu files, %.1f MB, %zu records\n", l.n, mb, records);
		printf("baseline (bare SQLite, a row per line): %.1f MB/s\n", mb / base_s);
		printf("import: %.2f s, %.1f MB/s, %.0f records/s (%.2fx the baseline)\n", import_s, mb / import_s,
		       (double)records / import_s, base_s / import_s);
		printf("import again (unchanged): %.3f s, %.1f%% of the first\n", again_s, 100.0 * again_s / import_s);
		printf("export (byte-identical): %.3f s, %.1f MB/s\n", export_s, mb / export_s);
		printf("render for Anthropic: %.3f s for %zu branches (%.1f MB out), %zu checker problems\n", render_s, l.n,
		       (double)rendered / 1e6, problems);
		printf("store: %.1f MB, %.2fx the input\n", (double)store_bytes / 1e6, (double)store_bytes / (double)l.bytes);
	}
	bench_files_free(&l);
	free(res);
	bench_rmdir(dir);
	free(dir);
	return problems ? 1 : 0;
}
