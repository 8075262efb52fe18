/* SPDX-License-Identifier: MIT */
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
 *
 * This file holds the document model (items, rendering, fitting), the
 * reading of messages as text that the builders share, and the entry point
 * cmv_handoff. The builders are handoff_extract.c (from the messages
 * themselves) and handoff_llm.c (an LLM, in passes); the check, fidelity.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include "formats/formats_int.h"
#include <cmv/compaction.h>
#include <cmv/ledger.h>
#include "handoff.h"

void cmv_handoff_options_init(cmv_handoff_options *opts)
{
	static const cmv_handoff_options init = CMV_HANDOFF_OPTIONS_INIT;
	*opts = init;
}

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

void cmv_compaction__ho_init(ho_doc *d)
{
	memset(d, 0, sizeof(*d));
}

void cmv_compaction__ho_dispose(ho_doc *d)
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
int cmv_compaction__ho_add(ho_doc *d, int s, const char *text, size_t max)
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
			return cmv_error__oom();
		d->items[s] = g;
		d->cap[s] = ncap;
	}
	char *item = cmv__malloc(len + mlen + 1);
	if (!item)
		return cmv_error__oom();
	memcpy(item, text, len);
	memcpy(item + len, mark, mlen);
	item[len + mlen] = '\0';
	d->items[s][d->n[s]++] = item;
	return 0;
}

int cmv_compaction__ho_render(cmv_buf *out, const ho_doc *d)
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

void cmv_compaction__ho_drop_item(ho_doc *d, int s, size_t i)
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
		cmv_compaction__ho_drop_item(d, multi, multi == 0 && d->n[0] > 2 ? 1 : 0);
		return true;
	}
	static const int order[] = { 4, 5, 6, 1, 2, 3, 0 };
	for (size_t k = 0; k < CMV_ARRAY_SIZE(order); k++)
		if (d->n[order[k]]) {
			cmv_compaction__ho_drop_item(d, order[k], 0);
			return true;
		}
	for (size_t i = d->n[L]; i-- > 1;)
		if (!is_drop_note(d->items[L][i])) {
			cmv_compaction__ho_drop_item(d, L, i);
			d->dropped[L]--; /* a loss line is not content that was left out */
			return true;
		}
	return false;
}

