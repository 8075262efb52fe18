/* SPDX-License-Identifier: MIT */
/*
 * Test helper: write a file's token ids for comparison with a reference.
 *   tok_dump TOKENIZER IN OUT          uint32 little-endian ids of the whole file
 *   tok_dump --lines TOKENIZER IN OUT  each line (without its '\n') encoded on
 *                                      its own, ids space-separated, one output
 *                                      line per input line: spm_encode's format
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <cmv/cmv.h>

static int dump_lines(cmv_tok *tok, const cmv_buf *text, FILE *out)
{
	const char *p = text->ptr, *end = text->ptr + text->size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		uint32_t *ids = NULL;
		size_t n = 0;
		if (cmv_tok_encode(&ids, &n, tok, p, len) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			fprintf(out, i ? " %u" : "%u", ids[i]);
		fputc('\n', out);
		free(ids);
		p += len + 1;
	}
	return 0;
}

static int count_json_lines(cmv_tok *tok, const cmv_buf *text, FILE *out)
{
	const char *p = text->ptr, *end = text->ptr + text->size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p), n;
		cJSON *s = cJSON_ParseWithLength(p, len);
		if (!cJSON_IsString(s)) {
			fprintf(stderr, "tok_dump: a line is not a JSON string\n");
			cJSON_Delete(s);
			return -1;
		}
		if (cmv_tok_count(&n, tok, s->valuestring, strlen(s->valuestring)) < 0) {
			cJSON_Delete(s);
			return -1;
		}
		fprintf(out, "%zu\n", n);
		cJSON_Delete(s);
		p += len + 1;
	}
	return 0;
}

/* Each line a request body: the model's count of it, as the pager counts what it sends. */
static int count_requests(const char *model_id, const cmv_buf *text, FILE *out)
{
	cmv_models *models = NULL;
	const cmv_model *m;
	cmv_tok *tok = NULL;
	const char *p = text->ptr, *end = text->ptr + text->size;
	int error;

	if ((error = cmv_models_load(&models, "")) < 0 || (error = cmv_models_find(&m, models, model_id)) < 0 ||
	    (error = cmv_tok_load(&tok, m->tokenizer, NULL)) < 0)
		goto out;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		cmv_token_stats st;
		if ((error = cmv_count_request(&st, m, tok, p, len)) < 0)
			goto out;
		fprintf(out, "%llu\n", (unsigned long long)st.total);
		p += len + 1;
	}
out:
	cmv_tok_free(tok);
	cmv_models_free(models);
	return error;
}

int main(int argc, char **argv)
{
	cmv_tok *tok = NULL;
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
	uint32_t *ids = NULL;
	size_t n = 0;
	char chunk[65536];
	size_t got;
	FILE *in, *out;
	int lines = argc == 5 && !strcmp(argv[1], "--lines");
	int counts = argc == 5 && !strcmp(argv[1], "--count-json");
	int requests = argc == 5 && !strcmp(argv[1], "--count-request");

	if (argc != 4 && !lines && !counts && !requests) {
		fprintf(stderr, "usage: tok_dump [--lines | --count-json] TOKENIZER IN OUT\n"
				"       tok_dump --count-request MODEL IN OUT\n");
		return 2;
	}
	argv += lines || counts || requests;
	if (!(in = fopen(argv[2], "rb")) || !(out = fopen(argv[3], "wb"))) {
		perror("tok_dump");
		return 1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), in)) > 0)
		cmv_buf_put(&text, chunk, got);
	fclose(in);
	if (requests) {
		int rc = count_requests(argv[1], &text, out) < 0;
		if (rc)
			fprintf(stderr, "tok_dump: %s\n", cmv_error_last()->message);
		fclose(out);
		cmv_buf_dispose(&text);
		return rc;
	}
	if (cmv_tok_load(&tok, argv[1], NULL) < 0 ||
	    (lines    ? dump_lines(tok, &text, out)
	     : counts ? count_json_lines(tok, &text, out)
		      : cmv_tok_encode(&ids, &n, tok, text.ptr, text.size)) < 0) {
		fprintf(stderr, "tok_dump: %s\n", cmv_error_last()->message);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char le[4] = { (unsigned char)ids[i], (unsigned char)(ids[i] >> 8),
					(unsigned char)(ids[i] >> 16), (unsigned char)(ids[i] >> 24) };
		fwrite(le, 1, 4, out);
	}
	fclose(out);
	free(ids);
	cmv_tok_free(tok);
	cmv_buf_dispose(&text);
	return 0;
}
