/* SPDX-License-Identifier: MIT */
/*
 * cmv auto-trim, the command the hooks that cmv hook installs run.
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
 *
 * The job runs as phases (auto_trim): read the hook's input, find the
 * session, lock the store, read the session, back it up, import it, trim
 * it in the store, replace the session file, prune old backups. A phase
 * that gives up says why and stops the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmd.h"
#include <cmv/compaction.h>
#include <cmv/formats.h>
#include <cmv/model.h>
#include "base/base.h"
#include "hook.h"

#define HOOK_STDIN_MAX ((size_t)1 << 20) /* a hook's input is a few hundred bytes */
#define HOOK_STDIN_WAIT_MS 5000
#define HOOK_KEEP_DEFAULT 5              /* backups kept per session */

static const char *a_size, *a_threshold, *a_keep;
static bool a_check;
const cli_opt opts_auto_trim[] = {
	{ OPT_FLAG, "check-size", 0, NULL, "trim only once the session file is over --size bytes", NULL, &a_check },
	{ OPT_VALUE, "size", 0, "BYTES", "the size for --check-size (default 600000)", &a_size, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "stub content over this many characters (default 500)", &a_threshold, NULL },
	{ OPT_VALUE, "keep", 0, "N", "backups kept per session (default 5)", &a_keep, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};


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

typedef struct {
	const char *store;
	cJSON *log;
	size_t size_limit, threshold, keep;
	bool check_size;
	/* what each phase of the job leaves to the next */
	const char *err;                /* why it gave up (NULL: it did not) */
	cmv_buf in;                     /* the hook's input */
	cJSON *hook;                    /* ... parsed; sid and path point into it */
	const char *sid, *path;         /* path: the session file, once found (real) */
	char real[PATH_MAX];
	struct stat st;                 /* the session file when it was found */
	int lock;                       /* the store's auto-trim.lock, held */
	cmv_buf body;                   /* the session's bytes, as read */
	char stamp[32], backup_dir[PATH_MAX / 2], backup[PATH_MAX];
	cmv_repo *repo;
	cmv_models *models;
	const cmv_model *m;             /* the model the log counts tokens in */
	cmv_tok *tok;
	cmv_import_result res;          /* the session as imported */
	char snap[128], branch[160];    /* the snapshot of it, and the trimmed branch */
	cmv_trim_report rep;
	cmv_buf trimmed;                /* the trimmed branch, written as the session */
} auto_trim_job;

/* A phase gives up: the session file is left as it was, and `err` says why. */
static bool stop(auto_trim_job *job, const char *err)
{
	job->err = err;
	return false;
}

/* ... with a reason made for this run (in a buffer that outlives the job). */
static bool give_up(auto_trim_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool give_up(auto_trim_job *job, const char *fmt, ...)
{
	static char why[PATH_MAX * 2 + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return stop(job, why);
}

/* The hook's input: which session, in which file, and what fired the hook (for the log). */
static bool read_hook(auto_trim_job *job)
{
	const char *err;

	if ((err = read_hook_input(&job->in)) != NULL)
		return stop(job, err);
	if (!(job->hook = cJSON_ParseWithLength(job->in.ptr ? job->in.ptr : "", job->in.size)) || !cJSON_IsObject(job->hook))
		return stop(job, "the hook input is not a JSON object");
	job->sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->hook, "session_id"));
	job->path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->hook, "transcript_path"));
	const char *trigger = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->hook, "hook_event_name"));
	if (!trigger)
		trigger = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job->hook, "trigger"));
	if (trigger)
		cJSON_AddStringToObject(job->log, "trigger", trigger);
	if (!job->sid || !job->path)
		return stop(job, "the hook input has no session_id or transcript_path");
	cJSON_AddStringToObject(job->log, "session", job->sid);
	cJSON_AddStringToObject(job->log, "transcript", job->path);
	if (!hook_session_id_ok(job->sid))
		return stop(job, "the session_id is not a Claude Code session id");
	return true;
}

/* The session file, a regular one; with --check-size, one big enough to be worth a trim. */
static bool find_session(auto_trim_job *job)
{
	/* a link is followed once, here: the file it names is what gets replaced, not the link */
	if (!realpath(job->path, job->real) || stat(job->real, &job->st) != 0)
		return give_up(job, "%s: %s", job->path, strerror(errno));
	job->path = job->real;
	if (!S_ISREG(job->st.st_mode))
		return give_up(job, "%s: not a regular file", job->path);
	if (job->check_size && (uint64_t)job->st.st_size < job->size_limit) {
		cJSON_AddStringToObject(job->log, "outcome", "small");
		return false;
	}
	return true;
}

