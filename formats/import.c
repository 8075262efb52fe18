/* SPDX-License-Identifier: MIT */
/* Telling formats apart by their content, and importing any of them. */
#include "neutral.h"

void cmv_import_options_init(cmv_import_options *opts)
{
	static const cmv_import_options init = CMV_IMPORT_OPTIONS_INIT;
	*opts = init;
}

static const char *const names[] = {
	"claude-code", "codex", "copilot-cli", "gemini-cli", "swe-agent", "openhands",
	"anthropic", "openai-chat", "openai-responses", "gemini", "cmv", NULL,
};

const char *const *cmv_format_names(void)
{
	return names;
}

static const session_driver *driver_for(const char *format)
{
	static const session_driver *const drivers[] = {
		&cmv__driver_codex, &cmv__driver_copilot, &cmv__driver_gemini_cli, &cmv__driver_swe_agent,
		&cmv__driver_openhands, &cmv__driver_anthropic, &cmv__driver_openai_chat,
		&cmv__driver_openai_responses, &cmv__driver_gemini,
	};
	for (size_t i = 0; i < sizeof(drivers) / sizeof(*drivers); i++)
		if (!strcmp(drivers[i]->name, format))
			return drivers[i];
	return NULL;
}

static const char *canonical(const char *name)
{
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return names[i];
	return NULL;
}

/* Anthropic's or OpenAI's shape, for a body with a "messages" array. */
static const char *messages_flavor(const cJSON *doc)
{
	const cJSON *msgs = cmv_formats__cj_get(doc, "messages");
	if (cmv_formats__cj_get(doc, "system") || cmv_formats__cj_get(doc, "anthropic_version") || cmv_formats__cj_get(doc, "max_tokens"))
		return "anthropic";
	for (const cJSON *m = msgs ? msgs->child : NULL; m; m = m->next) {
		const char *r = cmv_formats__cj_str(m, "role");
		if ((r && (!strcmp(r, "system") || !strcmp(r, "developer") || !strcmp(r, "tool"))) || cmv_formats__cj_get(m, "tool_calls"))
			return "openai-chat";
		const cJSON *content = cmv_formats__cj_get(m, "content");
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
			const char *t = cmv_formats__cj_str(b, "type");
			if (!t)
				continue;
			if (!strcmp(t, "tool_use") || !strcmp(t, "tool_result") || !strcmp(t, "thinking") ||
			    (!strcmp(t, "image") && cmv_formats__cj_get(b, "source")))
				return "anthropic";
			if (!strcmp(t, "image_url") || !strcmp(t, "input_audio"))
				return "openai-chat";
		}
	}
	return "openai-chat";
}

static bool has_key(const char *p, size_t n, const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i + k <= n; i++)
		if (p[i] == key[0] && !memcmp(p + i, key, k))
			return true;
	return false;
}

static const char *detect_record(const cJSON *j)
{
	if (!cJSON_IsObject(j))
		return NULL;
	if (cmv_formats__cj_get(j, "role") && cmv_formats__cj_get(j, "content"))
		return "cmv";
	if (cmv_formats__cj_str(j, "type") && cJSON_IsObject(cmv_formats__cj_get(j, "payload")) && cmv_formats__cj_get(j, "timestamp"))
		return "codex";
	if (cmv_formats__cj_str(j, "type") && cJSON_IsObject(cmv_formats__cj_get(j, "data")) && (cmv_formats__cj_get(j, "parentId") || cmv_formats__cj_get(j, "id")))
		return "copilot-cli";
	if (cmv_formats__cj_str(j, "type") && (cmv_formats__cj_get(j, "sessionId") || cmv_formats__cj_get(j, "uuid") || cmv_formats__cj_get(j, "leafUuid") ||
				  cmv_formats__cj_get(j, "messageId")))
		return "claude-code";
	return NULL;
}

