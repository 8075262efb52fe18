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

#include <stdbool.h>
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
/** The defaults, as CMV_IMPORT_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_import_options_init(cmv_import_options *opts);

/** At most this many skipped line numbers are listed in a result. */
#define CMV_IMPORT_SKIPPED_LISTED 32

typedef enum {
	CMV_IMPORT_CREATED = 1,   /**< a new branch */
	CMV_IMPORT_UPDATED = 2,   /**< the branch moved forward (the file grew) */
	CMV_IMPORT_UNCHANGED = 3, /**< the branch already held all of it */
	CMV_IMPORT_REPLACED = 4,  /**< the branch had diverged; moved with FORCE */
} cmv_import_outcome;

#define CMV_IMPORT_RESULT_VERSION 1
typedef struct cmv_import_result {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_IMPORT_RESULT_VERSION) */
	char branch[CMV_REF_NAME_MAX + 1];
	cmv_import_outcome outcome;
	cmv_id head;
	size_t records;           /**< records read */
	size_t skipped;           /**< bad records kept as opaque events (lenient mode), and a partial last line */
	size_t skipped_lines[CMV_IMPORT_SKIPPED_LISTED];
	char session[CMV_REF_NAME_MAX + 1]; /**< the session ref ("" for cmv JSONL) */
	const char *format;       /**< the format's name (static) */
	/** The last line was cut off mid-write (the agent is still writing): left for the next import. */
	bool partial_tail;
	/**
	 * Claude Code results sent as a <persisted-output> preview whose saved
	 * file (<id>/tool-results/<name> beside the session) was kept as the
	 * result's original (a `cc_saved_output` block of the record).
	 */
	size_t saved_outputs;
	/**
	 * Such results whose saved file was not found (a session copied
	 * without its folder) or is not the one the preview begins: the record
	 * is kept as it is, preview and all; only the whole output is missing.
	 */
	size_t saved_missing;
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
 * The formats cmv imports, by name: "claude-code", "codex", "copilot-cli",
 * "gemini-cli", "swe-agent", "openhands", "anthropic", "openai-chat",
 * "openai-responses", "gemini", and "cmv". NULL-terminated.
 */
CMV_EXTERN(const char *const *) cmv_format_names(void);

/**
 * Tell a file's format from its content (never from its name): the first
 * record of a JSONL file, or the keys of a JSON document.
 * @param out a static string, one of cmv_format_names()
 * @return 0, CMV_EINVALID (unknown), CMV_ENOTFOUND, CMV_EIO
 */
CMV_EXTERN(int) cmv_format_detect(const char **out, const char *path);

/**
 * Import a file of any format (`format` NULL: detect it). Every format but
 * "cmv" is kept losslessly as a session (cmv_export_session() gives the
 * file back byte for byte), and its conversation becomes a branch.
 * @return as cmv_import_cmv_file(); CMV_EINVALID for an unknown format name
 */
CMV_EXTERN(int) cmv_import_file(cmv_import_result *out, cmv_repo *repo, const char *path,
				const char *format, const cmv_import_options *opts);

/**
 * The conversation ending at `tip` (a branch of an imported Claude Code
 * session) as a new Claude Code session file: every record on the path, in
 * order, with a new session id written into every line and the uuid chain
 * as it was; a message appended in cmv becomes a line of its own, chained
 * to the one before.
 * @param new_id receives the new session id (a UUID v4)
 * @param cwd_out may be NULL; receives the session's working directory
 * @return 0, CMV_EINVALID (no Claude Code records on the path), CMV_EIO
 */
CMV_EXTERN(int) cmv_claude_session_write(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo,
					 const cmv_id *tip);

/**
 * As cmv_claude_session_write(), but every line keeps `session_id`: the
 * file that replaces a live session in place (a hook's trim), which its
 * agent goes on appending to under that id.
 * @return as cmv_claude_session_write(); CMV_EINVALID for an id that is
 *         not 1 to 36 characters of [A-Za-z0-9_-]
 */
CMV_EXTERN(int) cmv_claude_session_write_as(cmv_buf *out, const char *session_id, cmv_repo *repo,
					    const cmv_id *tip);

/**
 * Put the saved tool outputs a written Claude Code session refers to beside
 * it, as Claude Code lays a session out, and make the session name them
 * there. Each `cc_saved_output` on the path to `tip` (the whole output of a
 * result sent as a <persisted-output> preview, kept by the import) is
 * written to <folder>/<id>/tool-results/<name> for a session file
 * <folder>/<id>.jsonl (mode 0600; a file already there with the same bytes
 * is left as it is), and every mention in `body` (the session as
 * cmv_claude_session_write() wrote it) of the path the record named becomes
 * that path. A new session is then whole by itself: its previews name files
 * that exist, whatever becomes of the session it was made from.
 * @param n_out may be NULL; receives the number of files placed
 * @return 0, CMV_EINVALID (session_path is not <folder>/<id>.jsonl),
 *         CMV_EEXISTS (other bytes at a file's place), CMV_EIO
 */
