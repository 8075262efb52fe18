/* SPDX-License-Identifier: MIT */
/*
 * cmv hook install | uninstall | status | restore, and cmv auto-trim, the
 * command those hooks run.
 *
 * Claude Code runs a hook command with a JSON object on stdin
 * ({session_id, transcript_path, hook_event_name, ...}) and waits for it.
 * auto-trim trims the live session file in place before Claude Code's own
 * compaction summarizes it away (PreCompact), or once it has grown past a
 * size (PostToolUse, --check-size). It must never get in Claude Code's way:
 * whatever happens it exits 0 and says what happened in the store's log
 * (auto-trim.log, one JSON object per line) and on stderr.
 *
 * Nothing is lost on the way: the bytes read are first copied to a backup
 * file (`cmv hook restore` puts it back) and imported into the store, where
 * a snapshot keeps them; the trimmed file replaces the session by rename,
 * and only if the session did not change while it was being trimmed. A
 * session whose last line is cut off is being written: it is left alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include "cmd.h"
#include <cmv/compaction.h>
#include <cmv/formats.h>
#include <cmv/model.h>
#include "base/base.h"
#include "sessions.h"

#define HOOK_MARK "auto-trim"            /* how our entries are told from others' */
#define HOOK_SIZE_DEFAULT 600000         /* claude-code-cmv's default: ~70% of a 200k window in bytes */
#define HOOK_STDIN_MAX ((size_t)1 << 20) /* a hook's input is a few hundred bytes */
#define HOOK_STDIN_WAIT_MS 5000
#define HOOK_KEEP_DEFAULT 5              /* backups kept per session */
#define HOOK_LOG_MAX_LINES 200           /* the log is cut back to half this when it grows past it */

