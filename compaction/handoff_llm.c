/* SPDX-License-Identifier: MIT */
/*
 * The LLM builder of a handoff document: the transcript in parts that each
 * fit one request to the summarizer, a partial document per part, then the
 * partial documents merged in groups that fit, until one is left; that one
 * is parsed back into the fixed sections (cmv_compaction__ho_parse).
 *
 * Every request is counted before it is sent: it must fit the summarizer's
 * window less the reply it asks for and less the margin its count may be
 * off (request_limit). A request that cannot be made to fit is an error
 * (CMV_EBUDGET), never a request the provider would cut or refuse.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/compaction.h>
#include "handoff.h"

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

int cmv_compaction__ho_parse(ho_doc *d, const char *reply)
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
				error = cmv_compaction__ho_add(d, cur, item.ptr, 2000);
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
				error = cmv_compaction__ho_add(d, cur, item.ptr, 2000);
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
		error = cmv_compaction__ho_add(d, cur, item.ptr, 2000);
	/* an "(none)" item says nothing */
	for (int s = 0; s < CMV_HANDOFF_NSECTIONS; s++)
		for (size_t i = 0; i < d->n[s];)
			if (!strcmp(d->items[s][i], "(none)") || !strcmp(d->items[s][i], "None")) {
				cmv_compaction__ho_drop_item(d, s, i);
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
		if ((error = cmv_compaction__ho_message_text(&one, m, 20000)) < 0 || !one.size)
			continue;
		size_t n = 0;
		if ((error = cmv_model_count(&n, NULL, l->model, l->tok, one.ptr, one.size)) < 0)
			break;
		if (cur_tokens + n > part_tokens && cur.size) {
			if (!cJSON_AddItemToArray(parts, cJSON_CreateString(cur.ptr))) {
				error = cmv_error__oom();
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
					error = cmv_error__oom();
					break;
				}
				memcpy(piece, one.ptr + off, len);
				piece[len] = '\0';
				if (!cJSON_AddItemToArray(parts, cJSON_CreateString(piece)))
					error = cmv_error__oom();
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
		error = cmv_error__oom();
	cmv_buf_dispose(&cur);
	cmv_buf_dispose(&one);
	return error;
}

int cmv_compaction__ho_summarize(ho_doc *d, ho_llm *l, const cJSON *msgs, size_t from, size_t to)
{
	cJSON *parts = cJSON_CreateArray(), *docs = cJSON_CreateArray();
	cmv_buf user = CMV_BUF_INIT(CMV_BUF_CONTENT), reply = CMV_BUF_INIT(CMV_BUF_CONTENT);
	uint64_t sys_tokens = 0;
	int error;

	if (!parts || !docs) {
		error = cmv_error__oom();
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
			error = cmv_error__oom();
	}
	/* combine, in groups that fit a request, until one is left */
	uint64_t comb_sys = 0;
	if (!error)
		error = request_tokens(&comb_sys, l, combine_prompt, "");
	while (!error && cJSON_GetArraySize(docs) > 1) {
		cJSON *next = cJSON_CreateArray();
		int nd = cJSON_GetArraySize(docs), i = 0;
		if (!next) {
			error = cmv_error__oom();
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
				error = cmv_error__oom();
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
		error = cmv_compaction__ho_parse(d, docs->child->valuestring);
done:
	cJSON_Delete(parts);
	cJSON_Delete(docs);
	cmv_buf_dispose(&user);
	cmv_buf_dispose(&reply);
	return error < 0 ? (error == CMV_ENOMEM ? cmv_error__oom() : error) : 0;
}