/* The store, to ourselves. */
static bool lock_store(auto_trim_job *job)
{
	char tmp[PATH_MAX];

	if (!job->store)
		return stop(job, "no store: install the hooks from one (cmv hook install)");
	/* one auto-trim at a time: PreCompact and PostToolUse can fire together */
	snprintf(tmp, sizeof(tmp), "%s/auto-trim.lock", job->store);
	if ((job->lock = open(tmp, O_RDWR | O_CREAT | O_NOFOLLOW, 0600)) < 0 || flock(job->lock, LOCK_EX | LOCK_NB) != 0)
		return stop(job, "another auto-trim is running");
	return true;
}

/* The session's bytes: all the later phases work from these, and the file must still hold them at the end. */
static bool read_session(auto_trim_job *job)
{
	if (cmv__read_file(&job->body, job->path) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot read the session");
	cJSON_AddNumberToObject(job->log, "bytes_before", (double)job->body.size);
	return true;
}

/* The backup first: it is exactly what was read, and what the store imports. */
static bool back_up(auto_trim_job *job)
{
	char tmp[PATH_MAX];

	hook_stamp_now(job->stamp);
	if (snprintf(job->backup_dir, sizeof(job->backup_dir), "%s/backups/%s", job->store, job->sid) >=
		    (int)sizeof(job->backup_dir) ||
	    cli_mkdirs(job->backup_dir) != 0)
		return give_up(job, "cannot create %s: %s", job->backup_dir, strerror(errno));
	for (int k = 0;; k++) {
		/* two runs in one second get distinct names */
		snprintf(job->backup, sizeof(job->backup), k ? "%s/%s-%d.jsonl" : "%s/%s.jsonl", job->backup_dir,
			 job->stamp, k);
		int fd = open(job->backup, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == EEXIST && k < 100)
			continue;
		if (fd < 0 || write(fd, job->body.ptr, job->body.size) != (ssize_t)job->body.size || fsync(fd) != 0 ||
		    close(fd) != 0)
			return give_up(job, "cannot write the backup %s: %s", job->backup, strerror(errno));
		break;
	}
	snprintf(tmp, sizeof(tmp), "%s/path", job->backup_dir);
	if (cmv__file_write_atomic(tmp, job->path, strlen(job->path), 0600) < 0)
		return give_up(job, "%s", cmv_error_last()->message);
	cJSON_AddStringToObject(job->log, "backup", job->backup);
	return true;
}

/* Into the store: the session as read (the backup), unless the agent is still writing its last line. */
static bool import_session(auto_trim_job *job)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;

	io.flags = CMV_IMPORT_FORCE; /* the session ref follows the file, trimmed last time or not */
	if (cmv_repo_open(&job->repo, job->store, 0) < 0 || cmv_models_load(&job->models, NULL) < 0 ||
	    cli_model(&job->m, job->models, "claude-sonnet-4-5") < 0 ||
	    cmv_tok_load(&job->tok, job->m->tokenizer, NULL) < 0 ||
	    cmv_import_file(&job->res, job->repo, job->backup, "claude-code", &io) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot import the session");
	if (job->res.partial_tail) {
		/* the agent is mid-line: what we would write back could not hold the rest of it */
		unlink(job->backup);
		return stop(job, "the session is being written (its last line is cut off); left as it was");
	}
	return true;
}

/*
 * A snapshot of the session as read and the trimmed branch beside it, in
 * one transaction, kept only when the trimmed session is smaller: else
 * there is nothing to trim, and nothing of this run is left behind.
 */
static bool trim_in_store(auto_trim_job *job)
{
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;

	snprintf(job->snap, sizeof(job->snap), "auto-%.8s-%s", job->sid, job->stamp);
	/* two runs in one second: the second snapshot gets a suffix */
	for (int k = 1; k < 100; k++) {
		cmv_ref *taken = NULL;
		if (cmv_ref_lookup(&taken, job->repo, job->snap) < 0)
			break;
		cmv_ref_free(taken);
		snprintf(job->snap, sizeof(job->snap), "auto-%.8s-%s-%d", job->sid, job->stamp, k);
	}
	cmv_error_clear();
	snprintf(job->branch, sizeof(job->branch), "%s.trim", job->snap);
	to.threshold = job->threshold;
	to.branch = job->branch;
	to.from_ref = job->snap;
	to.flags = CMV_TRIM_LIVE;
	to.model = job->m;
	to.tok = job->tok;
	if (cmv_repo_txn_begin(job->repo) < 0 ||
	    cmv_snapshot_create(job->repo, job->snap, &job->res.head, job->res.branch, NULL) < 0 ||
	    cmv_trim(&job->rep, job->repo, &job->res.head, &to) < 0 ||
	    cmv_claude_session_write_as(&job->trimmed, job->sid, job->repo, &job->rep.head) < 0) {
		give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "the trim failed");
		cmv_repo_txn_rollback(job->repo);
		return false;
	}
	if (job->trimmed.size >= job->body.size) {
		cmv_repo_txn_rollback(job->repo);
		unlink(job->backup);
		cJSON_DeleteItemFromObjectCaseSensitive(job->log, "backup");
		cJSON_AddStringToObject(job->log, "outcome", "nothing to trim");
		return false;
	}
	if (cmv_repo_txn_commit(job->repo) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot commit");
	cJSON_AddStringToObject(job->log, "snapshot", job->snap);
	cJSON_AddStringToObject(job->log, "branch", job->branch);
	cJSON_AddNumberToObject(job->log, "tokens_before", (double)job->rep.tokens_before);
	cJSON_AddNumberToObject(job->log, "tokens_after", (double)job->rep.tokens_after);
	return true;
}

/* The trimmed file replaces the session only if nothing was appended meanwhile. */
static bool replace_session(auto_trim_job *job)
{
	struct stat st2;
	cmv__atomic_file af;

	if (cmv__atomic_open(&af, job->path, job->st.st_mode & 07777) < 0 ||
	    fwrite(job->trimmed.ptr, 1, job->trimmed.size, af.fp) != job->trimmed.size || fflush(af.fp) != 0) {
		give_up(job, "%s", af.fp ? strerror(errno) : cmv_error_last()->message);
		cmv__atomic_abort(&af);
		return false;
	}
	if (stat(job->path, &st2) != 0 || st2.st_size != job->st.st_size || st2.st_mtim.tv_sec != job->st.st_mtim.tv_sec ||
	    st2.st_mtim.tv_nsec != job->st.st_mtim.tv_nsec || st2.st_ino != job->st.st_ino) {
		cmv__atomic_abort(&af);
		return stop(job, "the session changed while it was trimmed; left as it was (the next hook tries again)");
	}
	if (cmv__atomic_commit(&af) < 0)
		return give_up(job, "%s", cmv_error_last()->message);
	cJSON_AddStringToObject(job->log, "outcome", "trimmed");
	cJSON_AddNumberToObject(job->log, "bytes_after", (double)job->trimmed.size);
	return true;
}

/*
 * One auto-trim. Returns NULL when it did its work or had nothing to do
 * (the log entry says which), else why it gave up; the session file is
 * then as it was. Each phase goes on only when the one before it did.
 */
static const char *auto_trim(auto_trim_job *job)
{
	cmv_buf_init(&job->in, HOOK_STDIN_MAX);
	cmv_buf_init(&job->body, (size_t)1 << 31);
	cmv_buf_init(&job->trimmed, (size_t)1 << 31);
	job->lock = -1;
	if (read_hook(job) && find_session(job) && lock_store(job) && read_session(job) && back_up(job) &&
	    import_session(job) && trim_in_store(job) && replace_session(job))
		hook_prune_backups(job->backup_dir, job->keep);
	if (job->lock >= 0)
		close(job->lock);
	cmv_tok_free(job->tok);
	cmv_models_free(job->models);
	cmv_repo_free(job->repo);
	cJSON_Delete(job->hook);
	cmv_buf_dispose(&job->in);
	cmv_buf_dispose(&job->body);
	cmv_buf_dispose(&job->trimmed);
	return job->err;
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
	if (!hook_parse_count(&job.size_limit, a_size, HOOK_SIZE_DEFAULT, 0) ||
	    cli_parse_threshold(&job.threshold, a_threshold) < 0 || !hook_parse_count(&job.keep, a_keep, HOOK_KEEP_DEFAULT, 1))
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
		hook_log_entry(job.store, job.log);
	cJSON_Delete(job.log);
	cmv_buf_dispose(&store);
	return EXIT_OK;
}
