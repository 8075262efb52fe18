/* SPDX-License-Identifier: MIT */
/* cmv tokens --tokenizer NAME [--ids] [FILE]: exact token count of a file or stdin. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *tk_name, *tk_file;
static bool tk_ids, tk_json;
const cli_opt opts_tokens[] = {
	{ OPT_ARG_OPT, "FILE", 0, NULL, "the text to count (default: standard input)", &tk_file, NULL },
	{ OPT_VALUE, "tokenizer", 't', "NAME", "cl100k_base, o200k_base or llama3 (required)", &tk_name, NULL },
	{ OPT_FLAG, "ids", 0, NULL, "print the token ids, one per line, after the count", NULL, &tk_ids },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &tk_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(tokens)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_tok *tok = NULL;
	uint32_t *ids = NULL;
	size_t n = 0;
	int rc = EXIT_OK;

	(void)ctx;
	CLI_PARSE("tokens");
	if (!tk_name)
		return cli_usage_error(cli_find("tokens"), "missing --tokenizer");
	if (tk_file) {
		FILE *fp = fopen(tk_file, "rb");
		char chunk[65536];
		size_t got;
		if (!fp)
			return cli_failf("cannot open '%s': %s", tk_file, strerror(errno));
		while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			if (cmv_buf_put(&text, chunk, got) < 0) {
				fclose(fp);
				cmv_buf_dispose(&text);
				return cli_fail("file too large");
			}
		fclose(fp);
	} else if ((rc = cli_read_stdin(&text)) != 0) {
		goto done;
	}
	if (cmv_tok_load(&tok, tk_name, NULL) < 0) {
		rc = cli_fail("cannot load the tokenizer");
		goto done;
	}
	if ((tk_ids || tk_json) ? cmv_tok_encode(&ids, &n, tok, text.ptr, text.size) < 0
				: cmv_tok_count(&n, tok, text.ptr, text.size) < 0) {
		rc = cli_fail("cannot tokenize");
		goto done;
	}
	if (tk_json) {
		cJSON *o = cJSON_CreateObject(), *arr;
		cJSON_AddStringToObject(o, "tokenizer", cmv_tok_name(tok));
		cJSON_AddNumberToObject(o, "tokens", (double)n);
		cJSON_AddNumberToObject(o, "bytes", (double)text.size);
		if (tk_ids) {
			arr = cJSON_AddArrayToObject(o, "ids");
			for (size_t i = 0; i < n; i++)
				cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
		}
		rc = cli_print_json(o);
	} else {
		printf("%zu\n", n);
		for (size_t i = 0; tk_ids && i < n; i++)
			printf("%u\n", ids[i]);
	}
done:
	free(ids);
	cmv_tok_free(tok);
	cmv_buf_dispose(&text);
	return rc;
}