int cmv_compaction__ho_fit(cmv_buf *out, uint64_t *tokens, ho_doc *d, const cmv_model *model, cmv_tok *tok, uint64_t max_tokens)
{
	size_t n = 0;
	int error;

	for (int round = 0; round < 64; round++) {
		/* what was left out for room is declared, once, with the counts */
		cmv_compaction__ho_doc_note_drops(d);
		if ((error = cmv_compaction__ho_render(out, d)) < 0)
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

void cmv_compaction__ho_doc_note_drops(ho_doc *d)
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
	cmv_compaction__ho_add(d, L, line, 0);
}

/* ---- reading a conversation -------------------------------------------------- */

const char *cmv_compaction__ho_block_type(const cJSON *b)
{
	const char *t = cmv_formats__cj_str(b, "type");
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

int cmv_compaction__ho_message_text(cmv_buf *out, const cJSON *m, size_t cap)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	cmv_buf tmp = CMV_BUF_INIT(CMV_BUF_CONTENT);
	const char *role = cmv_formats__cj_str(m, "role") ? cmv_formats__cj_str(m, "role") : "?";
	int error = 0;

	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b && !error; b = b->next) {
		const char *t = cmv_compaction__ho_block_type(b);
		if (!strcmp(t, "text")) {
			if (!(error = cmv_buf_printf(out, "[%s] ", role)))
				error = put_capped(out, cmv_formats__cj_str(b, "text") ? cmv_formats__cj_str(b, "text") : "", cap);
		} else if (!strcmp(t, "tool_use")) {
			char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
			if (!(error = cmv_buf_printf(out, "[%s calls %s, id %s] ", role, cmv_formats__cj_str(b, "name") ? cmv_formats__cj_str(b, "name") : "?",
						     cmv_formats__cj_str(b, "id") ? cmv_formats__cj_str(b, "id") : "?")))
				error = put_capped(out, in ? in : "{}", cap);
			cJSON_free(in);
		} else if (!strcmp(t, "tool_result")) {
			if (!(error = cmv__result_text(&tmp, cJSON_GetObjectItemCaseSensitive(b, "content"))) &&
			    !(error = cmv_buf_printf(out, "[result of %s%s] ", cmv_formats__cj_str(b, "tool_use_id") ? cmv_formats__cj_str(b, "tool_use_id") : "?",
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

bool cmv_compaction__ho_user_turn(const cJSON *m)
{
	if (!cmv_formats__cj_str(m, "role") || strcmp(cmv_formats__cj_str(m, "role"), "user"))
		return false;
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
	bool text = false;
	for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
		if (!strcmp(cmv_compaction__ho_block_type(b), "tool_result"))
			return false;
		if (!strcmp(cmv_compaction__ho_block_type(b), "text") || !strcmp(cmv_compaction__ho_block_type(b), "image"))
			text = true;
	}
	return text;
}

int cmv_compaction__ho_transcript(cmv_buf *out, const cJSON *msgs, size_t from, size_t to)
{
	size_t i = 0;
	int error = 0;
	cmv_buf_clear(out);
	for (const cJSON *m = msgs->child; m && !error; m = m->next, i++)
		if (i >= from && i < to)
			error = cmv_compaction__ho_message_text(out, m, 0);
	return error;
}

/* ---- a whole conversation's handoff ---------------------------------------------------- */

/*
 * The pending actions the ledger knows: calls with side effects that have no
 * result, last in their section (a document cut for room drops a section's
 * first items first, so these go last).
 */
static int ledger_pending(ho_doc *d, cmv_repo *repo, const cmv_id *tip)
{
	cmv_buf text = CMV_BUF_INIT(CMV_BUF_CONTENT), line = CMV_BUF_INIT(CMV_BUF_CONTENT);
	cmv_ledger *l = NULL;
	int error;

	if ((error = cmv_ledger_build(&l, repo, tip, NULL)) < 0 || (error = cmv_ledger_in_flight_text(&text, l, 20)) < 0)
		goto done;
	for (char *p = text.size ? text.ptr : NULL, *nl; p && !error; p = nl ? nl + 1 : NULL) {
		if ((nl = strchr(p, '\n')))
			*nl = '\0';
		cmv_buf_clear(&line);
		if ((error = cmv_buf_printf(&line, "In flight, outcome unknown (it may have run in full, in part or not at "
						   "all; check before issuing it again): %s", p)) == 0)
			error = cmv_compaction__ho_add(d, 3, line.ptr, 0);
	}
done:
	cmv_ledger_free(l);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&line);
	return error;
}

static int handoff_filled(cmv_buf *out, cmv_handoff_stats *stats, cmv_repo *repo, const cmv_id *tip,
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
	cmv_compaction__ho_init(&d);
	if ((error = cmv__conv_load_raw(&raw, &rst, repo, tip, 0)) < 0)
		return error;
	size_t n = (size_t)cJSON_GetArraySize(raw.messages);
	uint64_t max_tokens = opts->max_tokens ? opts->max_tokens : 4096;
	if (opts->llm) {
		ho_llm l = { opts->llm, opts->summarizer, opts->summarizer_tok, 0, 0, 0, 0, 0 };
		l.max_tokens = (uint32_t)(max_tokens < opts->summarizer->max_output ? max_tokens : opts->summarizer->max_output);
		error = cmv_compaction__ho_summarize(&d, &l, raw.messages, 0, n);
		st.passes = l.passes;
		st.llm_input_tokens = l.in_tokens;
		st.llm_output_tokens = l.out_tokens;
	} else {
		error = cmv_compaction__ho_extract(&d, raw.messages, 0, n, NULL, 0);
	}
	if (!error)
		error = ledger_pending(&d, repo, tip);
	if (!error) {
		char head[160];
		snprintf(head, sizeof(head), "# Handoff document\nThe conversation so far (%zu messages), %s.", n,
			 opts->llm ? "summarized" : "extracted from the store");
		d.header = cmv__strdup(head);
		error = cmv_compaction__ho_fit(out, &st.tokens, &d, opts->model, opts->tok, max_tokens);
	}
	if (!error && !(error = cmv_compaction__ho_fidelity_source(&src, raw.messages, 0, n)))
		error = cmv_fidelity(&st.coverage, &st.entities, &st.entities_found, NULL, src.ptr ? src.ptr : "", src.size,
				     out->ptr, out->size);
	if (stats)
		*stats = st;
	cmv_compaction__ho_dispose(&d);
	cmv__conv_dispose(&raw);
	cmv_buf_dispose(&src);
	return error;
}

int cmv_handoff(cmv_buf *out, cmv_handoff_stats *stats, cmv_repo *repo, const cmv_id *tip,
		const cmv_handoff_options *opts)
{
	int error = handoff_filled(out, stats, repo, tip, opts);
	if (stats)
		stats->version = CMV_HANDOFF_STATS_VERSION;
	return error;
}
