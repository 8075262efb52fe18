/* SPDX-License-Identifier: MIT */
/*
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
