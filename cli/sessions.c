/* SPDX-License-Identifier: MIT */
/*
 * Finding the agent sessions on this machine: Claude Code's under
 * $CLAUDE_CONFIG_DIR (default ~/.claude) /projects/<project>/<id>.jsonl,
 * and Codex rollouts under $CODEX_HOME (default ~/.codex)
 * /sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cmd.h"
#include "sessions.h"
#include "base/base.h"

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

	/* the session as import names it (cc/<id>, codex/<id>) is that agent's session <id> */
	const char *agent = NULL;
	if (id && !strncmp(id, "cc/", 3)) {
		agent = "claude-code";
		id += 3;
	} else if (id && !strncmp(id, "codex/", 6)) {
		agent = "codex";
		id += 6;
	}
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
			if (agent && strcmp(l.items[i].agent, agent))
				continue;
			else if (!strcmp(l.items[i].id, id)) {
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

/* ---- what a session holds ------------------------------------------------------ */

/* s as one line of at most n-1 bytes: whitespace runs become one space, cut at a character boundary. */
static void one_line(char *out, size_t n, const char *s)
{
	size_t o = 0, bad;
	bool space = false;

	for (; *s && o + 1 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f) {
			space = o > 0;
			continue;
		}
		if (space) {
			if (o + 2 >= n)
				break;
			out[o++] = ' ';
		}
		space = false;
		out[o++] = (char)c;
	}
	/* a cut that falls inside a character drops it whole */
	if (*s) {
		size_t k = o;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (unsigned char)out[k - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (o - (k - 1) < need)
				o = k - 1;
		}
	}
	out[o] = '\0';
	/* bytes that are not UTF-8 at all end the title there */
	if (!cmv_utf8_valid(out, o, &bad))
		out[bad] = '\0';
}

/* A prompt a person typed, not a wrapper the client adds (commands, caveats, injected instructions). */
static bool is_prompt(const char *t)
{
	while (*t == ' ' || *t == '\n')
		t++;
	return *t && *t != '<' && strncmp(t, "Caveat:", 7) && strncmp(t, "# AGENTS.md", 11);
}

static const char *first_text(const cJSON *content, const char *type)
{
	if (cJSON_IsString(content))
		return content->valuestring;
	const cJSON *b;
	cJSON_ArrayForEach(b, content) {
		const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		const char *tx = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "text"));
		if (bt && tx && !strcmp(bt, type))
			return tx;
	}
	return NULL;
}

static void claude_line(cli_session_detail *d, const cJSON *j)
{
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
	const char *cwd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "cwd"));
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");

	if (cwd && !d->cwd[0])
		snprintf(d->cwd, sizeof(d->cwd), "%s", cwd);
	if (!type || (strcmp(type, "user") && strcmp(type, "assistant")))
		return;
	d->messages++;
	if (!strcmp(type, "assistant")) {
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "model"));
		if (m && strcmp(m, "<synthetic>"))
			snprintf(d->model, sizeof(d->model), "%s", m);
	} else if (!d->title[0] && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "isMeta"))) {
		const char *t = first_text(cJSON_GetObjectItemCaseSensitive(msg, "content"), "text");
		if (t && is_prompt(t))
			one_line(d->title, sizeof(d->title), t);
	}
}

static void codex_line(cli_session_detail *d, const cJSON *j)
{
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
	const char *ptype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "type"));

	if (!type)
		return;
	if (!strcmp(type, "session_meta") || !strcmp(type, "turn_context")) {
		const char *cwd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "cwd"));
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "model"));
		if (cwd && !d->cwd[0])
			snprintf(d->cwd, sizeof(d->cwd), "%s", cwd);
		if (m)
			snprintf(d->model, sizeof(d->model), "%s", m);
	} else if (!strcmp(type, "response_item") && ptype && !strcmp(ptype, "message")) {
		const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "role"));
		if (!role || (strcmp(role, "user") && strcmp(role, "assistant")))
			return;
		d->messages++;
		if (!strcmp(role, "user") && !d->title[0]) {
			const char *t = first_text(cJSON_GetObjectItemCaseSensitive(p, "content"), "input_text");
			if (t && is_prompt(t))
				one_line(d->title, sizeof(d->title), t);
		}
	}
}

