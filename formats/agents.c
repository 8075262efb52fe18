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
	const char *type = cmv_formats__cj_str(j, "type");
	const cJSON *data = cmv_formats__cj_get(j, "data");
	jspan d, v;
	int error = 0;

	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (!type || !cJSON_IsObject(data) || cmv_formats__jscan_member(&d, rec, "data") != 1)
		return 0;
	if (!strcmp(type, "session.start"))
		cmv_formats__session_import_id(si, cmv_formats__cj_str(data, "sessionId"));
	if (!strcmp(type, "user.message") || !strcmp(type, "system.message")) {
		*role = type[0] == 'u' ? CMV_ROLE_USER : CMV_ROLE_SYSTEM;
		*kind = CMV_KIND_MESSAGE;
		return cmv_formats__record_add_string(rb, d, "content", "text", NULL, NULL);
	}
	if (!strcmp(type, "assistant.message")) {
		const cJSON *reqs = cmv_formats__cj_get(data, "toolRequests"), *cel = reqs ? reqs->child : NULL;
		const char *cur = NULL;
		jspan el;
		*role = CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		if ((error = cmv_formats__record_add_string(rb, d, "reasoningText", "thinking", NULL, NULL)) < 0 ||
		    (error = cmv_formats__record_add_string(rb, d, "content", "text", NULL, NULL)) < 0)
			return error;
		if (cmv_formats__jscan_member(&v, d, "toolRequests") == 1 && *v.p == '[')
			while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
				if (*el.p == '{')
					error = cmv_formats__record_add_raw(rb, el, "arguments", "tool_use", cmv_formats__cj_str(cel, "toolCallId"),
							       cmv_formats__cj_str(cel, "name"), NULL);
				cel = cel->next;
			}
		return error;
	}
	if (!strcmp(type, "tool.execution_complete")) {
		const cJSON *ok = cmv_formats__cj_get(data, "success");
		*role = CMV_ROLE_TOOL;
		*kind = CMV_KIND_MESSAGE;
		if (cmv_formats__jscan_member(&v, d, "result") == 1 && *v.p == '{' && cmv_formats__jscan_member(&v, v, "content") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_result", cmv_formats__cj_str(data, "toolCallId"), NULL,
						*v.p == '"' ? NULL : "application/json",
						cJSON_IsFalse(ok) ? CMV_BLOCK_ERROR : 0);
		if (cmv_formats__jscan_member(&v, d, "error") == 1)
			return cmv_formats__record_add_block(rb, v, "tool_result", cmv_formats__cj_str(data, "toolCallId"), NULL,
						*v.p == '"' ? NULL : "application/json", CMV_BLOCK_ERROR);
	}
	return 0;
}

const session_driver cmv__driver_copilot = { "copilot-cli", "copilot", NULL, copilot_record };

int cmv__copilot_neutral(conv *c, const cJSON *rec)
{
	const char *type = cmv_formats__cj_str(rec, "type");
	const cJSON *data = cmv_formats__cj_get(rec, "data");

	if (!type || !cJSON_IsObject(data))
		return 0;
	if (!strcmp(type, "system.message") && cmv_formats__cj_str(data, "content")) {
		cmv_formats__conv_system(c, cmv_formats__cj_str(data, "content"));
	} else if (!strcmp(type, "user.message") && cmv_formats__cj_str(data, "content")) {
		cmv_formats__nb_text(c, cmv_formats__conv_msg(c, "user", NULL), cmv_formats__cj_str(data, "content"));
	} else if (!strcmp(type, "assistant.message")) {
		cJSON *content = cmv_formats__conv_msg_join(c, "assistant", NULL);
		const cJSON *reqs = cmv_formats__cj_get(data, "toolRequests");
		if (cmv_formats__cj_str(data, "content"))
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(data, "content"));
		for (const cJSON *r = reqs ? reqs->child : NULL; r; r = r->next)
			cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(r, "toolCallId"), cmv_formats__cj_str(r, "name"), cmv_formats__cj_get(r, "arguments"),
				    cmv_formats__cj_str(r, "arguments") ? cmv_formats__cj_str(r, "arguments") : "{}", false);
	} else if (!strcmp(type, "tool.execution_complete")) {
		const cJSON *res = cmv_formats__cj_get(data, "result"), *out = cmv_formats__cj_get(res, "content");
		const cJSON *err = cmv_formats__cj_get(data, "error");
		bool failed = cJSON_IsFalse(cmv_formats__cj_get(data, "success"));
		cJSON *content = cmv_formats__conv_msg_join(c, "user", NULL);
		if (cJSON_IsString(out))
			cmv_formats__nb_tool_result(c, content, cmv_formats__cj_str(data, "toolCallId"), out, NULL, failed);
		else if (cmv_formats__cj_str(err, "message"))
			cmv_formats__nb_tool_result(c, content, cmv_formats__cj_str(data, "toolCallId"), NULL, cmv_formats__cj_str(err, "message"), true);
		else
			cmv_formats__nb_tool_result(c, content, cmv_formats__cj_str(data, "toolCallId"), NULL, failed ? "(failed)" : "(done)", failed);
	}
	return 0;
}

