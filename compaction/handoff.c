/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* memmem */
/*
 * Handoff documents (docs/compaction.md): the structured summary a new
 * runtime gets, written by an LLM (in as many passes as its window needs)
 * or built from the conversation itself, and the fidelity check that says
 * how much of what was summarized the document still names.
 *
 * Either way the document is a list of items under eight fixed headings;
 * an LLM's reply is parsed back into them, so the shape does not depend on
 * which model wrote it, and fitting a token allowance drops items, never
 * cuts one mid-word.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pcre2.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include "handoff.h"

static const char *const sections[CMV_HANDOFF_NSECTIONS] = {
	"User instructions and constraints",
	"Decisions made",
	"Tasks in progress",
	"Pending actions and unanswered tool calls",
	"Key tool results",
	"Files touched",
	"Open questions",
	"Declared losses",
};

const char *const *cmv_handoff_sections(void)
{
	return sections;
}

/* ---- the document as items ------------------------------------------------- */

void ho_init(ho_doc *d)
{
	memset(d, 0, sizeof(*d));
}

void ho_dispose(ho_doc *d)
{
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++) {
		for (size_t i = 0; i < d->n[s]; i++)
			free(d->items[s][i]);
		free(d->items[s]);
	}
	free(d->header);
	memset(d, 0, sizeof(*d));
}

/* Add an item (copied; at most `max` bytes, cut at a UTF-8 boundary with a mark). */
int ho_add(ho_doc *d, int s, const char *text, size_t max)
{
	size_t len = strlen(text);
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	if (!len)
		return 0;
	bool cut = max && len > max;
	if (cut) {
		len = max;
		while (len && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	static const char mark[] = " […]";
	size_t mlen = cut ? sizeof(mark) - 1 : 0;
	for (size_t i = 0; i < d->n[s]; i++)
		if (strlen(d->items[s][i]) == len + mlen && !strncmp(d->items[s][i], text, len))
			return 0; /* said already */
	if (d->n[s] == d->cap[s]) {
		size_t ncap = d->cap[s] ? d->cap[s] * 2 : 16;
		char **g = cmv__realloc(d->items[s], ncap * sizeof(*g));
		if (!g)
			return CMV_ENOMEM;
		d->items[s] = g;
		d->cap[s] = ncap;
	}
	char *item = cmv__malloc(len + mlen + 1);
	if (!item)
		return CMV_ENOMEM;
	memcpy(item, text, len);
	memcpy(item + len, mark, mlen);
	item[len + mlen] = '\0';
	d->items[s][d->n[s]++] = item;
	return 0;
}

int ho_render(cmv_buf *out, const ho_doc *d)
{
	int error = 0;
	cmv_buf_clear(out);
	if (d->header)
		error = cmv_buf_printf(out, "%s\n", d->header);
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS && !error; s++) {
		error = cmv_buf_printf(out, "\n## %s\n", sections[s]);
		if (!d->n[s] && !error)
			error = cmv_buf_puts(out, "- (none)\n");
		for (size_t i = 0; i < d->n[s] && !error; i++) {
			error = cmv_buf_puts(out, "- ");
			/* continuation lines stay inside the item */
			for (const char *p = d->items[s][i]; *p && !error; p++)
				error = *p == '\n' ? cmv_buf_puts(out, "\n  ") : cmv_buf_putc(out, *p);
			if (!error)
				error = cmv_buf_putc(out, '\n');
		}
	}
	return error;
}

static size_t doc_chars(const ho_doc *d)
{
	size_t n = d->header ? strlen(d->header) : 0;
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++)
		for (size_t i = 0; i < d->n[s]; i++)
			n += strlen(d->items[s][i]) + 3;
	return n;
}

static void drop_item(ho_doc *d, int s, size_t i)
{
	free(d->items[s][i]);
	memmove(&d->items[s][i], &d->items[s][i + 1], (d->n[s] - i - 1) * sizeof(char *));
	d->n[s]--;
	d->dropped[s]++;
}

static bool is_drop_note(const char *item)
{
	return !strncmp(item, "For room, ", 10);
}

/*
 * Make the document one step smaller:
 *  1. the longest item of the largest section is shortened, if it is long;
 *  2. else the largest section that has more than one item loses one: the
 *     instructions their middle (the first states the task, the last says
 *     what the user wants now), the others their oldest;
 *  3. else, one item per section being left, sections go in order of what
 *     a new runtime needs least, the instructions last;
 *  4. last of all, the losses, but never the first (the recall id of what
 *     was covered) nor the line that declares what was left out.
 */
