/* SPDX-License-Identifier: MIT */
/*
 * What the files of pager/ share and nothing outside it sees (the layers
 * above and the tests reach the pager through pager_int.h and the public
 * headers): the pager of one call, its pages, the query index in memory,
 * and the functions one file of pager/ calls in another.
 *
 * A pager holds one branch loaded for one target; its pages are the body
 * pages in conversation order, then one page per turn, in every file that
 * reads them (page.c finds them so). What a file keeps to itself (the
 * walk's callbacks, the seam, the notes' layout) stays static in it.
 */
#ifndef CMV_PAGER_PRIV_H
#define CMV_PAGER_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "formats/formats_int.h"
#include "pager_int.h"
#include <cmv/count.h>
#include <cmv/pager.h>

/* A page, as the walk finds it. */
typedef struct {
	cmv_page pub;
	size_t msg;      /* index in the messages */
	int64_t saving;  /* estimated tokens saved when it leaves */
	size_t chars, lines;
	size_t cand;     /* body pages: the walk's candidate number */
	bool hit;        /* the query matched it */
	bool faulted;    /* pinned by a fault of late (and by nothing else) */
} page;

typedef struct {
	cmv_repo *repo;
	const cmv_model *model;
	cmv_tok *tok;
	cmv__conversation cv;
	page *pages;
	size_t n, cap;
	size_t n_groups;
	size_t *group_first;  /* index of each group's first message */
	size_t *group_page;   /* each group's page */
	size_t *order;        /* pages that may leave, in the order they leave */
	size_t n_order;
	bool *gone;           /* per page: it has left in the rendering being built */
	size_t next_body;     /* applying: the next body page to match */
	cJSON *writes;        /* the final rendering: the texts its stubs name, to store */
	cmv_buf scratch;
	struct {
		size_t g0, g1;
		char hex[CMV_ID_HEXSZ + 1];
	} runs_known[256];    /* the ids of runs of turns computed so far */
	size_t n_runs_known;
	bool lazy_ids;        /* turn pages get their ids when asked (group_id): recall by query shows a few */
	uint64_t carried;     /* billed beside what the request shows: a Responses turn's reasoning (count.c) */
} pager;

/* The reasoning tokens a Responses request carries in its current turn (pager/count.c). */
int cmv_pager__turn_reasoning(uint64_t *out, cmv_repo *repo, const cmv_id *tip);

/*
 * What the query path needs of a branch, and no more: the hash of each
 * text of its messages, its pages with their tokens, in the pager's order
 * (the bodies in conversation order, then one page per turn), and where
 * each turn begins. Taken from a loaded branch (cmv_pager__qindex_of), or read from
 * the branch's notes, where it is kept per model and grown after an append
 * (cmv_pager__qindex_get), so that a query need not load the branch at all.
 */
typedef char qhex[CMV_ID_HEXSZ + 1];
typedef struct {
	qhex tip;
	size_t n_msgs, n_bodies, n_turns, n_texts;
	size_t *turn_first;  /* per turn: its first message */
	size_t *body_msg;    /* per body: its message */
	uint64_t *tokens;    /* per page */
	qhex *ids;           /* per page: its id; "" for a turn whose id was not computed */
	qhex *nodes;         /* per turn: the record its first message began at, "" when none */
	size_t *text_msg;    /* per text, in message order: its message */
	qhex *texts;         /* and its hash */
	/* growing it after an append (qindex_grow): the last turn, as it reads alone */
	qhex seam;
	uint8_t *calls;      /* the calls before the seam (cmv_pager__calls_filter); NULL with no seam */
	/* kept: the turns before split in a note of their own (cmv_pager__qindex_put), its size and hash */
	size_t split, base_bytes;
	uint64_t base_hash;
	char model[160];     /* what its tokens were counted by (cmv_pager__qindex_model) */
} qindex;

/* ---- counting (count.c) ------------------------------------------------------- */

/*
 * A text's tokens in model's count: through tok's memo and, for a long text
 * with a store (repo not NULL), the store's token cache, as a blob's count
 * is kept. An error only when the tokenizer fails.
 */
int cmv_pager__count_text(uint64_t *out, cmv_repo *repo, const cmv_model *model, cmv_tok *tok, const char *s,
			  size_t len);

/* ---- live anchoring: what was last sent and billed (live.c) ------------------ */

/* A request a live caller sent (and, with prompt, what it was billed). */
typedef struct {
	bool ok;
	cmv_id tip;        /* where it was made */
	cmv_id held;       /* the billed request it held whole (made anchored); none when none */
	uint64_t tokens;   /* the pager's plain count of its messages */
	uint64_t extra;    /* the caller's count of what it sent beside them */
	uint64_t prompt;   /* billed: input, cache reads and writes; 0 when not billed */
	size_t gone;       /* pages out */
	char key[80];      /* the caller's key of what it sent beside them */
	char target[32];
} cmv_pager__live_call;

