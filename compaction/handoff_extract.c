/* SPDX-License-Identifier: MIT */
/*
 * The extractive builder of a handoff document: items taken from the
 * messages themselves by cues (what the user asked, sentences that decide
 * or ask, calls with the first line of their results, files named, the last
 * plan written down). No network and no model: the same messages always
 * give the same document. It is the builder when no LLM is given. The
 * losses section says what this kind of document leaves out.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include "handoff.h"

/* Harness text a user did not type (Claude Code's command echoes and reminders). */
static bool harness_text(const char *t)
{
	while (isspace((unsigned char)*t))
		t++;
	return !strncmp(t, "<command-", 9) || !strncmp(t, "<local-command", 14) || !strncmp(t, "<system-reminder>", 17) ||
	       !strncmp(t, "Caveat: The messages below", 26) || !strncmp(t, "[Request interrupted", 20) ||
	       !strncmp(t, "<environment_context>", 21) || !strncmp(t, "<user_instructions>", 19);
}

static bool decision_sentence(const char *s, size_t n)
{
	static const char *const cues[] = { "decid", "chose", "choos", "will use", "i'll use", "going with",
					    "instead of", "switch to", "the fix", "root cause", "conclu", "the problem is",
					    "the issue is", "we should", "plan is", "approach" };
	char low[512];
	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)s[i]);
	low[n] = '\0';
	for (size_t i = 0; i < CMV_ARRAY_SIZE(cues); i++)
		if (strstr(low, cues[i]))
			return true;
	return false;
}

/* Sentences of text: each call gets [start, end) of one, trimmed. */
static const char *next_sentence(const char *p, size_t *len)
{
	while (*p && (isspace((unsigned char)*p) || *p == '-' || *p == '*' || *p == '#'))
		p++;
	if (!*p)
		return NULL;
	const char *q = p;
	while (*q && *q != '\n' && !((*q == '.' || *q == '?' || *q == '!') && (q[1] == ' ' || q[1] == '\n' || !q[1])))
		q++;
	if (*q && *q != '\n')
		q++;
	*len = (size_t)(q - p);
	return p;
}

static void add_path(ho_doc *d, cmv__strmap *seen, const char *path, const char *tool)
{
	if (!path || !*path || strlen(path) > 300 || strchr(path, '\n'))
		return;
	char item[400];
	size_t idx;
	if (cmv__strmap_get(seen, path, &idx, NULL))
		return;
	cmv__strmap_put(seen, path, d->n[5], NULL);
	snprintf(item, sizeof(item), "%s (%s)", path, tool ? tool : "?");
	cmv_compaction__ho_add(d, 5, item, 0);
}

