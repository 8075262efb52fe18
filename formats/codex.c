/* SPDX-License-Identifier: MIT */
/*
 * Codex CLI rollout JSONL, and the OpenAI Responses input items it is made
 * of (also imported on their own as an "openai-responses" request body).
 *
 * Each line is {timestamp, type, payload}. response_item lines are the
 * model's history and become messages; session_meta carries the base
 * instructions (a system message); a compacted line replaces the history
 * before it with its replacement_history (a summary node, read as a
 * reset when rendered); turn_context and event_msg lines (which repeat the
 * response items for the UI) are events.
 */
#include <time.h>
#include "neutral.h"

static const char *custom_media = "text/plain";

/* The text parts of a message's content array (input_text, output_text, ...). */
static int cut_text_parts(record_build *rb, jspan content, const cJSON *jc)
{
	const char *cur = NULL;
	const cJSON *cel = jc ? jc->child : NULL;
	jspan el;
	int error = 0;

	if (*content.p == '"')
		return cmv_formats__record_add_block(rb, content, "text", NULL, NULL, NULL, 0);
	if (*content.p != '[')
		return 0;
	while (!error && cel && cmv_formats__jscan_next_element(&el, content, &cur) == 1) {
		const char *t = cmv_formats__cj_str(cel, "type");
		if (*el.p == '{' && cmv_formats__cj_str(cel, "text"))
			error = cmv_formats__record_add_string(rb, el, "text", "text", NULL, NULL);
		else if (*el.p == '{' && t && !strcmp(t, "input_image"))
			error = cmv_formats__record_add_block(rb, el, "input_image", NULL, NULL, "application/vnd.cmv.block+json", 0);
		cel = cel->next;
	}
	return error;
}

/*
 * The call an output item answers: its call_id, or for a local shell's
 * output the API's shape, which names the call by "id" (as the proxy's
 * reader pairs it, host/reply.c). NULL when the item is no output.
 */
static const char *codex_output_call_id(const cJSON *j, const char *type)
{
	size_t n = strlen(type);

	if (n <= 7 || strcmp(type + n - 7, "_output"))
		return NULL;
	if (cmv_formats__cj_str(j, "call_id"))
		return cmv_formats__cj_str(j, "call_id");
	return !strcmp(type, "local_shell_call_output") ? cmv_formats__cj_str(j, "id") : NULL;
}

