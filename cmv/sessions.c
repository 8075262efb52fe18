/* SPDX-License-Identifier: MIT */
/*
 * Finding the agent sessions on this machine: Claude Code's under
 * $CLAUDE_CONFIG_DIR (default ~/.claude) /projects/<project>/<id>.jsonl,
 * and Codex rollouts under $CODEX_HOME (default ~/.codex)
 * /sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cmd.h"
#include "sessions.h"

static int push(cli_session_list *l, const char *agent, const char *path, const char *id, const char *project,
		const struct stat *st)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		cli_session *a = realloc(l->items, ncap * sizeof(*a));
		if (!a)
			return -1;
		l->items = a;
		l->cap = ncap;
	}
	cli_session *s = &l->items[l->n];
	memset(s, 0, sizeof(*s));
	s->agent = agent;
	if (!(s->path = strdup(path)) || !(s->id = strdup(id)) || !(s->project = strdup(project ? project : ""))) {
		free(s->path);
		free(s->id);
		return -1;
	}
	s->mtime = (int64_t)st->st_mtime;
	s->size = (uint64_t)st->st_size;
	l->n++;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

char *cli_agent_home(const char *env, const char *dflt)
{
	const char *v = getenv(env), *home = getenv("HOME");
	cmv_buf b = CMV_BUF_INIT(4096);
	if (v && *v)
		cmv_buf_puts(&b, v);
	else if (home && *home)
		cmv_buf_printf(&b, "%s/%s", home, dflt);
	else
		return NULL;
	return cmv_buf_detach(&b);
}

static void list_claude(cli_session_list *l)
{
	char *root = cli_agent_home("CLAUDE_CONFIG_DIR", ".claude");
	cmv_buf dir = CMV_BUF_INIT(4096), file = CMV_BUF_INIT(4096);
	DIR *d, *pd;
	struct dirent *e, *f;
	struct stat st;

	if (!root)
		return;
	cmv_buf_printf(&dir, "%s/projects", root);
	if ((d = opendir(dir.ptr))) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			cmv_buf_clear(&file);
			cmv_buf_printf(&file, "%s/%s", dir.ptr, e->d_name);
			if (!(pd = opendir(file.ptr)))
				continue;
			while ((f = readdir(pd))) {
				if (f->d_name[0] == '.' || !ends_with(f->d_name, ".jsonl"))
					continue;
				cmv_buf path = CMV_BUF_INIT(4096);
				cmv_buf_printf(&path, "%s/%s", file.ptr, f->d_name);
				if (stat(path.ptr, &st) == 0 && S_ISREG(st.st_mode)) {
					char id[256];
					snprintf(id, sizeof(id), "%.*s", (int)(strlen(f->d_name) - 6), f->d_name);
					push(l, "claude-code", path.ptr, id, e->d_name, &st);
				}
				cmv_buf_dispose(&path);
			}
			closedir(pd);
		}
		closedir(d);
	}
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&file);
	free(root);
}

/* The cwd a rollout's first line (session_meta) names, as its project. */
static void codex_project(char *out, size_t n, const char *path)
{
	FILE *fp = fopen(path, "rb");
	cmv_buf line = CMV_BUF_INIT(1 << 20);
	int c;
	out[0] = '\0';
	if (!fp)
		return;
	while ((c = fgetc(fp)) != EOF && c != '\n' && line.size < (1 << 20))
		cmv_buf_putc(&line, (char)c);
	fclose(fp);
	cJSON *j = line.size ? cJSON_ParseWithLength(line.ptr, line.size) : NULL;
	cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
	cJSON *cwd = cJSON_GetObjectItemCaseSensitive(p, "cwd");
	if (cJSON_IsString(cwd))
		snprintf(out, n, "%s", cwd->valuestring);
	cJSON_Delete(j);
	cmv_buf_dispose(&line);
}

static void walk_codex(cli_session_list *l, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cmv_buf path = CMV_BUF_INIT(4096);
		cmv_buf_printf(&path, "%s/%s", dir, e->d_name);
		if (stat(path.ptr, &st) == 0) {
			if (S_ISDIR(st.st_mode) && depth < 4) {
				walk_codex(l, path.ptr, depth + 1);
			} else if (S_ISREG(st.st_mode) && !strncmp(e->d_name, "rollout-", 8) && ends_with(e->d_name, ".jsonl") &&
				   strlen(e->d_name) >= 8 + 36 + 6) {
				/* rollout-<time>-<uuid>.jsonl: the id is the last 36 characters */
				char id[64], project[1024];
				snprintf(id, sizeof(id), "%.36s", e->d_name + strlen(e->d_name) - 6 - 36);
				codex_project(project, sizeof(project), path.ptr);
				push(l, "codex", path.ptr, id, project, &st);
			}
		}
		cmv_buf_dispose(&path);
	}
	closedir(d);
}

static void list_codex(cli_session_list *l)
{
	char *root = cli_agent_home("CODEX_HOME", ".codex");
	cmv_buf dir = CMV_BUF_INIT(4096);
	if (!root)
		return;
	cmv_buf_printf(&dir, "%s/sessions", root);
	walk_codex(l, dir.ptr, 0);
	cmv_buf_dispose(&dir);
	free(root);
}

static int by_date(const void *a, const void *b)
{
	const cli_session *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime > y->mtime ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int by_size(const void *a, const void *b)
{
	const cli_session *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->path, y->path);
}

int cli_sessions_list(cli_session_list *out, const char *project, bool sort_by_size)
{
	cli_session_list all = { 0 };
	memset(out, 0, sizeof(*out));
	list_claude(&all);
	list_codex(&all);
	for (size_t i = 0; i < all.n; i++) {
		if (project && !strstr(all.items[i].project, project)) {
			free(all.items[i].path);
			free(all.items[i].id);
			free(all.items[i].project);
			continue;
		}
		all.items[out->n++] = all.items[i];
	}
	out->items = all.items;
	out->cap = all.cap;
	if (out->n > 1)
		qsort(out->items, out->n, sizeof(*out->items), sort_by_size ? by_size : by_date);
	return 0;
}

void cli_sessions_free(cli_session_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].path);
		free(l->items[i].id);
		free(l->items[i].project);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

int cli_session_path(cmv_buf *out, const char *id)
{
	cli_session_list l;
	const cli_session *hit = NULL;
	size_t matches = 0;

	cli_sessions_list(&l, NULL, false);
	if (!l.n) {
		cli_sessions_free(&l);
		return cli_failf("no Claude Code or Codex sessions found (looked in $CLAUDE_CONFIG_DIR or ~/.claude, "
				 "and $CODEX_HOME or ~/.codex)");
	}
	if (!id) {
		hit = &l.items[0]; /* newest first */
		matches = 1;
	} else {
		for (size_t i = 0; i < l.n; i++)
			if (!strcmp(l.items[i].id, id)) {
				hit = &l.items[i];
				matches = 1;
				break;
			} else if (!strncmp(l.items[i].id, id, strlen(id))) {
				hit = matches ? hit : &l.items[i];
				matches++;
			}
	}
	int rc = EXIT_OK;
	if (!matches)
		rc = cli_failf("no session '%s' (see cmv sessions)", id);
	else if (matches > 1)
		rc = cli_failf("'%s' matches %zu sessions; give more of the id", id, matches);
	else
		cmv_buf_puts(out, hit->path);
	cli_sessions_free(&l);
	return rc;
}
