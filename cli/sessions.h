/* SPDX-License-Identifier: MIT */
/* The agent sessions on this machine (cmv/sessions.c). */
#ifndef CMV_CLI_SESSIONS_H
#define CMV_CLI_SESSIONS_H
#include "cmd.h"

typedef struct {
	const char *agent; /* "claude-code" or "codex" */
	char *path, *id, *project;
	int64_t mtime;
	uint64_t size;
} cli_session;

typedef struct {
	cli_session *items;
	size_t n, cap;
} cli_session_list;

/* What a session holds, read from its file (cli_session_details). */
typedef struct {
	char title[256];  /* the first prompt, on one line, cut at a character boundary ("" if none) */
	char model[128];  /* the last model it ran on ("" if none recorded) */
	char cwd[1024];   /* the folder it was recorded in ("" if none) */
	size_t messages;  /* user and assistant messages */
} cli_session_detail;

/* Read a session's file for its details; 0, or -1 when it cannot be read. */
int cli_session_details(cli_session_detail *d, const cli_session *s);

/* An agent's folder: $env, else $HOME/dflt (malloc'd), or NULL with neither. */
char *cli_agent_home(const char *env, const char *dflt);

/* Every session, newest first (or largest first); `project` filters by substring. */
int cli_sessions_list(cli_session_list *out, const char *project, bool sort_by_size);
void cli_sessions_free(cli_session_list *l);
/* The file of session `id` (a unique prefix will do), or of the newest one when id is NULL. */
int cli_session_path(cmv_buf *out, const char *id);

/* A session cli_write_agent_session wrote: what resuming it needs. */
typedef struct {
	const void *agent;
	char id[65];
	char cwd[4096];
} cli_agent_session;

/*
 * Write the conversation at `at` as a new session of an agent ("claude" or
 * "codex") in its folder, print how to resume it (or add it to json), and
 * fill `out` (may be NULL) for cli_launch_agent_session. `title` names it
 * in Claude Code's index.
 * The session goes with the folder its records name, or the current one
 * when that does not exist here (said on stderr). With `in_txn` the caller
 * has begun a transaction holding what it made for this session: it is
 * committed once the session is written, rolled back (and no file left)
 * when the agent cannot take the branch or the file cannot be written.
 */
/* Carrying into the other agent: where the session goes, which branch becomes it (NULL: its id), lineage. */
typedef struct {
	const char *cwd;      /* --cwd (NULL: the current folder) */
	const char *branch;   /* the branch that becomes the carried session */
	const char *from_ref; /* what it was carried from */
	const cmv_id *source_tip; /* the source's tip when a compaction made what is carried (NULL: the same) */
} cli_carry_opts;

/*
 * ... When the branch holds the other agent's records (or a host's), it is
 * carried across (cmv_carry): the session goes with `carry->cwd`, is
 * imported as `carry->branch`, and the pair is noted there for cmv sync.
 */
int cli_write_agent_session(cli_agent_session *out, cli_ctx *ctx, const cmv_id *at, cJSON *json, const char *agent,
			    const char *title, bool in_txn, const cli_carry_opts *carry);
/* The file of agent `agent_format`'s session `id` on this machine: 1 found, 0 not. */
int cli_session_file(cmv_buf *out, const char *agent_format, const char *id);
/* A carry's figures, into a JSON object, or said on stderr. */
void cli_carry_report(cJSON *o, const cmv_carry_result *r);
void cli_carry_say(const cmv_carry_result *r, const char *label, const char *from_cwd, const char *to_cwd);
/* Resume it now, in its folder (replaces the process); returns only on failure. */
int cli_launch_agent_session(const cli_agent_session *s);

#endif
