/* SPDX-License-Identifier: MIT */
/*
<<<<<<< HEAD
 * cmv sync [REF]: keep a session carried into the other agent and the one
 * it came from going together. Each pair (`cmv branch NAME --from REF
 * --codex|--claude` made it, and noted it on NAME) is brought up to date
 * both ways: what either agent added since the last carry is carried into
 * the other's file, and nothing else, so running it again changes nothing.
 *
 * How it knows what is new: the pair notes, per side, the record the last
 * carry ended at. Both files are imported first (a grown file adds only its
 * tail, and its records are the same nodes as before), what follows each
 * noted record is carried, appended to the other file, and both are
 * imported again: the lines just appended are then behind the new marks,
 * so they never come back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd.h"
#include "sessions.h"

static const char *s_ref;
static bool s_json, s_dry;
const cli_opt opts_sync[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "the carried branch to sync (default: every pair made in this store)", &s_ref, NULL },
	{ OPT_FLAG, "dry-run", 0, NULL, "say what would be carried; write nothing", NULL, &s_dry },
	{ OPT_FLAG, "json", 0, NULL, "print what was carried as JSON", NULL, &s_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *label_of(const char *format)
{
	return !strcmp(format, "claude-code") ? "Claude Code" : !strcmp(format, "codex") ? "Codex" : format;
}

/* The uuid of a Claude Code session's last message line: what an appended line hangs from. */
static void last_uuid(char out[64], const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	out[0] = '\0';
	if (!fp)
		return;
	while ((len = getline(&line, &cap, fp)) > 0) {
		cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
		const char *t = jstr(j, "type"), *u = jstr(j, "uuid");
		if (t && u && (!strcmp(t, "user") || !strcmp(t, "assistant")) &&
		    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isSidechain")))
			snprintf(out, 64, "%s", u);
		cJSON_Delete(j);
	}
	free(line);
	fclose(fp);
}

/* Import an agent's session file (what it added since) into `branch` (NULL: the session's own). */
static int import_side(cmv_id *head, cli_ctx *ctx, const char *file, const char *format, const char *branch,
		       const char *what)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result ir;

	io.branch = branch;
	if (cmv_import_file(&ir, ctx->repo, file, format, &io) < 0)
		return cli_failf("cannot read %s (%s): %s", what, file, cmv_error_last() ? cmv_error_last()->message : "failed");
	*head = ir.head;
	return EXIT_OK;
}

static int append_file(const char *path, const cmv_buf *body)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return cli_failf("cannot append to %s: %s", path, strerror(errno));
	if (write(fd, body->ptr, body->size) != (ssize_t)body->size || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return cli_failf("cannot append to %s: %s", path, strerror(e));
	}
	close(fd);
	return EXIT_OK;
}

/* Carry what `from` added after its mark into `to`'s agent, as lines for to's file. */
static int carry_side(cmv_buf *out, cmv_carry_result *r, cli_ctx *ctx, const cmv_id *tip, const cJSON *from,
		      const cJSON *to)
{
	cmv_carry_options o = CMV_CARRY_OPTIONS_INIT;
	char parent[64] = "", origin[192];

	o.agent = jstr(to, "agent");
	o.session_id = jstr(to, "session");
	o.cwd = jstr(to, "cwd");
	o.after = jstr(from, "synced");
	if (!strcmp(o.agent, "claude-code") && jstr(to, "file")) {
		last_uuid(parent, jstr(to, "file"));
		o.parent_uuid = parent[0] ? parent : NULL;
	}
	snprintf(origin, sizeof(origin), "%s/%s", !strcmp(jstr(from, "agent"), "claude-code") ? "cc" : jstr(from, "agent"),
		 jstr(from, "session") ? jstr(from, "session") : "");
	o.origin = origin;
	if (cmv_carry(out, r, ctx->repo, tip, &o) < 0)
		return cli_failf("cannot carry what %s added into %s: %s", label_of(jstr(from, "agent")),
				 label_of(o.agent), cmv_error_last() ? cmv_error_last()->message : "failed");
	return EXIT_OK;
}