int cmv_compaction__ho_extract(ho_doc *d, const cJSON *msgs, size_t from, size_t to, const char *recall, size_t covered_nodes)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT), line = CMV_BUF_INIT(CMV_BUF_SMALL);
	cmv__strmap calls = { 0 }, paths = { 0 };
	const cJSON *todos = NULL;
	cJSON *callinfo = cJSON_CreateObject();
	size_t i = 0, n_results = 0, n_asst = 0, n_think = 0;
	const cJSON *last_user = NULL;
	const char *last_asst_text = NULL;
	int error = 0;

	/* pass 1: calls and their results */
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		if (i < from || i >= to)
			continue;
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next)
			if (!strcmp(cmv_compaction__ho_block_type(b), "tool_result") && cmv_formats__cj_str(b, "tool_use_id"))
				error = cmv__strmap_put(&calls, cmv_formats__cj_str(b, "tool_use_id"), 1, NULL);
	}
	i = 0;
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		if (i < from || i >= to)
			continue;
		bool asst = cmv_formats__cj_str(m, "role") && !strcmp(cmv_formats__cj_str(m, "role"), "assistant");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		if (cmv_compaction__ho_user_turn(m))
			last_user = m;
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
			const char *t = cmv_compaction__ho_block_type(b);
			if (!strcmp(t, "text") && cmv_formats__cj_str(b, "text")) {
				const char *s = cmv_formats__cj_str(b, "text");
				if (!asst) {
					/* an earlier summary is the history itself: it keeps much more room */
					bool prior = !strncmp(s, "This session is being continued from a previous conversation", 60);
					if (cmv_compaction__ho_user_turn(m) && !harness_text(s))
						error = cmv_compaction__ho_add(d, 0, s, prior ? 4000 : 600);
					continue;
				}
				n_asst++;
				last_asst_text = s;
				size_t len;
				for (const char *p = s; (p = next_sentence(p, &len)) != NULL; p += len) {
					if (len > 20 && len < 400 && decision_sentence(p, len)) {
						cmv_buf_set(&line, p, len);
						error = cmv_compaction__ho_add(d, 1, line.ptr, 300);
					}
					if (len > 10 && p[len - 1] == '?' && to - i <= 12) {
						cmv_buf_set(&line, p, len);
						error = cmv_compaction__ho_add(d, 6, line.ptr, 300);
					}
					if (error)
						break;
				}
			} else if (!strcmp(t, "tool_use")) {
				const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
				const char *name = cmv_formats__cj_str(b, "name");
				if (name && (!strcmp(name, "TodoWrite") || !strcmp(name, "update_plan")))
					todos = cJSON_GetObjectItemCaseSensitive(in, !strcmp(name, "TodoWrite") ? "todos" : "plan");
				static const char *const keys[] = { "file_path", "path", "notebook_path", "filename", "file" };
				for (size_t k = 0; k < CMV_ARRAY_SIZE(keys); k++)
					add_path(d, &paths, cmv_formats__cj_str(in, keys[k]), name);
				/* apply_patch bodies name their files */
				const char *patch = cmv_formats__cj_str(in, "input") ? cmv_formats__cj_str(in, "input") : cmv_formats__cj_str(in, "patch");
				for (const char *p = patch; p && (p = strstr(p, "*** ")) != NULL; p += 4) {
					const char *f = NULL;
					if (!strncmp(p, "*** Update File: ", 17) || !strncmp(p, "*** Add File: ", 14) ||
					    !strncmp(p, "*** Delete File: ", 17))
						f = strchr(p, ':') + 2;
					if (f) {
						size_t fl = strcspn(f, "\r\n");
						cmv_buf_set(&line, f, fl);
						add_path(d, &paths, line.ptr, name);
					}
				}
				if (cmv_formats__cj_str(b, "id")) {
					char *ins = cJSON_PrintUnformatted(in);
					cmv_buf_clear(&line);
					cmv_buf_printf(&line, "%s %.160s%s", name ? name : "?", ins ? ins : "{}",
						       ins && strlen(ins) > 160 ? "..." : "");
					cJSON_free(ins);
					cJSON_DeleteItemFromObjectCaseSensitive(callinfo, cmv_formats__cj_str(b, "id"));
					cJSON_AddStringToObject(callinfo, cmv_formats__cj_str(b, "id"), line.ptr);
				}
				size_t seen;
				if (cmv_formats__cj_str(b, "id") && !cmv__strmap_get(&calls, cmv_formats__cj_str(b, "id"), &seen, NULL)) {
					char *ins = cJSON_PrintUnformatted(in);
					cmv_buf_clear(&line);
					cmv_buf_printf(&line, "%s (call %s) has no result: %.200s", name ? name : "?", cmv_formats__cj_str(b, "id"),
						       ins ? ins : "{}");
					cJSON_free(ins);
					error = cmv_compaction__ho_add(d, 3, line.ptr, 300);
				}
			} else if (!strcmp(t, "tool_result")) {
				n_results++;
				cmv__result_text(&text, cJSON_GetObjectItemCaseSensitive(b, "content"));
				bool err = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "is_error"));
				/* each call with the first line of what it returned: what was done, and what came of it */
				size_t fl = text.size ? strcspn(text.ptr, "\n") : 0;
				const char *what = cmv_formats__cj_str(b, "tool_use_id") ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
										  callinfo, cmv_formats__cj_str(b, "tool_use_id")))
								 : NULL;
				cmv_buf_clear(&line);
				cmv_buf_printf(&line, "%s %s %.*s", what ? what : "a call", err ? "failed:" : "->",
					       (int)(fl > 200 ? 200 : fl), text.size ? text.ptr : "(empty)");
				error = cmv_compaction__ho_add(d, 4, line.ptr, 400);
			} else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || !strcmp(t, "reasoning")) {
				n_think++;
			}
		}
		/* a turn's conclusion: its last assistant text, before the next user turn */
		const cJSON *nx = m->next;
		if (asst && last_asst_text && (i + 1 >= to || !nx || cmv_compaction__ho_user_turn(nx))) {
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "Concluded: %s", last_asst_text);
			error = cmv_compaction__ho_add(d, 1, line.ptr, 500);
			last_asst_text = NULL;
		}
	}
	/* tasks: the last plan the agent wrote down, open items first */
	const cJSON *t;
	for (int pass = 0; pass < 2 && !error; pass++)
		cJSON_ArrayForEach(t, todos) {
			const char *st = cmv_formats__cj_str(t, "status") ? cmv_formats__cj_str(t, "status") : "";
			const char *what = cmv_formats__cj_str(t, "content") ? cmv_formats__cj_str(t, "content") : cmv_formats__cj_str(t, "step");
			bool done = !strcmp(st, "completed");
			if (!what || done != (pass == 1))
				continue;
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "[%s] %s", *st ? st : "pending", what);
			error = cmv_compaction__ho_add(d, 2, line.ptr, 300);
		}
	if (!error && !todos && last_user) {
		const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(last_user, "content"), 0);
		if (cmv_formats__cj_str(b, "text") && !harness_text(cmv_formats__cj_str(b, "text"))) {
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "The last request: %s", cmv_formats__cj_str(b, "text"));
			error = cmv_compaction__ho_add(d, 2, line.ptr, 400);
		}
	}
	if (!error && to > from) {
		const cJSON *lastm = cJSON_GetArrayItem(msgs, (int)to - 1);
		if (cmv_compaction__ho_user_turn(lastm))
			error = cmv_compaction__ho_add(d, 3, "The last user message above has no answer yet.", 0);
	}
	/* what the document cannot answer */
	if (!error && recall && *recall) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "Replaces %zu messages (%zu records), kept verbatim: recall %.7s.", to - from,
			       covered_nodes, recall);
		error = cmv_compaction__ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_results) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu tool outputs: first lines only.", n_results);
		error = cmv_compaction__ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_asst) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu assistant texts: decisions and conclusions only.", n_asst);
		error = cmv_compaction__ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_think) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu thinking blocks: not carried.", n_think);
		error = cmv_compaction__ho_add(d, 7, line.ptr, 0);
	}
	cJSON_Delete(callinfo);
	cmv__strmap_dispose(&calls);
	cmv__strmap_dispose(&paths);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&line);
	return error;
}