static const char *h_action, *h_arg, *h_settings, *h_threshold, *h_size;
static bool h_json, h_list;
const cli_opt opts_hook[] = {
	{ OPT_ARG, "ACTION", 0, NULL, "install, uninstall, status or restore", &h_action, NULL },
	{ OPT_ARG_OPT, "SESSION", 0, NULL, "restore: the session whose newest backup to put back (default: the newest of all)", &h_arg, NULL },
	{ OPT_VALUE, "settings", 0, "FILE", "Claude Code's settings file (default: $CLAUDE_CONFIG_DIR or ~/.claude, settings.json)", &h_settings, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "install: the trim threshold the hooks use (default 500)", &h_threshold, NULL },
	{ OPT_VALUE, "size", 0, "BYTES", "install: the session size that makes the after-tool-use hook trim (default 600000)", &h_size, NULL },
	{ OPT_FLAG, "list", 'l', NULL, "restore: list the backups instead", NULL, &h_list },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &h_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *a_size, *a_threshold, *a_keep;
static bool a_check;
const cli_opt opts_auto_trim[] = {
	{ OPT_FLAG, "check-size", 0, NULL, "trim only once the session file is over --size bytes", NULL, &a_check },
	{ OPT_VALUE, "size", 0, "BYTES", "the size for --check-size (default 600000)", &a_size, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "stub content over this many characters (default 500)", &a_threshold, NULL },
	{ OPT_VALUE, "keep", 0, "N", "backups kept per session (default 5)", &a_keep, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* ---- small file helpers ------------------------------------------------------ */

/* A session id as it may go into a file name: what Claude Code's ids are made of. */
static bool session_id_ok(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '-' || s[n] == '_'))
			return false;
	return n > 0 && n <= 36;
}

static void stamp_now(char out[32])
{
	time_t now = (time_t)cmv__now();
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- the log ------------------------------------------------------------------ */

static void log_entry(const char *store, cJSON *e)
{
	char path[PATH_MAX], when[32];
	time_t now = (time_t)cmv__now();
	struct tm tm;
	char *line;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cJSON_AddStringToObject(e, "time", when);
	if (!(line = cJSON_PrintUnformatted(e)))
		return;
	fprintf(stderr, "cmv auto-trim: %s\n", line);
	if (store && snprintf(path, sizeof(path), "%s/auto-trim.log", store) < (int)sizeof(path)) {
		cmv_buf old = CMV_BUF_INIT((size_t)64 << 20);
		size_t lines = 0;
		if (cmv__read_file(&old, path) == 0) {
			for (size_t i = 0; i < old.size; i++)
				lines += old.ptr[i] == '\n';
		}
		cmv_error_clear();
		if (lines >= HOOK_LOG_MAX_LINES) {
			/* keep the newer half: the log says what happened lately, it is not an archive */
			size_t drop = lines - HOOK_LOG_MAX_LINES / 2, i = 0;
			for (; i < old.size && drop; i++)
				drop -= old.ptr[i] == '\n';
			cmv_buf keep = CMV_BUF_INIT((size_t)64 << 20);
			cmv_buf_put(&keep, old.ptr + i, old.size - i);
			cmv_buf_printf(&keep, "%s\n", line);
			cmv__file_write_atomic(path, keep.ptr, keep.size, 0600);
			cmv_buf_dispose(&keep);
		} else {
			FILE *fp = fopen(path, "ab");
			if (fp) {
				fprintf(fp, "%s\n", line);
				fclose(fp);
			}
		}
		cmv_buf_dispose(&old);
	}
	cJSON_free(line);
}

/* The last line of the log, parsed (NULL if none). */
static cJSON *log_last(const char *store)
{
	char path[PATH_MAX];
	cmv_buf b = CMV_BUF_INIT((size_t)64 << 20);
	cJSON *j = NULL;
	snprintf(path, sizeof(path), "%s/auto-trim.log", store);
	if (cmv__read_file(&b, path) == 0 && b.size) {
		size_t end = b.size - (b.ptr[b.size - 1] == '\n'), start = end;
		while (start && b.ptr[start - 1] != '\n')
			start--;
		j = cJSON_ParseWithLength(b.ptr + start, end - start);
	}
	cmv_error_clear();
	cmv_buf_dispose(&b);
	return j;
}

/* ---- auto-trim -------------------------------------------------------------- */

/* Read stdin, at most HOOK_STDIN_MAX bytes, waiting at most HOOK_STDIN_WAIT_MS for each part. */
static const char *read_hook_input(cmv_buf *out)
{
	char chunk[4096];
	if (isatty(STDIN_FILENO))
		return "standard input is a terminal, not a hook's input";
	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, HOOK_STDIN_WAIT_MS);
		if (r == 0)
			return "no hook input within 5 seconds";
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return "cannot read standard input";
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return "cannot read standard input";
		if (n == 0)
			return NULL;
		if (out->size + (size_t)n > HOOK_STDIN_MAX)
			return "the hook input is over 1 MiB";
		if (cmv_buf_put(out, chunk, (size_t)n) < 0)
			return "out of memory";
	}
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest `keep` backups of a session (names sort by time). */
static void prune_backups(const char *dir, size_t keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 7 || strcmp(e->d_name + len - 6, ".jsonl"))
			continue;
		if (n == cap) {
			char **g = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (!g)
				break;
			names = g;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i + keep < n; i++) {
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
			unlink(path);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

typedef struct {
	const char *store;
	cJSON *log;
	size_t size_limit, threshold, keep;
	bool check_size;
} auto_trim_job;

/*
 * One auto-trim. Returns NULL when it did its work or had nothing to do
 * (the log entry says which), else why it gave up; the session file is
 * then as it was.
 */
static const char *auto_trim(auto_trim_job *job)
{
	static char why[PATH_MAX * 2 + 256];
	cmv_buf in = CMV_BUF_INIT(HOOK_STDIN_MAX), body = CMV_BUF_INIT((size_t)1 << 31),
		trimmed = CMV_BUF_INIT((size_t)1 << 31);
	cJSON *hook = NULL;
	cmv_repo *repo = NULL;
	cmv_models *models = NULL;
	const cmv_model *m = NULL;
	cmv_tok *tok = NULL;
	const char *err = NULL, *sid, *path;
	char backup_dir[PATH_MAX / 2], backup[PATH_MAX], tmp[PATH_MAX], stamp[32], snap[128], branch[160];
	char real[PATH_MAX];
	struct stat st, st2;
	int lock = -1;

	if ((err = read_hook_input(&in)) != NULL)
		goto done;
	if (!(hook = cJSON_ParseWithLength(in.ptr ? in.ptr : "", in.size)) || !cJSON_IsObject(hook)) {
		err = "the hook input is not a JSON object";
		goto done;
	}
	sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hook, "session_id"));
	path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hook, "transcript_path"));
	const char *trigger = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hook, "hook_event_name"));
	if (!trigger)
		trigger = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hook, "trigger"));
	if (trigger)
		cJSON_AddStringToObject(job->log, "trigger", trigger);
	if (!sid || !path) {
		err = "the hook input has no session_id or transcript_path";
		goto done;
	}
	cJSON_AddStringToObject(job->log, "session", sid);
	cJSON_AddStringToObject(job->log, "transcript", path);
	if (!session_id_ok(sid)) {
		err = "the session_id is not a Claude Code session id";
		goto done;
	}
	/* a link is followed once, here: the file it names is what gets replaced, not the link */
	if (!realpath(path, real) || stat(real, &st) != 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
		err = why;
		goto done;
	}
	path = real;
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, sizeof(why), "%s: not a regular file", path);
		err = why;
		goto done;
	}
	if (job->check_size && (uint64_t)st.st_size < job->size_limit) {
		cJSON_AddStringToObject(job->log, "outcome", "small");
		goto done;
	}
	if (!job->store) {
		err = "no store: install the hooks from one (cmv hook install)";
		goto done;
	}
	/* one auto-trim at a time: PreCompact and PostToolUse can fire together */
	snprintf(tmp, sizeof(tmp), "%s/auto-trim.lock", job->store);
	if ((lock = open(tmp, O_RDWR | O_CREAT | O_NOFOLLOW, 0600)) < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
		err = "another auto-trim is running";
		goto done;
	}
	if (cmv__read_file(&body, path) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last() ? cmv_error_last()->message : "cannot read the session");
		err = why;
		goto done;
	}
	cJSON_AddNumberToObject(job->log, "bytes_before", (double)body.size);

	/* the backup first: it is exactly what was read, and what the store imports */
	stamp_now(stamp);
	if (snprintf(backup_dir, sizeof(backup_dir), "%s/backups/%s", job->store, sid) >= (int)sizeof(backup_dir) ||
	    cli_mkdirs(backup_dir) != 0) {
		snprintf(why, sizeof(why), "cannot create %s: %s", backup_dir, strerror(errno));
		err = why;
		goto done;
	}
	for (int k = 0;; k++) {
		/* two runs in one second get distinct names */
		snprintf(backup, sizeof(backup), k ? "%s/%s-%d.jsonl" : "%s/%s.jsonl", backup_dir, stamp, k);
		int fd = open(backup, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == EEXIST && k < 100)
			continue;
		if (fd < 0 || write(fd, body.ptr, body.size) != (ssize_t)body.size || fsync(fd) != 0 || close(fd) != 0) {
			snprintf(why, sizeof(why), "cannot write the backup %s: %s", backup, strerror(errno));
			err = why;
			goto done;
		}
		break;
	}
	snprintf(tmp, sizeof(tmp), "%s/path", backup_dir);
	if (cmv__file_write_atomic(tmp, path, strlen(path), 0600) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last()->message);
		err = why;
		goto done;
	}
	cJSON_AddStringToObject(job->log, "backup", backup);

	/* into the store: the session as read, a snapshot of it, and the trimmed branch */
	cmv_import_result res;
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;
	cmv_trim_report rep;
	io.flags = CMV_IMPORT_FORCE; /* the session ref follows the file, trimmed last time or not */
	snprintf(snap, sizeof(snap), "auto-%.8s-%s", sid, stamp);
	if (cmv_repo_open(&repo, job->store, 0) < 0 || cmv_models_load(&models, NULL) < 0 ||
	    cmv_models_find(&m, models, "claude-sonnet-4-5") < 0 || cmv_tok_load(&tok, m->tokenizer, NULL) < 0 ||
	    cmv_import_file(&res, repo, backup, "claude-code", &io) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last() ? cmv_error_last()->message : "cannot import the session");
		err = why;
		goto done;
	}
	if (res.partial_tail) {
		/* the agent is mid-line: what we would write back could not hold the rest of it */
		unlink(backup);
		err = "the session is being written (its last line is cut off); left as it was";
		goto done;
	}
	/* two runs in one second: the second snapshot gets a suffix */
	for (int k = 1; k < 100; k++) {
		cmv_ref *taken = NULL;
		if (cmv_ref_lookup(&taken, repo, snap) < 0)
			break;
		cmv_ref_free(taken);
		snprintf(snap, sizeof(snap), "auto-%.8s-%s-%d", sid, stamp, k);
	}
	cmv_error_clear();
	snprintf(branch, sizeof(branch), "%s.trim", snap);
	to.threshold = job->threshold;
	to.branch = branch;
	to.from_ref = snap;
	to.flags = CMV_TRIM_LIVE;
	to.model = m;
	to.tok = tok;
	if (cmv_repo_txn_begin(repo) < 0 || cmv_snapshot_create(repo, snap, &res.head, res.branch, NULL) < 0 ||
	    cmv_trim(&rep, repo, &res.head, &to) < 0 ||
	    cmv_claude_session_write_as(&trimmed, sid, repo, &rep.head) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last() ? cmv_error_last()->message : "the trim failed");
		cmv_repo_txn_rollback(repo);
		err = why;
		goto done;
	}
	if (trimmed.size >= body.size) {
		cmv_repo_txn_rollback(repo);
		unlink(backup);
		cJSON_DeleteItemFromObjectCaseSensitive(job->log, "backup");
		cJSON_AddStringToObject(job->log, "outcome", "nothing to trim");
		goto done;
	}
	if (cmv_repo_txn_commit(repo) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last() ? cmv_error_last()->message : "cannot commit");
		err = why;
		goto done;
	}
	cJSON_AddStringToObject(job->log, "snapshot", snap);
	cJSON_AddStringToObject(job->log, "branch", branch);
	cJSON_AddNumberToObject(job->log, "tokens_before", (double)rep.tokens_before);
	cJSON_AddNumberToObject(job->log, "tokens_after", (double)rep.tokens_after);

	/* the trimmed file replaces the session only if nothing was appended meanwhile */
	cmv__atomic_file af;
	if (cmv__atomic_open(&af, path, st.st_mode & 07777) < 0 ||
	    fwrite(trimmed.ptr, 1, trimmed.size, af.fp) != trimmed.size || fflush(af.fp) != 0) {
		snprintf(why, sizeof(why), "%s", af.fp ? strerror(errno) : cmv_error_last()->message);
		cmv__atomic_abort(&af);
		err = why;
		goto done;
	}
	if (stat(path, &st2) != 0 || st2.st_size != st.st_size || st2.st_mtim.tv_sec != st.st_mtim.tv_sec ||
	    st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec || st2.st_ino != st.st_ino) {
		cmv__atomic_abort(&af);
		err = "the session changed while it was trimmed; left as it was (the next hook tries again)";
		goto done;
	}
	if (cmv__atomic_commit(&af) < 0) {
		snprintf(why, sizeof(why), "%s", cmv_error_last()->message);
		err = why;
		goto done;
	}
	cJSON_AddStringToObject(job->log, "outcome", "trimmed");
	cJSON_AddNumberToObject(job->log, "bytes_after", (double)trimmed.size);
	prune_backups(backup_dir, job->keep);
