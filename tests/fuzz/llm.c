/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: an LLM endpoint's reply as the client reads it (the
 * summarizer of `cmv compact` and `cmv handoff`). The first byte picks the
 * provider (OpenAI Chat Completions or Anthropic Messages) and the HTTP
 * status; the rest is the reply's body, handed over by a transport that
 * stands for the network. A reply is text or a clean error, never a crash.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

typedef struct {
	cmv_llm_transport parent;
	const uint8_t *body;
	size_t len;
	long status;
} fuzz_transport;

static int fuzz_send(cmv_llm_transport *t, const cmv_http_request *req, cmv_http_response *resp)
{
	fuzz_transport *ft = (fuzz_transport *)t;
	(void)req;
	resp->status = ft->status;
	resp->retry_after_ms = -1;
	return cmv_buf_set(&resp->body, ft->body, ft->len);
}

static void fuzz_free(cmv_llm_transport *t)
{
	(void)t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 200, 200, 200, 400, 429, 500, 529 };
	static cmv_models *registry;
	const cmv_model *model;
	cmv_llm_options o = CMV_LLM_OPTIONS_INIT;
	fuzz_transport ft = { { CMV_LLM_TRANSPORT_VERSION, fuzz_send, fuzz_free }, NULL, 0, 200 };
	cmv_buf out = CMV_BUF_INIT(1 << 24);
	cmv_llm_usage usage;
	cmv_llm *llm = NULL;

	if (size < 1)
		return 0;
	if (!registry) {
		setenv("OPENAI_API_KEY", "fuzz-key", 1);
		setenv("ANTHROPIC_API_KEY", "fuzz-key", 1);
		if (cmv_models_load(&registry, NULL) < 0)
			fuzz_fail("no model registry: %s", cmv_error_last()->message);
	}
	if (cmv_models_find(&model, registry, data[0] & 1 ? "claude-sonnet-4-5" : "gpt-4o") < 0)
		fuzz_fail("no model: %s", cmv_error_last()->message);
	ft.body = data + 1;
	ft.len = size - 1;
	ft.status = statuses[(data[0] >> 1) % 8];
	o.transport = &ft.parent;
	o.retries = ~0u;
	if (cmv_llm_new(&llm, model, &o) < 0)
		fuzz_fail("no client: %s", cmv_error_last()->message);
	int rc = cmv_llm_complete(&out, &usage, llm, "system", "user");
	if (rc < 0 && (!cmv_error_last() || !cmv_error_last()->message[0]))
		fuzz_fail("a completion failed with no message");
	/* a body may quote the key back (the fuzzer learns it); otherwise no message may hold it */
	if (rc < 0 && strstr(cmv_error_last()->message, "fuzz-key") && !memmem(data + 1, size - 1, "fuzz-key", 8))
		fuzz_fail("an error message holds the API key");
	if (rc == 0 && !cmv_utf8_valid(out.ptr, out.size, NULL))
		fuzz_fail("a reply's text is not UTF-8");
	cmv_llm_free(llm);
	cmv_buf_dispose(&out);
	return 0;
}