static bool drop_one(ho_doc *d)
{
	const int L = CMV_HANDOFF_NSECTIONS - 1;
	int best = -1, multi = -1;
	size_t best_chars = 0, multi_chars = 0;
	for (int s = 0; s < L; s++) {
		size_t c = 0;
		for (size_t i = 0; i < d->n[s]; i++)
			c += strlen(d->items[s][i]);
		if (d->n[s] && c > best_chars) {
			best = s;
			best_chars = c;
		}
		if (d->n[s] > 1 && c > multi_chars) {
			multi = s;
			multi_chars = c;
		}
	}
	if (best >= 0) {
		size_t longest = 0, li = 0;
		for (size_t i = 0; i < d->n[best]; i++)
			if (strlen(d->items[best][i]) > longest) {
				longest = strlen(d->items[best][i]);
				li = i;
			}
		if (longest > 700) {
			char *it = d->items[best][li];
			size_t keep = longest / 2 > 600 ? longest / 2 : 600;
			while (keep && ((unsigned char)it[keep] & 0xC0) == 0x80)
				keep--;
			memcpy(it + keep, " […]", sizeof(" […]"));
			return true;
		}
	}
	if (multi >= 0) {
		drop_item(d, multi, multi == 0 && d->n[0] > 2 ? 1 : 0);
		return true;
	}
	static const int order[] = { 4, 5, 6, 1, 2, 3, 0 };
	for (size_t k = 0; k < CMV_ARRAY_SIZE(order); k++)
		if (d->n[order[k]]) {
			drop_item(d, order[k], 0);
			return true;
		}
	for (size_t i = d->n[L]; i-- > 1;)
		if (!is_drop_note(d->items[L][i])) {
			drop_item(d, L, i);
			d->dropped[L]--; /* a loss line is not content that was left out */
			return true;
		}
	return false;
}

int ho_fit(cmv_buf *out, uint64_t *tokens, ho_doc *d, const cmv_model *model, cmv_tok *tok, uint64_t max_tokens)
{
	size_t n = 0;
	int error;

	for (int round = 0; round < 64; round++) {
		/* what was left out for room is declared, once, with the counts */
		ho_doc_note_drops(d);
		if ((error = ho_render(out, d)) < 0)
			return error;
		if ((error = cmv_model_count(&n, NULL, model, tok, out->ptr, out->size)) < 0)
			return error;
		if (n <= max_tokens) {
			*tokens = n;
			return 0;
		}
		/* aim by characters, then count again */
		size_t chars = doc_chars(d);
		size_t goal = (size_t)((double)chars * (double)max_tokens / (double)n * 0.97);
		bool any = false;
		while (doc_chars(d) > goal && drop_one(d))
			any = true;
		if (!any && !drop_one(d))
			break;
	}
	return cmv_error__set(CMV_EBUDGET, "the handoff document cannot be made to fit %llu tokens",
			      (unsigned long long)max_tokens);
}

void ho_doc_note_drops(ho_doc *d)
{
	const int L = CMV_HANDOFF_NSECTIONS - 1;
	char line[256];
	size_t total = 0;
	for (int s = 0; s < L; s++)
		total += d->dropped[s];
	if (!total || total == d->noted)
		return;
	/* replace the previous note */
	for (size_t i = 0; d->noted && i < d->n[L]; i++)
		if (is_drop_note(d->items[L][i])) {
			free(d->items[L][i]);
			memmove(&d->items[L][i], &d->items[L][i + 1], (d->n[L] - i - 1) * sizeof(char *));
			d->n[L]--;
			break;
		}
	size_t len = (size_t)snprintf(line, sizeof(line), "For room, %zu items were left out:", total);
	for (int s = 0; s < L && len < sizeof(line); s++)
		if (d->dropped[s])
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %zu of \"%s\";", d->dropped[s], sections[s]);
	if (len < sizeof(line) && len)
		line[len - 1] = '.';
	d->noted = total;
	ho_add(d, L, line, 0);
}

/* ---- reading a conversation -------------------------------------------------- */

static const char *bt(const cJSON *b)
{
	const char *t = cj_str(b, "type");
	return t ? t : "";
}