done:
	if (lock >= 0)
		close(lock);
	cmv_tok_free(tok);
	cmv_models_free(models);
	cmv_repo_free(repo);
	cJSON_Delete(hook);
	cmv_buf_dispose(&in);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&trimmed);
	return err;
}

/* A whole number option, or the default; false when it is not one. */
static bool parse_count(size_t *out, const char *s, size_t dflt, size_t min)
{
	char *end;
	unsigned long long v;
	*out = dflt;
	if (!s)
		return true;
	v = strtoull(s, &end, 10);
	if (!*s || *end || *s == '-' || v < min)
		return false;
	*out = (size_t)v;
	return true;
}

CMD(auto_trim)
{
	auto_trim_job job = { 0 };
	cmv_buf store = CMV_BUF_INIT(PATH_MAX);
	const char *err = NULL;

	/* a usage error is still exit 0: a hook must never stop Claude Code */
	if (cli_parse(cli_find("auto-trim"), argc, argv) != 0)
		return EXIT_OK;
	job.log = cJSON_CreateObject();
	job.check_size = a_check;
	if (!parse_count(&job.size_limit, a_size, HOOK_SIZE_DEFAULT, 0) ||
	    cli_parse_threshold(&job.threshold, a_threshold) < 0 || !parse_count(&job.keep, a_keep, HOOK_KEEP_DEFAULT, 1))
		err = "bad --size, --threshold or --keep";
	if (!err) {
		if (ctx->store_arg)
			cmv_buf_puts(&store, ctx->store_arg);
		else if (cmv_repo_discover(&store, NULL) < 0)
			cmv_error_clear();
		job.store = store.size ? store.ptr : NULL;
		err = auto_trim(&job);
	}
	if (err)
		cJSON_AddStringToObject(job.log, "error", err);
	if (err || !cJSON_GetObjectItemCaseSensitive(job.log, "outcome") ||
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job.log, "outcome")), "small"))
		log_entry(job.store, job.log);
	cJSON_Delete(job.log);
	cmv_buf_dispose(&store);
	return EXIT_OK;
}

