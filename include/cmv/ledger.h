/* SPDX-License-Identifier: MIT */
/**
 * The ledger of side effects (docs/ledger.md): for a conversation, every
 * tool call with its name, the hash of its normalized arguments, an
 * idempotency key and its state. Derived from the DAG on each call: nothing
 * is stored but the user's classification of tools (a store note).
 *
 *   key = xxh3-128("cmv-ledger-1" tool, normalized arguments, turn, occurrence)
 *
 * The turn is the number of user prompts from the root (a summary counts the
 * prompts it covers); the occurrence starts at 1 and grows when the same call
 * comes again in the turn after another call with side effects got its
 * result. So a re-issue of an interrupted or committed call (by any model, in
 * the same turn, with nothing done in between) has the same key, and a call
 * repeated on purpose after the world changed does not.
 *
 * Whether a tool has side effects comes from the tool: Claude Code's, Codex's,
 * Gemini CLI's and cmv's own tools are classified here; MCP tools by the
 * annotations of the branch's tool definitions (readOnlyHint,
 * destructiveHint); the user's classification (cmv_ledger_classify) comes
 * first. Anything else is "unknown", and treated as having side effects.
 */
#ifndef CMV_LEDGER_H
#define CMV_LEDGER_H

#include <stdbool.h>
#include "common.h"
#include "buf.h"
#include "dag.h"

typedef enum {
	CMV_EFFECT_NONE = 0,    /**< read-only: reads files, searches, plans */
	CMV_EFFECT_SIDE = 1,    /**< changes the world: writes, runs commands, sends */
	CMV_EFFECT_UNKNOWN = 2, /**< not classified: treated as SIDE */
} cmv_effect;

typedef enum {
	CMV_CALL_COMMITTED = 0,  /**< a result arrived (success or error) */
	CMV_CALL_IN_FLIGHT = 1,  /**< no result on this path: stopped, crashed or switched mid-call */
	CMV_CALL_SUPERSEDED = 2, /**< issued again later with the same key */
} cmv_call_state;

#define CMV_LEDGER_KEY_HEXSZ 32

typedef struct cmv_ledger_entry {
	const char *call_id;   /**< the provider's id of the call ("toolu_...", "call_...") */
	const char *name;      /**< the tool */
	const char *args;      /**< the normalized arguments (compact JSON with sorted keys, or the raw text) */
	char args_hash[CMV_LEDGER_KEY_HEXSZ + 1];
	char key[CMV_LEDGER_KEY_HEXSZ + 1]; /**< the idempotency key */
	cmv_call_state state;
	bool has_result;       /**< a result arrived (a superseded call may have one) */
	bool error;            /**< the result reported failure */
	cmv_effect effect;
	const char *effect_source; /**< "config", "mcp", "claude-code", "codex", "gemini-cli", "cmv", "unclassified" */
	size_t turn;           /**< 1-based user turn (0: before the first prompt) */
	unsigned int occurrence;
	cmv_id call_node, result_node; /**< result_node is CMV_ID_NONE without a result */
	size_t superseded_by;  /**< the index of the re-issue (SUPERSEDED only) */
	bool duplicate;        /**< a re-issue of a call with side effects that had committed */
} cmv_ledger_entry;

typedef struct cmv_ledger {
	size_t n;
	cmv_ledger_entry *entries; /**< path order */
	size_t turns;
	size_t committed, in_flight, superseded, duplicates;
	size_t side_effects;       /**< entries with effect SIDE or UNKNOWN */
	size_t in_flight_effects;  /**< in flight with effect SIDE or UNKNOWN: outcome unknown */
	size_t unclassified;       /**< entries with effect UNKNOWN */
} cmv_ledger;

/**
 * The ledger of the conversation ending at `tip`. `branch` (may be NULL)
 * names the branch whose tool definitions (cmv_branch_tools_set) give MCP
 * annotations.
 * @return 0, CMV_ENOTFOUND, CMV_ECORRUPT, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_ledger_build(cmv_ledger **out, cmv_repo *repo, const cmv_id *tip, const char *branch);
CMV_EXTERN(void) cmv_ledger_free(cmv_ledger *ledger);

/** "committed", "in_flight", "superseded". */
CMV_EXTERN(const char *) cmv_call_state_name(cmv_call_state state);
/** "none", "side_effects", "unknown". */
CMV_EXTERN(const char *) cmv_effect_name(cmv_effect effect);

/**
 * The ledger as JSON: {"turns", "counts": {...}, "calls": [{call_id, name,
 * args_hash, key, state, result ("ok", "error" or null), effect,
 * effect_source, turn, occurrence, call_node, result_node, superseded_by,
 * duplicate, args (cut at 200 bytes)}]}.
 */
CMV_EXTERN(int) cmv_ledger_json(cmv_buf *out, const cmv_ledger *ledger);

/**
 * One line per in-flight call with side effects ("Bash (call toolu_1, key
 * 1a2b3c4d): {\"command\":...}"), at most `max` lines then "... and N more";
 * "" when there is none. What a switch and a compaction warn with.
 */
CMV_EXTERN(int) cmv_ledger_in_flight_text(cmv_buf *out, const cmv_ledger *ledger, size_t max);

/** What cmv_ledger_check answers. */
typedef struct cmv_ledger_check_result {
	char key[CMV_LEDGER_KEY_HEXSZ + 1];
	char args_hash[CMV_LEDGER_KEY_HEXSZ + 1];
	cmv_effect effect;
	bool committed;        /**< a call with this key already got a result on this path */
	cmv_id call_node, result_node; /**< that call's (when committed) */
	bool error;            /**< that result reported failure */
} cmv_ledger_check_result;

/**
 * Before executing a call: has a call with the same key already committed on
 * the conversation ending at `tip` (the branch and its ancestors)? The key is
 * the one the call has (or would have) at the tip: when the call itself is
 * the tip's, its own in-flight entry is not an answer. `args` is its input
 * JSON (or text).
 * @return 0, CMV_ENOTFOUND, CMV_ENOMEM
 */
CMV_EXTERN(int) cmv_ledger_check(cmv_ledger_check_result *out, cmv_repo *repo, const cmv_id *tip, const char *branch,
				 const char *name, const char *args, size_t len);

/**
 * The user prompts of the conversation ending at `tip`, root first: the
 * nodes where the ledger's turns begin (cmv_shadow's --replay answers them).
 * `*out` is freed with free().
 */
CMV_EXTERN(int) cmv_ledger_prompts(cmv_id **out, size_t *n, cmv_repo *repo, const cmv_id *tip);

/** The classification of tool `name` for `branch` (may be NULL); `source` gets its origin (static). */
CMV_EXTERN(int) cmv_ledger_effect(cmv_effect *out, const char **source, cmv_repo *repo, const char *branch,
				  const char *name);

/**
 * Set the user's classification of tools matching `pattern` (a name, or a
 * prefix ending in '*'), kept in the store: effect CMV_EFFECT_UNKNOWN
 * removes it. It comes before every other source.
 * @return 0, CMV_EINVALID (an empty pattern or one with a '*' elsewhere)
 */
CMV_EXTERN(int) cmv_ledger_classify(cmv_repo *repo, const char *pattern, cmv_effect effect);
/** The user's classification as a JSON object {pattern: "none" | "side_effects"}. */
CMV_EXTERN(int) cmv_ledger_classification(cmv_buf *out, cmv_repo *repo);

#endif
