/* SPDX-License-Identifier: MIT */
/*
 * Trim: a structurally lossless rewrite of a branch (docs/trim.md).
 *
 * Trim writes a new branch whose nodes derive from the originals
 * (`derived_from` edges). Every user and assistant text after the last
 * real compaction boundary stays verbatim; tool calls keep their id, name
 * and small inputs; every tool result keeps its pairing. Large tool
 * results, large tool input strings, images and thinking become short
 * stubs or go; UI-only copies, progress, file-history and queue records
 * go; what came before the last compaction goes. A stub names what was
 * there and the id that brings it back (`cmv recall ID`, cmv_recall()).
 * Nothing is deleted: the originals stay in the store.
 */
#ifndef CMV_COMPACTION_H
#define CMV_COMPACTION_H

#include "common.h"
#include "dag.h"
#include "model.h"
#include "pager.h"
#include "tok.h"

/** Default and smallest stub threshold, in characters (claude-code-cmv's). */
#define CMV_TRIM_THRESHOLD_DEFAULT 500
#define CMV_TRIM_THRESHOLD_MIN 50

/** The rules, in report order. */
typedef enum {
	CMV_TRIM_PRE_BOUNDARY = 0, /**< records before the last compaction boundary */
	CMV_TRIM_TOOL_RESULTS,     /**< large tool results, stubbed */
	CMV_TRIM_TOOL_INPUTS,      /**< large tool input strings (nested ones too), stubbed */
	CMV_TRIM_IMAGES,           /**< images anywhere, stubbed */
	CMV_TRIM_THINKING,         /**< thinking and redacted_thinking blocks, dropped */
	CMV_TRIM_UI_COPIES,        /**< Claude Code's UI-only toolUseResult copies, dropped */
	CMV_TRIM_PROGRESS,         /**< progress records, dropped */
	CMV_TRIM_FILE_HISTORY,     /**< file-history-snapshot records, dropped */
	CMV_TRIM_QUEUE,            /**< queue-operation records, dropped */
	CMV_TRIM_USAGE,            /**< usage figures of the untrimmed context, dropped */
	CMV_TRIM_ORPHANS,          /**< tool results whose call is gone, dropped */
	CMV_TRIM_EMPTY,            /**< records left with no content, dropped */
	CMV_TRIM_UNANSWERED,       /**< calls with no result, answered with an error result (adds) */
	CMV_TRIM_SUPERSEDED,       /**< state-snapshot inputs (a TodoWrite list) restated by a later call, stubbed */
	CMV_TRIM_RULES
} cmv_trim_rule;

/** The rule's name in reports ("tool_results"). */
CMV_EXTERN(const char *) cmv_trim_rule_name(cmv_trim_rule rule);

enum cmv_trim_flags {
	/** Do everything, report, then roll back: the store is unchanged. */
	CMV_TRIM_DRY_RUN = (1u << 0),
	/**
	 * The session is live (an agent is appending to it, as in a hook): the
	 * last message record and what follows it are kept as they are, so the
	 * agent's next line still hangs from a uuid that exists, and no call is
	 * answered, since its result may still be on its way.
	 */
	CMV_TRIM_LIVE = (1u << 1),
};

typedef struct cmv_trim_options {
	unsigned int version;
	/** Stub content over this many characters; 0: the default. Below the minimum: CMV_EINVALID. */
	size_t threshold;
	/** The new branch (required unless DRY_RUN); it must not exist. */
	const char *branch;
	/** The ref the branch is made from, recorded as its origin (may be NULL). */
	const char *from_ref;
	unsigned int flags;       /**< cmv_trim_flags */
	/**
	 * The model whose tokens the report counts, and its tokenizer; both
	 * NULL: no token figures. The request counted is the branch rendered
	 * for the model's API: what the model is sent on resume.
	 */
	const cmv_model *model;
	cmv_tok *tok;
} cmv_trim_options;
#define CMV_TRIM_OPTIONS_VERSION 1
#define CMV_TRIM_OPTIONS_INIT { CMV_TRIM_OPTIONS_VERSION, 0, NULL, NULL, 0, NULL, NULL }

typedef struct cmv_trim_rule_stats {
	size_t items;     /**< blocks, fields or records */
	int64_t bytes;    /**< session bytes removed (negative: added) */
	int64_t tokens;   /**< tokens removed from what the model is sent (negative: added) */
} cmv_trim_rule_stats;

typedef struct cmv_trim_report {
	cmv_id head;              /**< the trimmed branch's tip */
	size_t threshold;
	size_t records_before, records_after;
	size_t untrimmed_records; /**< records of formats trim has no rules for, copied as they are */
	uint64_t bytes_before, bytes_after;   /**< the session as exported */
	uint64_t tokens_before, tokens_after; /**< the rendered request, in the model's tokens */
	bool tokens_exact;
	cmv_trim_rule_stats rules[CMV_TRIM_RULES];
} cmv_trim_report;

/**
 * Trim the conversation ending at `tip` into a new branch.
 * @return 0, CMV_EINVALID (bad threshold, no branch name), CMV_EEXISTS (the
 *         branch exists), CMV_ENOTFOUND, CMV_ECORRUPT, CMV_EIO, CMV_ELOCKED.
 *         On error nothing was written.
 */
CMV_EXTERN(int) cmv_trim(cmv_trim_report *out, cmv_repo *repo, const cmv_id *tip, const cmv_trim_options *opts);

#endif
