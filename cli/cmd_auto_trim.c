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
 * file (`cmv hook restore` puts it back) and imported into the store; the
 * trimmed file replaces the session by rename, and only if the session did
 * not change while it was being trimmed. A session whose last line is cut
 * off is being written: it is left alone.
 *
 * Invariants (docs/trim.md, "Hooks"):
 *  - only a file below Claude Code's projects folder whose own session id
 *    is the hook's is read, backed up or replaced;
 *  - the session's branch holds what the file holds: the trimmed bytes are
 *    imported in the transaction that is committed just before the rename;
 *  - one ref per session, auto/<session>, whatever the number of trims;
 *  - with --check-size, nothing to do costs a stat and a read of the
 *    session's state file; PreCompact always trims.
 *
 * The job runs as phases (auto_trim): read the hook's input, see whether
 * it is worth a trim, find the session, lock the store, read the session,
 * back it up, import it, trim it, import the trim, record it, replace the
 * session file, prune old backups. A phase that gives up says why and
 * stops the rest.
 */
#define _GNU_SOURCE /* memmem */
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

/*
 * The most a hook's input may be. Claude Code sends the tool's input and
 * response after each call: for a Write or an Edit, the whole file (twice
 * over for an Edit: content, old file, patch), each byte escaped as JSON
 * (\n is two, a control character six). 64 MiB takes an edit of a file of
 * over 10 MB; the input is streamed, not kept (hook_input.c), so the cap
 * bounds the time read (a 5 MB input: docs/trim.md), not memory.
 */
#define HOOK_STDIN_MAX ((size_t)64 << 20)
#define HOOK_STDIN_WAIT_MS 5000
#define HOOK_KEEP_DEFAULT 5              /* backups kept per session */