/* The last request sent from the branch for the model, and the last one billed (ok false: none). */
void cmv_pager__live_read(cmv_pager__live_call *sent, cmv_pager__live_call *billed, cmv_repo *repo,
			  const char *branch, const char *model_id);

/*
 * The most a branch's rate may scale a plain count, per mille: a bill more
 * than twice its count is more likely a bill for something the caller did
 * not count (docs/tokenizers.md, "Anchored live": "The rate") than a
 * tokenizer that far off, and scaling by it would page out a session for
 * one odd reply.
 */
#define CMV_PAGER__RATE_MAX_PM 2000

/*
 * How a live request is predicted as billed: anchored (it holds the billed
 * request: its plain count plus the correction, bounded down), else its
 * plain count and what goes beside it scaled up by the branch's rate.
 */
typedef struct {
	bool anchored;
	int64_t correction;
	uint32_t rate_pm;  /* the last bill over its count, per mille; 1000 or less: none */
	uint64_t extra;    /* what goes beside the messages (its count), billed at the rate too */
} cmv_pager__predict;

/*
 * The rate of the last bill (billed; ok false: none) and what goes beside
 * the request, into pr (rate_pm 1000: none): `beside`, the caller's count
 * for this request, else (0) the larger of the last sent and billed ones'.
 */
void cmv_pager__live_rate(cmv_pager__predict *pr, const cmv_pager__live_call *sent,
			  const cmv_pager__live_call *billed, uint64_t beside);
/* A plain count of the messages as billed, by pr (NULL: the plain count). */
uint64_t cmv_pager__predicted(const cmv_model *model, const cmv_pager__predict *pr, uint64_t plain);
/* The largest plain count predicted within limit (by pr's rate; the anchor is not used). */
uint64_t cmv_pager__plain_within(const cmv_pager__predict *pr, uint64_t limit);

/* ---- pages: the walk, stubs, the request for a cut (page.c) ------------------- */

/* eval's k for "the pages p->gone says", not a prefix of the order. */
#define GONE_AS_SET SIZE_MAX

/* A user message that starts a turn: it says something (not only tool results). */
bool cmv_pager__starts_turn(const cJSON *m);
/* The text of a result's content: the string, or the JSON of its blocks (cJSON_free it). */
char *cmv_pager__body_text(const cJSON *content);
/* A turn's page id: the xxh128 of its n messages (from first on) as JSON, the blob that recalls it. */
int cmv_pager__group_id(char *out, const cJSON *first, size_t n);
/*
 * A turn's hash stopped part way, so that a turn that grows is not hashed
 * again from its start: from state_in (NULL: the turn's start), hash
 * n_state messages from first on, the state then into *state_out (hex, to
 * free; may be NULL), and with id_out the turn's id, its n_all messages
 * from first on hashed and finished. 0, 1 when state_in does not read
 * (another build of xxhash), or an error.
 */
int cmv_pager__group_hash(char **state_out, char *id_out, const char *state_in, const cJSON *first, size_t n_state,
			  size_t n_all);
/* The estimated tokens of n messages from first on, as a turn's page counts them. */
uint64_t cmv_pager__estimate_messages(pager *p, const cJSON *first, size_t n);
/* The render target for a model (want: the caller's, 0 for the model's own). */
cmv_render_target cmv_pager__target_of(const cmv_model *m, int want);
/* Load the branch for the target and find its pages (p->repo, model and tok set). */
int cmv_pager__load(pager *p, const cmv_id *tip, cmv_render_target target, unsigned int flags);
/* The pages of p->cv, already loaded. */
int cmv_pager__pages(pager *p);
void cmv_pager__dispose(pager *p);
/* Pin turn g's page. */
void cmv_pager__pin_group(pager *p, size_t g);
/* The request for the first k pages of the order gone, into body, and its tokens. */
int cmv_pager__eval(uint64_t *tokens, cmv_token_stats *classes, cmv_buf *body, pager *p, size_t k, cJSON *writes,
		    const cmv_render_options *ro);

/* ---- the query: ranking, the index in memory (query.c) ------------------------ */

#define QUERY_STUB_TOKENS 16 /* what the one stub for paged-out turns costs with its block's framing */

/* What a model's counts depend on: an index counted otherwise (an edited profile) is not used. */
void cmv_pager__qindex_model(char *out, size_t cap, const cmv_model *m);
/* Room for n_msgs, n_bodies, n_turns and n_texts (set): the arrays, zeroed. */
int cmv_pager__qindex_alloc(qindex *qi);
void cmv_pager__qindex_dispose(qindex *qi);
/* The index of a loaded branch (p: after cmv_pager__pages; a turn's id is "" when p->lazy_ids). */
int cmv_pager__qindex_of(qindex *qi, const pager *p);
/* The query path, shared by materialize --query and recall --query. */
int cmv_pager__qindex_query(const qindex *qi, cmv_repo *repo, const char *query, uint64_t allowance, bool *pinned,
			    bool *hit);