int cmv_formats__cut_responses_item(record_build *rb, jspan item, const cJSON *j, cmv_role *role, cmv_kind *kind)
{
	const char *type = cmv_formats__cj_str(j, "type"), *r = cmv_formats__cj_str(j, "role");
	jspan v;

	*kind = CMV_KIND_MESSAGE;
	if (!type && r)
		type = "message"; /* an EasyInputMessage: {role, content} */
	if (!type) {
		*kind = CMV_KIND_EVENT;
		return 0;
	}
	if (!strcmp(type, "message")) {
		*role = !r ? CMV_ROLE_USER : !strcmp(r, "assistant") ? CMV_ROLE_ASSISTANT
			: !strcmp(r, "user") ? CMV_ROLE_USER : CMV_ROLE_SYSTEM;
		if (cmv_formats__jscan_member(&v, item, "content") == 1)
			return cut_text_parts(rb, v, cmv_formats__cj_get(j, "content"));
		return 0;
	}
	if (!strcmp(type, "reasoning")) {
		*role = CMV_ROLE_ASSISTANT;
		const char *cur = NULL;
		const cJSON *cel = cmv_formats__cj_get(j, "summary") ? cmv_formats__cj_get(j, "summary")->child : NULL;
		jspan el;
		int error = 0;
		if (cmv_formats__jscan_member(&v, item, "summary") == 1 && *v.p == '[')
			while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
				error = cmv_formats__record_add_string(rb, el, "text", "thinking", NULL, NULL);
				cel = cel->next;
			}
		return error;
	}
	if (!strcmp(type, "function_call")) {
		*role = CMV_ROLE_ASSISTANT;
		return cmv_formats__record_add_raw(rb, item, "arguments", "tool_use", cmv_formats__cj_str(j, "call_id"), cmv_formats__cj_str(j, "name"), NULL);
	}
	if (!strcmp(type, "custom_tool_call")) {
		*role = CMV_ROLE_ASSISTANT;
		if (cmv_formats__jscan_member(&v, item, "input") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_use", cmv_formats__cj_str(j, "call_id"), cmv_formats__cj_str(j, "name"),
						*v.p == '"' ? custom_media : "application/json", 0);
		return 0;
	}
	if (!strcmp(type, "local_shell_call")) {
		*role = CMV_ROLE_ASSISTANT;
		return cmv_formats__record_add_raw(rb, item, "action", "tool_use", cmv_formats__cj_str(j, "call_id"), "local_shell", NULL);
	}
	/*
	 * Codex's tool search (deferred tools, such as its apps' MCP connectors):
	 * the request carries both items whole, and the output's tool definitions
	 * are billed as input from the next call on. A call and a result, so they
	 * are counted and paged; the definitions stay an array in the template,
	 * which a trim leaves whole (later calls may use the tools they define).
	 */
	if (!strcmp(type, "tool_search_call")) {
		*role = CMV_ROLE_ASSISTANT;
		if (cmv_formats__jscan_member(&v, item, "arguments") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_use", cmv_formats__cj_str(j, "call_id"), "tool_search",
						*v.p == '"' ? custom_media : "application/json", 0);
		return 0;
	}
	if (!strcmp(type, "tool_search_output")) {
		*role = CMV_ROLE_TOOL;
		if (cmv_formats__jscan_member(&v, item, "tools") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_result", cmv_formats__cj_str(j, "call_id"), NULL,
						"application/json", 0);
		return 0;
	}
	/*
	 * A web search the provider ran itself: no output item follows (what
	 * it found stays with the provider). Its action is a server_tool_use
	 * (as Anthropic's own web search is): counted as sent, yet no client
	 * call, which the ledger would hold in flight for want of a result.
	 * Sent whole to the Responses API only, as the proxy's reader keeps it
	 * (host/reply.c).
	 */
	if (!strcmp(type, "web_search_call")) {
		*role = CMV_ROLE_ASSISTANT;
		if (cmv_formats__jscan_member(&v, item, "action") == 1)
			return cmv_formats__record_add_block(rb, v, "server_tool_use", cmv_formats__cj_str(j, "id"), "web_search",
						"application/json", 0);
		return 0;
	}
	const char *call_id = codex_output_call_id(j, type);
	if (call_id) {
		*role = CMV_ROLE_TOOL;
		if (cmv_formats__jscan_member(&v, item, "output") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_result", call_id, NULL,
						*v.p == '"' ? NULL : "application/vnd.cmv.openai-content+json", 0);
		return 0;
	}
	/* image_generation_call, computer_call, ...: kept, not rendered (host/reply.c carries none of them) */
	*role = CMV_ROLE_ASSISTANT;
	*kind = CMV_KIND_EVENT;
	return 0;
}

static int codex_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			cmv_kind *kind)
{
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *payload = cmv_formats__cj_get(j, "payload");
	jspan p, v;

	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (!type || !cJSON_IsObject(payload) || cmv_formats__jscan_member(&p, rec, "payload") != 1)
		return 0;
	if (!strcmp(type, "session_meta")) {
		cmv_formats__session_import_id(si, cmv_formats__cj_str(payload, "id"));
		if (cmv_formats__jscan_member(&v, p, "base_instructions") == 1 && *v.p == '{') {
			*kind = CMV_KIND_MESSAGE;
			return cmv_formats__record_add_string(rb, v, "text", "text", NULL, NULL);
		}
		return 0;
	}
	if (!strcmp(type, "response_item"))
		return cmv_formats__cut_responses_item(rb, p, payload, role, kind);
	if (!strcmp(type, "compacted")) {
		const cJSON *hist = cmv_formats__cj_get(payload, "replacement_history"), *cel = hist ? hist->child : NULL;
		const char *cur = NULL;
		jspan el;
		int error = cmv_formats__record_add_string(rb, p, "message", "text", NULL, NULL);
		*kind = CMV_KIND_SUMMARY;
		if (!error && cmv_formats__jscan_member(&v, p, "replacement_history") == 1 && *v.p == '[')
			while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
				cmv_role r;
				cmv_kind k;
				if (*el.p == '{')
					error = cmv_formats__cut_responses_item(rb, el, cel, &r, &k);
				cel = cel->next;
			}
		return error;
	}
	return 0;
}