CMV_EXTERN(int) cmv_claude_session_place_outputs(cmv_buf *body, size_t *n_out, cmv_repo *repo, const cmv_id *tip,
						 const char *session_path);

/**
 * The same for a branch of an imported Codex rollout: every record on the
 * path, the new id in its session_meta line; a message appended in cmv
 * becomes a response item of its own.
 */
CMV_EXTERN(int) cmv_codex_session_write(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo,
					const cmv_id *tip);

/* ---- carrying a branch into the other agent -------------------------------- */

enum cmv_carry_flags {
	/** Begin with the lines that open a session (Codex's session_meta): a new session, not an append. */
	CMV_CARRY_HEADER = (1u << 0),
};

typedef struct cmv_carry_options {
	unsigned int version;
	/** The agent whose records are written: "claude-code" or "codex". */
	const char *agent;
	/** The target session's id, written into its records ([A-Za-z0-9_-], at most 64); NULL: a new UUID v4. */
	const char *session_id;
	/**
	 * The target's working directory. When the records name another one,
	 * it is remapped: every mention of that folder (as a whole path) in
	 * tool inputs, results and text becomes this one. NULL: as recorded.
	 */
	const char *cwd;
	/** The hex id of the last record carried before (a sync): only what follows it. NULL: the whole branch. */
	const char *after;
	/** Claude Code: the uuid of the line the first written line hangs from (an append). NULL: a root. */
	const char *parent_uuid;
	/** What each line's provenance names as its source ("codex/<id>"); NULL: the source's session id. */
	const char *origin;
	unsigned int flags; /**< cmv_carry_flags */
} cmv_carry_options;
#define CMV_CARRY_OPTIONS_VERSION 1
#define CMV_CARRY_OPTIONS_INIT { CMV_CARRY_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

typedef struct cmv_carry_result {
	char session_id[65];             /**< the target session's id (opts->session_id, or the new one) */
	/** The records' format ("claude-code", "codex", ...; "cmv" for a branch a host wrote). Static. */
	const char *source_format;
	char source_session[128];        /**< the session id the records name ("" if none) */
	char source_cwd[4096];           /**< the folder they were recorded in ("" if none) */
	char last_node[CMV_ID_HEXSZ + 1]; /**< the tip's hex id: the next sync's `after` */
	char last_uuid[64];              /**< Claude Code: the last line written ("" when none) */
	size_t records;                  /**< records on the path */
	size_t messages;                 /**< messages carried */
	size_t lines;                    /**< lines written */
	size_t calls;                    /**< tool calls carried */
	size_t mapped_calls;             /**< of those, to the target's own tool (the shell) */
	size_t stubbed_calls;            /**< to a tool the target lacks: call and result as text */
	size_t stubbed_thinking;         /**< thinking or reasoning blocks left behind (a stub per message) */
	size_t dropped_system;           /**< the source agent's system prompts, not carried */
	size_t answered_calls;           /**< calls with no result, answered with an error result */
	size_t remapped_paths;           /**< mentions of the recorded folder made the target's */
	/**
	 * What could not cross, as a JSON array: {"what": "thinking"|"tool"|
	 * "system", "detail", "node", "recall"} (recall: the blob id that
	 * `cmv recall` gives back, or null). Dispose with cmv_carry_result_dispose().
	 */
	cmv_buf notes;
} cmv_carry_result;

/**
 * Write the conversation ending at `tip`, whatever wrote it, as lines of
 * another agent's session (one JSON record a line, each ending in '\n'):
 * Claude Code lines chained by uuid, or Codex rollout items. The branch is
 * read and repaired as a rendering for that agent's provider is; the
 * shell crosses as the target's shell tool, any other tool as text (call
 * and result), thinking and the other agent's system prompts stay behind
 * (stubbed, listed in res->notes). Every line carries its provenance
 * ("cmvCarried" / "cmv_carried": the source, its agent, the record).
 * Nothing new after opts->after writes nothing (res->messages is 0).
 * @return 0, CMV_EINVALID (options), CMV_ENOTFOUND (opts->after not on the
 *         branch), CMV_EIO, CMV_ECORRUPT
 */
CMV_EXTERN(int) cmv_carry(cmv_buf *out, cmv_carry_result *res, cmv_repo *repo, const cmv_id *tip,
			  const cmv_carry_options *opts);
CMV_EXTERN(void) cmv_carry_result_dispose(cmv_carry_result *res);