/* ---- cmv hook ------------------------------------------------------------------ */

static char *settings_path(void)
{
	if (h_settings)
		return cmv__strdup(h_settings);
	char *root = cli_agent_home("CLAUDE_CONFIG_DIR", ".claude");
	cmv_buf b = CMV_BUF_INIT(PATH_MAX);
	if (!root)
		return NULL;
	cmv_buf_printf(&b, "%s/settings.json", root);
	free(root);
	return cmv_buf_detach(&b);
}

/* Claude Code's settings: {} when there is no file; NULL (and a message) when it is not a JSON object. */
static cJSON *settings_load(const char *path)
{
	cmv_buf b = CMV_BUF_INIT((size_t)16 << 20);
	cJSON *j;
	int error = cmv__read_file(&b, path);
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		cmv_buf_dispose(&b);
		return cJSON_CreateObject();
	}
	if (error < 0) {
		cli_fail("cannot read the settings");
		cmv_buf_dispose(&b);
		return NULL;
	}
	j = cJSON_ParseWithLength(b.ptr ? b.ptr : "", b.size);
	cmv_buf_dispose(&b);
	if (!cJSON_IsObject(j)) {
		cli_failf("%s: not a JSON object; left as it is", path);
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static int settings_save(const char *path, cJSON *j)
{
	char *text = cJSON_Print(j), dir[PATH_MAX];
	int rc = EXIT_OK;
	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	if (!text || (strchr(path, '/') && cli_mkdirs(dir) != 0))
		rc = cli_failf("cannot write %s: %s", path, text ? strerror(errno) : "out of memory");
	else if (cmv__file_write_atomic(path, text, strlen(text), 0600) < 0)
		rc = cli_fail("cannot write the settings");
	cJSON_free(text);
	return rc;
}

static bool is_ours(const cJSON *h)
{
	const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "command"));
	return cmd && strstr(cmd, "cmv") && strstr(cmd, " " HOOK_MARK);
}