const session_driver cmv__driver_codex = { "codex", "codex", NULL, codex_record };

static int responses_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			    cmv_kind *kind)
{
	(void)si;
	return cmv_formats__cut_responses_item(rb, rec, j, role, kind);
}

const session_driver cmv__driver_openai_responses = { "openai-responses", "responses", "input",
						      responses_record };

/* ---- reading back ---------------------------------------------------------- */

static void text_parts_neutral(conv *c, cJSON *content, const cJSON *parts)
{
	if (cJSON_IsString(parts)) {
		cmv_formats__nb_text(c, content, parts->valuestring);
		return;
	}
	for (const cJSON *p = parts ? parts->child : NULL; p; p = p->next) {
		const char *t = cmv_formats__cj_str(p, "type");
		if (cmv_formats__cj_str(p, "text"))
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(p, "text"));
		else if (cmv_formats__cj_str(p, "refusal"))
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(p, "refusal"));
		else if (t && !strcmp(t, "input_image") && cmv_formats__cj_str(p, "image_url")) {
			const char *url = cmv_formats__cj_str(p, "image_url"), *comma = strchr(url, ',');
			if (!strncmp(url, "data:", 5) && comma && strstr(url, ";base64,")) {
				char mt[128];
				size_t n = (size_t)(strchr(url, ';') - url - 5);
				snprintf(mt, sizeof(mt), "%.*s", (int)(n < sizeof(mt) ? n : sizeof(mt) - 1), url + 5);
				cmv_formats__nb_image_b64(c, content, mt, comma + 1);
			}
		}
	}
}

