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
#include "buf.h"
#include "dag.h"
#include "llm.h"
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
/** The defaults, as CMV_TRIM_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_trim_options_init(cmv_trim_options *opts);

typedef struct cmv_trim_rule_stats {
	size_t items;     /**< blocks, fields or records */
	int64_t bytes;    /**< session bytes removed (negative: added) */
	int64_t tokens;   /**< tokens removed from what the model is sent (negative: added) */
} cmv_trim_rule_stats;

#define CMV_TRIM_REPORT_VERSION 1
typedef struct cmv_trim_report {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_TRIM_REPORT_VERSION) */
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

/* ---- summaries, handoff documents and the pre-migration job (docs/compaction.md) ---- */

/**
 * The handoff document's sections, in order: whoever writes it (an LLM or
 * the extractive builder), it has these headings and no others.
 */
CMV_EXTERN(const char *const *) cmv_handoff_sections(void);
#define CMV_HANDOFF_NSECTIONS 8

typedef struct cmv_handoff_options {
	unsigned int version;
	/** Whose tokens max_tokens counts (and its tokenizer); both required. */
	const cmv_model *model;
	cmv_tok *tok;
	/** Longest document, in the model's tokens; 0: 4096. */
	uint64_t max_tokens;
	/** The summarizer (NULL: the extractive builder, deterministic, no network). */
	cmv_llm *llm;
	const cmv_model *summarizer; /**< with llm: its profile (window, output reserve) */
	cmv_tok *summarizer_tok;     /**< with llm: its tokenizer */
} cmv_handoff_options;
#define CMV_HANDOFF_OPTIONS_VERSION 1
#define CMV_HANDOFF_OPTIONS_INIT { CMV_HANDOFF_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL }
/** The defaults, as CMV_HANDOFF_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_handoff_options_init(cmv_handoff_options *opts);

#define CMV_HANDOFF_STATS_VERSION 1
typedef struct cmv_handoff_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_HANDOFF_STATS_VERSION) */
	unsigned int passes;       /**< summarizer calls (0: extractive) */
	uint64_t tokens;           /**< the document, in opts->model's tokens */
	uint64_t llm_input_tokens, llm_output_tokens; /**< as the endpoint reported */
	size_t entities, entities_found; /**< the fidelity check (cmv_fidelity) */
	double coverage;
} cmv_handoff_stats;

/**
 * The handoff document for the conversation ending at `tip`: what a new
 * runtime needs, in the fixed sections, within opts->max_tokens.
 * @return 0, CMV_EINVALID (bad options), CMV_ENOTFOUND, CMV_ETRANSPORT and
 *         CMV_ETOOBIG (the summarizer failed), CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_handoff(cmv_buf *out, cmv_handoff_stats *stats, cmv_repo *repo, const cmv_id *tip,
			    const cmv_handoff_options *opts);

/**
 * The fidelity check: the paths, numbers, identifiers and named entities
 * of `source` that `summary` does not contain (its declared-loss list is
 * part of it). `missing` (may be NULL) gets the first few, one per line.
 * @param coverage found / total (1 when source has none)
 */
CMV_EXTERN(int) cmv_fidelity(double *coverage, size_t *total, size_t *found, cmv_buf *missing, const char *source,
			     size_t source_len, const char *summary, size_t summary_len);

enum cmv_compact_flags {
	/** Do everything, report, then roll back: the store is unchanged. */
	CMV_COMPACT_DRY_RUN = (1u << 0),
};