/* s, at most cap bytes (0: all), cut at a character boundary. */
static int put_capped(cmv_buf *out, const char *s, size_t cap)
{
	size_t len = strlen(s);
	if (cap && len > cap) {
		len = cap;
		while (len && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
		int error = cmv_buf_put(out, s, len);
		return error < 0 ? error : cmv_buf_puts(out, " […]");
	}
	return cmv_buf_put(out, s, len);
}

int ho_message_text(cmv_buf *out, const cJSON *m, size_t cap)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	cmv_buf tmp = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const char *role = cj_str(m, "role") ? cj_str(m, "role") : "?";
	int error = 0;

	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		const char *t = bt(b);
		if (!strcmp(t, "text")) {
			if (!(error = cmv_buf_printf(out, "[%s] ", role)))
				error = put_capped(out, cj_str(b, "text") ? cj_str(b, "text") : "", cap);
		} else if (!strcmp(t, "tool_use")) {
			char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
			if (!(error = cmv_buf_printf(out, "[%s calls %s, id %s] ", role, cj_str(b, "name") ? cj_str(b, "name") : "?",
						     cj_str(b, "id") ? cj_str(b, "id") : "?")))
				error = put_capped(out, in ? in : "{}", cap);
			cJSON_free(in);
		} else if (!strcmp(t, "tool_result")) {
			cmv__result_text(&tmp, cJSON_GetObjectItemCaseSensitive(b, "content"));
			if (!(error = cmv_buf_printf(out, "[result of %s%s] ", cj_str(b, "tool_use_id") ? cj_str(b, "tool_use_id") : "?",
						     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "is_error")) ? ", an error" : "")))
				error = put_capped(out, tmp.size ? tmp.ptr : "", cap);
		} else if (!strcmp(t, "image")) {
			error = cmv_buf_printf(out, "[%s] [image]", role);
		} else {
			continue;
		}
		if (!error)
			error = cmv_buf_putc(out, '\n');
	}
	cmv_buf_dispose(&tmp);
	return error;
}

bool ho_user_turn(const cJSON *m)
{
	if (!cj_str(m, "role") || strcmp(cj_str(m, "role"), "user"))
		return false;
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	bool text = false;
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		if (!strcmp(bt(b), "tool_result"))
			return false;
		if (!strcmp(bt(b), "text") || !strcmp(bt(b), "image"))
			text = true;
	}
	return text;
}

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
	ho_add(d, 5, item, 0);
}

