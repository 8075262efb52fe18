/* SPDX-License-Identifier: MIT */
/*
 * The machinery every session importer shares (formats/session.c).
 *
 * A source record (a JSONL line, or one element of a JSON document's
 * record array) is stored as a node whose meta is a template: the record's
 * exact bytes with its content cut out at holes, each hole filled from one
 * of the node's block blobs on export. The session's record order is a
 * chunked manifest named by a session ref ("<prefix>/<session id>"). So
 * every format exports back byte for byte, and the content is stored once,
 * in the blobs that search, token counting and the pager read.
 *
 * Format drivers (claude_code.c, codex.c, agents.c, requests.c) only say
 * what a record means: which values are content (cut into blocks), the
 * node's role and kind, and how to read the record back as provider-neutral
 * messages when a branch is rendered (render.c).
 */
#ifndef CMV_FORMATS_SESSION_H
#define CMV_FORMATS_SESSION_H

#include <cjson/cJSON.h>
#include "jscan.h"
#include "formats_int.h"

#define SESSION_CHUNK 256

/* The content cut out of one record, as blocks, and where each hole is. */
typedef struct {
	size_t off, len;  /* the value's bytes in the record */
	char enc;         /* 'S' a JSON string re-escaped from the blob; 'R' raw JSON */
	size_t block;
} session_hole;

typedef struct {
	cmv_block_content *blocks;
	size_t n_blocks, cap_blocks;
	session_hole *holes;
	size_t n_holes, cap_holes;
	cmv_buf texts;   /* unescaped strings, back to back */
	size_t *text_off;
	size_t n_text, cap_text;
	cmv_buf scratch;
	const char *rec; /* the record being cut */
} record_build;

void cmv_formats__record_build_init(record_build *rb);
void cmv_formats__record_build_reset(record_build *rb, const char *rec);
void cmv_formats__record_build_dispose(record_build *rb);
/* Point each block's data at its text (once no more blocks are added). */
void cmv_formats__record_build_finish(record_build *rb);

/*
 * Add a block whose content is the value `v` of the record: a string is
 * unescaped into the block's data and becomes an 'S' hole when re-escaping
 * gives back its bytes (otherwise the text also stays in the template);
 * anything else is a raw hole. The strings are borrowed: they must outlive
 * the node write.
 */
int cmv_formats__record_add_block(record_build *rb, jspan v, const char *type, const char *tool_id,
		     const char *tool_name, const char *media_type, unsigned flags);
/*
 * A record kept whole because it does not read as JSON (a lenient import):
 * when its bytes hold a NUL, which a template cannot, they become one raw
 * block of type "opaque" (never sent); otherwise nothing is added.
 */
int cmv_formats__record_add_opaque(record_build *rb, jspan rec);
/* Add the string member `key` of object `obj` as a block, if it is a string. */
int cmv_formats__record_add_string(record_build *rb, jspan obj, const char *key, const char *type,
		      const char *tool_id, const char *tool_name);
/* Add the member `key` of object `obj` (any JSON value) as a raw block. */
int cmv_formats__record_add_raw(record_build *rb, jspan obj, const char *key, const char *type,
		   const char *tool_id, const char *tool_name, const char *media_type);

/* The meta of a record node: its format, the holes, its separator, the template. */
int cmv_formats__session_meta_build(cmv_buf *meta, const char *format, const char *rec, size_t len, record_build *rb,
		       const char *sep, size_t sep_len);



/* The record nodes of an import, in file order, with the chain they form. */
typedef struct {
	cmv_id *ids;
	size_t *chain_parent; /* its parent in the DAG (a record index), or SIZE_MAX */
	uint64_t *depth;
	unsigned char *on_chain;
	unsigned char *is_msg;
	size_t n, cap;
} record_list;

int cmv_formats__record_list_push(record_list *rl, const cmv_id *id, size_t parent, bool on_chain, bool msg);
void cmv_formats__record_list_dispose(record_list *rl);

/* The file an import reads: what a re-import compares first. */
typedef struct {
	size_t size;
	uint64_t xxh3;
	size_t records;
} session_source;

