/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench trim DIR [--model M] [--threshold N] [--json]: trim every
 * Claude Code session under DIR and measure what a model is sent on resume.
 *
 *  - cmv: each session imported into a fresh store (not timed), then
 *    cmv_trim timed (its byte measurements included); throughput is the
 *    session file's bytes over that time;
 *  - tokens: the branch before and after, rendered for the model's API and
 *    counted in its tokens (cmv_count_request): what it is sent on resume;
 *  - anchor: claude-code-cmv's trimmer, reimplemented here from its spec
 *    (../shared/reference/anchors.md §1.6: three passes, threshold 500,
 *    "[Trimmed tool result: ~N chars]", the 13 protected keys, summary lines
 *    taken as boundaries, thinking dropped, redacted_thinking and
 *    toolUseResult kept, usage stripped), run on the same file in the same
 *    run: its output is imported and counted the same way. Its time is the
 *    same-run baseline for throughput (a C port: faster than the Node
 *    original, which the reference measured at 19-27 MB/s).
 */
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "bench.h"

/* ---- claude-code-cmv's trimJsonl, from its spec ------------------------------ */

static const char *const protected_keys[] = { "file_path", "notebook_path", "command", "description", "pattern",
					      "path", "url", "skill", "args", "replace_all", "edit_mode",
					      "cell_type", "cell_id" };

static bool jis(const cJSON *o, const char *k, const char *v)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(x) && !strcmp(x->valuestring, v);
}

/* JavaScript string length (UTF-16 units) of UTF-8 bytes. */
static size_t js_len(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n += *p >= 0xF0 ? 2 : 1;
	return n;
}

static size_t json_len(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	size_t n = s ? js_len(s) : 0;
	cJSON_free(s);
	return n;
}

static void anchor_stub(cJSON *parent, const char *key, const char *what, size_t n)
{
	char buf[96];
	snprintf(buf, sizeof(buf), "[Trimmed %s: ~%zu chars]", what, n);
	cJSON_ReplaceItemInObjectCaseSensitive(parent, key, cJSON_CreateString(buf));
}

static void anchor_content(cJSON *arr, size_t T)
{
	static const char *const write_fields[] = { "content", "old_string", "new_string", "new_source" };
	for (cJSON *b = arr->child; b; b = b->next) {
		if (jis(b, "type", "tool_result")) {
			cJSON *c = cJSON_GetObjectItemCaseSensitive(b, "content");
			if (cJSON_IsArray(c)) {
				size_t L = 0;
				for (cJSON *x = c->child, *next; x; x = next) {
					next = x->next;
					if (jis(x, "type", "image")) {
						L += json_len(x);
						cJSON_Delete(cJSON_DetachItemViaPointer(c, x));
					} else if (jis(x, "type", "text") && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(x, "text"))) {
						L += js_len(cJSON_GetObjectItemCaseSensitive(x, "text")->valuestring);
					} else {
						L += json_len(x);
					}
				}
				if (L > T) {
					cJSON *one = cJSON_CreateArray(), *tb = cJSON_CreateObject();
					char buf[96];
					snprintf(buf, sizeof(buf), "[Trimmed tool result: ~%zu chars]", L);
					cJSON_AddStringToObject(tb, "type", "text");
					cJSON_AddStringToObject(tb, "text", buf);
					cJSON_AddItemToArray(one, tb);
					cJSON_ReplaceItemInObjectCaseSensitive(b, "content", one);
				}
			} else if (cJSON_IsString(c) && js_len(c->valuestring) > T) {
				anchor_stub(b, "content", "tool result", js_len(c->valuestring));
			}
		} else if (jis(b, "type", "tool_use")) {
			cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
			bool writer = cJSON_IsString(name) && (!strcmp(name->valuestring, "Write") || !strcmp(name->valuestring, "Edit") ||
							       !strcmp(name->valuestring, "NotebookEdit") ||
							       !strcmp(name->valuestring, "MultiEdit"));
			bool done = false;
			if (!cJSON_IsObject(in))
				continue;
			if (writer)
				for (size_t i = 0; i < sizeof(write_fields) / sizeof(*write_fields); i++) {
					cJSON *f = cJSON_GetObjectItemCaseSensitive(in, write_fields[i]);
					if (cJSON_IsString(f) && js_len(f->valuestring) > T) {
						anchor_stub(in, write_fields[i], "input", js_len(f->valuestring));
						done = true;
					}
				}
			if (done || json_len(in) <= T)
				continue;
			for (cJSON *f = in->child, *next; f; f = next) {
				bool prot = false;
				next = f->next; /* a stub replaces f */
				for (size_t i = 0; i < sizeof(protected_keys) / sizeof(*protected_keys); i++)
					prot |= !strcmp(f->string, protected_keys[i]);
				if (!prot && cJSON_IsString(f) && js_len(f->valuestring) > T)
					anchor_stub(in, f->string, "input", js_len(f->valuestring));
			}
		}
	}
	for (cJSON *b = arr->child, *next; b; b = next) {
		next = b->next;
		if (jis(b, "type", "thinking"))
			cJSON_Delete(cJSON_DetachItemViaPointer(arr, b));
	}
}