int cmv_formats__responses_item_neutral(conv *c, const cJSON *item)
{
	const char *type = cmv_formats__cj_str(item, "type"), *role = cmv_formats__cj_str(item, "role");

	if (!type && role)
		type = "message";
	if (!type)
		return 0;
	if (!strcmp(type, "message")) {
		if (role && (!strcmp(role, "system") || !strcmp(role, "developer"))) {
			/*
			 * Codex sends its developer messages (permissions, collaboration
			 * mode, AGENTS.md) in the input where they were, a new one at a
			 * turn's start (data/client-requests/codex.json): the Responses
			 * API gets them there, whole, so a request still begins with
			 * the one billed before (the anchor); the pager keeps them.
			 * Other providers have them as system prompts.
			 */
			cmv_formats__nb_instruction(c, NULL, item);
			return 0;
		}
		bool asst = role && !strcmp(role, "assistant");
		text_parts_neutral(c, cmv_formats__conv_msg_join(c, asst ? "assistant" : "user", NULL), cmv_formats__cj_get(item, "content"));
	} else if (!strcmp(type, "reasoning")) {
		cmv_formats__nb_reasoning(c, cmv_formats__conv_msg_join(c, "assistant", NULL), item);
	} else if (!strcmp(type, "function_call")) {
		cmv_formats__nb_tool_use(c, cmv_formats__conv_msg_join(c, "assistant", NULL), cmv_formats__cj_str(item, "call_id"), cmv_formats__cj_str(item, "name"),
			    NULL, cmv_formats__cj_str(item, "arguments") ? cmv_formats__cj_str(item, "arguments") : "{}", false);
	} else if (!strcmp(type, "custom_tool_call")) {
		cJSON *content = cmv_formats__conv_msg_join(c, "assistant", NULL);
		const char *in = cmv_formats__cj_str(item, "input");
		cJSON *wrap = cJSON_CreateObject();
		if (!wrap || !cJSON_AddStringToObject(wrap, "input", in ? in : ""))
			c->oom = true;
		cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(item, "call_id"), cmv_formats__cj_str(item, "name"), wrap, NULL, true);
		cJSON_Delete(wrap);
	} else if (!strcmp(type, "local_shell_call")) {
		cmv_formats__nb_tool_use(c, cmv_formats__conv_msg_join(c, "assistant", NULL), cmv_formats__cj_str(item, "call_id"), "local_shell",
			    cmv_formats__cj_get(item, "action"), NULL, false);
	} else if (!strcmp(type, "tool_search_call")) {
		/* sent as Codex sends it, to the Responses API only (repair drops it elsewhere) */
		cmv_formats__nb_openai_item(c, cmv_formats__conv_msg_join(c, "assistant", NULL), item);
	} else if (!strcmp(type, "tool_search_output")) {
		cmv_formats__nb_openai_item(c, cmv_formats__conv_msg_join(c, "user", NULL), item);
	} else if (!strcmp(type, "web_search_call")) {
		/* the provider's own search: sent whole to the Responses API, as the proxy sends it (host/reply.c) */
		cmv_formats__nb_openai_item(c, cmv_formats__conv_msg_join(c, "assistant", NULL), item);
	} else if (codex_output_call_id(item, type)) {
		const char *call_id = codex_output_call_id(item, type);
		const cJSON *out = cmv_formats__cj_get(item, "output");
		cJSON *content = cmv_formats__conv_msg_join(c, "user", NULL);
		if (cJSON_IsString(out)) {
			cmv_formats__nb_tool_result(c, content, call_id, out, NULL, false);
		} else {
			/* content items: their text, in order */
			cJSON *blocks = cJSON_CreateArray();
			if (!blocks)
				c->oom = true;
			for (const cJSON *p = out ? out->child : NULL; p && blocks; p = p->next)
				if (cmv_formats__cj_str(p, "text"))
					cmv_formats__nb_text(c, blocks, cmv_formats__cj_str(p, "text"));
			cmv_formats__nb_tool_result(c, content, call_id, blocks, NULL, false);
			cJSON_Delete(blocks);
		}
	}
	return 0;
}

int cmv__codex_neutral(conv *c, const cJSON *rec)
{
	const char *type = cmv_formats__cj_str(rec, "type");
	const cJSON *payload = cmv_formats__cj_get(rec, "payload");

	if (!type || !cJSON_IsObject(payload))
		return 0;
	if (!strcmp(type, "session_meta")) {
		const cJSON *bi = cmv_formats__cj_get(payload, "base_instructions");
		if (cmv_formats__cj_str(bi, "text"))
			cmv_formats__conv_system(c, cmv_formats__cj_str(bi, "text"));
	} else if (!strcmp(type, "response_item")) {
		return cmv_formats__responses_item_neutral(c, payload);
	} else if (!strcmp(type, "compacted")) {
		/* what Codex resumes with: the replacement history, or the summary as a message */
		const cJSON *hist = cmv_formats__cj_get(payload, "replacement_history");
		const char *msg = cmv_formats__cj_str(payload, "message");
		cmv_formats__conv_reset(c);
		if (msg && *msg)
			cmv_formats__nb_text(c, cmv_formats__conv_msg(c, "user", NULL), msg);
		for (const cJSON *it = hist ? hist->child : NULL; it; it = it->next)
			if (cJSON_IsObject(it)) {
				/*
				 * developer items: in place for the Responses API (Codex
				 * sends them so); elsewhere they repeat the system prompts
				 * already kept
				 */
				const char *r = cmv_formats__cj_str(it, "role");
				if (r && (!strcmp(r, "developer") || !strcmp(r, "system")) && !c->developer_in_place)
					continue;
				cmv_formats__responses_item_neutral(c, it);
			}
	}
	return 0;
}

int cmv__openai_responses_neutral(conv *c, const cJSON *rec)
{
	return cmv_formats__responses_item_neutral(c, rec);
}

/* ---- writing a branch as a new Codex rollout --------------------------------- */

