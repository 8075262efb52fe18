/* SPDX-License-Identifier: MIT */
/*
 * The sendable request: the pager's body, the host's tools in the target's
 * shape, the recall tool, and the output limit.
 *
 * Invariants
 *  1. The tools count inside the budget: what their definitions count (in
 *     the model's tokens, with its margin) is held back from the budget the
 *     pager pages to, so body and tools together keep the promise.
 *  2. The body is the pager's bytes with members added at its end: the
 *     prefix a provider caches is the pager's, unchanged by the tools.
 *  3. Tools are stored per branch in one neutral shape (Anthropic's), and
 *     rendered for each target when a request is made.
 */
#include <math.h>
#include <stdio.h>
#include "host_priv.h"
#include "formats/formats_int.h"

#define TOOLS_NOTE "tools"
#define TOOLS_MAX ((size_t)4 << 20)

void cmv_request_options_init(cmv_request_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->version = CMV_REQUEST_OPTIONS_VERSION;
}

void cmv_request_report_dispose(cmv_request_report *rep)
{
	if (rep)
		cmv_materialize_report_dispose(&rep->pages);
}

/* One definition in the neutral shape, from Anthropic's or either of OpenAI's. */
static int tool_neutral(cJSON *arr, const cJSON *t, int i)
{
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
	const cJSON *src = cJSON_IsObject(fn) ? fn : t;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "name"));
	const char *desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(src, "description"));
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(src, "input_schema");
	cJSON *o;

	if (!schema)
		schema = cJSON_GetObjectItemCaseSensitive(src, "parameters");
	if (!cJSON_IsObject(t) || !name || !*name)
		return cmv_error__set(CMV_EINVALID, "tools[%d]: a tool definition needs a \"name\"", i);
	if (schema && !cJSON_IsObject(schema))
		return cmv_error__set(CMV_EINVALID, "tools[%d] (%s): its schema is not an object", i, name);
	if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "name", name) ||
	    (desc && !cJSON_AddStringToObject(o, "description", desc)) ||
	    !cJSON_AddItemToObject(o, "input_schema",
				   schema ? cJSON_Duplicate(schema, 1) : cJSON_Parse("{\"type\":\"object\",\"properties\":{}}"))) {
		cJSON_Delete(o);
		return cmv_error__oom();
	}
	/* MCP's annotations (readOnlyHint...) stay with the definition for the ledger; no request carries them */
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(t, "annotations");
	if (!cJSON_IsObject(ann))
		ann = cJSON_GetObjectItemCaseSensitive(src, "annotations");
	if (cJSON_IsObject(ann) && !cJSON_AddItemToObject(o, "annotations", cJSON_Duplicate(ann, 1))) {
		cJSON_Delete(o);
		return cmv_error__oom();
	}
	cJSON_AddItemToArray(arr, o);
	return 0;
}

int cmv_host__tools_neutral(cJSON **out, const char *json)
{
	cJSON *in = cJSON_Parse(json), *arr = cJSON_CreateArray();
	int error = 0, i = 0;

	*out = NULL;
	if (!arr) {
		cJSON_Delete(in);
		return cmv_error__oom();
	}
	if (!cJSON_IsArray(in)) {
		error = cmv_error__set(CMV_EINVALID, "tools: expected a JSON array of tool definitions");
		goto done;
	}
	for (const cJSON *t = in->child; t && !error; t = t->next, i++) {
		/* Gemini's shape: a list of declarations in one entry */
		const cJSON *decl = cJSON_GetObjectItemCaseSensitive(t, "functionDeclarations");
		for (const cJSON *d = cJSON_IsArray(decl) ? decl->child : NULL; d && !error; d = d->next)
			error = tool_neutral(arr, d, i);
		if (!decl)
			error = tool_neutral(arr, t, i);
	}
done:
	cJSON_Delete(in);
	if (error < 0)
		cJSON_Delete(arr);
	else
		*out = arr;
	return error;
}

