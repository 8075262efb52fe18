/* SPDX-License-Identifier: MIT */
/*
 * cmv tokens --tokenizer NAME | --model M [--ids] [FILE]: the token count of a
 * file or stdin; with --model, in that model's count (exact, or its named
 * approximation: the JSON says which).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"

static const char *tk_name, *tk_model, *tk_file;
static bool tk_ids, tk_json;
const cli_opt opts_tokens[] = {
	{ OPT_ARG_OPT, "FILE", 0, NULL, "the text to count (default: standard input)", &tk_file, NULL },
	{ OPT_VALUE, "tokenizer", 't', "NAME",
	  "cl100k_base, o200k_base, llama3, llama2, mistral-7b-v0.1 or gemma3", &tk_name, NULL },
	{ OPT_VALUE, "model", 'm', "M", "count as model M does (see 'cmv models')", &tk_model, NULL },
	{ OPT_FLAG, "ids", 0, NULL, "print the token ids, one per line, after the count", NULL, &tk_ids },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &tk_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(tokens)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_tok *tok = NULL;
	cmv_models *models = NULL;
	const cmv_model *model = NULL;
	uint32_t *ids = NULL;
	size_t n = 0, raw;
	int rc = EXIT_OK;

	(void)ctx;
	CLI_PARSE("tokens");
	if (!tk_name == !tk_model)
		return cli_usage_error(cli_find("tokens"), "give one of --tokenizer and --model");
	if (tk_model) {
		if (cmv_models_load(&models, NULL) < 0 || cli_model(&model, models, tk_model) < 0) {
			rc = cli_fail("unknown model");
			cmv_models_free(models);
			return rc;
		}
		tk_name = model->tokenizer;
	}
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
	raw = n;
	if (model)
		n = (size_t)cmv_model_scale(model, raw);
	if (tk_json) {
		cJSON *o = cJSON_CreateObject(), *arr;
		cJSON_AddStringToObject(o, "tokenizer", cmv_tok_name(tok));
		cJSON_AddNumberToObject(o, "tokens", (double)n);
		cJSON_AddNumberToObject(o, "bytes", (double)text.size);
		if (model) {
			cJSON_AddStringToObject(o, "model", model->id);
			cJSON_AddBoolToObject(o, "exact", model->exact);
			cJSON_AddNumberToObject(o, "tokenizer_tokens", (double)raw);
		}
		if (tk_ids) {
			arr = cJSON_AddArrayToObject(o, "ids");
			for (size_t i = 0; i < raw; i++)
				cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
		}
		rc = cli_print_json(o);
	} else {
		printf("%zu\n", n);
		for (size_t i = 0; tk_ids && i < raw; i++)
			printf("%u\n", ids[i]);
	}
done:
	free(ids);
	cmv_tok_free(tok);
	cmv_models_free(models);
	cmv_buf_dispose(&text);
	return rc;
}