int ho_extract(ho_doc *d, const cJSON *msgs, size_t from, size_t to, const char *recall, size_t covered_nodes)
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
			if (!strcmp(bt(b), "tool_result") && cj_str(b, "tool_use_id"))
				error = cmv__strmap_put(&calls, cj_str(b, "tool_use_id"), 1, NULL);
	}
	i = 0;
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		if (i < from || i >= to)
			continue;
		bool asst = cj_str(m, "role") && !strcmp(cj_str(m, "role"), "assistant");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		if (ho_user_turn(m))
			last_user = m;
		for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
			const char *t = bt(b);
			if (!strcmp(t, "text") && cj_str(b, "text")) {
				const char *s = cj_str(b, "text");
				if (!asst) {
					/* an earlier summary is the history itself: it keeps much more room */
					bool prior = !strncmp(s, "This session is being continued from a previous conversation", 60);
					if (ho_user_turn(m) && !harness_text(s))
						error = ho_add(d, 0, s, prior ? 4000 : 600);
					continue;
				}
				n_asst++;
				last_asst_text = s;
				size_t len;
				for (const char *p = s; (p = next_sentence(p, &len)) != NULL; p += len) {
					if (len > 20 && len < 400 && decision_sentence(p, len)) {
						cmv_buf_set(&line, p, len);
						error = ho_add(d, 1, line.ptr, 300);
					}
					if (len > 10 && p[len - 1] == '?' && to - i <= 12) {
						cmv_buf_set(&line, p, len);
						error = ho_add(d, 6, line.ptr, 300);
					}
					if (error)
						break;
				}
			} else if (!strcmp(t, "tool_use")) {
				const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
				const char *name = cj_str(b, "name");
				if (name && (!strcmp(name, "TodoWrite") || !strcmp(name, "update_plan")))
					todos = cJSON_GetObjectItemCaseSensitive(in, !strcmp(name, "TodoWrite") ? "todos" : "plan");
				static const char *const keys[] = { "file_path", "path", "notebook_path", "filename", "file" };
				for (size_t k = 0; k < CMV_ARRAY_SIZE(keys); k++)
					add_path(d, &paths, cj_str(in, keys[k]), name);
				/* apply_patch bodies name their files */
				const char *patch = cj_str(in, "input") ? cj_str(in, "input") : cj_str(in, "patch");
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
				if (cj_str(b, "id")) {
					char *ins = cJSON_PrintUnformatted(in);
					cmv_buf_clear(&line);
					cmv_buf_printf(&line, "%s %.160s%s", name ? name : "?", ins ? ins : "{}",
						       ins && strlen(ins) > 160 ? "..." : "");
					cJSON_free(ins);
					cJSON_DeleteItemFromObjectCaseSensitive(callinfo, cj_str(b, "id"));
					cJSON_AddStringToObject(callinfo, cj_str(b, "id"), line.ptr);
				}
				size_t seen;
				if (cj_str(b, "id") && !cmv__strmap_get(&calls, cj_str(b, "id"), &seen, NULL)) {
					char *ins = cJSON_PrintUnformatted(in);
					cmv_buf_clear(&line);
					cmv_buf_printf(&line, "%s (call %s) has no result: %.200s", name ? name : "?", cj_str(b, "id"),
						       ins ? ins : "{}");
					cJSON_free(ins);
					error = ho_add(d, 3, line.ptr, 300);
				}
			} else if (!strcmp(t, "tool_result")) {
				n_results++;
				cmv__result_text(&text, cJSON_GetObjectItemCaseSensitive(b, "content"));
				bool err = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "is_error"));
				/* each call with the first line of what it returned: what was done, and what came of it */
				size_t fl = text.size ? strcspn(text.ptr, "\n") : 0;
				const char *what = cj_str(b, "tool_use_id") ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
										  callinfo, cj_str(b, "tool_use_id")))
								 : NULL;
				cmv_buf_clear(&line);
				cmv_buf_printf(&line, "%s %s %.*s", what ? what : "a call", err ? "failed:" : "->",
					       (int)(fl > 200 ? 200 : fl), text.size ? text.ptr : "(empty)");
				error = ho_add(d, 4, line.ptr, 400);
			} else if (!strcmp(t, "thinking") || !strcmp(t, "redacted_thinking") || !strcmp(t, "reasoning")) {
				n_think++;
			}
		}
		/* a turn's conclusion: its last assistant text, before the next user turn */
		const cJSON *nx = m->next;
		if (asst && last_asst_text && (i + 1 >= to || !nx || ho_user_turn(nx))) {
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "Concluded: %s", last_asst_text);
			error = ho_add(d, 1, line.ptr, 500);
			last_asst_text = NULL;
		}
	}
	/* tasks: the last plan the agent wrote down, open items first */
	const cJSON *t;
	for (int pass = 0; pass < 2 && !error; pass++)
		cJSON_ArrayForEach(t, todos) {
			const char *st = cj_str(t, "status") ? cj_str(t, "status") : "";
			const char *what = cj_str(t, "content") ? cj_str(t, "content") : cj_str(t, "step");
			bool done = !strcmp(st, "completed");
			if (!what || done != (pass == 1))
				continue;
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "[%s] %s", *st ? st : "pending", what);
			error = ho_add(d, 2, line.ptr, 300);
		}
	if (!error && !todos && last_user) {
		const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(last_user, "content"), 0);
		if (cj_str(b, "text") && !harness_text(cj_str(b, "text"))) {
			cmv_buf_clear(&line);
			cmv_buf_printf(&line, "The last request: %s", cj_str(b, "text"));
			error = ho_add(d, 2, line.ptr, 400);
		}
	}
	if (!error && to > from) {
		const cJSON *lastm = cJSON_GetArrayItem(msgs, (int)to - 1);
		if (ho_user_turn(lastm))
			error = ho_add(d, 3, "The last user message above has no answer yet.", 0);
	}
	/* what the document cannot answer */
	if (!error && recall && *recall) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "Replaces %zu messages (%zu records), kept verbatim: recall %.7s.", to - from,
			       covered_nodes, recall);
		error = ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_results) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu tool outputs: first lines only.", n_results);
		error = ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_asst) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu assistant texts: decisions and conclusions only.", n_asst);
		error = ho_add(d, 7, line.ptr, 0);
	}
	if (!error && n_think) {
		cmv_buf_clear(&line);
		cmv_buf_printf(&line, "%zu thinking blocks: not carried.", n_think);
		error = ho_add(d, 7, line.ptr, 0);
	}
	cJSON_Delete(callinfo);
	cmv__strmap_dispose(&calls);
	cmv__strmap_dispose(&paths);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&line);
	return error;
}

/* ---- an LLM's reply, back into the fixed sections ------------------------------ */

static int section_of(const char *heading)
{
	static const char *const keys[CMV_HANDOFF_NSECTIONS] = { "instruction", "decision", "task", "pending",
								  "tool result", "file", "question", "loss" };
	char low[256];
	size_t n = strlen(heading);
	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)heading[i]);
	low[n] = '\0';
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++)
		if (strstr(low, keys[s]))
			return s;
	if (strstr(low, "constraint"))
		return 0;
	if (strstr(low, "unanswered") || strstr(low, "action"))
		return 3;
	if (strstr(low, "lost") || strstr(low, "cannot"))
		return 7;
	return -1;
}

