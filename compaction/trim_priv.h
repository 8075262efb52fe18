/* SPDX-License-Identifier: MIT */
/*
 * Internal to trim: the one context its passes and its rules share, and the
 * functions they call across files. trim.c (the entry, the passes, the
 * report, the stubs every rule makes), trim_cc.c (Claude Code's records)
 * and trim_blocks.c (records rewritten by their blocks: Codex's, and
 * messages appended in cmv) are one module split by responsibility; nothing
 * here is for the rest of the library.
 *
 * Invariants every rule keeps (the design notes are in trim.c):
 *  - a record is either carried as it was (cmv_trim__carry) or written
 *    anew derived from its original; either way t->tail moves to it and
 *    t->rep->records_after counts it, unless the record is dropped;
 *  - whatever a rule saves is counted once, in t->rep->rules, by
 *    cmv_trim__rule_add;
 *  - every stub names a blob that is written before the record that
 *    shows it, and that gives back the exact original bytes.
 */
#ifndef CMV_COMPACTION_TRIM_PRIV_H
#define CMV_COMPACTION_TRIM_PRIV_H

#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/compaction.h>

/*
 * Tools whose input is the whole of some state, restated in full by every
 * call: all but the last call's copy say nothing the last one does not.
 * (Here, not in trim.c, so its size is known where the context is declared
 * and in every file that reads it.)
 */
static const struct {
	const char *tool, *key;
} trim_snapshot_inputs[] = {
	{ "TodoWrite", "todos" },
};

typedef struct {
	cmv_repo *repo;
	const cmv_trim_options *opts;
	cmv_trim_report *rep;
	size_t threshold;
	cmv__strmap calls;    /* call ids seen after the boundary */
	cmv__strmap results;  /* call ids with a result after the boundary */
	cmv__strmap remap;    /* uuid of a dropped record -> the uuid its children now hang from (NULL: none) */
	cmv_buf blob, text, stub;
	cmv_id tail;     /* the new branch's tip so far (none at first) */
	bool parent_kept; /* the new tip is the original parent of the next record */
	char last_uuid[128];
	/* calls of the last assistant message with no result anywhere after it */
	char **pending;
	size_t n_pending, cap_pending;
	char *last_snapshot[CMV_ARRAY_SIZE(trim_snapshot_inputs)]; /* the last call id of each snapshot tool */
	char pending_group[128];
	cJSON *pending_base; /* the call's record, for the fields an answer copies */
	/* blobs made for this record's stubs (an input string, a superseded list, an image inside a result) */
	cmv_id *held;
	size_t n_held, cap_held;
	bool live;          /* CMV_TRIM_LIVE */
	size_t index;       /* the record being rewritten, by position on the path */
	size_t frozen_from; /* live: records from here on are only relinked */
	cmv_id pending_from;
} trim_ctx;

/* ---- the report and the stubs (trim.c) ----------------------------------------- */

/* Count what a rule saved: items, bytes and the report model's tokens. */
void cmv_trim__rule_add(trim_ctx *t, cmv_trim_rule r, size_t items, int64_t bytes, int64_t tokens);
/* Tokens of text in the report's model (0 without one). */
int64_t cmv_trim__tokens_of(trim_ctx *t, const char *s, size_t len);
/* Tokens of a blob's bytes in the report's model (0 without one). */
int64_t cmv_trim__tokens_of_blob(trim_ctx *t, const cmv_id *blob);
/* The shortest prefix of `id` that names one object in the store, 7 hex digits at least. */
int cmv_trim__abbrev(char hex[CMV_ID_HEXSZ + 1], trim_ctx *t, const cmv_id *id);
/* Into t->stub: the stub for `len` bytes kept in blob `id` (media: an image of that type). */
int cmv_trim__make_stub(trim_ctx *t, const char *media, const char *data, size_t len, const cmv_id *id);
/* Write a record as it was, below the new tip. */
int cmv_trim__carry(trim_ctx *t, const cmv_node *n);

/* ---- Claude Code's records (trim_cc.c) ------------------------------------------ */

/* One Claude Code record, by its rules: stubbed, dropped, or carried; relinked either way. */
int cmv_trim__cc(trim_ctx *t, const cmv_node *n);
/* Answer the pending calls with an error result, in a Claude Code line after their message. */
int cmv_trim__answer_pending(trim_ctx *t);

/* ---- records rewritten by their blocks (trim_blocks.c) -------------------------- */

/* A record of a format with no rules of its own (a Codex rollout's): its large results stubbed in place. */
int cmv_trim__templated(trim_ctx *t, const cmv_node *n);
/* A message appended in cmv (no source record): the same rules, on its blocks. */
int cmv_trim__native(trim_ctx *t, const cmv_node *n);

#endif