static const char *a_size, *a_threshold, *a_keep, *a_growth;
static bool a_check;
const cli_opt opts_auto_trim[] = {
	{ OPT_FLAG, "check-size", 0, NULL, "trim only once the session file is over --size bytes, and grew by --growth since the last trim", NULL, &a_check },
	{ OPT_VALUE, "size", 0, "BYTES", "the size for --check-size (default 600000)", &a_size, NULL },
	{ OPT_VALUE, "growth", 0, "BYTES", "the growth for --check-size (default 65536)", &a_growth, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "stub content over this many characters (default 500)", &a_threshold, NULL },
	{ OPT_VALUE, "keep", 0, "N", "backups kept per session (default 5)", &a_keep, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* stdin for hook_input_parse, waiting at most HOOK_STDIN_WAIT_MS for each part. */
static long read_stdin(void *payload, char *buf, size_t n, const char **err)
{
	(void)payload;
	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, HOOK_STDIN_WAIT_MS);
		if (r == 0) {
			*err = "no hook input within 5 seconds";
			return -1;
		}
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t k = r < 0 ? -1 : read(STDIN_FILENO, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			*err = "cannot read standard input";
		return (long)k;
	}
}

typedef struct {
	const char *store;
	cJSON *log;
	size_t size_limit, threshold, keep, growth;
	bool check_size;
	/* what each phase of the job leaves to the next */
	const char *err;                /* why it gave up (NULL: it did not) */
	hook_input in;                  /* the hook's input; sid and path point into it */
	const char *sid, *path;         /* path: the session file, once found (real) */
	char real[PATH_MAX], projects[PATH_MAX];
	struct stat st;                 /* the session file when it was found */
	int lock;                       /* the store's auto-trim.lock, held */
	cmv_buf body;                   /* the session's bytes, as read */
	char stamp[32], backup_dir[PATH_MAX / 2], backup[PATH_MAX];
	cmv_repo *repo;
	cmv_models *models;
	const cmv_model *m;             /* the model the log counts tokens in */
	cmv_tok *tok;
	cmv_import_result res, tres;    /* the session as read, and as trimmed, imported */
	char ref[CMV_REF_NAME_MAX + 1]; /* auto/<session>: the rolling record of the trims */
	char tmp_branch[CMV_REF_NAME_MAX + 1];
	cmv_trim_report rep;
	cmv_buf trimmed;                /* the trimmed branch, written as the session */
	cmv__atomic_file af;            /* ... on its way to replace it */
	bool in_txn;                    /* the store's transaction is open */
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

/* Nothing to do: said in the log only when asked (CMV_HOOK_LOG=all), since it happens after every tool call. */
static bool quiet(auto_trim_job *job, const char *outcome)
{
	cJSON_AddStringToObject(job->log, "outcome", outcome);
	return false;
}

/* The hook's input: which session, in which file, and what fired the hook (for the log). */
static bool read_hook(auto_trim_job *job)
{
	const char *err;

	if (isatty(STDIN_FILENO))
		return stop(job, "standard input is a terminal, not a hook's input");
	if ((err = hook_input_parse(&job->in, read_stdin, NULL, HOOK_STDIN_MAX)) != NULL)
		return stop(job, err);
	if (job->in.seen & HOOK_IN_EVENT)
		cJSON_AddStringToObject(job->log, "trigger", job->in.event);
	if (job->in.seen & HOOK_IN_TRIGGER)
		cJSON_AddStringToObject(job->log, "compact", job->in.trigger);
	if (!(job->in.seen & HOOK_IN_SESSION_ID) || !(job->in.seen & HOOK_IN_TRANSCRIPT))
		return stop(job, "the hook input has no session_id or transcript_path");
	job->sid = job->in.session_id;
	job->path = job->in.transcript_path;
	cJSON_AddStringToObject(job->log, "session", job->sid);
	cJSON_AddStringToObject(job->log, "transcript", job->path);
	if (!hook_session_id_ok(job->sid))
		return stop(job, "the session_id is not a Claude Code session id");
	return true;
}

/*
 * After a tool call (--check-size), the whole cost when there is nothing to
 * do: a stat of the session, and a read of the state the last trim left.
 * PreCompact trims whatever the size: Claude Code is about to compact.
 */
static bool worth_a_trim(auto_trim_job *job)
{
	struct stat st;
	hook_state last;

	if (!job->check_size || !strcmp(job->in.event, "PreCompact"))
		return true;
	if (stat(job->path, &st) != 0)
		return true; /* find_session says why */
	if ((uint64_t)st.st_size < job->size_limit)
		return quiet(job, "small");
	/* the same file (a restore or another writer makes a new one), not grown enough since */
	if (job->store && hook_state_read(&last, job->store, job->sid) && last.ino == (unsigned long long)st.st_ino &&
	    (unsigned long long)st.st_size < last.bytes + job->growth)
		return quiet(job, "not grown");
	return true;
}

/* The session file: a regular file inside Claude Code's projects folder. */
static bool find_session(auto_trim_job *job)
{
	if (!hook_projects_dir(job->projects))
		return stop(job, "no Claude Code projects folder ($CLAUDE_CONFIG_DIR/projects or ~/.claude/projects)");
	/* a link is followed once, here: the file it names is what gets replaced, not the link */
	if (!realpath(job->path, job->real) || stat(job->real, &job->st) != 0)
		return give_up(job, "%s: %s", job->path, strerror(errno));
	if (!hook_path_below(job->real, job->projects))
		return give_up(job, "%s: not inside Claude Code's projects folder %s; left alone", job->real, job->projects);
	job->path = job->real;
	if (!S_ISREG(job->st.st_mode))
		return give_up(job, "%s: not a regular file", job->path);
	return true;
}

/* The store, to ourselves. */
static bool lock_store(auto_trim_job *job)
{
	if (!job->store)
		return stop(job, "no store: install the hooks from one (cmv hook install)");
	/* one auto-trim at a time: PreCompact and PostToolUse can fire together */
	if ((job->lock = hook_lock(job->store)) < 0)
		return stop(job, "another auto-trim is running");
	return true;
}

/* The session's bytes: all the later phases work from these, and the file must still hold them at the end. */
static bool read_session(auto_trim_job *job)
{
	if (cmv__read_file(&job->body, job->path) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot read the session");
	cJSON_AddNumberToObject(job->log, "bytes_before", (double)job->body.size);
	/*
	 * The file's own id: the last record that names one, as Claude Code
	 * writes it ("sessionId":"<id>", no escapes), is the session being
	 * appended to. The trimmed file names the hook's id on every line, so
	 * another id here would be a rewrite of someone else's session.
	 */
	static const char key[] = "\"sessionId\":\"";
	const char *last = NULL, *p = job->body.ptr, *end = job->body.ptr + job->body.size;
	while (p && (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
		last = p + sizeof(key) - 1;
		p = last;
	}
	size_t n = strlen(job->sid);
	if (!last)
		return give_up(job, "%s: no record names its session; left alone", job->path);
	if ((size_t)(end - last) <= n || memcmp(last, job->sid, n) || last[n] != '"') {
		const char *q = memchr(last, '"', (size_t)(end - last));
		return give_up(job, "%s: the session is %.*s, not the hook's session_id; left alone", job->path,
			       q && q - last <= 64 ? (int)(q - last) : 0, last);
	}
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

/* The session, the trim and the record of it, into the store: one transaction, committed by replace_session. */
static bool open_store(auto_trim_job *job)
{
	if (cmv_repo_open(&job->repo, job->store, 0) < 0 || cmv_models_load(&job->models, NULL) < 0 ||
	    cli_model(&job->m, job->models, "claude-sonnet-4-5") < 0 ||
	    cmv_tok_load(&job->tok, job->m->tokenizer, NULL) < 0 || cmv_repo_txn_begin(job->repo) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot open the store");
	job->in_txn = true;
	return true;
}

/* The session as read (the backup), unless the agent is still writing its last line. */
static bool import_session(auto_trim_job *job)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;

	/* the branch is where the last trim left it, so this is a step forward; forced, since the file rules */
	io.flags = CMV_IMPORT_FORCE;
	if (cmv_import_file(&job->res, job->repo, job->backup, "claude-code", &io) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot import the session");
	if (job->res.partial_tail) {
		/* the agent is mid-line: what we would write back could not hold the rest of it */
		unlink(job->backup);
		return stop(job, "the session is being written (its last line is cut off); left as it was");
	}
	return true;
}

/* The live trim, on a branch of the transaction's own, written out as the same session. */
static bool trim_in_store(auto_trim_job *job)
{
	cmv_trim_options to = CMV_TRIM_OPTIONS_INIT;

	snprintf(job->ref, sizeof(job->ref), "auto/%s", job->sid);
	snprintf(job->tmp_branch, sizeof(job->tmp_branch), "auto/%s.trimming", job->sid);
	to.threshold = job->threshold;
	to.branch = job->tmp_branch;
	to.from_ref = job->res.branch;
	to.flags = CMV_TRIM_LIVE;
	to.model = job->m;
	to.tok = job->tok;
	if (cmv_trim(&job->rep, job->repo, &job->res.head, &to) < 0 ||
	    cmv_claude_session_write_as(&job->trimmed, job->sid, job->repo, &job->rep.head) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "the trim failed");
	if (job->trimmed.size >= job->body.size) {
		/* nothing of this run is kept; the state says not to look again before the file grows */
		unlink(job->backup);
		cJSON_DeleteItemFromObjectCaseSensitive(job->log, "backup");
		cJSON_AddStringToObject(job->log, "outcome", "nothing to trim");
		hook_state_write(job->store, job->sid, &job->st);
		return false;
	}
	return true;
}

/*
 * The trimmed bytes, written beside the session (not yet over it), are
 * imported too: the session's branch then holds what the file will hold,
 * so the next `cmv import --latest` (or trim, or snapshot) is a step
 * forward from it, not a divergence.
 */
static bool import_trimmed(auto_trim_job *job)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;

	io.flags = CMV_IMPORT_FORCE;
	if (cmv__atomic_open(&job->af, job->path, job->st.st_mode & 07777) < 0 ||
	    fwrite(job->trimmed.ptr, 1, job->trimmed.size, job->af.fp) != job->trimmed.size || fflush(job->af.fp) != 0)
		return give_up(job, "%s", job->af.fp ? strerror(errno) : cmv_error_last()->message);
	if (cmv_import_file(&job->tres, job->repo, job->af.tmp, "claude-code", &io) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot import the trimmed session");
	if (strcmp(job->tres.branch, job->res.branch))
		return give_up(job, "the trimmed session went to branch %s, not %s", job->tres.branch, job->res.branch);
	return true;
}

/*
 * One ref per session, however many trims: auto/<session>, a snapshot of
 * a chain of records, one per trim, each including the session as read
 * and its trim (so every stub of every trim still recalls after gc) and
 * hanging from the one before. The trim's own branch goes.
 */
static bool record_trim(auto_trim_job *job)
{
	char hex[3][CMV_ID_HEXSZ + 1];
	cmv_ref *prev = NULL;
	cmv_id rec, inc[2] = { job->res.head, job->rep.head };
	cmv_snapshot_options so = CMV_SNAPSHOT_OPTIONS_INIT;
	cmv_buf text = CMV_BUF_INIT(4096), desc = CMV_BUF_INIT(4096);
	int error = cmv_ref_lookup(&prev, job->repo, job->ref);

	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		error = 0;
	} else if (error == 0 && prev->type != CMV_REF_SNAPSHOT) {
		error = cmv_error__set(CMV_EEXISTS, "'%s' is not the snapshot auto-trim keeps", job->ref);
	}
	cmv_buf_printf(&text, "{\"session\":\"%s\",\"time\":\"%s\",\"original\":\"%s\",\"trim\":\"%s\","
			      "\"trimmed\":\"%s\",\"bytes_before\":%zu,\"bytes_after\":%zu}",
		       job->sid, job->stamp, cli_id(&job->res.head, hex[0]), cli_id(&job->rep.head, hex[1]),
		       cli_id(&job->tres.head, hex[2]), job->body.size, job->trimmed.size);
	cmv_buf_printf(&desc, "auto-trim of session %s, last at %s", job->sid, job->stamp);
	so.description = desc.ptr;
	cmv_block_content b = { .type = "auto_trim", .data = text.ptr, .len = text.size, .media_type = "application/json" };
	cmv_message m = { .role = CMV_ROLE_SYSTEM, .kind = CMV_KIND_EVENT, .blocks = &b, .n_blocks = 1,
			  .includes = inc, .n_includes = 2 };
	if (error == 0)
		error = cmv_ref_delete(job->repo, job->tmp_branch);
	if (error == 0)
		error = cmv_node_write(&rec, job->repo, prev ? &prev->target : NULL, &m);
	if (error == 0 && prev)
		error = cmv_ref_delete(job->repo, job->ref);
	if (error == 0)
		error = cmv_snapshot_create(job->repo, job->ref, &rec, job->res.branch, &so);
	cmv_ref_free(prev);
	cmv_buf_dispose(&text);
	cmv_buf_dispose(&desc);
	if (error < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot record the trim");
	cJSON_AddStringToObject(job->log, "ref", job->ref);
	cJSON_AddStringToObject(job->log, "original", hex[0]);
	cJSON_AddNumberToObject(job->log, "tokens_before", (double)job->rep.tokens_before);
	cJSON_AddNumberToObject(job->log, "tokens_after", (double)job->rep.tokens_after);
	return true;
}

/*
 * The trimmed file replaces the session only if nothing was appended
 * meanwhile; the store's transaction is committed just before, so the
 * branch and the file change together (a failed rename is logged: the
 * next import of the file is then forced by the next trim).
 */
static bool replace_session(auto_trim_job *job)
{
	struct stat st2;

	if (stat(job->path, &st2) != 0 || st2.st_size != job->st.st_size || st2.st_mtim.tv_sec != job->st.st_mtim.tv_sec ||
	    st2.st_mtim.tv_nsec != job->st.st_mtim.tv_nsec || st2.st_ino != job->st.st_ino)
		return stop(job, "the session changed while it was trimmed; left as it was (the next hook tries again)");
	job->in_txn = false;
	if (cmv_repo_txn_commit(job->repo) < 0)
		return give_up(job, "%s", cmv_error_last() ? cmv_error_last()->message : "cannot commit");
	if (cmv__atomic_commit(&job->af) < 0)
		return give_up(job, "%s (the store has the trim, the file not)", cmv_error_last()->message);
	cJSON_AddStringToObject(job->log, "outcome", "trimmed");
	cJSON_AddNumberToObject(job->log, "bytes_after", (double)job->trimmed.size);
	if (stat(job->path, &st2) == 0)
		hook_state_write(job->store, job->sid, &st2);
	return true;
}

/*
 * One auto-trim. Returns NULL when it did its work or had nothing to do
 * (the log entry says which), else why it gave up; the session file is
 * then as it was. Each phase goes on only when the one before it did.
 */
static const char *auto_trim(auto_trim_job *job)
{
	cmv_buf_init(&job->body, (size_t)1 << 31);
	cmv_buf_init(&job->trimmed, (size_t)1 << 31);
	job->lock = -1;
	if (read_hook(job) && worth_a_trim(job) && find_session(job) && lock_store(job) && read_session(job) &&
	    back_up(job) && open_store(job) && import_session(job) && trim_in_store(job) && import_trimmed(job) &&
	    record_trim(job) && replace_session(job))
		hook_prune_backups(job->backup_dir, job->keep);
	if (job->af.fp)
		cmv__atomic_abort(&job->af);
	if (job->in_txn)
		cmv_repo_txn_rollback(job->repo);
	if (job->lock >= 0)
		close(job->lock);
	cmv_tok_free(job->tok);
	cmv_models_free(job->models);
	cmv_repo_free(job->repo);
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
	    !hook_parse_count(&job.growth, a_growth, HOOK_GROWTH_DEFAULT, 0) ||
	    cli_parse_threshold(&job.threshold, a_threshold) < 0 || !hook_parse_count(&job.keep, a_keep, HOOK_KEEP_DEFAULT, 1))
		err = "bad --size, --growth, --threshold or --keep";
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
	const char *outcome = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job.log, "outcome")),
		   *all = getenv("CMV_HOOK_LOG");
	if (err || !outcome || (strcmp(outcome, "small") && strcmp(outcome, "not grown")) || (all && !strcmp(all, "all")))
		hook_log_entry(job.store, job.log);
	cJSON_Delete(job.log);
	cmv_buf_dispose(&store);
	return EXIT_OK;
}
