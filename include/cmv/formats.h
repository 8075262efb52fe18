/* SPDX-License-Identifier: MIT */
/*
 * Importing conversations into the store and exporting them back.
 *
 * So far: Claude Code session files (lossless, byte-identical export), and
 * cmv's own neutral JSONL (docs/formats.md), one message per line, {"role": ..., "content": ...} with content a string or an array
 * of Anthropic-shaped blocks (text, image, tool_use, tool_result, thinking;
 * other block types are kept whole). Fields cmv does not model are kept in
 * the node's meta, so import then export gives JSON-equal lines.
 *
 * An import is one transaction: on any error the store is as it was, and
 * the message names the file, the line and the reason.
 */
#ifndef CMV_FORMATS_H
#define CMV_FORMATS_H

#include "common.h"
#include "dag.h"

/** The default cap on one input line (64 MiB): a longer line is an error. */
#define CMV_IMPORT_MAX_LINE_DEFAULT ((size_t)64 << 20)

enum cmv_import_flags {
	/** Skip bad records (counting them) instead of failing the import. */
	CMV_IMPORT_LENIENT = (1u << 0),
	/** Move the branch even if it has diverged from the file. */
	CMV_IMPORT_FORCE = (1u << 1),
};

typedef struct cmv_import_options {
	unsigned int version;
	/** Target branch; NULL: the file's base name without extension. */
	const char *branch;
	unsigned int flags;       /**< cmv_import_flags */
	size_t max_line_bytes;    /**< 0: CMV_IMPORT_MAX_LINE_DEFAULT */
	/** Called after each record; a non-zero return aborts the import. May be NULL. */
	int (*progress)(size_t records, void *payload);
	void *progress_payload;
} cmv_import_options;
#define CMV_IMPORT_OPTIONS_VERSION 1
#define CMV_IMPORT_OPTIONS_INIT { CMV_IMPORT_OPTIONS_VERSION, NULL, 0, 0, NULL, NULL }

/** At most this many skipped line numbers are listed in a result. */
#define CMV_IMPORT_SKIPPED_LISTED 32

typedef enum {
	CMV_IMPORT_CREATED = 1,   /**< a new branch */
	CMV_IMPORT_UPDATED = 2,   /**< the branch moved forward (the file grew) */
	CMV_IMPORT_UNCHANGED = 3, /**< the branch already held all of it */
	CMV_IMPORT_REPLACED = 4,  /**< the branch had diverged; moved with FORCE */
} cmv_import_outcome;

typedef struct cmv_import_result {
	char branch[CMV_REF_NAME_MAX + 1];
	cmv_import_outcome outcome;
	cmv_id head;
	size_t records;           /**< messages read */
	size_t skipped;           /**< bad records skipped (lenient mode) */
	size_t skipped_lines[CMV_IMPORT_SKIPPED_LISTED];
} cmv_import_result;

/**
 * Import a cmv JSONL file as a branch.
 * @return 0, CMV_EINVALID (bad input: the message says file:line: reason),
 *         CMV_ETOOBIG (a line over the cap), CMV_EIO, CMV_ENOTFOUND (no
 *         file), CMV_EMODIFIED (the branch diverged; use FORCE), CMV_EUSER
 *         (progress aborted), CMV_ELOCKED
 */
CMV_EXTERN(int) cmv_import_cmv_file(cmv_import_result *out, cmv_repo *repo, const char *path,
				    const cmv_import_options *opts);

/** Where export output goes: a write callback (0 on success). */
typedef int (*cmv_write_fn)(const void *data, size_t len, void *payload);

/**
 * Write the conversation ending at `tip` as cmv JSONL, one line per node
 * (events and summaries too, with their "kind").
 * @return 0, CMV_ENOTFOUND, CMV_EIO, or the write callback's error
 */
CMV_EXTERN(int) cmv_export_cmv(cmv_repo *repo, const cmv_id *tip, cmv_write_fn write,
			       void *payload);

/**
 * Import a Claude Code session file (~/.claude/projects/<dir>/<id>.jsonl).
 * Every record is kept (events too) and the file can be written back byte
 * for byte with cmv_export_session(). The session ref is "cc/<sessionId>";
 * the conversation is a branch named after the session id (or
 * opts->branch) at the newest user or assistant record. Re-importing a file
 * that grew adds only its tail; a last line cut off mid-write is left for
 * the next import (counted in out->skipped).
 * @return as cmv_import_cmv_file()
 */
CMV_EXTERN(int) cmv_import_claude_code_file(cmv_import_result *out, cmv_repo *repo, const char *path,
					    const cmv_import_options *opts);

/**
 * Write an imported session back in its own format, every record in its
 * original order, byte-identical to what was imported.
 * @param session the session ref ("cc/<sessionId>")
 * @return 0, CMV_ENOTFOUND, CMV_EINVALID (not a session), CMV_ECORRUPT, or
 *         the write callback's error
 */
CMV_EXTERN(int) cmv_export_session(cmv_repo *repo, const char *session, cmv_write_fn write,
				   void *payload);

/**
 * Tell a file's format from its first record: "cmv" or "claude-code".
 * @param out a static string
 * @return 0, CMV_EINVALID (unknown), CMV_ENOTFOUND, CMV_EIO
 */
CMV_EXTERN(int) cmv_format_detect(const char **out, const char *path);

#endif