int ho_parse(ho_doc *d, const char *reply)
{
	cmv_buf item = CMV_BUF_INIT(CMV_BUF_SMALL);
	int cur = -1, error = 0;

	for (const char *p = reply; *p && !error;) {
		size_t len = strcspn(p, "\n");
		const char *l = p;
		p += len + (p[len] ? 1 : 0);
		size_t lead = 0;
		while (lead < len && (l[lead] == ' ' || l[lead] == '\t'))
			lead++;
		if (lead < len && l[lead] == '#') {
			if (cur >= 0 && item.size)
				error = ho_add(d, cur, item.ptr, 2000);
			cmv_buf_clear(&item);
			size_t h = lead;
			while (h < len && (l[h] == '#' || l[h] == ' '))
				h++;
			char head[256];
			snprintf(head, sizeof(head), "%.*s", (int)(len - h), l + h);
			int s = section_of(head);
			if (s >= 0)
				cur = s;
			continue;
		}
		if (cur < 0)
			continue;
		bool bullet = lead + 1 < len && (l[lead] == '-' || l[lead] == '*') && l[lead + 1] == ' ';
		if (bullet || lead == len) {
			if (item.size)
				error = ho_add(d, cur, item.ptr, 2000);
			cmv_buf_clear(&item);
			if (lead == len)
				continue;
			lead += 2;
		}
		if (item.size)
			cmv_buf_putc(&item, '\n');
		cmv_buf_put(&item, l + lead, len - lead);
	}
	if (!error && cur >= 0 && item.size)
		error = ho_add(d, cur, item.ptr, 2000);
	/* an "(none)" item says nothing */
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++)
		for (size_t i = 0; i < d->n[s];)
			if (!strcmp(d->items[s][i], "(none)") || !strcmp(d->items[s][i], "None")) {
				drop_item(d, s, i);
				d->dropped[s]--;
			} else {
				i++;
			}
	cmv_buf_dispose(&item);
	return error;
}

/* ---- the summarizer, in passes ---------------------------------------------------- */

static const char summarize_prompt[] =
	"You write handoff documents for AI agent sessions. Another model, possibly from another provider, "
	"will continue the session from your document alone, so it must be self-contained and factual.\n"
	"Write exactly these eight sections, in this order, each a Markdown heading \"## NAME\" followed by "
	"\"- \" bullet lines, and nothing else:\n"
	"## User instructions and constraints\n## Decisions made\n## Tasks in progress\n"
	"## Pending actions and unanswered tool calls\n## Key tool results\n## Files touched\n"
	"## Open questions\n## Declared losses\n"
	"Quote short user instructions and constraints verbatim. Keep exact file paths, identifiers, numbers, "
	"commands and error messages. Under Declared losses, list what a reader could NOT answer from your "
	"document: the details you left out. Write \"- (none)\" under a section with nothing to say.";

static const char combine_prompt[] =
	"You merge partial handoff documents of consecutive parts of one AI agent session (oldest first) into "
	"one. Keep the same eight sections, in the same order, each a Markdown heading \"## NAME\" followed by "
	"\"- \" bullet lines: User instructions and constraints, Decisions made, Tasks in progress, Pending "
	"actions and unanswered tool calls, Key tool results, Files touched, Open questions, Declared losses. "
	"Later parts override earlier ones where they conflict (a task done later is no longer in progress). "
	"Keep exact paths, identifiers, numbers and errors; merge the declared losses. Write only the document.";

/* Tokens a one-shot request with this system and user text costs the summarizer. */
static int request_tokens(uint64_t *out, const ho_llm *l, const char *system, const char *user)
{
	size_t a = 0, b = 0;
	int error;
	if ((error = cmv_model_count(&a, NULL, l->model, l->tok, system, strlen(system))) < 0 ||
	    (error = cmv_model_count(&b, NULL, l->model, l->tok, user, strlen(user))) < 0)
		return error;
	*out = a + b + l->model->per_request + 2u * l->model->per_message + 2u * l->model->per_block + 16;
	return 0;
}

/* What one request may carry: the window less the output asked for, less the margin the count may be off. */
static uint64_t request_limit(const ho_llm *l)
{
	uint64_t w = l->model->context_window;
	uint64_t room = w > l->max_tokens ? w - l->max_tokens : 0;
	return (uint64_t)((double)room * (1.0 - l->model->margin));
}

static int call(cmv_buf *out, ho_llm *l, const char *system, const char *user)
{
	uint64_t need = 0;
	cmv_llm_usage u;
	int error;

	if ((error = request_tokens(&need, l, system, user)) < 0)
		return error;
	if (need > request_limit(l))
		return cmv_error__set(CMV_EBUDGET, "a summarizer request of %llu tokens would pass %s's limit of %llu",
				      (unsigned long long)need, l->model->id, (unsigned long long)request_limit(l));
	if ((error = cmv_llm_complete(out, &u, l->llm, system, user)) < 0)
		return error;
	l->passes++;
	l->in_tokens += u.input_tokens;
	l->out_tokens += u.output_tokens;
	if (need > l->largest)
		l->largest = need;
	return 0;
}