/* Remove our entries from hooks.<event>, and groups left empty; returns how many went. */
static size_t remove_ours(cJSON *hooks, const char *event)
{
	cJSON *groups = cJSON_GetObjectItemCaseSensitive(hooks, event), *g, *next;
	size_t n = 0;
	for (g = cJSON_IsArray(groups) ? groups->child : NULL; g; g = next) {
		cJSON *list = cJSON_GetObjectItemCaseSensitive(g, "hooks"), *h, *hn;
		next = g->next;
		for (h = cJSON_IsArray(list) ? list->child : NULL; h; h = hn) {
			hn = h->next;
			if (is_ours(h)) {
				cJSON_Delete(cJSON_DetachItemViaPointer(list, h));
				n++;
			}
		}
		if (cJSON_IsArray(list) && !list->child)
			cJSON_Delete(cJSON_DetachItemViaPointer(groups, g));
	}
	if (cJSON_IsArray(groups) && !groups->child)
		cJSON_DeleteItemFromObjectCaseSensitive(hooks, event);
	return n;
}

/* `s` in single quotes for sh, a quote inside written as '\'' */
static void sh_quote(cmv_buf *out, const char *s)
{
	cmv_buf_putc(out, '\'');
	for (; *s; s++)
		if (*s == '\'')
			cmv_buf_puts(out, "'\\''");
		else
			cmv_buf_putc(out, *s);
	cmv_buf_putc(out, '\'');
}

static const struct {
	const char *event, *args;
	int timeout;
} our_hooks[] = {
	{ "PreCompact", "", 30 },
	{ "PostToolUse", " --check-size", 10 },
};

