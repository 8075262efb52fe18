/* SPDX-License-Identifier: MIT */
/*
 * Agent logs other than Claude Code and Codex: GitHub Copilot CLI event
 * logs (JSONL), Gemini CLI session files, SWE-agent trajectories and
 * OpenHands event streams (JSON documents; each element of the record
 * array is a record, and what surrounds the array is a header and a
 * trailer record). See docs/formats.md for what each record becomes.
 */
#include "neutral.h"

/* ---- GitHub Copilot CLI ------------------------------------------------------ */

static int copilot_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			  cmv_kind *kind)
{
	const char *type = cj_str(j, "type");
	const cJSON *data = cj_get(j, "data");
	jspan d, v;
	int error = 0;

	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (!type || !cJSON_IsObject(data) || jscan_member(&d, rec, "data") != 1)
		return 0;
	if (!strcmp(type, "session.start"))
		session_import_id(si, cj_str(data, "sessionId"));
	if (!strcmp(type, "user.message") || !strcmp(type, "system.message")) {
		*role = type[0] == 'u' ? CMV_ROLE_USER : CMV_ROLE_SYSTEM;
		*kind = CMV_KIND_MESSAGE;
		return record_add_string(rb, d, "content", "text", NULL, NULL);
	}
	if (!strcmp(type, "assistant.message")) {
		const cJSON *reqs = cj_get(data, "toolRequests"), *cel = reqs ? reqs->child : NULL;
		const char *cur = NULL;
		jspan el;
		*role = CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		if ((error = record_add_string(rb, d, "reasoningText", "thinking", NULL, NULL)) < 0 ||
		    (error = record_add_string(rb, d, "content", "text", NULL, NULL)) < 0)
			return error;
		if (jscan_member(&v, d, "toolRequests") == 1 && *v.p == '[')
			while (!error && cel && jscan_next_element(&el, v, &cur) == 1) {
				if (*el.p == '{')
					error = record_add_raw(rb, el, "arguments", "tool_use", cj_str(cel, "toolCallId"),
							       cj_str(cel, "name"), NULL);
				cel = cel->next;
			}
		return error;
	}
	if (!strcmp(type, "tool.execution_complete")) {
		const cJSON *ok = cj_get(data, "success");
		*role = CMV_ROLE_TOOL;
		*kind = CMV_KIND_MESSAGE;
		if (jscan_member(&v, d, "result") == 1 && *v.p == '{' && jscan_member(&v, v, "content") == 1)
			return record_add_block(rb, v, "tool_result", cj_str(data, "toolCallId"), NULL,
						*v.p == '"' ? NULL : "application/json",
						cJSON_IsFalse(ok) ? CMV_BLOCK_ERROR : 0);
		if (jscan_member(&v, d, "error") == 1)
			return record_add_block(rb, v, "tool_result", cj_str(data, "toolCallId"), NULL,
						*v.p == '"' ? NULL : "application/json", CMV_BLOCK_ERROR);
	}
	return 0;
}

const session_driver cmv__driver_copilot = { "copilot-cli", "copilot", NULL, copilot_record };

int cmv__copilot_neutral(conv *c, const cJSON *rec)
{
	const char *type = cj_str(rec, "type");
	const cJSON *data = cj_get(rec, "data");

	if (!type || !cJSON_IsObject(data))
		return 0;
	if (!strcmp(type, "system.message") && cj_str(data, "content")) {
		conv_system(c, cj_str(data, "content"));
	} else if (!strcmp(type, "user.message") && cj_str(data, "content")) {
		nb_text(c, conv_msg(c, "user", NULL), cj_str(data, "content"));
	} else if (!strcmp(type, "assistant.message")) {
		cJSON *content = conv_msg_join(c, "assistant", NULL);
		const cJSON *reqs = cj_get(data, "toolRequests");
		if (cj_str(data, "content"))
			nb_text(c, content, cj_str(data, "content"));
		for (const cJSON *r = reqs ? reqs->child : NULL; r; r = r->next)
			nb_tool_use(c, content, cj_str(r, "toolCallId"), cj_str(r, "name"), cj_get(r, "arguments"),
				    cj_str(r, "arguments") ? cj_str(r, "arguments") : "{}", false);
	} else if (!strcmp(type, "tool.execution_complete")) {
		const cJSON *res = cj_get(data, "result"), *out = cj_get(res, "content");
		const cJSON *err = cj_get(data, "error");
		bool failed = cJSON_IsFalse(cj_get(data, "success"));
		cJSON *content = conv_msg_join(c, "user", NULL);
		if (cJSON_IsString(out))
			nb_tool_result(c, content, cj_str(data, "toolCallId"), out, NULL, failed);
		else if (cj_str(err, "message"))
			nb_tool_result(c, content, cj_str(data, "toolCallId"), NULL, cj_str(err, "message"), true);
		else
			nb_tool_result(c, content, cj_str(data, "toolCallId"), NULL, failed ? "(failed)" : "(done)", failed);
	}
	return 0;
}