/* Split the transcript into parts that each fit one request, by messages, and by characters inside a huge one. */
static int chunks(cJSON *parts, ho_llm *l, const cJSON *msgs, size_t from, size_t to, uint64_t part_tokens)
{
	cmv_buf cur = CMV_BUF_INIT(CMV_BUF_CONTENT), one = CMV_BUF_INIT(CMV_BUF_CONTENT);
	uint64_t cur_tokens = 0;
	size_t i = 0;
	int error = 0;

	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++) {
		if (i < from || i >= to)
			continue;
		cmv_buf_clear(&one);
		if ((error = ho_message_text(&one, m, 20000)) < 0 || !one.size)
			continue;
		size_t n = 0;
		if ((error = cmv_model_count(&n, NULL, l->model, l->tok, one.ptr, one.size)) < 0)
			break;
		if (cur_tokens + n > part_tokens && cur.size) {
			if (!cJSON_AddItemToArray(parts, cJSON_CreateString(cur.ptr))) {
				error = CMV_ENOMEM;
				break;
			}
			cmv_buf_clear(&cur);
			cur_tokens = 0;
		}
		if (n > part_tokens) {
			/* one message larger than a part: cut it, by characters in proportion */
			size_t step = (size_t)((double)one.size * (double)part_tokens / (double)n * 0.9);
			if (step < 64)
				step = 64;
			for (size_t off = 0; off < one.size && !error; off += step) {
				size_t len = off + step > one.size ? one.size - off : step;
				while (off + len < one.size && len && ((unsigned char)one.ptr[off + len] & 0xC0) == 0x80)
					len--;
				char *piece = cmv__malloc(len + 1);
				if (!piece) {
					error = CMV_ENOMEM;
					break;
				}
				memcpy(piece, one.ptr + off, len);
				piece[len] = '\0';
				if (!cJSON_AddItemToArray(parts, cJSON_CreateString(piece)))
					error = CMV_ENOMEM;
				free(piece);
				if (len < step)
					off -= step - len; /* the cut moved back to a character boundary */
			}
			continue;
		}
		error = cmv_buf_put(&cur, one.ptr, one.size);
		cur_tokens += n;
	}
	if (!error && cur.size && !cJSON_AddItemToArray(parts, cJSON_CreateString(cur.ptr)))
		error = CMV_ENOMEM;
	cmv_buf_dispose(&cur);
	cmv_buf_dispose(&one);
	return error;
}

int ho_summarize(ho_doc *d, ho_llm *l, const cJSON *msgs, size_t from, size_t to)
{
	cJSON *parts = cJSON_CreateArray(), *docs = cJSON_CreateArray();
	cmv_buf user = CMV_BUF_INIT(CMV_BUF_CONTENT), reply = CMV_BUF_INIT(CMV_BUF_CONTENT);
	uint64_t sys_tokens = 0;
	int error;

	if (!parts || !docs) {
		error = CMV_ENOMEM;
		goto done;
	}
	/* the reply asked for is the output reserve every request is sized against */
	cmv_llm_set_max_tokens(l->llm, l->max_tokens);
	if ((error = request_tokens(&sys_tokens, l, summarize_prompt, "")) < 0)
		goto done;
	uint64_t limit = request_limit(l);
	if (limit <= sys_tokens + 256) {
		error = cmv_error__set(CMV_EBUDGET, "%s's window (%llu tokens) leaves no room for a transcript after "
				       "the %u-token reply", l->model->id, (unsigned long long)l->model->context_window,
				       l->max_tokens);
		goto done;
	}
	/* the framing line and the tags cost a few tokens beyond the part itself */
	uint64_t part_tokens = limit - sys_tokens - 64;
	if ((error = chunks(parts, l, msgs, from, to, part_tokens)) < 0)
		goto done;
	int n = cJSON_GetArraySize(parts);
	for (int i = 0; i < n && !error; i++) {
		cmv_buf_clear(&user);
		cmv_buf_printf(&user, "Session transcript, part %d of %d:\n<transcript>\n%s</transcript>", i + 1, n,
			       cJSON_GetArrayItem(parts, i)->valuestring);
		if ((error = call(&reply, l, summarize_prompt, user.ptr)) == 0 &&
		    !cJSON_AddItemToArray(docs, cJSON_CreateString(reply.ptr)))
			error = CMV_ENOMEM;
	}
	/* combine, in groups that fit a request, until one is left */
	uint64_t comb_sys = 0;
	if (!error)
		error = request_tokens(&comb_sys, l, combine_prompt, "");
	while (!error && cJSON_GetArraySize(docs) > 1) {
		cJSON *next = cJSON_CreateArray();
		int nd = cJSON_GetArraySize(docs), i = 0;
		if (!next) {
			error = CMV_ENOMEM;
			break;
		}
		while (i < nd && !error) {
			cmv_buf_clear(&user);
			cmv_buf_puts(&user, "Partial handoff documents, oldest first:\n");
			int first = i, k = 0;
			for (; i < nd; i++, k++) {
				size_t before = user.size;
				cmv_buf_printf(&user, "<part %d>\n%s\n</part %d>\n", k + 1, cJSON_GetArrayItem(docs, i)->valuestring,
					       k + 1);
				uint64_t need = 0;
				if ((error = request_tokens(&need, l, combine_prompt, user.ptr)) < 0)
					break;
				if (need > limit && i > first) {
					user.size = before;
					user.ptr[before] = '\0';
					break;
				}
			}
			if (error)
				break;
			if (i - first == 1) {
				/* alone in its group: it passes as it is */
				cJSON_AddItemToArray(next, cJSON_CreateString(cJSON_GetArrayItem(docs, first)->valuestring));
				continue;
			}
			if ((error = call(&reply, l, combine_prompt, user.ptr)) == 0 &&
			    !cJSON_AddItemToArray(next, cJSON_CreateString(reply.ptr)))
				error = CMV_ENOMEM;
		}
		if (!error && cJSON_GetArraySize(next) >= nd) {
			/* no group could merge two documents: keep the newest, declare the rest */
			error = cmv_error__set(CMV_EBUDGET, "%s's window cannot hold two partial handoff documents at once",
					       l->model->id);
		}
		cJSON_Delete(docs);
		docs = next;
	}
	if (!error && cJSON_GetArraySize(docs) == 1)
		error = ho_parse(d, docs->child->valuestring);
done:
	cJSON_Delete(parts);
	cJSON_Delete(docs);
	cmv_buf_dispose(&user);
	cmv_buf_dispose(&reply);
	return error < 0 ? (error == CMV_ENOMEM ? cmv_error__oom() : error) : 0;
}