typedef struct cmv_compact_options {
	unsigned int version;
	/** The new branch (required); it must not exist. */
	const char *branch;
	/** The ref compacted, recorded as the branch's origin (may be NULL). */
	const char *from_ref;
	/** The model the result must fit (required) and its tokenizer (required). */
	const cmv_model *target;
	cmv_tok *tok;
	/** Tokens the request may use; 0: cmv_model_input_budget(target). Never above it. */
	uint64_t budget;
	/** The summarizer client; NULL: the extractive handoff (offline, deterministic). */
	cmv_llm *llm;
	const cmv_model *summarizer; /**< with llm */
	cmv_tok *summarizer_tok;     /**< with llm */
	size_t trim_threshold;       /**< 0: CMV_TRIM_THRESHOLD_DEFAULT */
	unsigned int flags;          /**< cmv_compact_flags */
} cmv_compact_options;
#define CMV_COMPACT_OPTIONS_VERSION 1
#define CMV_COMPACT_OPTIONS_INIT { CMV_COMPACT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, 0, 0 }
/** The defaults, as CMV_COMPACT_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_compact_options_init(cmv_compact_options *opts);

#define CMV_COMPACT_REPORT_VERSION 1
typedef struct cmv_compact_report {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_COMPACT_REPORT_VERSION) */
	cmv_id head;                /**< the new branch's tip */
	cmv_id summary;             /**< the summary node (none when nothing was summarized) */
	uint64_t budget;
	uint64_t tokens_before;     /**< the branch as it was, rendered for the target */
	uint64_t tokens_trimmed;    /**< after the trim stage */
	uint64_t tokens_after;      /**< the new branch, rendered for the target */
	uint64_t summary_tokens;
	bool fits;                  /**< tokens_after <= budget */
	size_t problems;            /**< the provider checker's findings on the result (0: passes) */
	/**
	 * 1: the trim was enough; 2: trim and a summary; 3: the system prompts
	 * alone left no room, and were abridged too (the whole text is a recall away)
	 */
	unsigned int stage;
	unsigned int passes;        /**< summarizer calls (0: extractive or none) */
	size_t covered_nodes, kept_nodes;
	size_t covered_messages, kept_messages;
	size_t entities, entities_found;
	double coverage;            /**< the fidelity check; 1 when nothing was summarized */
	uint64_t llm_input_tokens, llm_output_tokens;
	/* the capability check */
	size_t tool_calls, images, thinking;
	char *tools_used;           /**< comma-separated tool names, or "" (owned) */
	bool tools_as_text;         /**< the target has no tool calling: calls and results are text */
	bool images_dropped;        /**< the target takes no images */
	char recall[CMV_ID_HEXSZ + 1]; /**< the id that recalls the covered messages, or "" */
	char system_recall[CMV_ID_HEXSZ + 1]; /**< stage 3: the id that recalls the whole system prompt */
	/**
	 * The capability check's ledger (cmv_ledger_build on the source): calls
	 * with side effects and no result, whose outcome is unknown, one line
	 * each (cmv_ledger_in_flight_text; owned, "" when none).
	 */
	size_t in_flight_effects;
	char *in_flight;
} cmv_compact_report;

CMV_EXTERN(void) cmv_compact_report_dispose(cmv_compact_report *rep);

/**
 * The pre-migration job: trim, then page, then summarize only what still
 * does not fit. The result is a new branch whose rendering for the target
 * fits the budget (counted exactly in the target's tokens) and passes the
 * provider checker. The summary node `covers` the nodes it replaces, which
 * stay in the store (cmv_uncompact, and cmv_recall on the id it shows).
 * Recorded on the branch: an event, the `compact` note and the target as
 * its LLM (a new usage segment).
 * @return 0, CMV_EINVALID, CMV_EEXISTS (the branch exists), CMV_EBUDGET
 *         (nothing that keeps the request valid fits: the message says why),
 *         CMV_ETRANSPORT (the summarizer failed), CMV_ENOTFOUND, CMV_EIO.
 *         On error the store is as it was.
 */
CMV_EXTERN(int) cmv_compact(cmv_compact_report *rep, cmv_repo *repo, const cmv_id *tip,
			    const cmv_compact_options *opts);

/**
 * The conversation a compacted branch came from: every summary replaced by
 * the nodes it covers and every rewritten node by its original.
 * @param out the original tip
 * @param restored nodes checked on the way (may be NULL)
 * @return 0, CMV_EINVALID (`tip` is not a compacted conversation),
 *         CMV_ECORRUPT (its edges do not lead back to one conversation)
 */
CMV_EXTERN(int) cmv_uncompact(cmv_id *out, size_t *restored, cmv_repo *repo, const cmv_id *tip);

#endif
