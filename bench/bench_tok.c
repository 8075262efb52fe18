/* SPDX-License-Identifier: MIT */
/*
 * cmv-bench tokenizer: count-only throughput of each tokenizer on four text
 * classes, beside the official tiktoken core (the npm package, Rust as wasm)
 * timed on the same bytes in the same run, and the worst case of a 1 MiB
 * run without spaces.
 *
 * Corpora (about 4 MB each, built from what a Debian machine and this
 * project have):
 *   prose     the license texts in /usr/share/common-licenses
 *   code      C headers from /usr/include
 *   json      the Claude Code and Codex sessions in ../shared/transcripts
 *   multi     the multilingual samples of gpt-tokenizer's TestPlans.txt
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bench.h"

#define SPM_BYTES ((size_t)1 << 20)
#define CORPUS_BYTES ((size_t)4 << 20)

static void add_file(cmv_buf *b, const char *path, size_t limit)
{
	FILE *fp = fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (!fp)
		return;
	while (b->size < limit && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		cmv_buf_put(b, chunk, b->size + n > limit ? limit - b->size : n);
	fclose(fp);
}

static void add_dir(cmv_buf *b, const char *dir, const char *suffix, size_t limit, int depth)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (list[i]->d_name[0] != '.' && b->size < limit && stat(path, &st) == 0) {
			size_t l = strlen(path), sl = strlen(suffix);
			if (S_ISDIR(st.st_mode) && depth > 0)
				add_dir(b, path, suffix, limit, depth - 1);
			else if (S_ISREG(st.st_mode) && l >= sl && !strcmp(path + l - sl, suffix))
				add_file(b, path, limit);
		}
		free(list[i]);
	}
	if (n > 0)
		free(list);
}

/* Repeat what was gathered until the corpus reaches `limit` (small sources). */
static void fill_by_repeating(cmv_buf *b, size_t limit)
{
	size_t base = b->size;

	while (base && b->size < limit)
		cmv_buf_put(b, b->ptr, b->size + base > limit ? limit - b->size : base);
}

static void multilingual(cmv_buf *b, const char *data_dir, size_t limit)
{
	char path[4096];
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	snprintf(path, sizeof(path), "%s/tokenizers/TestPlans.txt", data_dir);
	if (!(fp = fopen(path, "r")))
		return;
	while ((len = getline(&line, &cap, fp)) > 0)
		if (!strncmp(line, "Sample: ", 8))
			cmv_buf_put(b, line + 8, (size_t)len - 8);
	fclose(fp);
	free(line);
	fill_by_repeating(b, limit);
}

static double best_mb_per_s(cmv_tok *t, const cmv_buf *text, size_t *tokens)
{
	double best = 1e9;

	for (int r = 0; r < 3; r++) {
		double t0 = bench_now();
		if (cmv_tok_count(tokens, t, text->ptr, text->size) < 0) {
			fprintf(stderr, "cmv-bench: %s\n", cmv_error_last()->message);
			exit(1);
		}
		double dt = bench_now() - t0;
		if (dt < best)
			best = dt;
	}
	return (double)text->size / 1e6 / best;
}

/* The official core's MB/s on the same file, best of 3, or -1 if it cannot run. */
static double tiktoken_mb_per_s(const char *data_dir, const char *enc, const char *file, size_t *tokens)
{
	char script[4096], cmd[16384];
	FILE *fp;
	double mbs = -1;
	unsigned long n = 0;

	snprintf(script, sizeof(script), "%s/reference/bench.mjs", data_dir);
	if (access(script, R_OK) != 0) {
		if (!(fp = fopen(script, "w")))
			return -1;
		fputs("import fs from 'fs';\n"
		      "import { get_encoding } from 'tiktoken';\n"
		      "const [enc, file] = process.argv.slice(2);\n"
		      "const e = get_encoding(enc); const text = fs.readFileSync(file, 'utf8');\n"
		      "let best = 1e9, n = 0;\n"
		      "for (let r = 0; r < 3; r++) { const t0 = process.hrtime.bigint();\n"
		      "  n = e.encode_ordinary(text).length;\n"
		      "  const dt = Number(process.hrtime.bigint() - t0) / 1e9; if (dt < best) best = dt; }\n"
		      "console.log((Buffer.byteLength(text) / 1e6 / best).toFixed(3), n); e.free();\n",
		      fp);
		fclose(fp);
	}
	snprintf(cmd, sizeof(cmd), "cd '%s/reference' && node bench.mjs %s '%s' 2>/dev/null", data_dir, enc,
		 file);
	if (!(fp = popen(cmd, "r")))
		return -1;
	if (fscanf(fp, "%lf %lu", &mbs, &n) != 2)
		mbs = -1;
	if (pclose(fp) != 0)
		mbs = -1;
	*tokens = n;
	return mbs;
}

void cmv_tok__set_fast_path(cmv_tok *t, bool on);