int cmv_pager__qindex_ranked(const qindex *qi, cmv_repo *repo, const char *query, uint64_t allowance, bool *pinned,
			     bool *hit, size_t *order, size_t *n_order);
/* materialize --query: the pages the query takes are pinned, a body with its turn. */
int cmv_pager__query(pager *p, const char *query, uint64_t allowance, size_t *n_pinned);

/* ---- faults (fault.c) ----------------------------------------------------------- */

/* The branch note the faults are kept in. */
#define FAULT_KEY "pager:faults"

/* Pages faulted in lately stay pinned: longer the more often they faulted (no thrashing). */
void cmv_pager__pin_faulted(pager *p, const char *branch, const cmv_id *tip, size_t *n_pinned);
/* A report's pins and counts after an append, as the whole work would set them. */
void cmv_pager__report_pins(cmv_materialize_report *r, const cmv_pager_options *o, cmv_repo *repo,
			    const cmv_id *tip, size_t n_bodies);
/* Whether every page the table's faults pinned is still pinned by one at tip. */
bool cmv_pager__faults_hold(cmv_repo *repo, const char *branch, const cmv_id *tip, const cJSON *faulted);

/* ---- the page table, the seam, the splice (table.c) ----------------------------- */

#define CALLS_FILTER_BYTES 8192 /* 65,536 bits: 3,000 calls before the seam give 0.2% false alarms */
/*
 * Records read from the seam's on, at most: an agent's turn can run to
 * hundreds of calls, and past a few thousand records reading them is
 * no longer small beside the whole work.
 */
#define SPLICE_MAX_RECORDS 2048

/* The call ids of messages [from, to) of msgs, into the filter (add) or tested against it. */
bool cmv_pager__calls_filter(uint8_t *filter, const cJSON *msgs, size_t from, size_t to, bool add);
/* A filter as 2 * CALLS_FILTER_BYTES hex digits and a NUL, into out, as the notes keep it. */
void cmv_pager__calls_to_hex(char *out, const uint8_t *filter);
/* hex (as cmv_pager__calls_to_hex wrote it, whatever follows) back into a filter; false when it is not that. */
bool cmv_pager__calls_from_hex(uint8_t *filter, const char *hex);
/* What a materialization depends on besides the tip, as one key. */
void cmv_pager__options_key(cmv_buf *out, cmv_repo *repo, const cmv_pager_options *o, uint64_t budget);
/* 1 and the note KEY:part in out when it is there; 0 when not. */
int cmv_pager__note_take(cmv_buf *out, cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *part);
/* The branch's page table for this model and format, parsed; NULL when it has none. */
cJSON *cmv_pager__table_read(cmv_repo *repo, const cmv_pager_options *o, const char *key);
/* The request and report kept for this tip and these options: 1 when found (out and *r filled), else 0. */
int cmv_pager__table_lookup(cmv_buf *out, cmv_materialize_report *r, cmv_repo *repo, const cmv_pager_options *o,
			    const char *key, const cJSON *j, const char *ok, const cmv_id *tip, uint64_t budget);
/* The whole work's page table: the pages that left (the next call starts from them), the request, the report. */
int cmv_pager__table_save(cmv_repo *repo, const cmv_pager_options *o, const char *key, const char *okey,
			  const cmv_id *tip, pager *p, const cmv_materialize_report *r, const cmv_buf *request,
			  const cmv_render_options *ro);
/* After an append, the kept request grown by the records since: 1 when done, 0 when not. */
int cmv_pager__splice_append(cmv_buf *out, cmv_materialize_report *r, pager *fp, const cmv_pager_options *o,
			     const char *key, const cJSON *j, const char *ok, const cmv_id *tip, uint64_t budget,
			     cmv_render_target target, const cmv_render_options *ro,
			     const cmv_pager__predict *pr);

/* ---- the query index, kept (qindex.c) ------------------------------------------- */

/* The records from first_hex to last, read alone: 1 when they are the turn whose id is want. */
int cmv_pager__load_turn(cmv__conversation *cv, cmv_repo *repo, const char *first_hex, const cmv_id *last,
			 cmv_render_target target, const char *want);
/* The seam of qi, the index of tip: its last turn, when it reads alone. */
int cmv_pager__qindex_seam(qindex *qi, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
			   const uint8_t *calls_before, const cJSON *msgs, size_t from);
/* Keep qi in the branch's notes (fold: the base note written again too). */
int cmv_pager__qindex_put(cmv_repo *repo, const char *branch, const cmv_model *m, cmv_render_target target,
			  qindex *qi, bool fold);
/* The branch's query index for tip: 1 when read (grown if need be), 0 when none to use. */
int cmv_pager__qindex_get(qindex *qi, cmv_repo *repo, const char *branch, const cmv_id *tip,
			  const cmv_model *model, cmv_tok *tok, cmv_render_target target);

#endif
