/* SPDX-License-Identifier: MIT */
/**
 * The pager: the working set of a branch for one model.
 *
 * The context window is a cache and the store is the truth. A *page* is
 * the smallest thing that can leave the window without breaking a provider
 * rule: the body of a tool result or of a large tool-input string (the call
 * stays; a stub takes the body's place), or a whole turn group (a user
 * message with everything that answers it). cmv_materialize() decides
 * which pages are resident for a model and a budget, and renders the
 * request that model receives. Every stub names the id that brings its
 * page back (cmv_recall()). docs/pager.md has the algorithm and its
 * invariants.
 */
#ifndef CMV_PAGER_H
#define CMV_PAGER_H

#include "common.h"
#include "buf.h"
#include "dag.h"
#include "model.h"
#include "count.h"
#include "tok.h"

/* The tunables, in one place (docs/pager.md says why each default). */
/** Turn groups at the end that are always resident. */
#define CMV_PAGER_KEEP_TURNS_DEFAULT 2
/** Once over the budget, evict down to this share of it (per mille), in one batch. */
#define CMV_PAGER_LOW_WATER_DEFAULT 850
/** A body under this many tokens is not a page: its stub would save too little. */
#define CMV_PAGER_MIN_PAGE_TOKENS 48

typedef struct cmv_pager_options {
	unsigned int version;
	/** Tokens the request may use; 0: cmv_model_input_budget() (window − output reserve − margin). */
	uint64_t budget;
	/** Latest turn groups pinned; 0: CMV_PAGER_KEEP_TURNS_DEFAULT. */
	size_t keep_turns;
	/** Page ids (a stub's id, 7+ hex digits) the caller pins. */
	const char *const *pins;
	size_t n_pins;
	/** Fault pages in by query: those that match best are pinned, within query_allowance tokens. */
	const char *query;
	uint64_t query_allowance; /**< 0: a quarter of the budget */
	/** Low-water mark, per mille of the budget; 0: CMV_PAGER_LOW_WATER_DEFAULT. */
	unsigned int low_water;
	/** The request format (a cmv_render_target); 0: the model's API. */
	int target;
	unsigned int render_flags; /**< cmv_render_flags */
	/**
	 * The branch whose page table to use and keep (NULL: none, every call
	 * decides afresh): what left last time stays gone while the request
	 * fits the budget, so appending a turn leaves the resident prefix as
	 * it was; past the budget a new batch is cut to the low-water mark.
	 */
	const char *state_branch;
	/**
	 * Bodies inside the last keep_turns turns may be stubbed too, after
	 * every other page has left: a large result in the turn being answered
	 * then costs its stub instead of a CMV_EBUDGET. The turns themselves
	 * stay; pages the caller pins stay whole.
	 */
	bool stub_pinned;
	/**
	 * What the provider billed for a prefix of this branch
	 * (cmv_count_anchor_find, for this model and its own host): the
	 * request with nothing paged out is predicted at its count plus the
	 * anchor's correction. Once a page leaves, the request no longer holds
	 * the billed one and the plain count holds. With an anchor no page
	 * table is used or kept (state_branch names only whose faults pin
	 * pages). NULL: none.
	 */
	const cmv_count_anchor *anchor;
	/**
	 * Live anchoring, for a caller that sends the request and books its
	 * reply's usage (a host, the proxy; needs state_branch): a digest of
	 * what the caller sends beside these messages (system prompt, tools,
	 * the target), NULL for none. When the last request of this branch
	 * sent for this model (cmv_pager_sent) was billed (cmv_pager_billed),
	 * was sent with the same key, and this request holds it whole (its
	 * window grown, nothing more paged out), this request is predicted at
	 * that bill plus the count of what came since, and paged to fit so;
	 * otherwise it is counted plainly, scaled up by the last bill's rate
	 * (what it was billed over what was counted for it, at most 2) where
	 * that is above 1. The report's `anchored` says which, `tokens` the
	 * prediction and `correction` what it added to the plain count.
	 */
	const char *live_key;
	/** Out, may be NULL: why a live_key request was not anchored ("" when it was), CMV_PAGER_WHY_MAX bytes. */
	char *live_why;
	/**
	 * With live_key: the caller's count of what it sends beside these
	 * messages (the `extra` it will pass to cmv_pager_sent), which a
	 * request counted plainly is scaled by the rate with; 0 when nothing
	 * goes beside them. CMV_PAGER_BESIDE_UNKNOWN (the default): not given;
	 * the larger of the last sent and billed requests' is taken, which
	 * is too much when the tools shrank since.
	 */
	uint64_t live_beside;
} cmv_pager_options;
#define CMV_PAGER_BESIDE_UNKNOWN UINT64_MAX
#define CMV_PAGER_WHY_MAX 128
#define CMV_PAGER_OPTIONS_VERSION 4 /* 2: anchor; 3: live_key, live_why; 4: live_beside */
#define CMV_PAGER_OPTIONS_INIT { CMV_PAGER_OPTIONS_VERSION, 0, 0, NULL, 0, NULL, 0, 0, 0, 0, NULL, false, NULL, NULL, NULL, CMV_PAGER_BESIDE_UNKNOWN }
/** How much of the options a caller of `version` passed (version 1 ends before anchor, 2 before live_key, 3 before live_beside). */
#define CMV_PAGER_OPTIONS_SIZE(version) \
	((version) >= 4 ? sizeof(cmv_pager_options) \
	 : (version) == 3 ? offsetof(cmv_pager_options, live_beside) \
	 : (version) == 2 ? offsetof(cmv_pager_options, live_key) : offsetof(cmv_pager_options, anchor))