int cmv_branch_tools_set(cmv_repo *repo, const char *branch, const char *tools)
{
	cJSON *n = NULL;
	char *text = NULL;
	int error;

	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	if (!tools)
		return cmv_branch_note_set(repo, branch, TOOLS_NOTE, NULL);
	if ((error = cmv_host__tools_neutral(&n, tools)) < 0)
		return error;
	if (!(text = cJSON_PrintUnformatted(n)))
		error = cmv_error__oom();
	else if (strlen(text) > TOOLS_MAX)
		error = cmv_error__set(CMV_ETOOBIG, "tools: definitions over %zu bytes", TOOLS_MAX);
	else
		error = cmv_branch_note_set(repo, branch, TOOLS_NOTE, text);
	cJSON_free(text);
	cJSON_Delete(n);
	return error;
}

/* The neutral tools rendered as `target` takes them. */
static cJSON *tools_for(const cJSON *neutral, cmv_render_target target)
{
	cJSON *out = cJSON_CreateArray(), *decls = NULL;

	if (!out)
		return NULL;
	if (target == CMV_RENDER_GEMINI) {
		cJSON *g = cJSON_CreateObject();
		cJSON_AddItemToArray(out, g);
		decls = cJSON_AddArrayToObject(g, "functionDeclarations");
	}
	for (const cJSON *t = neutral->child; t; t = t->next) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
		const cJSON *desc = cJSON_GetObjectItemCaseSensitive(t, "description");
		const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
		cJSON *o = cJSON_CreateObject(), *fn = o;
		if (!o) {
			cJSON_Delete(out);
			return NULL;
		}
		if (target == CMV_RENDER_OPENAI_CHAT || target == CMV_RENDER_OPENAI_RESPONSES)
			cJSON_AddStringToObject(o, "type", "function");
		if (target == CMV_RENDER_OPENAI_CHAT)
			fn = cJSON_AddObjectToObject(o, "function");
		cJSON_AddItemToObject(fn, "name", cJSON_Duplicate(name, 1));
		if (desc)
			cJSON_AddItemToObject(fn, "description", cJSON_Duplicate(desc, 1));
		cJSON_AddItemToObject(fn, target == CMV_RENDER_ANTHROPIC ? "input_schema" : "parameters",
				      cJSON_Duplicate(schema, 1));
		cJSON_AddItemToArray(decls ? decls : out, o);
	}
	return out;
}

/* The tools a request carries: the caller's or the branch's, and the recall tool on request. */
static int request_tools(cJSON **out, cmv_repo *repo, const char *branch, const cmv_request_options *o)
{
	cmv_buf note = CMV_BUF_INIT(TOOLS_MAX);
	const char *src = o->tools;
	int error = 0;

	*out = NULL;
	if (!src) {
		if ((error = cmv_branch_note_get(&note, repo, branch, TOOLS_NOTE)) == CMV_ENOTFOUND) {
			cmv_error_clear();
			error = 0;
		}
		src = note.size ? note.ptr : "[]";
	}
	if (!error)
		error = cmv_host__tools_neutral(out, src);
	if (!error && o->recall_tool) {
		cmv_buf schema = CMV_BUF_INIT(1 << 16);
		bool have = false;
		for (const cJSON *t = (*out)->child; t; t = t->next)
			have |= !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name")), "cmv_recall");
		if (!have && (error = cmv_recall_tool_schema(&schema, "anthropic")) == 0)
			cJSON_AddItemToArray(*out, cJSON_Parse(schema.ptr));
		cmv_buf_dispose(&schema);
	}
	cmv_buf_dispose(&note);
	if (error < 0) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return error;
}