/* ---- Gemini CLI -------------------------------------------------------------- */

static int gemini_cli_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			     cmv_kind *kind)
{
	const char *type = cmv_formats__cj_str(j, "type");
	jspan v;
	int error = 0;

	(void)si;
	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (!type || (strcmp(type, "user") && strcmp(type, "gemini")))
		return 0; /* info, error, warning: shown to the user, never sent */
	*kind = CMV_KIND_MESSAGE;
	*role = type[0] == 'u' ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
	if (cmv_formats__jscan_member(&v, rec, "content") == 1) {
		if (*v.p == '"') {
			error = cmv_formats__record_add_block(rb, v, "text", NULL, NULL, NULL, 0);
		} else if (*v.p == '[') { /* newer files: an array of parts */
			const char *cur = NULL;
			jspan el;
			while (!error && cmv_formats__jscan_next_element(&el, v, &cur) == 1)
				error = cmv_formats__record_add_string(rb, el, "text", "text", NULL, NULL);
		}
	}
	const cJSON *calls = cmv_formats__cj_get(j, "toolCalls"), *cel = calls ? calls->child : NULL;
	const char *cur = NULL;
	jspan el;
	if (!error && cmv_formats__jscan_member(&v, rec, "toolCalls") == 1 && *v.p == '[')
		while (!error && cel && cmv_formats__jscan_next_element(&el, v, &cur) == 1) {
			jspan res, rel, fr;
			if (*el.p != '{') {
				cel = cel->next;
				continue;
			}
			error = cmv_formats__record_add_raw(rb, el, "args", "tool_use", cmv_formats__cj_str(cel, "id"), cmv_formats__cj_str(cel, "name"), NULL);
			const char *rcur = NULL;
			if (!error && cmv_formats__jscan_member(&res, el, "result") == 1 && *res.p == '[')
				while (!error && cmv_formats__jscan_next_element(&rel, res, &rcur) == 1)
					if (*rel.p == '{' && cmv_formats__jscan_member(&fr, rel, "functionResponse") == 1 && *fr.p == '{')
						error = cmv_formats__record_add_raw(rb, fr, "response", "tool_result", cmv_formats__cj_str(cel, "id"),
								       NULL, NULL);
			cel = cel->next;
		}
	return error;
}

const session_driver cmv__driver_gemini_cli = { "gemini-cli", "gemini-cli", "messages", gemini_cli_record };

/* A function response's output as text: {"output": s} is s, anything else its JSON. */
static void response_result(conv *c, cJSON *content, const char *id, const cJSON *resp, bool is_error)
{
	const cJSON *out = cmv_formats__cj_get(resp, "output");
	const cJSON *err = cmv_formats__cj_get(resp, "error");
	if (cJSON_IsString(out) && cJSON_GetArraySize(resp) == 1) {
		cmv_formats__nb_tool_result(c, content, id, out, NULL, is_error);
	} else if (cJSON_IsString(err)) {
		cmv_formats__nb_tool_result(c, content, id, err, NULL, true);
	} else {
		char *s = resp ? cJSON_PrintUnformatted(resp) : NULL;
		if (resp && !s)
			c->oom = true;
		cmv_formats__nb_tool_result(c, content, id, NULL, s ? s : "", is_error);
		cJSON_free(s);
	}
}