/**
 * The format of the branch's records: that of the first session record on
 * the path to `tip` ("claude-code", "codex", ...), or "cmv" when none has
 * one (a branch an agent host wrote through the library). Static.
 * @return 0, CMV_ENOTFOUND
 */
CMV_EXTERN(int) cmv_branch_format(const char **out, cmv_repo *repo, const cmv_id *tip);

/* ---- rendering a branch as a provider request -------------------------- */

typedef enum {
	CMV_RENDER_ANTHROPIC = 1,        /**< Messages API body */
	CMV_RENDER_OPENAI_CHAT = 2,      /**< Chat Completions body */
	CMV_RENDER_OPENAI_RESPONSES = 3, /**< Responses API body (stateless) */
	CMV_RENDER_GEMINI = 4,           /**< generateContent body */
} cmv_render_target;

/** "anthropic", "openai-chat", "openai-responses", "gemini". */
CMV_EXTERN(const char *) cmv_render_target_name(cmv_render_target target);
/** @return 0, or CMV_EINVALID naming the target and the known ones */
CMV_EXTERN(int) cmv_render_target_parse(cmv_render_target *out, const char *name);

enum cmv_render_flags {
	/** No cache markers, reasoning include lists or signature placeholders. */
	CMV_RENDER_NO_DECORATIONS = (1u << 0),
	/** Render what came before the last compaction too (default: from it). */
	CMV_RENDER_FULL_HISTORY = (1u << 1),
	/** Indent the JSON. */
	CMV_RENDER_PRETTY = (1u << 2),
	/**
	 * Tool calls and results as text in their messages, for a model
	 * without native tool calling (the pager sets it from the profile).
	 */
	CMV_RENDER_TOOLS_AS_TEXT = (1u << 3),
	/**
	 * Each image as a line of text saying one was there, for a model
	 * without image input (the pager sets it from the profile).
	 */
	CMV_RENDER_NO_IMAGES = (1u << 4),
};

typedef struct cmv_render_options {
	unsigned int version;
	const char *model;        /**< the "model" member; NULL: none */
	unsigned int flags;       /**< cmv_render_flags */
	unsigned int max_tokens;  /**< Anthropic's max_tokens; 0: 4096 */
} cmv_render_options;
#define CMV_RENDER_OPTIONS_VERSION 1
#define CMV_RENDER_OPTIONS_INIT { CMV_RENDER_OPTIONS_VERSION, NULL, 0, 0 }
/** The defaults, as CMV_RENDER_OPTIONS_INIT gives them (for callers that cannot use the macro). */
CMV_EXTERN(void) cmv_render_options_init(cmv_render_options *opts);

/** What a rendering changed to satisfy the provider's rules. */
#define CMV_RENDER_STATS_VERSION 1
typedef struct cmv_render_stats {
	unsigned int version; /**< set by the call that fills it: the layout it wrote (CMV_RENDER_STATS_VERSION) */
	size_t messages;          /**< messages in the request */
	size_t records;           /**< records read from the branch */
	size_t compactions;       /**< compactions crossed (what came before was left out) */
	size_t answered_calls;    /**< calls with no recorded result, answered with an error result */
	size_t orphan_results;    /**< results with no call, kept as text */
	size_t dropped_thinking;  /**< thinking/reasoning blocks this provider cannot replay */
	size_t dropped_other;     /**< other blocks this provider cannot take */
	size_t renamed_calls;     /**< calls whose id an earlier call had, given a fresh one */
} cmv_render_stats;

/**
 * Render the conversation ending at `tip` as a request body for `target`.
 * Events are left out; one API message spread over several records is one
 * message again; every tool call is answered in the next message (a call
 * with no result gets an error result saying so); what a provider cannot
 * replay (another provider's thinking, redacted reasoning) is dropped. The
 * output is deterministic byte for byte.
 * @param stats may be NULL
 * @return 0, CMV_ENOTFOUND, CMV_ECORRUPT, CMV_EINVALID (nothing to render)
 */
CMV_EXTERN(int) cmv_render(cmv_buf *out, cmv_render_stats *stats, cmv_repo *repo, const cmv_id *tip,
			   cmv_render_target target, const cmv_render_options *opts);

/**
 * Check a request body against the provider's structural rules: every tool
 * call answered in the next message and every result after its call, no
 * empty message or content, alternation where the provider needs it,
 * thinking only where it can be replayed. Each problem is one line of
 * `problems` ("messages[3]: ..."); `problems` may be NULL.
 * @return the number of problems (0: the body passes), or CMV_EINVALID
 *         when it is not JSON at all
 */
CMV_EXTERN(int) cmv_check_request(cmv_buf *problems, cmv_render_target target, const char *json, size_t len);



#endif