/* Add `"name":value` at the end of the body's top-level object, or replace the member's value where it is. */
static int set_member(cmv_buf *body, const char *name, const char *value)
{
	jspan whole = { body->ptr, body->ptr + body->size }, v;
	char key[64];
	size_t end = body->size;
	cmv_buf tmp = CMV_BUF_INIT(body->max);
	int error = 0;

	snprintf(key, sizeof(key), "%s", name);
	whole.p = cmv_formats__jscan_ws(whole.p, whole.end);
	if (cmv_formats__jscan_member(&v, whole, key) == 1) {
		size_t at = (size_t)(v.p - body->ptr), len = (size_t)(v.end - v.p);
		if ((error = cmv_buf_put(&tmp, body->ptr, at)) == 0 && (error = cmv_buf_puts(&tmp, value)) == 0 &&
		    (error = cmv_buf_put(&tmp, body->ptr + at + len, body->size - at - len)) == 0)
			error = cmv_buf_set(body, tmp.ptr, tmp.size);
		cmv_buf_dispose(&tmp);
		return error;
	}
	while (end && body->ptr[end - 1] != '}')
		end--;
	if (!end)
		return cmv_error__set(CMV_EINVALID, "the request body is not a JSON object");
	end--;
	/* in place: the body (about 100 KB) is not copied for a member of a few bytes */
	if ((error = cmv_buf_put(&tmp, body->ptr + end, body->size - end)) == 0) {
		body->size = end;
		error = cmv_buf_printf(body, ",\"%s\":%s", name, value);
		/* the tail goes back either way (a failed printf leaves the buffer as it was) */
		if (cmv_buf_put(body, tmp.ptr, tmp.size) < 0 && !error)
			error = cmv_error__oom();
	}
	cmv_buf_dispose(&tmp);
	return error;
}