int cmv__gemini_cli_neutral(conv *c, const cJSON *rec)
{
	const char *type = cmv_formats__cj_str(rec, "type");
	const cJSON *body = cmv_formats__cj_get(rec, "content"), *calls = cmv_formats__cj_get(rec, "toolCalls");
	cJSON *content;

	if (!type || (strcmp(type, "user") && strcmp(type, "gemini")))
		return 0;
	content = cmv_formats__conv_msg_join(c, type[0] == 'u' ? "user" : "assistant", NULL);
	if (cJSON_IsString(body))
		cmv_formats__nb_text(c, content, body->valuestring);
	for (const cJSON *p = cJSON_IsArray(body) ? body->child : NULL; p; p = p->next)
		if (cmv_formats__cj_str(p, "text"))
			cmv_formats__nb_text(c, content, cmv_formats__cj_str(p, "text"));
	if (!cJSON_GetArraySize(calls))
		return 0;
	for (const cJSON *tc = calls->child; tc; tc = tc->next)
		cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(tc, "id"), cmv_formats__cj_str(tc, "name"), cmv_formats__cj_get(tc, "args"), "{}", false);
	/* the results live in the same object: they answer in the next (user) message */
	cJSON *results = cmv_formats__conv_msg(c, "user", NULL);
	for (const cJSON *tc = calls->child; tc; tc = tc->next) {
		const cJSON *res = cmv_formats__cj_get(tc, "result"), *fr = NULL;
		for (const cJSON *r = res ? res->child : NULL; r && !fr; r = r->next)
			fr = cmv_formats__cj_get(r, "functionResponse");
		const char *status = cmv_formats__cj_str(tc, "status");
		bool failed = status && (!strcmp(status, "error") || !strcmp(status, "cancelled"));
		if (fr)
			response_result(c, results, cmv_formats__cj_str(tc, "id"), cmv_formats__cj_get(fr, "response"), failed);
		else
			cmv_formats__nb_tool_result(c, results, cmv_formats__cj_str(tc, "id"), NULL, status ? status : "(no result)", failed);
	}
	return 0;
}

/* ---- SWE-agent --------------------------------------------------------------- */

static int swe_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
		      cmv_kind *kind)
{
	(void)si;
	return cmv_formats__cut_chat_message(rb, rec, j, role, kind);
}

const session_driver cmv__driver_swe_agent = { "swe-agent", "swe-agent", "history", swe_record };

int cmv__swe_agent_neutral(conv *c, const cJSON *rec)
{
	return cmv_formats__chat_message_neutral(c, rec);
}

/* ---- OpenHands --------------------------------------------------------------- */

static int openhands_record(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
			    cmv_kind *kind)
{
	const char *source = cmv_formats__cj_str(j, "source"), *action = cmv_formats__cj_str(j, "action");
	const cJSON *tcm = cmv_formats__cj_get(j, "tool_call_metadata");
	jspan args;

	(void)si;
	*role = CMV_ROLE_SYSTEM;
	*kind = CMV_KIND_EVENT;
	if (action && !strcmp(action, "message") && source && cmv_formats__jscan_member(&args, rec, "args") == 1) {
		*role = !strcmp(source, "user") ? CMV_ROLE_USER : CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		return cmv_formats__record_add_string(rb, args, "content", "text", NULL, NULL);
	}
	if (!cJSON_IsObject(tcm))
		return 0;
	if (action) {
		*role = CMV_ROLE_ASSISTANT;
		*kind = CMV_KIND_MESSAGE;
		return cmv_formats__record_add_raw(rb, rec, "args", "tool_use", cmv_formats__cj_str(tcm, "tool_call_id"), cmv_formats__cj_str(tcm, "function_name"),
				      NULL);
	}
	if (cmv_formats__cj_str(j, "observation")) {
		*role = CMV_ROLE_TOOL;
		*kind = CMV_KIND_MESSAGE;
		return cmv_formats__record_add_string(rb, rec, "content", "tool_result", cmv_formats__cj_str(tcm, "tool_call_id"), NULL);
	}
	return 0;
}

const session_driver cmv__driver_openhands = { "openhands", "openhands", "", openhands_record };

int cmv__openhands_neutral(conv *c, const cJSON *rec)
{
	const char *source = cmv_formats__cj_str(rec, "source"), *action = cmv_formats__cj_str(rec, "action");
	const cJSON *tcm = cmv_formats__cj_get(rec, "tool_call_metadata"), *args = cmv_formats__cj_get(rec, "args");

	if (action && !strcmp(action, "message") && source && cmv_formats__cj_str(args, "content")) {
		cmv_formats__nb_text(c, cmv_formats__conv_msg_join(c, !strcmp(source, "user") ? "user" : "assistant", NULL), cmv_formats__cj_str(args, "content"));
	} else if (cJSON_IsObject(tcm) && action) {
		cJSON *content = cmv_formats__conv_msg_join(c, "assistant", NULL);
		const char *thought = cmv_formats__cj_str(args, "thought");
		if (thought && *thought)
			cmv_formats__nb_text(c, content, thought);
		cmv_formats__nb_tool_use(c, content, cmv_formats__cj_str(tcm, "tool_call_id"), cmv_formats__cj_str(tcm, "function_name"), args, "{}", false);
	} else if (cJSON_IsObject(tcm) && cmv_formats__cj_str(rec, "observation")) {
		cmv_formats__nb_tool_result(c, cmv_formats__conv_msg_join(c, "user", NULL), cmv_formats__cj_str(tcm, "tool_call_id"), NULL,
			       cmv_formats__cj_str(rec, "content") ? cmv_formats__cj_str(rec, "content") : "", false);
	}
	return 0;
}
