/* SPDX-License-Identifier: MIT */
/*
 * What the two hook commands share: cmv hook (cmd_hook.c), which installs
 * the Claude Code hooks and undoes what they did, and cmv auto-trim
 * (cmd_auto_trim.c), which the hooks run. The files the hooks keep under
 * the store are read and written only through hook_files.c, and Claude
 * Code's settings only through hook_settings.c, so each format has one
 * owner.
 */
#ifndef CMV_CLI_HOOK_H
#define CMV_CLI_HOOK_H
#include "cmd.h"

#include <sys/stat.h>
#include "hook_input.h"

#define HOOK_SIZE_DEFAULT 600000 /* claude-code-cmv's default: ~70% of a 200k window in bytes */
/*
 * After a trim, --check-size waits for the file to grow this much before
 * it trims again (docs/trim.md: 64 KiB is ~16k tokens at most, 8% of a
 * 200k window, and makes a trim of 250-400 ms one per 64 KiB appended).
 */
#define HOOK_GROWTH_DEFAULT 65536
#define HOOK_GROWTH_UNSET ((size_t)-1) /* hook install: no --growth given */

/* ---- the files under the store, and the checks of input both commands make (hook_files.c) ---- */

/* A session id as it may go into a file name: what Claude Code's ids are made of. */
bool hook_session_id_ok(const char *s);
/* The time now (UTC) as a backup's name starts: 20260122T110100Z. */
void hook_stamp_now(char out[32]);
/* A whole number option, or the default; false when it is not one. */
bool hook_parse_count(size_t *out, const char *s, size_t dflt, size_t min);

/*
 * Claude Code's projects folder ($CLAUDE_CONFIG_DIR/projects, else
 * ~/.claude/projects), resolved; false when there is none. The hooks read
 * and write sessions only below it.
 */
bool hook_projects_dir(char out[PATH_MAX]);
/* Whether the resolved path `real` is below the resolved folder `dir`. */
bool hook_path_below(const char *real, const char *dir);

/*
 * What the hooks last left a session as: its size and inode once trimmed
 * (or found not worth a trim, or restored). backups/<session>/state, a
 * line of JSON: what --check-size reads, besides a stat, to do nothing.
 */
typedef struct {
	unsigned long long bytes, ino;
} hook_state;
bool hook_state_read(hook_state *out, const char *store, const char *session);
void hook_state_write(const char *store, const char *session, const struct stat *st);

/* The store's auto-trim.lock, taken without waiting: its descriptor (close to let go), or -1 when held. */
int hook_lock(const char *store);

/* Add the time to entry e, say it on stderr, and append it to the store's auto-trim.log (store NULL: stderr only). */
void hook_log_entry(const char *store, cJSON *e);
/* The last line of the log, parsed (NULL if none). */
cJSON *hook_log_last(const char *store);

/* Backups: every <store>/backups/<session>/<stamp>.jsonl, oldest first. */
typedef struct {
	char *session, *file, *transcript;
} hook_backup;

void hook_backups_list(hook_backup **out, size_t *n_out, const char *store, const char *session);
void hook_backups_free(hook_backup *items, size_t n);
/* Keep the newest `keep` backups of a session (names sort by time). */
void hook_prune_backups(const char *dir, size_t keep);

/* ---- Claude Code's settings.json (hook_settings.c) ------------------------------------------ */

/* The settings file: `given` (--settings), else settings.json in Claude Code's folder; NULL with neither. */
char *hook_settings_path(const char *given);
/* Each returns an exit code, having said what went wrong; `json`: leave the output to the caller. */
/* growth: HOOK_GROWTH_UNSET leaves auto-trim's default. */
int hook_install(cli_ctx *ctx, const char *path, size_t threshold, size_t size, size_t growth, bool json);
int hook_uninstall(const char *path, size_t *removed);
/* `json`: print the status as JSON instead of text. */
int hook_status(cli_ctx *ctx, const char *path, bool json);

#endif
