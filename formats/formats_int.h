/* SPDX-License-Identifier: MIT */
/*
 * The formats layer's header for the layers above it (the pager, trim and
 * compaction), and the only way into formats/ besides <cmv/formats.h>:
 * - a branch loaded as a provider-neutral conversation, repaired for a
 *   target, changed, and written as a request body (the pager, compaction);
 * - a session record's template, its bytes, and a record edited as a JSON
 *   tree whose untouched holes keep their blobs (trim);
 * - the byte-range JSON scanner's span and member lookup, and two cJSON helpers.
 * Everything else in formats/ (the importers' machinery, the drivers, the
 * neutral builders) is private to it.
 */
#ifndef CMV_FORMATS_INT_H
#define CMV_FORMATS_INT_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include <cmv/formats.h>
#include "base/base.h"

/* ---- JSON by byte ranges (formats/jscan.c) ----------------------------------- */

typedef struct {
	const char *p, *end; /* [p, end) */
} jspan;

const char *cmv_formats__jscan_ws(const char *p, const char *end);
/*
 * Find member `key` (compared with its raw, still-escaped text) of the object
 * spanning `obj`. @return 1 found (value span set), 0 absent, -1 malformed.
 */
int cmv_formats__jscan_member(jspan *value, jspan obj, const char *key);

/*
 * cJSON_ParseWithLength, and when it gives NULL for text that is JSON (an
 * allocation failed) *error = CMV_ENOMEM rather than taking the text for
 * malformed; *error is 0 otherwise.
 */
cJSON *cmv_formats__jscan_parse(const char *s, size_t len, int *error);

/* Small cJSON helpers. */
const char *cmv_formats__cj_str(const cJSON *o, const char *k);
const cJSON *cmv_formats__cj_get(const cJSON *o, const char *k);
/*
 * An `openai_item` block that is a call (its item's type ends in "_call",
 * Codex's tool_search_call) or the output of one ("_output"): its call_id,
 * *output set for an output; NULL for any other block. Such items pair by
 * call_id as tool_use and tool_result do (repair, the pager's turns).
 */
const char *cmv_formats__item_call_id(const cJSON *b, bool *output);
/*
 * Whether block b is a developer (or system) message sent in its place in
 * a Responses input, as Codex sends it (an `openai_item`, codex.c). It
 * instructs as a system prompt does: the pager never pages it out.
 */
bool cmv_formats__is_instruction_item(const cJSON *b);
/*
 * Every number in j that cJSON would print as another double (it prints 15
 * digits when they come within an epsilon, so a client's timestamp such as
 * Codex's create_time 1796567324.4575198 became 1796567324.45752: about one
 * in twenty) made raw text that reads back as the same double. For items
 * sent as a client sent them (`openai_item`). 0, or CMV_ENOMEM.
 */
int cmv_formats__exact_numbers(cJSON *j);

/* ---- one message of cmv's JSONL (formats/cmv_jsonl.c) ----------------------- */

/*
 * A message in cmv's JSONL shape ({"role", "content", "kind"?}) parsed into
 * a cmv_message that points into the parsed text (the host's appends).
 * @return 0, CMV_EINVALID (the message says why), CMV_ENOMEM
 */
typedef struct cmv__parsed_message cmv__parsed_message;
int cmv__message_parse(cmv__parsed_message **out, const char *text, size_t len);
const cmv_message *cmv__parsed_message_get(const cmv__parsed_message *p);
void cmv__parsed_message_free(cmv__parsed_message *p);

/* ---- session records (formats/session.c) ------------------------------------- */

/* The largest session file an import reads, and so the largest a trim writes. */
/*
 * What a call with no result is answered with when a conversation is sent
 * again (the renderer's repair, trim's added line): the outcome is unknown,
 * in words a model can act on (docs/ledger.md), not a bare error.
 */