/* ---- the fidelity check ----------------------------------------------------------------- */

static bool word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

/* `needle` occurs in hay as a whole token (not inside a longer word or number). */
static bool contains_token(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	const char *end = hay + hlen;
	for (const char *p = hay; p + nlen <= end; p++) {
		p = memmem(p, (size_t)(end - p), needle, nlen);
		if (!p)
			return false;
		bool left = p == hay || !word_char((unsigned char)p[-1]) || !word_char((unsigned char)needle[0]);
		bool right = p + nlen == end || !word_char((unsigned char)p[nlen]) || !word_char((unsigned char)needle[nlen - 1]);
		if (left && right)
			return true;
	}
	return false;
}

#define FIDELITY_MAX_ENTITIES 20000

int cmv_fidelity(double *coverage, size_t *total, size_t *found, cmv_buf *missing, const char *source,
		 size_t source_len, const char *summary, size_t summary_len)
{
	/*
	 * Paths (a slash inside, or a file name with an extension), numbers of
	 * two digits or more, identifiers (snake_case, camelCase, hex ids), and
	 * capitalized names in mid-sentence.
	 */
	static const char pattern[] =
		"(?:[\\w.~-]+/)+[\\w.-]+"
		"|\\b[\\w-]+\\.(?:c|h|cc|cpp|py|js|ts|tsx|go|rs|java|rb|md|json|jsonl|ya?ml|toml|txt|sh|sql|html|css)\\b"
		"|\\b\\d{2,}(?:[.:]\\d+)*\\b"
		"|\\b[A-Za-z][a-z0-9]*_[A-Za-z0-9_]+\\b"
		"|\\b[a-z]+[A-Z][A-Za-z0-9]+\\b"
		"|\\b[0-9a-f]{7,40}\\b"
		"|(?<=[a-z,] )[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*";
	static pcre2_code *re;
	pcre2_match_data *md = NULL;
	cmv__strmap seen = { 0 };
	size_t n_total = 0, n_found = 0, n_missing_listed = 0;
	int error = 0;

	if (!re) {
		int ec;
		PCRE2_SIZE eo;
		re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &ec,
				   &eo, NULL);
		if (!re)
			return cmv_error__set(CMV_ERROR, "the fidelity pattern does not compile (at %zu)", (size_t)eo);
		pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	}
	if (!(md = pcre2_match_data_create_from_pattern(re, NULL)))
		return cmv_error__oom();
	if (missing)
		cmv_buf_clear(missing);
	/* invalid UTF-8 in a source must not stop the check: PCRE2 is told to skip it */
	size_t off = 0;
	while (off < source_len && n_total < FIDELITY_MAX_ENTITIES) {
		int rc = pcre2_match(re, (PCRE2_SPTR)source, source_len, off, 0, md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			/* a bad byte: step over it */
			off++;
			continue;
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t s = ov[0], e = ov[1];
		off = e > s ? e : s + 1;
		if (e - s < 3 || e - s > 200)
			continue;
		char key[201];
		memcpy(key, source + s, e - s);
		key[e - s] = '\0';
		if (cmv__strmap_get(&seen, key, NULL, NULL))
			continue;
		if ((error = cmv__strmap_put(&seen, key, 1, NULL)) < 0)
			break;
		n_total++;
		if (contains_token(summary, summary_len, key, e - s)) {
			n_found++;
		} else if (missing && n_missing_listed < 40) {
			cmv_buf_printf(missing, "%s\n", key);
			n_missing_listed++;
		}
	}
	pcre2_match_data_free(md);
	cmv__strmap_dispose(&seen);
	if (error < 0)
		return error;
	if (total)
		*total = n_total;
	if (found)
		*found = n_found;
	if (coverage)
		*coverage = n_total ? (double)n_found / (double)n_total : 1.0;
	return 0;
}

