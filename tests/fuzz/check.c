/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a request body as a provider would get it: the checker
 * (`cmv export --check`) and counting a rendered request in a model's tokens
 * (cmv_count_request). The first byte picks the provider; the rest is the body.
 */
#include <stdlib.h>
#include "fuzz.h"

/* a model of each request format, in cmv_render_target's order: Responses bodies are counted for gpt-5 */
static const char *const models[] = { NULL, "claude-sonnet-4-5", "gpt-4o", "gpt-5", "gemini-2.5-pro" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cmv_models *registry;
	static cmv_tok *toks[5];
	static const cmv_model *profiles[5];
	cmv_buf problems = CMV_BUF_INIT(1 << 20);
	cmv_token_stats st;

	if (size < 1)
		return 0;
	cmv_render_target t = (cmv_render_target)(CMV_RENDER_ANTHROPIC + data[0] % 4);
	const char *body = (const char *)data + 1;
	int n = cmv_check_request(&problems, t, body, size - 1);
	if (n < 0 && n != CMV_EINVALID)
		fuzz_fail("the checker returned %d", n);
	cmv_buf_dispose(&problems);
	if (!registry && cmv_models_load(&registry, NULL) < 0)
		fuzz_fail("no model registry: %s", cmv_error_last()->message);
	if (!profiles[t]) {
		if (cmv_models_find(&profiles[t], registry, models[t]) < 0 ||
		    cmv_tok_load(&toks[t], profiles[t]->tokenizer, NULL) < 0)
			fuzz_fail("cannot load %s: %s", models[t], cmv_error_last()->message);
	}
	if (cmv_model_render_target(profiles[t]) != t)
		return 0; /* the model renders another API: counting this body for it says nothing */
	int rc = cmv_count_request(&st, profiles[t], toks[t], body, size - 1);
	if (rc < 0 && rc != CMV_EINVALID && rc != CMV_ENOMEM)
		fuzz_fail("counting a body returned %d", rc);
	if (rc == 0 && st.total < st.overhead)
		fuzz_fail("a count whose total is below its own overhead");
	return 0;
}