#define CMV_NO_RESULT_TEXT                                                                                   \
	"[cmv: no result was recorded for this call: it was in flight when the agent stopped, crashed or "  \
	"was switched to another model, so its outcome is unknown (it may have run in full, in part, or "   \
	"not at all). If the call changes anything, check whether it took effect before issuing it again.]"

#define SESSION_MAX_BYTES ((size_t)1 << 31)

/* A record node's template, parsed (pointers into the node's meta). */
typedef struct {
	const char *format;           /* static */
	const unsigned char *holes, *holes_end; /* (enc, block varint) per hole, in template order */
	size_t n_holes;
	const char *sep, *tpl, *tpl_end;
	size_t sep_len;
} session_tpl;

/* @return 0, CMV_ENOTFOUND (not a session record), CMV_ECORRUPT */
int cmv_formats__session_template(session_tpl *t, const cmv_node *n);
/* The next hole's encoding and block, advancing *cursor (start at t->holes). */
int cmv_formats__session_tpl_hole(char *enc, size_t *block, const unsigned char **cursor, const session_tpl *t);

/*
 * Rebuild a record's bytes from its node: `*format` is set to the format
 * name (static). With `with_sep`, the separator that followed it is added.
 * @return 0, CMV_ENOTFOUND (the node is not a session record), CMV_ECORRUPT
 */
int cmv_formats__session_record_bytes(cmv_buf *out, const char **format, cmv_repo *repo, const cmv_node *n,
			 bool with_sep);

/* ---- editing a record (formats/edit.c) ---------------------------------- */

/*
 * A record as a JSON tree to edit (trim): the template parsed with each
 * hole as a placeholder string that stands for its block, so a rule can
 * move, drop or replace content without reading it, and the record is
 * written back as a template whose untouched holes still point at the
 * original blobs. Only an edited record is re-encoded (by cJSON: compact,
 * keys in order).
 */
typedef struct {
	cJSON *root;
	const char *format;        /* static */
	const cmv_node *node;      /* the original; NULL for a new record */
	const char *sep;
	size_t sep_len;
	char *enc;                 /* per original block: 'S', 'R', or 0 (no hole) */
	cmv_block_content *added;  /* blocks the edit added */
	size_t n_added, cap_added;
	cmv_buf added_data;
	size_t *added_off;
	size_t cap_off;
} record_edit;

/* @return 0, CMV_ENOTFOUND (not a session record), CMV_ECORRUPT */
int cmv_formats__record_edit_load(record_edit *e, const cmv_node *n);
/* A new record of `format` (root is taken over). */
int cmv_formats__record_edit_new(record_edit *e, const char *format, cJSON *root);
/* The original block a value stands for, or SIZE_MAX when it is not a hole. */
size_t cmv_formats__record_edit_block(const record_edit *e, const cJSON *v);
/*
 * A placeholder for a new block (its bytes are copied): 'S' stands for a
 * JSON string of the bytes, 'R' for raw JSON. NULL when out of memory.
 */
cJSON *cmv_formats__record_edit_add(record_edit *e, char enc, const cmv_block_content *bc);
/* Write the edited record as a node below parent (NULL: a root), derived from the n_derived nodes given. */
int cmv_formats__record_edit_write(cmv_id *out, record_edit *e, cmv_repo *repo, const cmv_id *parent, cmv_role role,
		      cmv_kind kind, const cmv_id *derived_from, size_t n_derived);
void cmv_formats__record_edit_dispose(record_edit *e);

/* ---- Claude Code's saved tool outputs (formats/cc_saved.c) ---------------------- */

/*
 * 1 when `text` is a <persisted-output> preview naming where the whole
 * output was saved: its first line ends at text + *header_len, and the path
 * it names is [*path, *path + *path_len). Each out may be NULL.
 */