/** The defaults, for callers (bindings) that cannot use the macro. */
CMV_EXTERN(void) cmv_pager_options_init(cmv_pager_options *opts);

typedef enum {
	CMV_PAGE_BODY = 1,  /**< a tool result's body or a tool input string */
	CMV_PAGE_GROUP = 2, /**< a turn group */
} cmv_page_kind;

typedef enum {
	CMV_PAGE_RESIDENT = 1, /**< in the request verbatim */
	CMV_PAGE_STUBBED = 2,  /**< a body replaced by its stub */
	CMV_PAGE_EVICTED = 3,  /**< a turn group left out (a stub says where) */
} cmv_page_state;

typedef struct cmv_page {
	char id[CMV_ID_HEXSZ + 1]; /**< the blob that holds it (cmv_recall) */
	cmv_page_kind kind;
	cmv_page_state state;
	size_t turn;       /**< its turn group, from 0 */
	uint64_t tokens;   /**< what it costs resident (model tokens, estimated per page) */
	bool pinned;
} cmv_page;

#define CMV_MATERIALIZE_REPORT_VERSION 2 /* 2: anchored, correction */
/**
 * What a materialization did. Call cmv_materialize_report_init before its
 * first use (or zero it and set version to CMV_MATERIALIZE_REPORT_VERSION):
 * a report passed again is disposed of first, so a loop that reuses one
 * leaks nothing. A report of version 0 or 1 (a program built before
 * version 2) is written only up to `anchored`.
 */
typedef struct cmv_materialize_report {
	unsigned int version;  /**< the caller's layout; on return the one written (0 reads as 1) */
	uint64_t budget;       /**< what the request may count (billed_budget less the model's margin) */
	uint64_t tokens;       /**< what it uses, counted on the rendered request */
	uint64_t tokens_full;  /**< the same with nothing paged out */
	bool fits;             /**< tokens <= budget */
	bool exact;            /**< counted in the model's own tokenizer */
	size_t turns;          /**< turn groups */
	size_t resident, stubbed, evicted, pinned; /**< pages by state; pinned among them */
	uint64_t pinned_tokens;
	cmv_token_stats classes; /**< the request's tokens by kind */
	cmv_page *pages;       /**< every page, in conversation order (free with cmv_materialize_report_dispose) */
	size_t n_pages;
	/**
	 * The promise: what the provider may bill (the budget asked for, or the
	 * window less the output reserve), and the model's count margin that
	 * turned it into `budget` (cmv_count_ceiling).
	 */
	uint64_t billed_budget;
	double margin;
	/**
	 * An anchor was given (cmv_pager_options.anchor): tokens_full is the
	 * whole request predicted from it (its count plus `correction`);
	 * `anchored`: nothing was paged out, so tokens is that prediction too.
	 * With live_key: `anchored` when the request holds the last bill;
	 * either way tokens is the prediction as billed and `correction` what
	 * it adds to the plain count (0 when counted plainly with no rate).
	 */
	bool anchored;
	int64_t correction;
} cmv_materialize_report;
/** What a report of `version` holds (for the library and bindings: version 0 and 1 end before `anchored`). */
#define CMV_MATERIALIZE_REPORT_SIZE(version) \
	((version) >= 2 ? sizeof(cmv_materialize_report) : offsetof(cmv_materialize_report, anchored))