static int hook_install(cli_ctx *ctx, const char *path, size_t threshold, size_t size)
{
	char exe[PATH_MAX], store[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cJSON *j = settings_load(path), *hooks;
	int rc;

	if (!j)
		return EXIT_ERROR;
	if (n <= 0 || !realpath(ctx->store_path, store)) {
		cJSON_Delete(j);
		return cli_failf("cannot tell where cmv or the store is: %s", strerror(errno));
	}
	exe[n] = '\0';
	if (!cJSON_IsObject(hooks = cJSON_GetObjectItemCaseSensitive(j, "hooks"))) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, "hooks");
		hooks = cJSON_AddObjectToObject(j, "hooks");
	}
	for (size_t i = 0; i < CMV_ARRAY_SIZE(our_hooks); i++) {
		cmv_buf cmd = CMV_BUF_INIT(PATH_MAX * 3);
		cJSON *groups, *g, *list, *h;
		remove_ours(hooks, our_hooks[i].event);
		if (!cJSON_IsArray(groups = cJSON_GetObjectItemCaseSensitive(hooks, our_hooks[i].event)))
			groups = cJSON_AddArrayToObject(hooks, our_hooks[i].event);
		sh_quote(&cmd, exe);
		cmv_buf_puts(&cmd, " --store ");
		sh_quote(&cmd, store);
		cmv_buf_printf(&cmd, " %s%s", HOOK_MARK, our_hooks[i].args);
		if (threshold)
			cmv_buf_printf(&cmd, " --threshold %zu", threshold);
		if (size && our_hooks[i].args[0])
			cmv_buf_printf(&cmd, " --size %zu", size);
		g = cJSON_CreateObject();
		cJSON_AddStringToObject(g, "matcher", "");
		list = cJSON_AddArrayToObject(g, "hooks");
		h = cJSON_CreateObject();
		cJSON_AddStringToObject(h, "type", "command");
		cJSON_AddStringToObject(h, "command", cmd.ptr);
		cJSON_AddNumberToObject(h, "timeout", our_hooks[i].timeout);
		cJSON_AddItemToArray(list, h);
		cJSON_AddItemToArray(groups, g);
		cmv_buf_dispose(&cmd);
	}
	rc = settings_save(path, j);
	cJSON_Delete(j);
	if (rc == EXIT_OK && !h_json)
		printf("hooks installed in %s: PreCompact trims the session before Claude Code compacts it, "
		       "PostToolUse once it is over %zu bytes; the store is %s\n",
		       path, size ? size : (size_t)HOOK_SIZE_DEFAULT, store);
	return rc;
}

static int hook_uninstall(const char *path, size_t *removed)
{
	cJSON *j = settings_load(path), *hooks;
	int rc = EXIT_OK;
	*removed = 0;
	if (!j)
		return EXIT_ERROR;
	if (cJSON_IsObject(hooks = cJSON_GetObjectItemCaseSensitive(j, "hooks"))) {
		for (size_t i = 0; i < CMV_ARRAY_SIZE(our_hooks); i++)
			*removed += remove_ours(hooks, our_hooks[i].event);
		if (!hooks->child)
			cJSON_DeleteItemFromObjectCaseSensitive(j, "hooks");
	}
	if (*removed)
		rc = settings_save(path, j);
	cJSON_Delete(j);
	return rc;
}

/* Backups: every <store>/backups/<session>/<stamp>.jsonl, oldest first. */
typedef struct {
	char *session, *file, *transcript;
} backup_item;

static void backups_list(backup_item **out, size_t *n_out, const char *store, const char *session)
{
	char dir[PATH_MAX / 2];
	DIR *d, *sd;
	struct dirent *e, *f;
	backup_item *items = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*n_out = 0;
	snprintf(dir, sizeof(dir), "%s/backups", store);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char sdir[PATH_MAX / 2 + 300], pfile[PATH_MAX];
		if (!session_id_ok(e->d_name) || (session && strncmp(e->d_name, session, strlen(session))))
			continue;
		snprintf(sdir, sizeof(sdir), "%s/%s", dir, e->d_name);
		snprintf(pfile, sizeof(pfile), "%s/path", sdir);
		cmv_buf tp = CMV_BUF_INIT(PATH_MAX);
		if (cmv__read_file(&tp, pfile) < 0)
			cmv_error_clear();
		if (!(sd = opendir(sdir))) {
			cmv_buf_dispose(&tp);
			continue;
		}
		while ((f = readdir(sd))) {
			size_t len = strlen(f->d_name);
			if (len < 7 || strcmp(f->d_name + len - 6, ".jsonl"))
				continue;
			if (n == cap) {
				backup_item *g = realloc(items, (cap = cap ? cap * 2 : 16) * sizeof(*items));
				if (!g)
					break;
				items = g;
			}
			cmv_buf fp = CMV_BUF_INIT(PATH_MAX);
			cmv_buf_printf(&fp, "%s/%s", sdir, f->d_name);
			items[n].session = strdup(e->d_name);
			items[n].file = cmv_buf_detach(&fp);
			items[n].transcript = strdup(tp.ptr ? tp.ptr : "");
			n++;
		}
		closedir(sd);
		cmv_buf_dispose(&tp);
	}
	closedir(d);
	/* by stamp (the file name), oldest first */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && strcmp(strrchr(items[k - 1].file, '/'), strrchr(items[k].file, '/')) > 0; k--) {
			backup_item t = items[k];
			items[k] = items[k - 1];
			items[k - 1] = t;
		}
	*out = items;
	*n_out = n;
}