int cli_session_details(cli_session_detail *d, const cli_session *s)
{
	FILE *fp = fopen(s->path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool codex = !strcmp(s->agent, "codex");

	memset(d, 0, sizeof(*d));
	if (!fp)
		return -1;
	while ((len = getline(&line, &cap, fp)) > 0) {
		cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
		if (j)
			(codex ? codex_line : claude_line)(d, j);
		cJSON_Delete(j);
	}
	free(line);
	fclose(fp);
	return 0;
}

/* ---- writing a branch as a new session of an agent -------------------------- */

/* Claude Code's project folder name for a working directory: every non-alphanumeric byte is '-'. */
static void encode_project(cmv_buf *out, const char *cwd)
{
	for (const char *p = cwd; *p; p++)
		cmv_buf_putc(out, ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '-');
}

static void iso_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* Add the new session to the project's sessions-index.json, when the project has one. */
static int update_index(const char *dir, const char *id, const char *path, const char *cwd, size_t lines,
			const char *title)
{
	cmv_buf idx = CMV_BUF_INIT(4096), text = CMV_BUF_INIT(1 << 28);
	char now[32];
	FILE *fp;
	int rc = EXIT_OK;

	cmv_buf_printf(&idx, "%s/sessions-index.json", dir);
	if (!(fp = fopen(idx.ptr, "rb"))) {
		cmv_buf_dispose(&idx);
		return EXIT_OK; /* none: Claude Code rescans the folder */
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		cmv_buf_put(&text, chunk, n);
	fclose(fp);
	cJSON *doc = cJSON_ParseWithLength(text.ptr ? text.ptr : "", text.size), *entries = cJSON_GetObjectItemCaseSensitive(doc, "entries");
	if (!cJSON_IsArray(entries)) {
		cJSON_Delete(doc);
		cmv_buf_dispose(&idx);
		cmv_buf_dispose(&text);
		return cli_failf("%s: not a sessions index (no \"entries\" array); left as it was", idx.ptr);
	}
	cJSON *e = cJSON_CreateObject();
	iso_now(now);
	cJSON_AddStringToObject(e, "sessionId", id);
	cJSON_AddStringToObject(e, "fullPath", path);
	cJSON_AddNumberToObject(e, "fileMtime", (double)time(NULL) * 1000.0);
	cJSON_AddStringToObject(e, "firstPrompt", title);
	cJSON_AddStringToObject(e, "summary", "");
	cJSON_AddNumberToObject(e, "messageCount", (double)lines);
	cJSON_AddStringToObject(e, "created", now);
	cJSON_AddStringToObject(e, "modified", now);
	cJSON_AddStringToObject(e, "gitBranch", "");
	cJSON_AddStringToObject(e, "projectPath", cwd);
	cJSON_AddFalseToObject(e, "isSidechain");
	cJSON_AddItemToArray(entries, e);
	char *out = cJSON_Print(doc);
	/* a reader (Claude Code) never sees half a file */
	if (!out || cmv__file_write_atomic(idx.ptr, out, strlen(out), 0644) < 0)
		rc = cli_fail(out ? "cannot update the sessions index" : "out of memory");
	free(out);
	cJSON_Delete(doc);
	cmv_buf_dispose(&idx);
	cmv_buf_dispose(&text);
	return rc;
}

/* Where Claude Code keeps a project's sessions: projects/<cwd, encoded>/<id>.jsonl. */
static void claude_place(cmv_buf *dir, cmv_buf *path, const char *root, const char *id, const char *cwd)
{
	cmv_buf_printf(dir, "%s/projects/", root);
	encode_project(dir, *cwd ? cwd : "unknown");
	cmv_buf_printf(path, "%s/%s.jsonl", dir->ptr, id);
}

/* Where Codex keeps rollouts: sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl. */
static void codex_place(cmv_buf *dir, cmv_buf *path, const char *root, const char *id, const char *cwd)
{
	char day[32], stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	(void)cwd;
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y/%m/%d", &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H-%M-%S", &tm);
	cmv_buf_printf(dir, "%s/sessions/%s", root, day);
	cmv_buf_printf(path, "%s/rollout-%s-%s.jsonl", dir->ptr, stamp, id);
}

/* An agent a branch can be written back to, as a new session it resumes. */
typedef struct {
	const char *label;                 /* "Claude Code" */
	const char *format;                /* its records' format: "claude-code" */
	const char *key;                   /* JSON: <key>_session, <key>_file */
	const char *env, *home_dir;        /* its folder: $env, else ~/home_dir */
	const char *program, *resume;      /* program resume <id> */
	bool has_index;                    /* keeps a sessions-index.json beside the sessions */
	int (*write)(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo, const cmv_id *tip);
	void (*place)(cmv_buf *dir, cmv_buf *path, const char *root, const char *id, const char *cwd);
	/* files the session refers to, put beside it before it is written (may be NULL) */
	int (*beside)(cmv_buf *body, size_t *n_out, cmv_repo *repo, const cmv_id *tip, const char *session_path);
} agent;

static const agent claude_agent = { "Claude Code", "claude-code", "claude", "CLAUDE_CONFIG_DIR", ".claude", "claude", "--resume",
				    true, cmv_claude_session_write, claude_place, cmv_claude_session_place_outputs };
static const agent codex_agent = { "Codex", "codex", "codex", "CODEX_HOME", ".codex", "codex", "resume",
				   false, cmv_codex_session_write, codex_place, NULL };

/*
 * The folder the session is resumed in: the one its records name, when it
 * exists on this machine; else (a session from another machine, or none
 * recorded) the current one, said on stderr, so that the session lands
 * where `claude --resume` run here looks for it.
 */
static bool resume_folder(cmv_buf *out, const cmv_buf *recorded, const agent *a)
{
	struct stat st;
	char here[4096];

	cmv_buf_clear(out);
	if (recorded->size && stat(recorded->ptr, &st) == 0 && S_ISDIR(st.st_mode)) {
		cmv_buf_puts(out, recorded->ptr);
		return false;
	}
	if (!getcwd(here, sizeof(here))) {
		cmv_buf_puts(out, recorded->ptr ? recorded->ptr : "");
		return false;
	}
	cmv_buf_puts(out, here);
	if (recorded->size)
		fprintf(stderr, "cmv: %s, where the session was recorded, does not exist here; "
				"the %s session goes with the current folder, %s\n", recorded->ptr, a->label, here);
	return true;
}


/* ---- carrying a branch into the other agent ------------------------------------ */

/* The folder a carried session goes with: --cwd (made absolute), else the current one. */
static int carry_folder(cmv_buf *out, const char *given)
{
	char here[4096], *real;

	cmv_buf_clear(out);
	if (!getcwd(here, sizeof(here)))
		return cli_failf("cannot tell the current folder: %s", strerror(errno));
	if (!given || !*given) {
		cmv_buf_puts(out, here);
		return EXIT_OK;
	}
	/* another machine's folder need not exist here: it is only named */
	if ((real = realpath(given, NULL))) {
		cmv_buf_puts(out, real);
		free(real);
	} else if (given[0] == '/') {
		cmv_buf_puts(out, given);
	} else {
		cmv_buf_printf(out, "%s/%s", here, given);
	}
	while (out->size > 1 && out->ptr[out->size - 1] == '/')
		out->ptr[--out->size] = '\0';
	return EXIT_OK;
}

int cli_session_file(cmv_buf *out, const char *agent_format, const char *id)
{
	cli_session_list l;
	int found = 0;

	cmv_buf_clear(out);
	if (!id || !*id)
		return 0;
	cli_sessions_list(&l, NULL, false);
	for (size_t i = 0; i < l.n && !found; i++)
		if (!strcmp(l.items[i].agent, agent_format) && !strcmp(l.items[i].id, id)) {
			cmv_buf_puts(out, l.items[i].path);
			found = 1;
		}
	cli_sessions_free(&l);
	return found;
}

void cli_carry_report(cJSON *o, const cmv_carry_result *r)
{
	cJSON_AddStringToObject(o, "source_agent", r->source_format);
	cJSON_AddNumberToObject(o, "records", (double)r->records);
	cJSON_AddNumberToObject(o, "messages", (double)r->messages);
	cJSON_AddNumberToObject(o, "lines", (double)r->lines);
	cJSON_AddNumberToObject(o, "tool_calls", (double)r->calls);
	cJSON_AddNumberToObject(o, "mapped_calls", (double)r->mapped_calls);
	cJSON_AddNumberToObject(o, "stubbed_calls", (double)r->stubbed_calls);
	cJSON_AddNumberToObject(o, "stubbed_thinking", (double)r->stubbed_thinking);
	cJSON_AddNumberToObject(o, "system_prompts_left", (double)r->dropped_system);
	cJSON_AddNumberToObject(o, "answered_calls", (double)r->answered_calls);
	cJSON_AddNumberToObject(o, "remapped_paths", (double)r->remapped_paths);
	cJSON *notes = r->notes.size ? cJSON_ParseWithLength(r->notes.ptr, r->notes.size) : NULL;
	cJSON_AddItemToObject(o, "not_carried", notes ? notes : cJSON_CreateArray());
}

void cli_carry_say(const cmv_carry_result *r, const char *label, const char *from_cwd, const char *to_cwd)
{
	fprintf(stderr, "cmv: carried %zu messages (%zu lines) from %s into %s: %zu tool calls, %zu to its shell, "
			"%zu as text (a tool it lacks)\n",
		r->messages, r->lines, r->source_format, label, r->calls, r->mapped_calls, r->stubbed_calls);
	if (r->stubbed_thinking || r->dropped_system)
		fprintf(stderr, "cmv: left behind: %zu thinking blocks (signed for the source's provider), %zu system prompts "
				"(the source agent's own); see --json's not_carried for recall ids\n",
			r->stubbed_thinking, r->dropped_system);
	if (r->remapped_paths)
		fprintf(stderr, "cmv: remapped %s to %s (%zu mentions)\n", from_cwd, to_cwd, r->remapped_paths);
}

/* Import the carried session as a branch and note the pair on it: the next `cmv sync` starts from here. */
static int pair_carried(cli_ctx *ctx, cJSON *json, const agent *a, const char *src_format, const cmv_carry_result *r,
			const char *path, const char *id, const char *cwd, const cli_carry_opts *co)
{
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result ir;
	cmv_buf src_file = CMV_BUF_INIT(4096);
	char hex[CMV_ID_HEXSZ + 1];
	int rc = EXIT_OK;

	io.branch = co ? co->branch : NULL;
	io.flags = CMV_IMPORT_FORCE; /* NAME was made at the source; it becomes the carried session */
	if (cmv_import_file(&ir, ctx->repo, path, a->format, &io) < 0)
		return cli_failf("cannot import the carried session %s: %s", path,
				 cmv_error_last() ? cmv_error_last()->message : "failed");
	cli_session_file(&src_file, src_format, r->source_session);
	cJSON *pair = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(pair, "source"),
	      *t = cJSON_AddObjectToObject(pair, "target");
	cJSON_AddStringToObject(s, "agent", src_format);
	cJSON_AddStringToObject(s, "session", r->source_session);
	if (src_file.size)
		cJSON_AddStringToObject(s, "file", src_file.ptr);
	else
		cJSON_AddNullToObject(s, "file");
	if (co && co->from_ref)
		cJSON_AddStringToObject(s, "ref", co->from_ref);
	/* a sync carries what the source adds after its own tip, not after a compaction of it */
	cJSON_AddStringToObject(s, "synced", co && co->source_tip ? cli_id(co->source_tip, hex) : r->last_node);
	cJSON_AddStringToObject(s, "cwd", r->source_cwd);
	cJSON_AddStringToObject(t, "agent", a->format);
	cJSON_AddStringToObject(t, "session", id);
	cJSON_AddStringToObject(t, "file", path);
	cJSON_AddStringToObject(t, "synced", cli_id(&ir.head, hex));
	cJSON_AddStringToObject(t, "cwd", cwd);
	char *text = cJSON_PrintUnformatted(pair);
	if (!text || cmv_branch_note_set(ctx->repo, ir.branch, "carry", text) < 0)
		rc = cli_fail("cannot note the pair on the branch");
	free(text);
	cJSON_Delete(pair);
	if (json) {
		cJSON *c = cJSON_AddObjectToObject(json, "carried");
		cJSON_AddStringToObject(c, "branch", ir.branch);
		cJSON_AddStringToObject(c, "head", hex);
		cli_carry_report(c, r);
		if (strcmp(r->source_cwd, cwd) && *r->source_cwd) {
			cJSON_AddStringToObject(c, "cwd_from", r->source_cwd);
			cJSON_AddStringToObject(c, "cwd_to", cwd);
		}
	} else {
		cli_carry_say(r, a->label, r->source_cwd, cwd);
	}
	cmv_buf_dispose(&src_file);
	return rc;
}

static int write_session(cli_agent_session *out, cli_ctx *ctx, const cmv_id *at, cJSON *json, const agent *a,
			 const char *title, bool in_txn, const cli_carry_opts *co)
{
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31), recorded = CMV_BUF_INIT(4096), cwd = CMV_BUF_INIT(4096),
		dir = CMV_BUF_INIT(4096), path = CMV_BUF_INIT(4096);
	char id[65], *root = cli_agent_home(a->env, a->home_dir);
	int rc = EXIT_OK, fd = -1;
	bool created = false, moved = false;
	const char *fmt = a->format;
	cmv_carry_result cres;

	memset(&cres, 0, sizeof(cres));
	/* a branch of the other agent's records (or a host's) is carried across: the records are rewritten */
	if (cmv_branch_format(&fmt, ctx->repo, at) < 0)
		fmt = a->format;
	bool carry = strcmp(fmt, a->format) != 0;
	/* the conversion goes first: a branch it refuses is rolled back with the transaction */
	if (carry) {
		cmv_carry_options o = CMV_CARRY_OPTIONS_INIT;
		if ((rc = carry_folder(&cwd, co ? co->cwd : NULL)) != EXIT_OK)
			goto done;
		o.agent = a->format;
		o.cwd = cwd.ptr;
		o.flags = CMV_CARRY_HEADER;
		if (cmv_carry(&body, &cres, ctx->repo, at, &o) < 0) {
			rc = cli_failf("cannot carry the branch into %s: %s", a->label,
				       cmv_error_last() ? cmv_error_last()->message : "failed");
			goto done;
		}
		if (!cres.messages) {
			rc = cli_failf("the branch has no messages to carry into %s", a->label);
			goto done;
		}
		snprintf(id, sizeof(id), "%s", cres.session_id);
		cmv_buf_puts(&recorded, cres.source_cwd);
	} else if (a->write(&body, id, &recorded, ctx->repo, at) < 0) {
		rc = cli_failf("cannot write the branch as a %s session: %s", a->label,
			       cmv_error_last() ? cmv_error_last()->message : "failed");
		goto done;
	}
	if (!root) {
		rc = cli_failf("no $%s or $HOME to find %s's sessions in", a->env, a->label);
		goto done;
	}
	if (!carry)
		moved = resume_folder(&cwd, &recorded, a);
	a->place(&dir, &path, root, id, cwd.ptr);
	if (cli_mkdirs(dir.ptr) != 0) {
		rc = cli_failf("cannot create %s: %s", dir.ptr, strerror(errno));
		goto done;
	}
	/* a <persisted-output> preview names its saved output in the new session's own folder */
	if (a->beside && a->beside(&body, NULL, ctx->repo, at, path.ptr) < 0) {
		rc = cli_failf("cannot write the saved tool outputs of %s: %s", path.ptr,
			       cmv_error_last() ? cmv_error_last()->message : "failed");
		goto done;
	}
	if ((fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		rc = cli_failf("cannot write %s: %s", path.ptr, strerror(errno));
		goto done;
	}
	created = true;
	if (write(fd, body.ptr, body.size) != (ssize_t)body.size || fsync(fd) != 0) {
		rc = cli_failf("cannot write %s: %s", path.ptr, strerror(errno));
		goto done;
	}
	/* the carried session is a branch of the store too, in its own records: what `cmv sync` pairs */
	if (carry && (rc = pair_carried(ctx, json, a, fmt, &cres, path.ptr, id, cwd.ptr, co)) != EXIT_OK)
		goto done;
	if (in_txn && cmv_repo_txn_commit(ctx->repo) < 0) {
		in_txn = false;
		rc = cli_fail("cannot commit the branch");
		goto done;
	}
	in_txn = false;
	created = false; /* from here on the session stands, whatever follows */
	if (a->has_index) {
		size_t lines = 0;
		for (size_t i = 0; i < body.size; i++)
			lines += body.ptr[i] == '\n';
		/* the session is written: an index cmv cannot update is a warning (Claude Code rescans the folder) */
		if (update_index(dir.ptr, id, path.ptr, cwd.ptr, lines, title) != EXIT_OK)
			fprintf(stderr, "cmv: the session stands; Claude Code finds it without the index\n");
	}
	if (json) {
		cmv_buf k = CMV_BUF_INIT(64);
		cmv_buf_printf(&k, "%s_session", a->key);
		cJSON_AddStringToObject(json, k.ptr, id);
		cmv_buf_clear(&k);
		cmv_buf_printf(&k, "%s_file", a->key);
		cJSON_AddStringToObject(json, k.ptr, path.ptr);
		cJSON_AddStringToObject(json, "cwd", cwd.ptr);
		if (moved)
			cJSON_AddStringToObject(json, "recorded_cwd", recorded.ptr);
		cmv_buf_dispose(&k);
	} else {
		printf("%s session %s written to %s\nresume it with: cd %s && %s %s %s\n", a->label, id, path.ptr,
		       cwd.size ? cwd.ptr : ".", a->program, a->resume, id);
	}
	if (out) {
		out->agent = a;
		snprintf(out->id, sizeof(out->id), "%s", id);
		snprintf(out->cwd, sizeof(out->cwd), "%s", cwd.ptr);
	}
done:
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(path.ptr);
	if (in_txn) {
		cmv_repo_txn_rollback(ctx->repo);
		fprintf(stderr, "cmv: nothing was kept\n");
	}
	free(root);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&recorded);
	cmv_buf_dispose(&cwd);
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&path);
	cmv_carry_result_dispose(&cres);
	return rc;
}

int cli_write_agent_session(cli_agent_session *out, cli_ctx *ctx, const cmv_id *at, cJSON *json,
			    const char *agent_name, const char *title, bool in_txn, const cli_carry_opts *carry)
{
	return write_session(out, ctx, at, json, !strcmp(agent_name, "codex") ? &codex_agent : &claude_agent, title,
			     in_txn, carry);
}

int cli_launch_agent_session(const cli_agent_session *s)
{
	const agent *a = s->agent;

	fflush(stdout);
	if (*s->cwd && chdir(s->cwd) != 0)
		return cli_failf("cannot enter %s: %s; the session is written: resume it as above", s->cwd, strerror(errno));
	execlp(a->program, a->program, a->resume, s->id, (char *)NULL);
	return cli_failf("cannot run %s: %s (is %s installed?); the session is written: resume it as above",
			 a->program, strerror(errno), a->label);
}