CMV_EXTERN(void) cmv_materialize_report_dispose(cmv_materialize_report *rep);
CMV_EXTERN(void) cmv_materialize_report_init(cmv_materialize_report *rep);

/**
 * Render the branch ending at `tip` for `model` within the budget: the
 * request body in `out`, and what was paged in `rep`. Pages leave oldest
 * first, bodies before whole turns; once over the budget, down to the
 * low-water mark in one batch. The same inputs give the same bytes, and a
 * larger budget never makes a page leave. Stubs: "[N chars, L lines;
 * recall ID]" for a body, "[N turns paged out; recall
 * ID]" for a run of turns (ID: their messages, as JSON).
 * @return 0, CMV_EBUDGET (the pinned set alone does not fit: the message
 *         says what is pinned and what it needs), CMV_EINVALID, CMV_ENOTFOUND,
 *         CMV_EIO
 */
CMV_EXTERN(int) cmv_materialize(cmv_buf *out, cmv_materialize_report *rep, cmv_repo *repo, const cmv_id *tip,
				const cmv_model *model, cmv_tok *tok, const cmv_pager_options *opts);

/**
 * A live caller sent the request cmv_materialize made at `tip` for `model`
 * with state_branch `branch` (`rep`: its report, whose tokens less its
 * correction are the plain count), beside `extra` tokens
 * (the caller's count) of what it sent besides the messages, named by
 * `key` (the pager options' live_key). Its reply's usage
 * (cmv_pager_billed) anchors the next request that holds it whole.
 * `target`: as the options' (0: the model's API).
 * @return 0, or the store's errors
 */
CMV_EXTERN(int) cmv_pager_sent(cmv_repo *repo, const char *branch, const cmv_model *model, int target,
			       const cmv_id *tip, const cmv_materialize_report *rep, const char *key, uint64_t extra);
/**
 * The reply to the request last sent from `branch` at `tip` for `model`
 * was billed `prompt` tokens (input, cache reads and cache writes
 * together). A bill for another tip (a request cmv_pager_sent did not
 * record) is not kept.
 * @return 0, or the store's errors
 */
CMV_EXTERN(int) cmv_pager_billed(cmv_repo *repo, const char *branch, const cmv_model *model, int target,
				 const cmv_id *tip, uint64_t prompt);

/**
 * The original bytes behind a stub's id (a blob id prefix of at least 7
 * hex digits, as a stub prints it): a trim's stub or a page's.
 * @return 0, CMV_ENOTFOUND, CMV_EAMBIGUOUS, CMV_EINVALID
 */
CMV_EXTERN(int) cmv_recall(cmv_buf *out, cmv_repo *repo, const char *id);

/**
 * cmv_recall() as a model gets it: the id of a stub for several runs of
 * evicted turns ("[N turns paged out, in K runs; recall ID]") names an index
 * of the runs, and comes back as every run's messages under its turns
 * ([{"turns": [first, last], "messages": [...]}]), in one recall, never two.
 * Any other id gives what cmv_recall() gives.
 * @return as cmv_recall()
 */
CMV_EXTERN(int) cmv_recall_runs(cmv_buf *out, cmv_repo *repo, const char *id);

