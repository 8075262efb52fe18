/* SPDX-License-Identifier: MIT */
/* Test helper: write a file's token ids as uint32 little-endian (for cmp with the reference). */
#include <stdio.h>
#include <stdlib.h>
#include "cmv/cmv.h"

int main(int argc, char **argv)
{
	cmv_tok *tok = NULL;
	cmv_buf text = CMV_BUF_INIT((size_t)1 << 30);
	uint32_t *ids = NULL;
	size_t n = 0;
	char chunk[65536];
	size_t got;
	FILE *in, *out;

	if (argc != 4) {
		fprintf(stderr, "usage: tok_dump TOKENIZER IN OUT\n");
		return 2;
	}
	if (!(in = fopen(argv[2], "rb")) || !(out = fopen(argv[3], "wb"))) {
		perror("tok_dump");
		return 1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), in)) > 0)
		cmv_buf_put(&text, chunk, got);
	fclose(in);
	if (cmv_tok_load(&tok, argv[1], NULL) < 0 || cmv_tok_encode(&ids, &n, tok, text.ptr, text.size) < 0) {
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