int bench_tokenizer(int argc, char **argv)
{
	bool json = false;
	char machine[512];
	cmv_buf data = CMV_BUF_INIT(4096);
	const char *names[] = { "prose", "code", "json", "multi" };
	cmv_buf corpus[4];
	/* the official tiktoken core is the baseline for the two OpenAI encodings only */
	const char *encs[] = { "cl100k_base", "o200k_base", "llama3", "llama2", "mistral-7b-v0.1",
			       "gemma3" };
	const int n_encs = (int)(sizeof(encs) / sizeof(encs[0]));
	char *dir = bench_tmpdir();
	cJSON *out = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(out, "results");

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else {
			fprintf(stderr, "usage: cmv-bench tokenizer [--json]\n");
			return 2;
		}
	}
	cmv_tok_data_dir(&data);
	bench_machine(machine, sizeof(machine));
	cJSON_AddStringToObject(out, "machine", machine);
	for (int k = 0; k < 4; k++)
		cmv_buf_init(&corpus[k], CORPUS_BYTES + 1);
	add_dir(&corpus[0], "/usr/share/common-licenses", "", CORPUS_BYTES, 0);
	fill_by_repeating(&corpus[0], CORPUS_BYTES);
	add_dir(&corpus[1], "/usr/include", ".h", CORPUS_BYTES, 2);
	add_dir(&corpus[2], "../shared/transcripts", ".jsonl", CORPUS_BYTES, 3);
	if (!corpus[2].size)
		add_dir(&corpus[2], "../../shared/transcripts", ".jsonl", CORPUS_BYTES, 3);
	multilingual(&corpus[3], data.ptr, CORPUS_BYTES);
	if (!json)
		printf("cmv-bench tokenizer on %s\n(count only, best of 3; baseline = the official tiktoken "
		       "core (npm tiktoken@1.0.22 wasm) for cl100k/o200k, libsentencepiece for the "
		       "SentencePiece models; same bytes, same run)\n\n"
		       "%-15s %-6s %8s %10s %12s %9s %8s\n",
		       machine, "tokenizer", "text", "MB", "cmv MB/s", "baseline MB/s", "ratio", "same n");

	for (int e = 0; e < n_encs; e++) {
		cmv_tok *t = NULL;
		bool spm = e >= 3, has_ref = e < 2;
		if (cmv_tok_load(&t, encs[e], NULL) < 0) {
			fprintf(stderr, "cmv-bench: %s\n", cmv_error_last()->message);
			return 1;
		}
		for (int k = 0; k < 4; k++) {
			char path[4200];
			size_t n_cmv = 0, n_ref = 0;
			if (!corpus[k].size) {
				fprintf(stderr, "cmv-bench: no %s corpus on this machine\n", names[k]);
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s.txt", dir, names[k]);
			FILE *fp = fopen(path, "wb");
			fwrite(corpus[k].ptr, 1, corpus[k].size, fp);
			fclose(fp);
			/* libsentencepiece runs at a few MB/s: 1 MB of each text is enough */
			cmv_buf view = corpus[k];
			if (spm && view.size > SPM_BYTES) {
				view.size = SPM_BYTES;
				while (view.size && ((unsigned char)view.ptr[view.size] & 0xc0) == 0x80)
					view.size--;
			}
			double mine = best_mb_per_s(t, &view, &n_cmv);
			double ref = -1;
			if (has_ref) {
				ref = tiktoken_mb_per_s(data.ptr, encs[e], path, &n_ref);
			} else if (spm) {
				/* the baseline for SentencePiece: libsentencepiece itself, same bytes */
				cmv_tok__set_fast_path(t, false);
				ref = best_mb_per_s(t, &view, &n_ref);
				cmv_tok__set_fast_path(t, true);
			}
			cJSON *r = cJSON_CreateObject();
			cJSON_AddStringToObject(r, "tokenizer", encs[e]);
			cJSON_AddStringToObject(r, "text", names[k]);
			cJSON_AddNumberToObject(r, "bytes", (double)view.size);
			cJSON_AddNumberToObject(r, "tokens", (double)n_cmv);
			cJSON_AddNumberToObject(r, "mb_per_s", mine);
			if (ref > 0) {
				cJSON_AddNumberToObject(r, "baseline_mb_per_s", ref);
				cJSON_AddStringToObject(r, "baseline", spm ? "libsentencepiece" : "tiktoken");
				cJSON_AddNumberToObject(r, "ratio", mine / ref);
				cJSON_AddBoolToObject(r, "same_count", n_ref == n_cmv);
			}
			cJSON_AddItemToArray(rows, r);
			if (!json) {
				char refs[32] = "n/a", ratio[32] = "", same[8] = "";
				if (ref > 0) {
					snprintf(refs, sizeof(refs), "%.1f", ref);
					snprintf(ratio, sizeof(ratio), "%.1fx", mine / ref);
					snprintf(same, sizeof(same), "%s", n_ref == n_cmv ? "yes" : "NO");
				}
				printf("%-15s %-6s %8.1f %10.1f %12s %9s %8s\n", encs[e], names[k],
				       (double)view.size / 1e6, mine, refs, ratio, same);
			}
		}
		/* the worst case: 1 MiB of random letters, one piece */
		cmv_buf run = CMV_BUF_INIT((size_t)1 << 21);
		unsigned seed = 5;
		for (size_t i = 0; i < ((size_t)1 << 20); i++)
			cmv_buf_putc(&run, (char)('a' + rand_r(&seed) % 26));
		size_t n = 0;
		double t0 = bench_now();
		cmv_tok_count(&n, t, run.ptr, run.size);
		double worst = bench_now() - t0;
		cJSON *w = cJSON_CreateObject();
		cJSON_AddStringToObject(w, "tokenizer", encs[e]);
		cJSON_AddStringToObject(w, "text", "1MiB-no-spaces");
		cJSON_AddNumberToObject(w, "seconds", worst);
		cJSON_AddItemToArray(rows, w);
		if (!json)
			printf("%-15s 1 MiB of letters without a space: %.3f s (%zu tokens)\n", encs[e], worst, n);
		cmv_buf_dispose(&run);
		cmv_tok_free(t);
	}
	if (json) {
		char *s = cJSON_Print(out);
		puts(s);
		free(s);
	}
	cJSON_Delete(out);
	for (int k = 0; k < 4; k++)
		cmv_buf_dispose(&corpus[k]);
	cmv_buf_dispose(&data);
	bench_rmdir(dir);
	free(dir);
	return 0;
}