static int sync_pair(cli_ctx *ctx, const char *name, cJSON *arr)
{
	cmv_buf note = CMV_BUF_INIT(1 << 20), fwd = CMV_BUF_INIT((size_t)1 << 31), back = CMV_BUF_INIT((size_t)1 << 31);
	cmv_carry_result rf, rb;
	cJSON *pair = NULL, *src, *tgt;
	cmv_id src_tip, tgt_tip;
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;
	bool txn = false;

	memset(&rf, 0, sizeof(rf));
	memset(&rb, 0, sizeof(rb));
	if (cmv_branch_note_get(&note, ctx->repo, name, "carry") < 0) {
		rc = cli_failf("'%s' is not a branch carried into the other agent (cmv branch NAME --from REF --codex|--claude makes one)",
			       name);
		goto done;
	}
	pair = cJSON_ParseWithLength(note.ptr, note.size);
	src = cJSON_GetObjectItemCaseSensitive(pair, "source");
	tgt = cJSON_GetObjectItemCaseSensitive(pair, "target");
	if (!jstr(src, "agent") || !jstr(src, "synced") || !jstr(tgt, "agent") || !jstr(tgt, "file") ||
	    !jstr(tgt, "session") || !jstr(tgt, "synced")) {
		rc = cli_failf("%s: the pair's note is damaged; carry it again with cmv branch", name);
		goto done;
	}
	bool has_src_file = jstr(src, "file") != NULL;
	if (cmv_repo_txn_begin(ctx->repo) < 0) {
		rc = cli_fail("cannot start a transaction");
		goto done;
	}
	txn = true;
	/* what each side added since: its file imported (only the tail is new) */
	if (has_src_file)
		rc = import_side(&src_tip, ctx, jstr(src, "file"), jstr(src, "agent"), NULL, "the source session");
	else if (jstr(src, "ref"))
		rc = cli_resolve(&src_tip, ctx, jstr(src, "ref"));
	else
		rc = cli_failf("%s: the source has neither a session file nor a branch", name);
	if (rc == EXIT_OK)
		rc = import_side(&tgt_tip, ctx, jstr(tgt, "file"), jstr(tgt, "agent"), name, "the carried session");
	if (rc == EXIT_OK)
		rc = carry_side(&fwd, &rf, ctx, &src_tip, src, tgt);
	/* a host's branch has no agent file to carry back into: what the agent added stays on NAME */
	if (rc == EXIT_OK && has_src_file)
		rc = carry_side(&back, &rb, ctx, &tgt_tip, tgt, src);
	if (rc != EXIT_OK || s_dry)
		goto report;
	if (rf.messages && (rc = append_file(jstr(tgt, "file"), &fwd)) != EXIT_OK)
		goto report;
	if (rb.messages && (rc = append_file(jstr(src, "file"), &back)) != EXIT_OK)
		goto report;
	/* the new marks: both files again, the lines just appended included */
	if (has_src_file && rb.messages &&
	    (rc = import_side(&src_tip, ctx, jstr(src, "file"), jstr(src, "agent"), NULL, "the source session")) != EXIT_OK)
		goto report;
	if (rf.messages &&
	    (rc = import_side(&tgt_tip, ctx, jstr(tgt, "file"), jstr(tgt, "agent"), name, "the carried session")) != EXIT_OK)
		goto report;
	cJSON_ReplaceItemInObjectCaseSensitive(src, "synced", cJSON_CreateString(cli_id(&src_tip, hex)));
	cJSON_ReplaceItemInObjectCaseSensitive(tgt, "synced", cJSON_CreateString(cli_id(&tgt_tip, hex)));
	char *text = cJSON_PrintUnformatted(pair);
	if (!text || cmv_branch_note_set(ctx->repo, name, "carry", text) < 0)
		rc = cli_fail("cannot note the pair's new marks");
	free(text);
report:
	if (rc == EXIT_OK && !s_dry && cmv_repo_txn_commit(ctx->repo) < 0)
		rc = cli_fail("cannot commit the sync");
	else if (rc != EXIT_OK || s_dry)
		cmv_repo_txn_rollback(ctx->repo);
	txn = false;
	if (rc != EXIT_OK)
		goto done;
	if (arr) {
		cJSON *o = cJSON_CreateObject(), *f, *b;
		cJSON_AddStringToObject(o, "branch", name);
		cJSON_AddBoolToObject(o, "dry_run", s_dry);
		f = cJSON_AddObjectToObject(o, "forward");
		cJSON_AddStringToObject(f, "from", jstr(src, "agent"));
		cJSON_AddStringToObject(f, "into", jstr(tgt, "agent"));
		cJSON_AddStringToObject(f, "file", jstr(tgt, "file"));
		cli_carry_report(f, &rf);
		b = cJSON_AddObjectToObject(o, "back");
		cJSON_AddStringToObject(b, "from", jstr(tgt, "agent"));
		cJSON_AddStringToObject(b, "into", jstr(src, "agent"));
		if (has_src_file) {
			cJSON_AddStringToObject(b, "file", jstr(src, "file"));
			cli_carry_report(b, &rb);
		} else {
			cJSON_AddNullToObject(b, "file");
		}
		cJSON_AddItemToArray(arr, o);
	} else {
		printf("%s: %s%zu messages from %s into %s, %zu from %s into %s%s\n", name, s_dry ? "would carry " : "",
		       rf.messages, label_of(jstr(src, "agent")), label_of(jstr(tgt, "agent")), rb.messages,
		       label_of(jstr(tgt, "agent")), has_src_file ? label_of(jstr(src, "agent")) : "the source",
		       has_src_file ? "" : " (a host's branch: nothing is carried back)");
	}
done:
	if (txn)
		cmv_repo_txn_rollback(ctx->repo);
	cJSON_Delete(pair);
	cmv_carry_result_dispose(&rf);
	cmv_carry_result_dispose(&rb);
	cmv_buf_dispose(&note);
	cmv_buf_dispose(&fwd);
	cmv_buf_dispose(&back);
	return rc;
}