int cmv__cc_persisted(const char *text, size_t len, size_t *header_len, const char **path, size_t *path_len);
/*
 * The saved file a preview names, read into `out` (at most `cap` bytes):
 * beside `transcript` in Claude Code's layout, or at the recorded path when
 * it lies inside the local projects folder; a regular file that begins with
 * the preview. @return 1 found, 0 not (never an error)
 */
int cmv__cc_saved_find(cmv_buf *out, const char *transcript, const char *text, size_t len, size_t cap);

/* ---- the neutral conversation (formats/neutral.h has the shape) ---------------- */

typedef struct {
	cJSON *system;    /* array of strings */
	cJSON *messages;  /* array of messages */
	const char *node; /* the id (hex) of the record being read */
	bool oom;
	size_t resets;    /* compactions crossed */
	bool keep_all;    /* a compaction does not drop what came before */
	bool stub_thinking; /* CMV_RENDER_STUB_THINKING */
	bool stub_cleared; /* CMV__RENDER_STUB_CLEARED */
	bool after_boundary; /* a Claude Code compaction boundary was read, and no user or assistant line since */
	bool developer_in_place; /* the Responses API: a developer message goes in the input, where it was (codex.c) */
} conv;

/*
 * An internal render flag (beside cmv_render_flags): the results Claude
 * Code's microcompaction cleared go as its stub, as the running Claude
 * Code sent them after the boundary. Only the calibration's reading of
 * billed calls asks for it (cmv_pager__count_sent_live). Everything else
 * renders them whole: Claude Code itself sends them whole again on
 * `--resume` (clients_resume_corpus measured 92,267 tokens sent against
 * 66,633 with the stubs), and the query path must find them (formats.md
 * §1.9).
 */
#define CMV__RENDER_STUB_CLEARED (1u << 30)

/*
 * A branch loaded for one provider and repaired to its rules, before it is
 * written: the pager changes the messages in between (stubs, evictions).
 */
typedef struct cmv__conversation {
	conv c;                   /* c.system: the system prompts */
	cJSON *msgs;              /* the repaired messages, neutral shape */
	cmv_render_stats st;
	cmv_render_target target;
	cJSON *nodes;             /* per message of msgs: the hex id of the record it began at, or null */
	char raw_first_role[16];  /* the first message's role before repair ("" when none) */
} cmv__conversation;
int cmv__conversation_load(cmv__conversation *cv, cmv_repo *repo, const cmv_id *tip, cmv_render_target target,
			   unsigned int flags);
/*
 * The conversation of the records from `first` to `tip` alone, read and
 * repaired as cmv__conversation_load reads a whole branch: the pager's
 * last turn and what came after it. CMV_ENOTFOUND when first is not tip or
 * an ancestor within max_records, or the records cannot be read apart from
 * those before them (part of a JSON document, a compaction, a system
 * prompt).
 */
int cmv__conversation_load_since(cmv__conversation *cv, cmv_repo *repo, const cmv_id *first, const cmv_id *tip,
				 cmv_render_target target, unsigned int flags, size_t max_records);
/* The request body for cv->target, as cmv_render() writes it. */
int cmv__conversation_write(cmv_buf *out, const cmv__conversation *cv, const cmv_render_options *opts);
void cmv__conversation_dispose(cmv__conversation *cv);
/*
 * The messages of a branch as its records say them, before any repair,
 * each with the "node" (hex id) of the record that began it: compaction
 * cuts a branch at a message and needs to know which node that is.
 */
int cmv__conv_load_raw(conv *c, cmv_render_stats *st, cmv_repo *repo, const cmv_id *tip, unsigned int flags);
void cmv__conv_dispose(conv *c);
/* A conversation of raw messages [from, end), after a user message `lead` (may be NULL), repaired for target. */
int cmv__conversation_from_raw(cmv__conversation *cv, const conv *raw, size_t from, const char *lead,
			       cmv_render_target target);
/* A tool result's content as plain text: the string, or its blocks' texts, an image as "[image]". */
int cmv__result_text(cmv_buf *out, const cJSON *content);

#endif