/**
 * The pages of the branch at `tip` that match `query` best (the pager's own
 * query path, as cmv_materialize's `query` uses it), within `budget`
 * tokens of `model`: in conversation order, each under a line
 * "[turn T, N tokens; page ID]", a turn as "role: text" lines, a body as
 * its text. *n_pages (may be NULL) gets how many.
 *
 * `branch` (may be NULL) names the branch whose notes keep the query index
 * for `model`: with one, a query reads the index instead of loading the
 * branch, and the first query after an append grows it from what was
 * appended; the answer is the same bytes either way (docs/pager.md).
 * @return 0 (no match is 0 pages), CMV_EINVALID, CMV_ENOTFOUND, CMV_EIO
 */
CMV_EXTERN(int) cmv_recall_query(cmv_buf *out, size_t *n_pages, cmv_repo *repo, const cmv_id *tip,
				 const char *branch, const cmv_model *model, cmv_tok *tok, const char *query,
				 uint64_t budget);

/** A page a query took (cmv_query_pages). */
typedef struct cmv_query_hit {
	char id[CMV_ID_HEXSZ + 1];   /**< the page: cmv_recall(id) gives it back (a turn: its messages as JSON) */
	cmv_page_kind kind;
	size_t turn;                 /**< its turn group, from 0 */
	size_t turns;                /**< the branch's turn groups */
	uint64_t tokens;             /**< what it costs resident, in the model's tokens */
	char node[CMV_ID_HEXSZ + 1]; /**< the record its turn begins at ("" when not known) */
	char *text;                  /**< a turn as "role: text" lines, a body as its text */
} cmv_query_hit;

/**
 * The pages cmv_recall_query would take for `query` within `allowance`
 * tokens, best first (the same query path and ranking), each with its
 * text. A turn taken is kept as the blob its id names, so cmv_recall(id)
 * brings it back. Free with cmv_query_hits_free().
 * @return 0 (no match: *n_out 0), CMV_EINVALID, CMV_ENOTFOUND, CMV_EIO
 */
CMV_EXTERN(int) cmv_query_pages(cmv_query_hit **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip,
				const char *branch, const cmv_model *model, cmv_tok *tok, const char *query,
				uint64_t allowance);
CMV_EXTERN(void) cmv_query_hits_free(cmv_query_hit *hits, size_t n);

/**
 * The turns around a page (a page id as cmv_query_pages gives it, or the
 * id of the record a turn begins at): `before` turns before its turn, the
 * turn, and `after` turns after it, in order, as cmv_query_pages gives them.
 * @return 0, CMV_ENOTFOUND (not on this branch), CMV_EINVALID, CMV_EIO
 */
CMV_EXTERN(int) cmv_query_turns(cmv_query_hit **out, size_t *n_out, cmv_repo *repo, const cmv_id *tip,
				const cmv_model *model, cmv_tok *tok, const char *id, size_t before, size_t after);

/**
 * Answer a model's call of the recall tool: `input` is the call's input
 * JSON ({"id": "..."}); `out` gets the page's contents, or a short error
 * text for the model (a bad or unknown id is the model's mistake, not the
 * host's: the return is then 1, with out set).
 * @return 0, 1 (out holds an error for the model), CMV_ENOMEM, CMV_EIO
 */
CMV_EXTERN(int) cmv_recall_tool_answer(cmv_buf *out, cmv_repo *repo, const char *input, size_t len);

/**
 * Record that page `page_id` was faulted back in on `branch` (the host
 * answered a recall for it). The branch's next materializations keep it
 * resident for a while: 8 appended records after one fault, twice as long
 * for each fault more, up to 512, so a page the model keeps asking for
 * stops leaving (no thrashing).
 * @return 0, CMV_EINVALID (not a page id), CMV_ENOTFOUND (no such branch)
 */
CMV_EXTERN(int) cmv_pager_fault(cmv_repo *repo, const char *branch, const char *page_id);

/**
 * The recall tool for models, as a tool definition for `format`
 * ("anthropic" or "openai"): its name is "cmv_recall", its one argument the
 * page id a stub shows.
 * @return 0, CMV_EINVALID (unknown format)
 */
CMV_EXTERN(int) cmv_recall_tool_schema(cmv_buf *out, const char *format);

#endif