/* ---- a whole conversation's handoff ---------------------------------------------------- */

int ho_transcript(cmv_buf *out, const cJSON *msgs, size_t from, size_t to)
{
	size_t i = 0;
	int error = 0;
	cmv_buf_clear(out);
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++)
		if (i >= from && i < to)
			error = ho_message_text(out, m, 0);
	return error;
}

int ho_fidelity_source(cmv_buf *out, const cJSON *msgs, size_t from, size_t to)
{
	static pcre2_code *re;
	int error;

	if ((error = ho_transcript(out, msgs, from, to)) < 0)
		return error;
	if (!re) {
		int ec;
		PCRE2_SIZE eo;
		/* "[calls Read, id toolu_01..]", "[result of call_x]", and "[2204 chars, 48 lines; recall ecd9902]" */
		static const char pat[] = "(?:, id [^\\]\\s]+\\])|(?:\\[result of [^\\]\\s,]+)|(?:\\[\\d+ chars(?:, \\d+ lines)?; recall [0-9a-f]{7,}\\])";
		re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
		if (!re)
			return cmv_error__set(CMV_ERROR, "the fidelity source pattern does not compile (at %zu)", (size_t)eo);
	}
	if (!out->size)
		return 0;
	PCRE2_SIZE len = out->size;
	char *dst = cmv__malloc(out->size + 1);
	if (!dst)
		return CMV_ENOMEM;
	int rc = pcre2_substitute(re, (PCRE2_SPTR)out->ptr, out->size, 0, PCRE2_SUBSTITUTE_GLOBAL | PCRE2_NO_UTF_CHECK,
				  NULL, NULL, (PCRE2_SPTR) "]", 1, (PCRE2_UCHAR *)dst, &len);
	if (rc >= 0)
		error = cmv_buf_set(out, dst, len);
	free(dst);
	return error;
}

int cmv_handoff(cmv_buf *out, cmv_handoff_stats *stats, cmv_repo *repo, const cmv_id *tip,
		const cmv_handoff_options *opts)
{
	cmv_handoff_stats st;
	conv raw;
	cmv_render_stats rst;
	ho_doc d;
	cmv_buf src = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error;

	CMV_ASSERT_ARG(out);
	CMV_ASSERT_ARG(repo);
	CMV_ASSERT_ARG(tip);
	CMV_ASSERT_ARG(opts);
	if (!opts->model || !opts->tok)
		return cmv_error__set(CMV_EINVALID, "a handoff needs the model whose tokens it counts");
	if (opts->llm && (!opts->summarizer || !opts->summarizer_tok))
		return cmv_error__set(CMV_EINVALID, "a summarizer needs its profile and tokenizer");
	memset(&st, 0, sizeof(st));
	ho_init(&d);
	if ((error = cmv__conv_load_raw(&raw, &rst, repo, tip, 0)) < 0)
		return error;
	size_t n = (size_t)cJSON_GetArraySize(raw.messages);
	uint64_t max_tokens = opts->max_tokens ? opts->max_tokens : 4096;
	if (opts->llm) {
		ho_llm l = { opts->llm, opts->summarizer, opts->summarizer_tok, 0, 0, 0, 0, 0 };
		l.max_tokens = (uint32_t)(max_tokens < opts->summarizer->max_output ? max_tokens : opts->summarizer->max_output);
		error = ho_summarize(&d, &l, raw.messages, 0, n);
		st.passes = l.passes;
		st.llm_input_tokens = l.in_tokens;
		st.llm_output_tokens = l.out_tokens;
	} else {
		error = ho_extract(&d, raw.messages, 0, n, NULL, 0);
	}
	if (!error) {
		char head[160];
		snprintf(head, sizeof(head), "# Handoff document\nThe conversation so far (%zu messages), %s.", n,
			 opts->llm ? "summarized" : "extracted from the store");
		d.header = cmv__strdup(head);
		error = ho_fit(out, &st.tokens, &d, opts->model, opts->tok, max_tokens);
	}
	if (!error && !(error = ho_fidelity_source(&src, raw.messages, 0, n)))
		error = cmv_fidelity(&st.coverage, &st.entities, &st.entities_found, NULL, src.ptr ? src.ptr : "", src.size,
				     out->ptr, out->size);
	if (stats)
		*stats = st;
	ho_dispose(&d);
	cmv__conv_dispose(&raw);
	cmv_buf_dispose(&src);
	return error;
}