void cmv_formats__session_source_init(session_source *src, const char *data, size_t size);

/*
 * 1 when session "<prefix>/<id>" was imported from exactly these bytes into
 * the same branch, which still holds it: *out is filled as UNCHANGED and
 * nothing needs reading. 0 otherwise (never an error: the import just runs).
 */
int cmv_formats__session_unchanged(cmv_import_result *out, cmv_repo *repo, const char *format, const char *prefix,
		      const char *session_id, const session_source *src, const cmv_import_options *opts);

/*
 * Finish an import inside its transaction: write the manifest, set the
 * session ref "<prefix>/<session_id>", and create or move the branch
 * (`branch`, or the session id) to `tip`; `kept` are abandoned tails
 * (rewinds) that keep branches BRANCH.2, BRANCH.3, ... Fills out->outcome,
 * branch and head.
 */
int cmv_formats__session_finish(cmv_import_result *out, cmv_repo *repo, const char *path, const char *format,
		   const char *prefix, const char *session_id, const record_list *rl, size_t tip,
		   const size_t *abandoned, size_t n_abandoned, const char *lead, size_t lead_len,
		   const session_source *src, const cmv_import_options *opts);

/* List line `lineno` as skipped (the first CMV_IMPORT_SKIPPED_LISTED are named). */
void cmv_formats__session_skip(cmv_import_result *res, size_t lineno);
/* CMV_ETOOBIG naming file and line when a record is over opts' cap; 0 otherwise. */
int cmv_formats__session_check_size(const char *path, size_t lineno, size_t len, const cmv_import_options *opts);
/* Show a JSONL file's first records (at most 16) to fn until it returns 1 (it found the session id). */
void cmv_formats__session_probe(const char *file, size_t size, int (*fn)(jspan rec, const cJSON *j, void *payload), void *payload);

/*
 * Writing a branch as a new session of the agent it came from: each record
 * of `format` on the path goes through record(), each message appended in
 * cmv (no template) through message(); each writes one line without its
 * newline. A record of another format is an error, and so is a path with
 * none of this format.
 */
typedef struct {
	const char *format, *label; /* "claude-code", "Claude Code" */
	int (*record)(cmv_buf *out, const char *rec, size_t len, void *payload);
	int (*message)(cmv_buf *out, cmv_repo *repo, const cmv_node *n, void *payload);
} session_rewriter;

int cmv_formats__session_rewrite(cmv_buf *out, cmv_repo *repo, const cmv_id *tip, const session_rewriter *w, void *payload);


/* ---- generic importer for formats whose records form one chain ---------- */

typedef struct session_import session_import;

typedef struct {
	const char *name;      /* "codex" */
	const char *prefix;    /* session ref prefix */
	/*
	 * NULL: JSONL, each top-level value a record. Otherwise a JSON
	 * document whose records are the elements of this member of the top
	 * object ("" for a top-level array); the bytes before the first
	 * element and from the closing bracket on are a header and a trailer
	 * record of their own.
	 */
	const char *array_key;
	/*
	 * Cut one record's content into rb and say its role and kind. `j` is
	 * the parsed record. May set the session id with cmv_formats__session_import_id().
	 */
	int (*record)(session_import *si, record_build *rb, jspan rec, const cJSON *j, cmv_role *role,
		      cmv_kind *kind);
} session_driver;

void cmv_formats__session_import_id(session_import *si, const char *id);
int cmv__session_import(cmv_import_result *out, cmv_repo *repo, const char *path, const session_driver *d,
			const cmv_import_options *opts);

/* The drivers, for detection and dispatch (formats/import.c). */
extern const session_driver cmv__driver_codex, cmv__driver_copilot, cmv__driver_gemini_cli,
	cmv__driver_swe_agent, cmv__driver_openhands, cmv__driver_anthropic, cmv__driver_openai_chat,
	cmv__driver_openai_responses, cmv__driver_gemini;

/* A random UUID v4, for a new session id. */
int cmv__uuid_v4(char out[37]);


#endif