typedef struct {
	cli_ctx *ctx;
	char **names;
	size_t n, cap;
} pair_list;

static int collect(const cmv_ref *ref, void *payload)
{
	pair_list *l = payload;
	cmv_buf note = CMV_BUF_INIT(1 << 20);

	if (ref->type == CMV_REF_BRANCH && cmv_branch_note_get(&note, l->ctx->repo, ref->name, "carry") == 0) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 8;
			char **nn = realloc(l->names, cap * sizeof(*nn));
			if (!nn) {
				cmv_buf_dispose(&note);
				return -1;
			}
			l->names = nn;
			l->cap = cap;
		}
		l->names[l->n++] = strdup(ref->name);
	}
	cmv_error_clear();
	cmv_buf_dispose(&note);
	return 0;
}

CMD(sync)
{
	cJSON *arr = NULL;
	pair_list l = { ctx, NULL, 0, 0 };
	int rc = EXIT_OK;

	CLI_PARSE("sync");
	if (s_json)
		arr = cJSON_CreateArray();
	if (s_ref) {
		rc = sync_pair(ctx, s_ref, arr);
	} else {
		cmv_ref_foreach(ctx->repo, collect, &l);
		if (!l.n && !s_json)
			printf("no carried sessions to sync (cmv branch NAME --from REF --codex|--claude makes one)\n");
		for (size_t i = 0; i < l.n; i++) {
			int r = sync_pair(ctx, l.names[i], arr);
			if (r != EXIT_OK)
				rc = r;
		}
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	if (arr) {
		if (rc == EXIT_OK)
			rc = cli_print_json(arr);
		else
			cJSON_Delete(arr);
	}
	return rc;
}
=======
 * cmv push REMOTE [REF...] / cmv pull REMOTE [REF...]: send refs and the
 * objects the other store lacks (dag/sync.c). REMOTE is a store folder (a
 * project with .cmv/, or the .cmv folder), a store file, a PostgreSQL URL,
 * or a bundle file (an existing one, or a new path ending in .bundle or
 * .tar). A bundle is read into a scratch in-memory store first, so a pull
 * from it writes only what this store lacks; a push to it rewrites the
 * file whole (a bundle is one file) with what it had and what was pushed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cmd.h"
#include "base/base.h"

static const char *s_remote, *s_ref, *s_batch;
static bool s_force, s_json;

#define SYNC_OPTS(dir)                                                                                         \
	{                                                                                                     \
		{ OPT_ARG, "REMOTE", 0, NULL, "a store folder, a store file, a postgresql:// URL, or a bundle file", &s_remote, NULL }, \
		{ OPT_ARG_OPT, "REF...", 0, NULL, "the branches and snapshots to " dir " (default: all)", &s_ref, NULL }, \
		{ OPT_FLAG, "force", 'f', NULL, "move branches that are not fast-forwards, replace snapshots", NULL, &s_force }, \
		{ OPT_VALUE, "batch", 0, "N", "nodes per transaction (default 1000): what an interruption keeps", &s_batch, NULL }, \
		{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &s_json },                                   \
		{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },                                                 \
	}
const cli_opt opts_push[] = SYNC_OPTS("push");
const cli_opt opts_pull[] = SYNC_OPTS("pull");

typedef struct {
	cJSON *refs;
	const char *verb;
} report_ctx;

static const char *status_name(cmv_sync_status s)
{
	switch (s) {
	case CMV_SYNC_UP_TO_DATE:
		return "up-to-date";
	case CMV_SYNC_CREATED:
		return "created";
	case CMV_SYNC_FAST_FORWARD:
		return "fast-forward";
	case CMV_SYNC_FORCED:
		return "forced";
	default:
		return "rejected";
	}
}

static int report_ref(const cmv_sync_ref *r, void *payload)
{
	report_ctx *rc = payload;
	char a[CMV_ID_HEXSZ + 1], b[CMV_ID_HEXSZ + 1];

	if (s_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", r->name);
		cJSON_AddStringToObject(o, "type", cli_ref_type_name(r->type));
		cJSON_AddStringToObject(o, "status", status_name(r->status));
		if (cmv_id_is_none(&r->old_target))
			cJSON_AddNullToObject(o, "old");
		else
			cJSON_AddStringToObject(o, "old", cli_id(&r->old_target, a));
		cJSON_AddStringToObject(o, "new", cli_id(&r->new_target, b));
		if (r->reason)
			cJSON_AddStringToObject(o, "reason", r->reason);
		cJSON_AddNumberToObject(o, "nodes", (double)r->nodes);
		cJSON_AddNumberToObject(o, "blobs", (double)r->blobs);
		cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
		cJSON_AddItemToArray(rc->refs, o);
		return 0;
	}
	if (r->status == CMV_SYNC_REJECTED)
		printf("  %-12s %-24s %s (%s%s)\n", status_name(r->status), r->name, cli_short(&r->new_target, b),
		       r->reason ? r->reason : "refused", strcmp(r->reason ? r->reason : "", "moved in the destination during the sync")
										? "; --force replaces it" : "");
	else if (r->status == CMV_SYNC_UP_TO_DATE)
		printf("  %-12s %-24s %s\n", status_name(r->status), r->name, cli_short(&r->new_target, b));
	else
		printf("  %-12s %-24s %s -> %s  (%llu nodes, %llu blobs, %llu bytes)\n", status_name(r->status), r->name,
		       cmv_id_is_none(&r->old_target) ? "(none)      " : cli_short(&r->old_target, a),
		       cli_short(&r->new_target, b), (unsigned long long)r->nodes, (unsigned long long)r->blobs,
		       (unsigned long long)r->bytes);
	return 0;
}

/* A test hook: CMV_SYNC_TEST_KILL_AFTER=N kills this process (SIGKILL) once N nodes are committed. */
static int progress(const char *ref, size_t done, size_t total, void *payload)
{
	const char *kill_after = getenv("CMV_SYNC_TEST_KILL_AFTER");

	(void)ref;
	(void)total;
	(void)payload;
	if (kill_after && *kill_after && done >= (size_t)strtoull(kill_after, NULL, 10))
		raise(SIGKILL);
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

typedef enum { REMOTE_STORE, REMOTE_BUNDLE } remote_kind;

/* Open REMOTE: a store (URL, folder, file) or a bundle read into a scratch store. */
static int open_remote(cmv_repo **out, remote_kind *kind, const char *remote, bool for_push)
{
	struct stat st;
	cmv_buf path = CMV_BUF_INIT(4096);
	int error;

	*out = NULL;
	*kind = REMOTE_STORE;
	if (cmv_store_is_url(remote))
		return cmv_repo_open(out, remote, 0);
	if (stat(remote, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* a project folder holds .cmv/; a .cmv folder is the store itself */
		if ((error = cmv_buf_printf(&path, "%s/%s", remote, CMV_DIRNAME)) == 0)
			error = cmv_repo_open(out, stat(path.ptr, &st) == 0 && S_ISDIR(st.st_mode) ? path.ptr : remote, 0);
		cmv_buf_dispose(&path);
		return error;
	}
	bool exists = stat(remote, &st) == 0;
	if ((exists && cmv_bundle_detect(remote) == 1) ||
	    (!exists && for_push && (ends_with(remote, ".bundle") || ends_with(remote, ".tar")))) {
		*kind = REMOTE_BUNDLE;
		if ((error = cmv_repo_open(out, ":memory:", CMV_REPO_OPEN_CREATE)) < 0)
			return error;
		if (exists && (error = cmv_bundle_import(NULL, *out, remote, NULL)) < 0) {
			cmv_repo_free(*out);
			*out = NULL;
		}
		return error;
	}
	if (!exists)
		return cmv_error__set(CMV_ENOTFOUND, "no store or bundle at '%s' (a new bundle's name ends in .bundle or .tar)",
				      remote);
	return cmv_repo_open(out, remote, 0);
}

typedef struct {
	char **names;
	size_t n, cap;
} names_list;

static int bundle_name(const cmv_ref *r, void *payload)
{
	names_list *l = payload;

	if (r->type == CMV_REF_SESSION || cmv_id_is_none(&r->target))
		return 0; /* a bundle holds branches and snapshots with content */
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		char **nn = realloc(l->names, ncap * sizeof(*nn));
		if (!nn)
			return CMV_ENOMEM;
		l->names = nn;
		l->cap = ncap;
	}
	if (!(l->names[l->n] = strdup(r->name)))
		return CMV_ENOMEM;
	l->n++;
	return 0;
}

static int write_fd(const void *data, size_t len, void *payload)
{
	FILE *f = payload;
	return fwrite(data, 1, len, f) == len ? 0 : -1;
}

/* Write the scratch store's refs back to the bundle file, whole, through a temporary file. */
static int write_bundle(cmv_repo *mem, const char *path)
{
	names_list l = { 0 };
	cmv_buf tmp = CMV_BUF_INIT(4096);
	FILE *f = NULL;
	int error;

	if ((error = cmv_ref_foreach(mem, bundle_name, &l)) < 0)
		goto done;
	if (l.n == 0) {
		error = cmv_error__set(CMV_EINVALID, "nothing to put in the bundle '%s' (no branch or snapshot with content)", path);
		goto done;
	}
	if ((error = cmv_buf_printf(&tmp, "%s.tmp%ld", path, (long)getpid())) < 0)
		goto done;
	if (!(f = fopen(tmp.ptr, "wb"))) {
		error = cmv_error__set(CMV_EIO, "cannot write '%s': %s", tmp.ptr, strerror(errno));
		goto done;
	}
	error = cmv_bundle_export(NULL, mem, (const char *const *)l.names, l.n, CMV_BUNDLE_ANY_REFS, write_fd, f);
	if (fclose(f) != 0 && !error)
		error = cmv_error__set(CMV_EIO, "cannot write '%s': %s", tmp.ptr, strerror(errno));
	if (!error && rename(tmp.ptr, path) != 0)
		error = cmv_error__set(CMV_EIO, "cannot replace '%s': %s", path, strerror(errno));
	if (error)
		unlink(tmp.ptr);
done:
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	cmv_buf_dispose(&tmp);
	return error;
}

static int run_sync(cli_ctx *ctx, int argc, char **argv, bool push)
{
	const char *name = push ? "push" : "pull";
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	const char **refs = calloc((size_t)argc + 1, sizeof(*refs));
	cmv_buf here = CMV_BUF_INIT(4096), there = CMV_BUF_INIT(4096);
	cmv_repo *remote = NULL;
	remote_kind kind;
	int nargs = 0, n_pos = 0, rc = EXIT_OK;
	size_t n_refs = 0;
	bool only_args = false;

	if (!args || !refs) {
		free(args);
		free(refs);
		return cli_fail("out of memory");
	}
	/* REF... : the parser fills REMOTE and one REF; the rest are gathered here */
	args[nargs++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && !strcmp(a, "--")) {
			only_args = true;
			args[nargs++] = argv[i];
		} else if (!only_args && !strcmp(a, "--batch") && i + 1 < argc) {
			args[nargs++] = argv[i++];
			args[nargs++] = argv[i];
		} else if (!only_args && a[0] == '-' && a[1]) {
			args[nargs++] = argv[i];
		} else if (n_pos++ < 2) {
			args[nargs++] = argv[i];
		} else {
			refs[n_refs++] = a;
		}
	}
	s_remote = s_ref = s_batch = NULL;
	s_force = s_json = false;
	int parse_rc = cli_parse(cli_find(name), nargs, args);
	if (parse_rc != 0) {
		free(args);
		free(refs);
		return parse_rc < 0 ? EXIT_OK : parse_rc;
	}
	if (s_ref) {
		memmove(refs + 1, refs, n_refs * sizeof(*refs));
		refs[0] = s_ref;
		n_refs++;
	}
	for (size_t i = 0; i < n_refs; i++)
		refs[i] = cli_ref_arg(ctx, refs[i]);

	cmv_sync_options o = CMV_SYNC_OPTIONS_INIT;
	cmv_sync_stats st;
	report_ctx rctx = { .refs = cJSON_CreateArray(), .verb = name };
	if (s_batch) {
		char *end;
		unsigned long long b = strtoull(s_batch, &end, 10);
		if (*end || b == 0 || s_batch[0] == '-') {
			rc = cli_usage_error(cli_find(name), "--batch takes a number of nodes above 0, not '%s'", s_batch);
			goto done;
		}
		o.batch_nodes = (size_t)b;
	}
	if (open_remote(&remote, &kind, s_remote, push) < 0) {
		rc = cli_fail("cannot open the remote store");
		goto done;
	}
	cmv_store_display(&here, ctx->store_path ? ctx->store_path : "");
	cmv_store_display(&there, s_remote);
	o.flags = s_force ? CMV_SYNC_FORCE : 0;
	o.origin = push ? here.ptr : there.ptr;
	o.progress = progress;
	o.report = report_ref;
	o.payload = &rctx;
	if (!s_json)
		printf("%s %s\n", push ? "To" : "From", there.ptr);
	if (cmv_sync(&st, push ? remote : ctx->repo, push ? ctx->repo : remote, refs, n_refs, &o) < 0) {
		rc = cli_fail(push ? "push failed" : "pull failed");
		goto done;
	}
	if (push && kind == REMOTE_BUNDLE && st.refs_moved && write_bundle(remote, s_remote) < 0) {
		rc = cli_fail("cannot write the bundle");
		goto done;
	}
	if (s_json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "remote", there.ptr);
		cJSON_AddStringToObject(doc, "direction", name);
		cJSON_AddItemToObject(doc, "refs", rctx.refs);
		rctx.refs = NULL;
		cJSON_AddNumberToObject(doc, "nodes", (double)st.nodes);
		cJSON_AddNumberToObject(doc, "blobs", (double)st.blobs);
		cJSON_AddNumberToObject(doc, "bytes", (double)st.bytes);
		cJSON_AddNumberToObject(doc, "rejected", (double)st.refs_rejected);
		rc = cli_print_json(doc);
	} else {
		printf("%s %llu nodes, %llu blobs, %llu bytes; %zu refs moved, %zu up to date, %zu rejected\n",
		       push ? "sent" : "received", (unsigned long long)st.nodes, (unsigned long long)st.blobs,
		       (unsigned long long)st.bytes, st.refs_moved, st.refs_up_to_date, st.refs_rejected);
	}
	if (rc == EXIT_OK && st.refs_rejected)
		rc = EXIT_ERROR;
done:
	cJSON_Delete(rctx.refs);
	cmv_repo_free(remote);
	cmv_buf_dispose(&here);
	cmv_buf_dispose(&there);
	free(args);
	free(refs);
	return rc;
}

CMD(push)
{
	return run_sync(ctx, argc, argv, true);
}

CMD(pull)
{
	return run_sync(ctx, argc, argv, false);
}
>>>>>>> i-pg