/* A document's format from its top-level keys; only the small parts are parsed. */
static const char *detect_document(const char *p, const char *e)
{
	jspan doc = { p, e }, v, el;
	const char *cur = NULL;
	const char *f = NULL;

	if (*p == '[') {
		if (cmv_formats__jscan_next_element(&el, doc, &cur) != 1)
			return "openhands"; /* an empty event stream */
		/* an OpenHands event: who it came from, and what it did or saw */
		cJSON *first = cJSON_ParseWithLength(el.p, (size_t)(el.end - el.p));
		if (cmv_formats__cj_get(first, "source") && (cmv_formats__cj_get(first, "action") || cmv_formats__cj_get(first, "observation")))
			f = "openhands";
		cJSON_Delete(first);
		return f;
	}
#define IS_ARRAY(k) (cmv_formats__jscan_member(&v, doc, k) == 1 && *v.p == '[')
	if (cmv_formats__jscan_member(&v, doc, "sessionId") == 1 && IS_ARRAY("messages"))
		return "gemini-cli";
	if (IS_ARRAY("history") && (cmv_formats__jscan_member(&v, doc, "trajectory") == 1 || cmv_formats__jscan_member(&v, doc, "info") == 1))
		return "swe-agent";
	if (IS_ARRAY("contents"))
		return "gemini";
	if (IS_ARRAY("input"))
		return "openai-responses";
#undef IS_ARRAY
	if (cmv_formats__jscan_member(&v, doc, "messages") == 1 && *v.p == '[') {
		/* a request body: small enough to read whole */
		cJSON *body = cJSON_ParseWithLength(p, (size_t)(e - p));
		f = body ? messages_flavor(body) : NULL;
		cJSON_Delete(body);
	}
	return f;
}

int cmv_format_detect(const char **out, const char *path)
{
	cmv_buf file = CMV_BUF_INIT(SESSION_MAX_BYTES);
	int error;

	*out = NULL;
	if ((error = cmv__read_file(&file, path)) < 0)
		return error;
	const char *end = file.ptr + file.size, *p = cmv_formats__jscan_ws(file.ptr, end);
	const char *e = p < end ? cmv_formats__jscan_value(p, end) : NULL;
	if (e && cmv_formats__jscan_ws(e, end) == end && (*p == '[' || memchr(p, '\n', (size_t)(e - p)))) {
		/* one JSON value over several lines: a document, told by its top keys (not parsed whole) */
		*out = detect_document(p, e);
	}
	if (!*out && e) {
		cJSON *j = cJSON_ParseWithLength(p, (size_t)(e - p));
		if (!(*out = detect_record(j)) && cmv_formats__jscan_ws(e, end) == end)
			*out = detect_document(p, e); /* a document on one line */
		cJSON_Delete(j);
	} else if (!*out && p < end && *p == '{') {
		/* a first line cut off mid-write: sniff its keys */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (has_key(p, n, "\"sessionId\"") && has_key(p, n, "\"type\""))
			*out = "claude-code";
		else if (has_key(p, n, "\"payload\"") && has_key(p, n, "\"type\""))
			*out = "codex";
	}
	cmv_buf_dispose(&file);
	if (!*out)
		return cmv_error__set(CMV_EINVALID, "%s: cannot tell the format (use --format)", path);
	return 0;
}

static int import_file_filled(cmv_import_result *out, cmv_repo *repo, const char *path, const char *format,
		    const cmv_import_options *opts)
{
	const session_driver *d;
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(path);
	if (!format && (error = cmv_format_detect(&format, path)) < 0)
		return error;
	if (!canonical(format))
		return cmv_error__set(CMV_EINVALID, "unknown format '%s'", format);
	format = canonical(format);
	if (!strcmp(format, "cmv")) {
		if ((error = cmv_import_cmv_file(out, repo, path, opts)) == 0) {
			out->format = "cmv";
			out->session[0] = '\0';
		}
		return error;
	}
	if (!strcmp(format, "claude-code"))
		return cmv_import_claude_code_file(out, repo, path, opts);
	d = driver_for(format);
	return cmv__session_import(out, repo, path, d, opts);
}

int cmv_import_file(cmv_import_result *out, cmv_repo *repo, const char *path, const char *format,
		    const cmv_import_options *opts)
{
	int error = import_file_filled(out, repo, path, format, opts);
	if (out)
		out->version = CMV_IMPORT_RESULT_VERSION;
	return error;
}