static void backups_free(backup_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].session);
		free(items[i].file);
		free(items[i].transcript);
	}
	free(items);
}

static int hook_restore(cli_ctx *ctx)
{
	backup_item *items;
	size_t n;
	int rc = EXIT_OK;
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31), cur = CMV_BUF_INIT((size_t)1 << 31);
	cJSON *o = h_json ? cJSON_CreateObject() : NULL, *arr = o ? cJSON_AddArrayToObject(o, "backups") : NULL;

	if (h_arg && !session_id_ok(h_arg))
		return cli_usage_error(cli_find("hook"), "'%s' is not a session id", h_arg);
	backups_list(&items, &n, ctx->store_path, h_arg);
	if (h_list) {
		for (size_t i = n; i-- > 0;) {
			struct stat st;
			long long size = stat(items[i].file, &st) == 0 ? (long long)st.st_size : -1;
			if (arr) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "session", items[i].session);
				cJSON_AddStringToObject(x, "file", items[i].file);
				cJSON_AddStringToObject(x, "transcript", items[i].transcript);
				cJSON_AddNumberToObject(x, "bytes", (double)size);
				cJSON_AddItemToArray(arr, x);
			} else {
				printf("%s  %10lld bytes  %s\n", items[i].session, size, items[i].file);
			}
		}
		goto done;
	}
	if (!n) {
		rc = cli_failf("no backups%s%s in %s/backups", h_arg ? " of session " : "", h_arg ? h_arg : "", ctx->store_path);
		goto done;
	}
	const backup_item *b = &items[n - 1];
	if (!b->transcript[0]) {
		rc = cli_failf("%s: the session file it came from is not recorded", b->file);
		goto done;
	}
	if (cmv__read_file(&body, b->file) < 0) {
		rc = cli_fail("cannot read the backup");
		goto done;
	}
	/* what is there now becomes a backup too: a restore can be undone like a trim */
	if (cmv__read_file(&cur, b->transcript) == 0) {
		char stamp[32], save[PATH_MAX];
		stamp_now(stamp);
		snprintf(save, sizeof(save), "%.*s/%s-before-restore.jsonl",
			 (int)(strrchr(b->file, '/') - b->file), b->file, stamp);
		int fd = open(save, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0 || write(fd, cur.ptr, cur.size) != (ssize_t)cur.size || fsync(fd) != 0) {
			if (fd >= 0)
				close(fd);
			rc = cli_failf("cannot keep the current session as %s: %s", save, strerror(errno));
			goto done;
		}
		close(fd);
	}
	cmv_error_clear();
	if (cmv__file_write_atomic(b->transcript, body.ptr, body.size, 0600) < 0) {
		rc = cli_fail("cannot restore the transcript");
		goto done;
	}
	if (o) {
		cJSON_AddStringToObject(o, "restored", b->transcript);
		cJSON_AddStringToObject(o, "from", b->file);
		cJSON_AddNumberToObject(o, "bytes", (double)body.size);
	} else {
		printf("restored %s from %s (%zu bytes)\n", b->transcript, b->file, body.size);
	}
done:
	if (o && rc == EXIT_OK)
		rc = cli_print_json(o);
	else
		cJSON_Delete(o);
	backups_free(items, n);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&cur);
	return rc;
}

