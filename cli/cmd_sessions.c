/* SPDX-License-Identifier: MIT */
/*
 * cmv sessions [-p P] [--sort date|size|messages] [--all] [--json]: the
 * agent sessions on this machine, each with its first prompt, message
 * count, size, model, and (when a store is found) the snapshots and
 * branches made from it. Sessions with no message (Claude Code writes some
 * that only track files) are left out unless --all.
 */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "sessions.h"

static const char *ss_project, *ss_sort;
static bool ss_json, ss_all;
const cli_opt opts_sessions[] = {
	{ OPT_VALUE, "project", 'p', "P", "only sessions whose project folder or recorded path contains P", &ss_project, NULL },
	{ OPT_VALUE, "sort", 0, "date|size|messages", "newest first (the default), largest file first, or most messages first",
	  &ss_sort, NULL },
	{ OPT_FLAG, "all", 'a', NULL, "also the sessions with no message", NULL, &ss_all },
	{ OPT_FLAG, "json", 0, NULL, "print the list as JSON", NULL, &ss_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

typedef struct {
	cli_session *s;
	cli_session_detail d;
	cJSON *made; /* [{"type", "name"}]: refs made from it */
} row;

/* The session ref a ref descends from (through from_ref), if any. */
typedef struct {
	cmv_repo *repo;
	row *rows;
	size_t n;
} made_state;

static int made_one(const cmv_ref *r, void *payload)
{
	made_state *st = payload;
	char name[CMV_REF_NAME_MAX + 1];

	if (r->type == CMV_REF_SESSION || !r->from_ref)
		return 0;
	snprintf(name, sizeof(name), "%s", r->from_ref);
	for (int hops = 0; hops < 64; hops++) {
		const char *slash = strchr(name, '/');
		/* a session ref is <prefix>/<id>: cc/ for Claude Code, codex/ for Codex */
		if (slash && (!strncmp(name, "cc/", 3) || !strncmp(name, "codex/", 6))) {
			for (size_t i = 0; i < st->n; i++)
				if (!strcmp(st->rows[i].s->id, slash + 1) &&
				    !strcmp(st->rows[i].s->agent, name[0] == 'c' && name[1] == 'c' ? "claude-code" : "codex")) {
					cJSON *o = cJSON_CreateObject();
					cJSON_AddStringToObject(o, "type", cli_ref_type_name(r->type));
					cJSON_AddStringToObject(o, "name", r->name);
					cJSON_AddItemToArray(st->rows[i].made, o);
				}
			return 0;
		}
		cmv_ref *up = NULL;
		if (cmv_ref_lookup(&up, st->repo, name) < 0) {
			cmv_error_clear();
			return 0;
		}
		bool more = up->from_ref != NULL;
		if (more)
			snprintf(name, sizeof(name), "%s", up->from_ref);
		cmv_ref_free(up);
		if (!more)
			return 0;
	}
	return 0;
}

static int by_messages(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->d.messages != y->d.messages)
		return x->d.messages > y->d.messages ? -1 : 1;
	return strcmp(x->s->path, y->s->path);
}

CMD(sessions)
{
	cli_session_list l;
	cmv_repo *repo = ctx->repo;
	cmv_buf store = CMV_BUF_INIT(4096);
	row *rows;
	size_t n = 0;
	char when[32], num[16];

	CLI_PARSE("sessions");
	if (ss_sort && strcmp(ss_sort, "date") && strcmp(ss_sort, "size") && strcmp(ss_sort, "messages"))
		return cli_usage_error(cli_find("sessions"), "--sort takes date, size or messages");
	cli_sessions_list(&l, NULL, ss_sort && !strcmp(ss_sort, "size"));
	if (!(rows = calloc(l.n ? l.n : 1, sizeof(*rows)))) {
		cli_sessions_free(&l);
		return cli_failf("out of memory");
	}
	for (size_t i = 0; i < l.n; i++) {
		row *r = &rows[n];
		r->s = &l.items[i];
		if (cli_session_details(&r->d, r->s) < 0)
			continue;
		/* -p matches the folder Claude Code files it under, or the path the session was recorded in */
		if (ss_project && !strstr(r->s->project, ss_project) && !strstr(r->d.cwd, ss_project))
			continue;
		if (!ss_all && !r->d.messages)
			continue;
		r->made = cJSON_CreateArray();
		n++;
	}
	if (ss_sort && !strcmp(ss_sort, "messages") && n > 1)
		qsort(rows, n, sizeof(*rows), by_messages);
	/* the store, when there is one here: which snapshots and branches came from each session */
	if (!repo && ((ctx->store_arg && cmv_buf_puts(&store, ctx->store_arg) == 0) || cmv_repo_discover(&store, NULL) == 0) &&
	    cmv_repo_open(&repo, store.ptr, CMV_REPO_OPEN_READONLY) < 0)
		repo = NULL;
	cmv_error_clear();
	if (repo) {
		made_state st = { repo, rows, n };
		cmv_ref_foreach(repo, made_one, &st);
		cmv_error_clear();
	}
	if (ss_json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "agent", rows[i].s->agent);
			cJSON_AddStringToObject(o, "id", rows[i].s->id);
			cJSON_AddStringToObject(o, "title", rows[i].d.title);
			cJSON_AddNumberToObject(o, "messages", (double)rows[i].d.messages);
			cJSON_AddNumberToObject(o, "size", (double)rows[i].s->size);
			if (rows[i].d.model[0])
				cJSON_AddStringToObject(o, "model", rows[i].d.model);
			else
				cJSON_AddNullToObject(o, "model");
			cJSON_AddStringToObject(o, "project", rows[i].s->project);
			cJSON_AddStringToObject(o, "cwd", rows[i].d.cwd);
			cJSON_AddStringToObject(o, "path", rows[i].s->path);
			cJSON_AddStringToObject(o, "modified", cli_rfc3339(rows[i].s->mtime, when));
			cJSON_AddItemToObject(o, "made", rows[i].made);
			rows[i].made = NULL;
			cJSON_AddItemToArray(arr, o);
		}
		cli_print_json(arr);
	} else {
		for (size_t i = 0; i < n; i++) {
			const row *r = &rows[i];
			char title[64];
			size_t cut = cli_utf8_cut(r->d.title, strlen(r->d.title), 60);
			snprintf(title, sizeof(title), "%.*s%s", (int)cut, r->d.title, cut < strlen(r->d.title) ? "..." : "");
			printf("%-11s  %-36s  %s  %6s  %4zu msgs  %-18s  %s\n", r->s->agent, r->s->id,
			       cli_time(r->s->mtime, when), cli_human(r->s->size, num), r->d.messages,
			       r->d.model[0] ? r->d.model : "-", r->d.cwd[0] ? r->d.cwd : r->s->project);
			if (title[0])
				printf("    %s\n", title);
			const cJSON *m;
			cJSON_ArrayForEach(m, r->made) {
				const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "type"));
				printf("    %s: %s\n", t && !strcmp(t, "snapshot") ? "snap" : t ? t : "ref",
				       cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "name")));
			}
		}
		if (!n)
			fprintf(stderr, "cmv: no sessions found (looked in $CLAUDE_CONFIG_DIR or ~/.claude, and $CODEX_HOME or ~/.codex)\n");
	}
	for (size_t i = 0; i < n; i++)
		cJSON_Delete(rows[i].made);
	free(rows);
	if (repo != ctx->repo)
		cmv_repo_free(repo);
	cmv_buf_dispose(&store);
	cli_sessions_free(&l);
	return EXIT_OK;
}