int cmv_request(cmv_buf *out, cmv_request_report *rep, cmv_repo *repo, const char *branch,
		const cmv_model_handle *model, const cmv_request_options *opts)
{
	cmv_request_options o;
	cmv_pager_options po = CMV_PAGER_OPTIONS_INIT;
	const cmv_model *m = cmv_model_handle_profile(model);
	cmv_request_report r;
	cmv_render_target target;
	cJSON *tools = NULL, *rendered = NULL;
	char *ttext = NULL, num[64];
	cmv_id tip;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(branch);
	CMV_ASSERT_ARG(model);
	memset(&r, 0, sizeof(r));
	r.pages.version = CMV_MATERIALIZE_REPORT_VERSION;
	if (rep) {
		/* a report used before: its pages go first (the members every version has) */
		cmv_materialize_report_dispose(&rep->pages);
	}
	if (opts)
		o = *opts;
	else
		cmv_request_options_init(&o);
	/* a caller built against an older version of the pager options has a shorter struct */
	if (o.pager)
		memcpy(&po, o.pager, CMV_PAGER_OPTIONS_SIZE(o.pager->version));
	/* the rest is the defaults, and what is set below (live_key, live_beside) must reach the pager */
	po.version = CMV_PAGER_OPTIONS_VERSION;
	po.state_branch = branch;
	target = po.target ? (cmv_render_target)po.target : cmv_model_render_target(m);
	if ((error = cmv_resolve(&tip, repo, branch)) < 0 || (error = request_tools(&tools, repo, branch, &o)) < 0)
		goto done;
	r.max_tokens = o.max_tokens ? o.max_tokens : cmv_model_handle_max_tokens(model);
	if (cJSON_GetArraySize(tools) && m->tools) {
		size_t n = 0;
		if (!(rendered = tools_for(tools, target)) || !(ttext = cJSON_PrintUnformatted(rendered))) {
			error = cmv_error__oom();
			goto done;
		}
		if ((error = cmv_model_count(&n, NULL, m, cmv_model_handle_tok(model), ttext, strlen(ttext))) < 0)
			goto done;
		r.n_tools = (size_t)cJSON_GetArraySize(tools);
		r.tools_tokens = n;
		/* the tools are billed with the messages: what they count (with the model's margin) leaves the messages' budget */
		uint64_t base = po.budget ? po.budget
			: m->context_window > m->max_output ? m->context_window - m->max_output : 0;
		uint64_t held = (uint64_t)ceil((double)n * (1 + m->margin));
		if (held >= base) {
			error = cmv_error__set(CMV_EBUDGET, "the tool definitions alone (%zu tokens) fill %s's budget of %llu",
					       n, m->id, (unsigned long long)base);
			goto done;
		}
		po.budget = base - held;
	}
	/*
	 * Anchored on the last reply's bill (cmv_reply_append books it) while
	 * the tools and the target are those it was sent with: their digest is
	 * the key, their count what the bill holds beside the messages.
	 */
	char key[CMV_ID_HEXSZ + 8];
	cmv_id kid;
	cmv_buf kb = CMV_BUF_INIT(TOOLS_MAX + 64);
	if ((error = cmv_buf_printf(&kb, "%s\n%s", cmv_render_target_name(target), ttext ? ttext : "")) < 0)
		goto done;
	cmv_id_hash(&kid, kb.ptr, kb.size);
	cmv_buf_dispose(&kb);
	snprintf(key, sizeof(key), "h:");
	cmv_id_tostr(key + 2, sizeof(key) - 2, &kid);
	if (!po.live_key)
		po.live_key = key;
	/* this request's tools, as cmv_pager_sent records them: not the last request's, when they changed */
	po.live_beside = r.tools_tokens;
	if ((error = cmv_materialize_for(out, &r.pages, repo, &tip, model, &po)) < 0 ||
	    (error = cmv_pager_sent(repo, branch, m, (int)target, &tip, &r.pages, po.live_key, r.tools_tokens)) < 0)
		goto done;
	if (ttext)
		error = set_member(out, "tools", ttext);
	snprintf(num, sizeof(num), "%u", r.max_tokens);
	if (!error) {
		switch (target) {
		case CMV_RENDER_ANTHROPIC:
			error = set_member(out, "max_tokens", num);
			break;
		case CMV_RENDER_OPENAI_CHAT:
			error = set_member(out, "max_completion_tokens", num);
			break;
		case CMV_RENDER_OPENAI_RESPONSES:
			error = set_member(out, "max_output_tokens", num);
			break;
		case CMV_RENDER_GEMINI: {
			char cfg[96];
			snprintf(cfg, sizeof(cfg), "{\"maxOutputTokens\":%u}", r.max_tokens);
			error = set_member(out, "generationConfig", cfg);
			break;
		}
		}
	}
	if (!error && o.stream && target != CMV_RENDER_GEMINI)
		error = set_member(out, "stream", "true");
	if (!error && o.stream && target == CMV_RENDER_OPENAI_CHAT)
		error = set_member(out, "stream_options", "{\"include_usage\":true}");
done:
	if (error == 0 && rep) {
		/* a caller built against version 1 has the shorter pages report (cmv_materialize_report version 1) */
		unsigned int v = rep->version >= 2 ? CMV_REQUEST_REPORT_VERSION : 1;
		r.version = v;
		r.pages.version = v >= 2 ? CMV_MATERIALIZE_REPORT_VERSION : 1;
		memcpy(rep, &r, offsetof(cmv_request_report, pages) + CMV_MATERIALIZE_REPORT_SIZE(r.pages.version));
	} else {
		cmv_materialize_report_dispose(&r.pages);
	}
	cJSON_free(ttext);
	cJSON_Delete(rendered);
	cJSON_Delete(tools);
	return error;
}

int cmv_recall_tool_call(cmv_buf *out, cmv_repo *repo, const char *branch, const char *input, size_t len)
{
	CMV_ASSERT_ARG(branch);
	/*
	 * No fault: the answer is in the conversation now, as the tool's result
	 * (a body the pager pages like any other); pinning the original too
	 * would send the same content twice while the pin lasts. A host that
	 * wants the page back in place calls cmv_pager_fault itself.
	 */
	return cmv_recall_tool_answer(out, repo, input, len);
}
