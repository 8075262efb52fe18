/* SPDX-License-Identifier: MIT */
/*
 * Internal to compaction: the handoff document as items under the fixed
 * sections (handoff.c), its two builders (handoff_extract.c, handoff_llm.c)
 * and the fidelity check's source (fidelity.c).
 */
#ifndef CMV_COMPACTION_HANDOFF_H
#define CMV_COMPACTION_HANDOFF_H

#include <cjson/cJSON.h>
#include <cmv/compaction.h>

typedef struct {
	char *header;                          /* the lines above the first section (owned), or NULL */
	char **items[CMV_HANDOFF_NSECTIONS];
	size_t n[CMV_HANDOFF_NSECTIONS], cap[CMV_HANDOFF_NSECTIONS];
	size_t dropped[CMV_HANDOFF_NSECTIONS]; /* left out for room */
	size_t noted;                          /* drops already declared */
} ho_doc;

void cmv_compaction__ho_init(ho_doc *d);
void cmv_compaction__ho_dispose(ho_doc *d);
/* Add an item to section s (at most max bytes, 0: all); a repeat is skipped. */
int cmv_compaction__ho_add(ho_doc *d, int s, const char *text, size_t max);
int cmv_compaction__ho_render(cmv_buf *out, const ho_doc *d);
/* Remove item i of section s, counted as left out for room (undo the count if it is not). */
void cmv_compaction__ho_drop_item(ho_doc *d, int s, size_t i);
/* Declare in the losses what was dropped for room. */
void cmv_compaction__ho_doc_note_drops(ho_doc *d);
/* Render within max_tokens of model, dropping items as needed (and declaring them). */
int cmv_compaction__ho_fit(cmv_buf *out, uint64_t *tokens, ho_doc *d, const cmv_model *model, cmv_tok *tok, uint64_t max_tokens);

/* A neutral content block's type, "" when it has none. */
const char *cmv_compaction__ho_block_type(const cJSON *b);
/* Neutral messages [from, to) as plain text, one line per block (each cut at cap bytes; 0: whole). */
int cmv_compaction__ho_message_text(cmv_buf *out, const cJSON *m, size_t cap);
int cmv_compaction__ho_transcript(cmv_buf *out, const cJSON *msgs, size_t from, size_t to);
/*
 * What the fidelity check reads: the transcript without what is not
 * content (tool-call ids, and trim's stubs, whose bodies are a recall away).
 */
int cmv_compaction__ho_fidelity_source(cmv_buf *out, const cJSON *msgs, size_t from, size_t to);

/* A user message that says something (text or an image, no tool result): a turn starts there. */
bool cmv_compaction__ho_user_turn(const cJSON *m);

/* The extractive builder: from the messages themselves, no network, deterministic. */
int cmv_compaction__ho_extract(ho_doc *d, const cJSON *msgs, size_t from, size_t to, const char *recall, size_t covered_nodes);
/* An LLM's reply, parsed into the fixed sections. */
int cmv_compaction__ho_parse(ho_doc *d, const char *reply);

typedef struct {
	cmv_llm *llm;
	const cmv_model *model; /* the summarizer */
	cmv_tok *tok;
	uint32_t max_tokens;    /* asked for in each reply: the output reserve of every request */
	unsigned int passes;
	uint64_t in_tokens, out_tokens;
	uint64_t largest;       /* the largest request sent, in the summarizer's tokens */
} ho_llm;

/* Summarize messages [from, to) with an LLM, in parts that fit its window, then combine. */
int cmv_compaction__ho_summarize(ho_doc *d, ho_llm *l, const cJSON *msgs, size_t from, size_t to);

#endif