static int anchor_trim(cmv_buf *out, const char *data, size_t len, size_t T)
{
	const char *end = data + len;
	size_t idx = 0, B = SIZE_MAX;
	cJSON *before = cJSON_CreateObject();

	/* pass 1: the last boundary (a summary line counts: the anchor's rule) */
	for (const char *p = data; p < end; idx++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		cJSON *j = cJSON_ParseWithLength(p, n);
		if (j && (jis(j, "type", "summary") || (jis(j, "type", "system") && jis(j, "subtype", "compact_boundary"))))
			B = idx;
		cJSON_Delete(j);
		p += n + 1;
	}
	/* pass 2: calls before it */
	idx = 0;
	for (const char *p = data; B != SIZE_MAX && p < end && idx < B; idx++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		cJSON *j = cJSON_ParseWithLength(p, n), *m = cJSON_GetObjectItemCaseSensitive(j, "message");
		cJSON *c = cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "content") : cJSON_GetObjectItemCaseSensitive(j, "content");
		for (cJSON *b = cJSON_IsArray(c) ? c->child : NULL; b; b = b->next)
			if (jis(b, "type", "tool_use") && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "id")))
				cJSON_AddTrueToObject(before, cJSON_GetObjectItemCaseSensitive(b, "id")->valuestring);
		cJSON_Delete(j);
		p += n + 1;
	}
	/* pass 3 */
	idx = 0;
	cmv_buf_clear(out);
	for (const char *p = data; p < end; idx++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *line = p;
		p += n + 1;
		bool blank = true;
		for (size_t i = 0; i < n && blank; i++)
			blank = line[i] == ' ' || line[i] == '\t' || line[i] == '\r';
		if (blank || (B != SIZE_MAX && idx < B))
			continue;
		cJSON *j = cJSON_ParseWithLength(line, n);
		if (!j) {
			cmv_buf_put(out, line, n);
			cmv_buf_putc(out, '\n');
			continue;
		}
		if (jis(j, "type", "file-history-snapshot") || jis(j, "type", "queue-operation")) {
			cJSON_Delete(j);
			continue;
		}
		cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
		cJSON *arrs[2] = { cJSON_IsObject(m) ? cJSON_GetObjectItemCaseSensitive(m, "content") : NULL,
				   cJSON_GetObjectItemCaseSensitive(j, "content") };
		for (int a = 0; a < 2; a++) {
			if (!cJSON_IsArray(arrs[a]))
				continue;
			anchor_content(arrs[a], T);
			for (cJSON *b = arrs[a]->child, *next; before->child && b; b = next) {
				next = b->next;
				const cJSON *id = cJSON_GetObjectItemCaseSensitive(b, "tool_use_id");
				if (jis(b, "type", "tool_result") && cJSON_IsString(id) &&
				    cJSON_GetObjectItemCaseSensitive(before, id->valuestring))
					cJSON_Delete(cJSON_DetachItemViaPointer(arrs[a], b));
			}
		}
		if (cJSON_IsObject(m))
			cJSON_DeleteItemFromObjectCaseSensitive(m, "usage");
		cJSON_DeleteItemFromObjectCaseSensitive(j, "usage");
		char *s = cJSON_PrintUnformatted(j);
		cmv_buf_puts(out, s);
		cmv_buf_putc(out, '\n');
		cJSON_free(s);
		cJSON_Delete(j);
	}
	cJSON_Delete(before);
	return 0;
}