/* ---- Gemini CLI -------------------------------------------------------------- */

static int gemini_cli_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			     cmv_kind *kind)
{
	const char *type = cj_str(j, "type");
	jspan v;
	int error = 0;

	(void)si;
	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (!type || (strcmp(type, "user") && strcmp(type, "gemini")))
		return 0; /* info, error, warning: shown to the user, never sent */
	*kind = CMV_KIND_MESSAGE;
	*role = type[0] == 'u' ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
	if (jscan_member(&v, rec, "content") == 1) {
		if (*v.p == '"') {
			error = record_add_block(rb, v, "text", NULL, NULL, NULL, 0);
		} else if (*v.p == '[') { /* newer files: an array of parts */
			const char *cur = NULL;
			jspan el;
			while (!error && jscan_next_element(&el, v, &cur) == 1)
				error = record_add_string(rb, el, "text", "text", NULL, NULL);
		}
	}
	const cJSON *calls = cj_get(j, "toolCalls"), *cel = calls ? calls->child : NULL;
	const char *cur = NULL;
	jspan el;
	if (!error && jscan_member(&v, rec, "toolCalls") == 1 && *v.p == '[')
		while (!error && cel && jscan_next_element(&el, v, &cur) == 1) {
			jspan res, rel, fr;
			if (*el.p != '{') {
				cel = cel->next;
				continue;
			}
			error = record_add_raw(rb, el, "args", "tool_use", cj_str(cel, "id"), cj_str(cel, "name"), NULL);
			const char *rcur = NULL;
			if (!error && jscan_member(&res, el, "result") == 1 && *res.p == '[')
				while (!error && jscan_next_element(&rel, res, &rcur) == 1)
					if (*rel.p == '{' && jscan_member(&fr, rel, "functionResponse") == 1 && *fr.p == '{')
						error = record_add_raw(rb, fr, "response", "tool_result", cj_str(cel, "id"),
								       NULL, NULL);
			cel = cel->next;
		}
	return error;
}

const session_driver cmv__driver_gemini_cli = { "gemini-cli", "gemini-cli", "messages", gemini_cli_record };

/* A function response's output as text: {"output": s} is s, anything else its JSON. */
static void response_result(conv *c, cJSON *content, const char *id, const cJSON *resp, bool is_error)
{
	const cJSON *out = cj_get(resp, "output");
	const cJSON *err = cj_get(resp, "error");
	if (cJSON_IsString(out) && cJSON_GetArraySize(resp) == 1) {
		nb_tool_result(c, content, id, out, NULL, is_error);
	} else if (cJSON_IsString(err)) {
		nb_tool_result(c, content, id, err, NULL, true);
	} else {
		char *s = resp ? cJSON_PrintUnformatted(resp) : NULL;
		if (resp && !s)
			c->oom = true;
		nb_tool_result(c, content, id, NULL, s ? s : "", is_error);
		cJSON_free(s);
	}
}