/* Copy a record with every occurrence of `old` (the old session id) as `new_id`. */
static int put_replaced(cmv_buf *out, const char *rec, size_t len, const char *old, const char *new_id)
{
	size_t k = strlen(old);
	const char *p = rec, *end = rec + len;
	int error;

	if (!k)
		return cmv_buf_put(out, rec, len);
	for (const char *q = p; q + k <= end;) {
		if (*q == *old && !memcmp(q, old, k)) {
			if ((error = cmv_buf_put(out, p, (size_t)(q - p))) < 0 || (error = cmv_buf_puts(out, new_id)) < 0)
				return error;
			p = q = q + k;
		} else {
			q++;
		}
	}
	return cmv_buf_put(out, p, (size_t)(end - p));
}

typedef struct {
	const char *new_id;
	char old_id[128];
	cmv_buf *cwd_out;
} codex_rewrite;

static int codex_rewrite_record(cmv_buf *out, const char *rec, size_t len, void *payload)
{
	codex_rewrite *r = payload;
	cJSON *j = cJSON_ParseWithLength(rec, len);
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *p = cmv_formats__cj_get(j, "payload");
	bool meta = type && !strcmp(type, "session_meta");
	int error;

	if (meta && !r->old_id[0] && cmv_formats__cj_str(p, "id"))
		snprintf(r->old_id, sizeof(r->old_id), "%s", cmv_formats__cj_str(p, "id"));
	if (meta && r->cwd_out && !r->cwd_out->size && cmv_formats__cj_str(p, "cwd"))
		cmv_buf_puts(r->cwd_out, cmv_formats__cj_str(p, "cwd"));
	cJSON_Delete(j);
	/* the session's id is named in its session_meta line */
	error = meta ? put_replaced(out, rec, len, r->old_id, r->new_id) : cmv_buf_put(out, rec, len);
	return error;
}

/* A message appended in cmv: a response item of its own. */
static int codex_rewrite_message(cmv_buf *out, cmv_repo *repo, const cmv_node *n, void *payload)
{
	cmv_buf blob = CMV_BUF_INIT(CMV_BUF_CONTENT);
	bool asst = n->role == CMV_ROLE_ASSISTANT;
	cJSON *o = cJSON_CreateObject(), *p, *content = NULL;
	char *text = NULL, when[32];
	time_t now = time(NULL);
	struct tm tm;
	int error = 0;

	(void)payload;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	if (!o || !cJSON_AddStringToObject(o, "timestamp", when) || !cJSON_AddStringToObject(o, "type", "response_item") ||
	    !(p = cJSON_AddObjectToObject(o, "payload")) || !cJSON_AddStringToObject(p, "type", "message") ||
	    !cJSON_AddStringToObject(p, "role", asst ? "assistant" : "user") ||
	    !(content = cJSON_AddArrayToObject(p, "content")))
		error = cmv_error__oom();
	for (size_t i = 0; !error && i < n->n_blocks; i++) {
		cJSON *part;
		if (strcmp(n->blocks[i].type, "text"))
			continue;
		if ((error = cmv_blob_read(&blob, repo, &n->blocks[i].blob)) < 0)
			break;
		if (!(part = cJSON_CreateObject()) || !cJSON_AddItemToArray(content, part) ||
		    !cJSON_AddStringToObject(part, "type", asst ? "output_text" : "input_text") ||
		    !cJSON_AddStringToObject(part, "text", blob.ptr))
			error = cmv_error__oom();
	}
	if (!error && !(text = cJSON_PrintUnformatted(o)))
		error = cmv_error__oom();
	if (!error)
		error = cmv_buf_puts(out, text);
	cJSON_free(text);
	cJSON_Delete(o);
	cmv_buf_dispose(&blob);
	return error;
}

int cmv_codex_session_write(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo, const cmv_id *tip)
{
	static const session_rewriter w = { "codex", "Codex", codex_rewrite_record, codex_rewrite_message };
	codex_rewrite r = { new_id, "", cwd_out };
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	if ((error = cmv__uuid_v4(new_id)) < 0)
		return error;
	return cmv_formats__session_rewrite(out, repo, tip, &w, &r);
}
