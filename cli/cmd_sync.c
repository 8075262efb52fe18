/* SPDX-License-Identifier: MIT */
/*
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