int cmv__gemini_cli_neutral(conv *c, const cJSON *rec)
{
	const char *type = cj_str(rec, "type");
	const cJSON *body = cj_get(rec, "content"), *calls = cj_get(rec, "toolCalls");
	cJSON *content;

	if (!type || (strcmp(type, "user") && strcmp(type, "gemini")))
		return 0;
	content = conv_msg_join(c, type[0] == 'u' ? "user" : "assistant", NULL);
	if (cJSON_IsString(body))
		nb_text(c, content, body->valuestring);
	for (const cJSON *p = cJSON_IsArray(body) ? body->child : NULL; p; p = p->next)
		if (cj_str(p, "text"))
			nb_text(c, content, cj_str(p, "text"));
	if (!cJSON_GetArraySize(calls))
		return 0;
	for (const cJSON *tc = calls->child; tc; tc = tc->next)
		nb_tool_use(c, content, cj_str(tc, "id"), cj_str(tc, "name"), cj_get(tc, "args"), "{}", false);
	/* the results live in the same object: they answer in the next (user) message */
	cJSON *results = conv_msg(c, "user", NULL);
	for (const cJSON *tc = calls->child; tc; tc = tc->next) {
		const cJSON *res = cj_get(tc, "result"), *fr = NULL;
		for (const cJSON *r = res ? res->child : NULL; r && !fr; r = r->next)
			fr = cj_get(r, "functionResponse");
		const char *status = cj_str(tc, "status");
		bool failed = status && (!strcmp(status, "error") || !strcmp(status, "cancelled"));
		if (fr)
			response_result(c, results, cj_str(tc, "id"), cj_get(fr, "response"), failed);
		else
			nb_tool_result(c, results, cj_str(tc, "id"), NULL, status ? status : "(no result)", failed);
	}
	return 0;
}

/* ---- SWE-agent --------------------------------------------------------------- */

static int swe_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
		      cmv_kind *kind)
{
	(void)si;
	return cut_chat_message(rb, rec, j, role, kind);
}

const session_driver cmv__driver_swe_agent = { "swe-agent", "swe-agent", "history", swe_record };

int cmv__swe_agent_neutral(conv *c, const cJSON *rec)
{
	return chat_message_neutral(c, rec);
}

/* ---- OpenHands --------------------------------------------------------------- */

static int openhands_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			    cmv_kind *kind)
{
	const char *source = cj_str(j, "source"), *action = cj_str(j, "action");
	const cJSON *tcm = cj_get(j, "tool_call_metadata");
	jspan args;

	(void)si;
	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (action && !strcmp(action, "message") && source && jscan_member(&args, rec, "args") == 1) {
		*role = !strcmp(source, "user") ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		return record_add_string(rb, args, "content", "text", NULL, NULL);
	}
	if (!cJSON_IsObject(tcm))
		return 0;
	if (action) {
		*role = CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		return record_add_raw(rb, rec, "args", "tool_use", cj_str(tcm, "tool_call_id"), cj_str(tcm, "function_name"),
				      NULL);
	}
	if (cj_str(j, "observation")) {
		*role = CMV_ROLE_TOOL;
		*kind = CMV_KIND_MESSAGE;
		return record_add_string(rb, rec, "content", "tool_result", cj_str(tcm, "tool_call_id"), NULL);
	}
	return 0;
}

const session_driver cmv__driver_openhands = { "openhands", "openhands", "", openhands_record };

int cmv__openhands_neutral(conv *c, const cJSON *rec)
{
	const char *source = cj_str(rec, "source"), *action = cj_str(rec, "action");
	const cJSON *tcm = cj_get(rec, "tool_call_metadata"), *args = cj_get(rec, "args");

	if (action && !strcmp(action, "message") && source && cj_str(args, "content")) {
		nb_text(c, conv_msg_join(c, !strcmp(source, "user") ? "user" : "assistant", NULL), cj_str(args, "content"));
	} else if (cJSON_IsObject(tcm) && action) {
		cJSON *content = conv_msg_join(c, "assistant", NULL);
		const char *thought = cj_str(args, "thought");
		if (thought && *thought)
			nb_text(c, content, thought);
		nb_tool_use(c, content, cj_str(tcm, "tool_call_id"), cj_str(tcm, "function_name"), args, "{}", false);
	} else if (cJSON_IsObject(tcm) && cj_str(rec, "observation")) {
		nb_tool_result(c, conv_msg_join(c, "user", NULL), cj_str(tcm, "tool_call_id"), NULL,
			       cj_str(rec, "content") ? cj_str(rec, "content") : "", false);
	}
	return 0;
}