static int hook_status(cli_ctx *ctx, const char *path)
{
	cJSON *j = settings_load(path), *hooks, *o = cJSON_CreateObject(), *ev = cJSON_AddObjectToObject(o, "hooks");
	backup_item *items;
	size_t n;
	if (!j) {
		cJSON_Delete(o);
		return EXIT_ERROR;
	}
	hooks = cJSON_GetObjectItemCaseSensitive(j, "hooks");
	cJSON_AddStringToObject(o, "settings", path);
	for (size_t i = 0; i < CMV_ARRAY_SIZE(our_hooks); i++) {
		cJSON *groups = cJSON_GetObjectItemCaseSensitive(hooks, our_hooks[i].event), *g, *cmds = cJSON_CreateArray();
		size_t others = 0;
		for (g = cJSON_IsArray(groups) ? groups->child : NULL; g; g = g->next) {
			cJSON *list = cJSON_GetObjectItemCaseSensitive(g, "hooks"), *h;
			for (h = cJSON_IsArray(list) ? list->child : NULL; h; h = h->next)
				if (is_ours(h))
					cJSON_AddItemToArray(cmds, cJSON_CreateString(cJSON_GetStringValue(
								   cJSON_GetObjectItemCaseSensitive(h, "command"))));
				else
					others++;
		}
		cJSON *e = cJSON_AddObjectToObject(ev, our_hooks[i].event);
		cJSON_AddBoolToObject(e, "installed", cmds->child != NULL);
		cJSON_AddItemToObject(e, "commands", cmds);
		cJSON_AddNumberToObject(e, "other_hooks", (double)others);
	}
	backups_list(&items, &n, ctx->store_path, NULL);
	cJSON_AddNumberToObject(o, "backups", (double)n);
	backups_free(items, n);
	cJSON *last = log_last(ctx->store_path);
	if (last)
		cJSON_AddItemToObject(o, "last_run", last);
	cJSON_Delete(j);
	if (h_json)
		return cli_print_json(o);
	printf("settings: %s\n", path);
	for (size_t i = 0; i < CMV_ARRAY_SIZE(our_hooks); i++) {
		cJSON *e = cJSON_GetObjectItemCaseSensitive(ev, our_hooks[i].event);
		cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "commands")->child;
		printf("%-12s %s\n", our_hooks[i].event, c ? c->valuestring : "not installed");
	}
	printf("backups:     %zu\n", n);
	if (last) {
		char *s = cJSON_PrintUnformatted(last);
		printf("last run:    %s\n", s ? s : "");
		cJSON_free(s);
	} else {
		printf("last run:    none\n");
	}
	cJSON_Delete(o);
	return EXIT_OK;
}

CMD(hook)
{
	char *path;
	size_t threshold = 0, size = 0, removed = 0;
	int rc;

	CLI_PARSE("hook");
	if (strcmp(h_action, "install") && strcmp(h_action, "uninstall") && strcmp(h_action, "status") &&
	    strcmp(h_action, "restore"))
		return cli_usage_error(cli_find("hook"), "'%s' is not install, uninstall, status or restore", h_action);
	if (h_arg && strcmp(h_action, "restore"))
		return cli_usage_error(cli_find("hook"), "only restore takes a SESSION");
	if (cli_parse_threshold(&threshold, h_threshold) < 0)
		return cli_usage_error(cli_find("hook"), "--threshold needs a whole number of characters, at least %d, not '%s'",
				       CMV_TRIM_THRESHOLD_MIN, h_threshold);
	if (!parse_count(&size, h_size, 0, 1))
		return cli_usage_error(cli_find("hook"), "--size needs a whole number of bytes, not '%s'", h_size);
	if (!strcmp(h_action, "restore"))
		return hook_restore(ctx);
	if (!(path = settings_path()))
		return cli_failf("no $CLAUDE_CONFIG_DIR or $HOME to find Claude Code's settings in (use --settings)");
	if (!strcmp(h_action, "install")) {
		rc = hook_install(ctx, path, threshold, size);
	} else if (!strcmp(h_action, "uninstall")) {
		rc = hook_uninstall(path, &removed);
		if (rc == EXIT_OK && !h_json)
			printf("%zu cmv hook%s removed from %s\n", removed, removed == 1 ? "" : "s", path);
	} else {
		rc = hook_status(ctx, path);
	}
	if (rc == EXIT_OK && h_json && strcmp(h_action, "status")) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "settings", path);
		cJSON_AddStringToObject(o, "action", h_action);
		if (!strcmp(h_action, "uninstall"))
			cJSON_AddNumberToObject(o, "removed", (double)removed);
		rc = cli_print_json(o);
	}
	free(path);
	return rc;
}