/* ---- the run ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}


static void die(const char *what)
{
	const cmv_error *e = cmv_error_last();
	fprintf(stderr, "cmv-bench trim: %s: %s\n", what, e ? e->message : "failed");
	exit(1);
}

int bench_trim(int argc, char **argv)
{
	const char *dir = NULL, *model_name = "claude-sonnet-4-5";
	size_t threshold = 0;
	bool json = false;
	bench_files l = { 0 };
	cmv_models *models = NULL;
	const cmv_model *m;
	cmv_tok *tok = NULL;
	char machine[256];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--model") && i + 1 < argc)
			model_name = argv[++i];
		else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
			threshold = strtoul(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else {
			fprintf(stderr, "usage: cmv-bench trim DIR [--model M] [--threshold N] [--json]\n");
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: cmv-bench trim DIR [--model M] [--threshold N] [--json]\n");
		return 2;
	}
	bench_collect(&l, dir, "claude-code");
	if (!l.n) {
		fprintf(stderr, "cmv-bench trim: no Claude Code sessions under %s\n", dir);
		return 1;
	}
	qsort(l.paths, l.n, sizeof(*l.paths), cmp_str);
	if (cmv_models_load(&models, NULL) < 0 || cmv_models_find(&m, models, model_name) < 0 ||
	    cmv_tok_load(&tok, m->tokenizer, NULL) < 0)
		die("cannot load the model");
	bench_machine(machine, sizeof(machine));

	cJSON *doc = cJSON_CreateObject(), *sessions = cJSON_AddArrayToObject(doc, "sessions");
	uint64_t sum_bytes = 0, sum_after = 0, sum_tb = 0, sum_ta = 0, sum_anchor_t = 0, sum_anchor_b = 0;
	double sum_time = 0, sum_anchor_time = 0;
	size_t beaten = 0;
	cmv_buf file = CMV_BUF_INIT((size_t)1 << 31), anchored = CMV_BUF_INIT((size_t)1 << 31);
	char *tmp = bench_tmpdir();
	if (!json)
		printf("%-44s %10s %10s %7s %10s %9s %9s\n", "session", "tokens", "trimmed", "cut", "anchor", "bytes", "MB/s");
	for (size_t i = 0; i < l.n; i++) {
		cmv_repo *repo = NULL;
		cmv_import_result res;
		cmv_trim_options opts = CMV_TRIM_OPTIONS_INIT;
		cmv_trim_report rep;
		uint64_t tb = 0, ta = 0, anchor_tokens = 0;
		cmv_buf_clear(&file);
		if (cmv__read_file(&file, l.paths[i]) < 0)
			die(l.paths[i]);
		if (cmv_repo_open(&repo, ":memory:", CMV_REPO_OPEN_CREATE) < 0 ||
		    cmv_import_file(&res, repo, l.paths[i], "claude-code", NULL) < 0)
			die(l.paths[i]);
		opts.threshold = threshold;
		opts.branch = "trimmed";
		double t0 = bench_now();
		if (cmv_trim(&rep, repo, &res.head, &opts) < 0)
			die(l.paths[i]);
		double dt = bench_now() - t0;
		cmv_token_stats st;
		if (cmv_count_sent(&st, repo, &res.head, m, tok) < 0)
			die("counting");
		tb = st.total;
		if (cmv_count_sent(&st, repo, &rep.head, m, tok) < 0)
			die("counting");
		ta = st.total;

		/* the anchor, on the same bytes */
		t0 = bench_now();
		anchor_trim(&anchored, file.ptr, file.size, threshold ? threshold : 500);
		double adt = bench_now() - t0;
		char apath[4096];
		snprintf(apath, sizeof(apath), "%s/anchor-%zu.jsonl", tmp, i);
		FILE *af = fopen(apath, "wb");
		if (!af || fwrite(anchored.ptr, 1, anchored.size, af) != anchored.size || fclose(af) != 0)
			die("cannot write the anchor's output");
		cmv_import_result ares;
		cmv_import_options aio = CMV_IMPORT_OPTIONS_INIT;
		aio.branch = "anchor";
		aio.flags = CMV_IMPORT_LENIENT;
		if (cmv_import_file(&ares, repo, apath, "claude-code", &aio) < 0 ||
		    cmv_count_sent(&st, repo, &ares.head, m, tok) < 0)
			die("the anchor's output");
		anchor_tokens = st.total;
		cmv_repo_free(repo);

		const char *base = strrchr(l.paths[i], '/') ? strrchr(l.paths[i], '/') + 1 : l.paths[i];
		double mbs = dt > 0 ? (double)file.size / dt / 1e6 : 0;
		beaten += ta < anchor_tokens;
		sum_bytes += file.size;
		sum_after += rep.bytes_after;
		sum_tb += tb;
		sum_ta += ta;
		sum_anchor_t += anchor_tokens;
		sum_anchor_b += anchored.size;
		sum_time += dt;
		sum_anchor_time += adt;
		cJSON *s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "file", l.paths[i]);
		cJSON_AddNumberToObject(s, "tokens_before", (double)tb);
		cJSON_AddNumberToObject(s, "tokens_after", (double)ta);
		cJSON_AddNumberToObject(s, "bytes_before", (double)file.size);
		cJSON_AddNumberToObject(s, "bytes_after", (double)rep.bytes_after);
		cJSON_AddNumberToObject(s, "anchor_tokens_after", (double)anchor_tokens);
		cJSON_AddNumberToObject(s, "anchor_bytes_after", (double)anchored.size);
		cJSON_AddNumberToObject(s, "seconds", dt);
		cJSON_AddNumberToObject(s, "mb_per_s", mbs);
		cJSON_AddItemToArray(sessions, s);
		if (!json)
			printf("%-44.44s %10llu %10llu %6.1f%% %10llu %9llu %9.1f\n", base, (unsigned long long)tb,
			       (unsigned long long)ta, tb ? 100.0 * (double)(tb - ta) / (double)tb : 0.0,
			       (unsigned long long)anchor_tokens, (unsigned long long)rep.bytes_after, mbs);
	}
	cJSON *total = cJSON_AddObjectToObject(doc, "total");
	cJSON_AddNumberToObject(total, "sessions", (double)l.n);
	cJSON_AddNumberToObject(total, "tokens_before", (double)sum_tb);
	cJSON_AddNumberToObject(total, "tokens_after", (double)sum_ta);
	cJSON_AddNumberToObject(total, "bytes_before", (double)sum_bytes);
	cJSON_AddNumberToObject(total, "bytes_after", (double)sum_after);
	cJSON_AddNumberToObject(total, "anchor_tokens_after", (double)sum_anchor_t);
	cJSON_AddNumberToObject(total, "anchor_bytes_after", (double)sum_anchor_b);
	cJSON_AddNumberToObject(total, "sessions_below_anchor", (double)beaten);
	cJSON_AddNumberToObject(total, "mb_per_s", sum_time > 0 ? (double)sum_bytes / sum_time / 1e6 : 0);
	cJSON_AddNumberToObject(total, "anchor_c_mb_per_s", sum_anchor_time > 0 ? (double)sum_bytes / sum_anchor_time / 1e6 : 0);
	cJSON_AddStringToObject(doc, "model", m->id);
	cJSON_AddStringToObject(doc, "tokenizer", m->tokenizer);
	cJSON_AddStringToObject(doc, "machine", machine);
	if (json) {
		char *s = cJSON_Print(doc);
		puts(s);
		cJSON_free(s);
	} else {
		printf("total: tokens %llu -> %llu (-%.1f%%; the anchor's rules: %llu, -%.1f%%), bytes %llu -> %llu (-%.1f%%; anchor -%.1f%%)\n",
		       (unsigned long long)sum_tb, (unsigned long long)sum_ta,
		       sum_tb ? 100.0 * (double)(sum_tb - sum_ta) / (double)sum_tb : 0.0, (unsigned long long)sum_anchor_t,
		       sum_tb ? 100.0 * ((double)sum_tb - (double)sum_anchor_t) / (double)sum_tb : 0.0,
		       (unsigned long long)sum_bytes, (unsigned long long)sum_after,
		       100.0 * (double)(sum_bytes - sum_after) / (double)sum_bytes,
		       100.0 * ((double)sum_bytes - (double)sum_anchor_b) / (double)sum_bytes);
		printf("fewer tokens than the anchor's rules on %zu of %zu sessions\n", beaten, l.n);
		printf("throughput: cmv trim %.1f MB/s; the anchor's trimmer in C %.1f MB/s (same run); %s, %s\n",
		       sum_time > 0 ? (double)sum_bytes / sum_time / 1e6 : 0,
		       sum_anchor_time > 0 ? (double)sum_bytes / sum_anchor_time / 1e6 : 0, m->id, machine);
	}
	cJSON_Delete(doc);
	/* CMV_BENCH_KEEP=1 keeps the anchor's trimmed files for a side-by-side look */
	if (getenv("CMV_BENCH_KEEP"))
		fprintf(stderr, "cmv-bench trim: the anchor's outputs are in %s\n", tmp);
	else
		bench_rmdir(tmp);
	free(tmp);
	bench_files_free(&l);
	cmv_buf_dispose(&file);
	cmv_buf_dispose(&anchored);
	cmv_tok_free(tok);
	cmv_models_free(models);
	return 0;
}
