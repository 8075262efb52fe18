/* SPDX-License-Identifier: MIT */
/*
 * The files the hooks keep under the store, and the checks of input both
 * hook commands make:
 *  - backups/<session>/<stamp>.jsonl: a session as auto-trim read it
 *    (<stamp>-before-restore.jsonl: as restore found it), and
 *    backups/<session>/path, the transcript they came from, and
 *    backups/<session>/state, its size and inode as the hooks last left it;
 *  - auto-trim.log: what each run did, one JSON object per line.
 *
 * Invariants: a backup's name starts with its UTC stamp, so names sort by
 * time: the newest is last, and pruning keeps the newest. A session id
 * goes into a path only once hook_session_id_ok has passed it. The log is
 * cut back to its newer half when it grows past HOOK_LOG_MAX_LINES: it
 * says what happened lately, it is not an archive.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include "base/base.h"
#include "hook.h"
#include "sessions.h"

#define HOOK_LOG_MAX_LINES 200           /* the log is cut back to half this when it grows past it */

/* ---- small helpers: names that go into paths, counts --------------------------- */

/* A session id as it may go into a file name: what Claude Code's ids are made of. */
bool hook_session_id_ok(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '-' || s[n] == '_'))
			return false;
	return n > 0 && n <= 36;
}

void hook_stamp_now(char out[32])
{
	time_t now = (time_t)cmv__now();
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, 32, "%Y%m%dT%H%M%SZ", &tm);
}

/* A whole number option, or the default; false when it is not one. */
bool hook_parse_count(size_t *out, const char *s, size_t dflt, size_t min)
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

/* ---- where sessions may be, and what the hooks left them as ------------------- */

bool hook_projects_dir(char out[PATH_MAX])
{
	char *root = cli_agent_home("CLAUDE_CONFIG_DIR", ".claude");
	cmv_buf b = CMV_BUF_INIT(PATH_MAX);
	bool ok = root && cmv_buf_printf(&b, "%s/projects", root) == 0 && realpath(b.ptr, out);
	free(root);
	cmv_buf_dispose(&b);
	return ok;
}

bool hook_path_below(const char *real, const char *dir)
{
	size_t n = strlen(dir);
	return n && !strncmp(real, dir, n) && real[n] == '/' && real[n + 1];
}

bool hook_state_read(hook_state *out, const char *store, const char *session)
{
	char path[PATH_MAX], text[256];
	int fd;
	ssize_t n;
	if (snprintf(path, sizeof(path), "%s/backups/%s/state", store, session) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW)) < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	return sscanf(text, "{\"bytes\":%llu,\"ino\":%llu}", &out->bytes, &out->ino) == 2;
}

void hook_state_write(const char *store, const char *session, const struct stat *st)
{
	char dir[PATH_MAX], path[PATH_MAX + 8], text[128];
	int n = snprintf(text, sizeof(text), "{\"bytes\":%llu,\"ino\":%llu}\n", (unsigned long long)st->st_size,
			 (unsigned long long)st->st_ino);
	if (snprintf(dir, sizeof(dir), "%s/backups/%s", store, session) >= (int)sizeof(dir) || cli_mkdirs(dir) != 0)
		return;
	snprintf(path, sizeof(path), "%s/state", dir);
	/* a lost state costs one trim more, never a wrong one: no error to report */
	if (cmv__file_write_atomic(path, text, (size_t)n, 0600) < 0)
		cmv_error_clear();
}

int hook_lock(const char *store)
{
	char path[PATH_MAX];
	int fd;
	if (snprintf(path, sizeof(path), "%s/auto-trim.lock", store) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the log ------------------------------------------------------------------ */

void hook_log_entry(const char *store, cJSON *e)
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
cJSON *hook_log_last(const char *store)
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

/* ---- backups ----------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest `keep` backups of a session (names sort by time). */
void hook_prune_backups(const char *dir, size_t keep)
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

void hook_backups_list(hook_backup **out, size_t *n_out, const char *store, const char *session)
{
	char dir[PATH_MAX / 2];
	DIR *d, *sd;
	struct dirent *e, *f;
	hook_backup *items = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*n_out = 0;
	snprintf(dir, sizeof(dir), "%s/backups", store);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char sdir[PATH_MAX / 2 + 300], pfile[PATH_MAX];
		if (!hook_session_id_ok(e->d_name) || (session && strncmp(e->d_name, session, strlen(session))))
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
				hook_backup *g = realloc(items, (cap = cap ? cap * 2 : 16) * sizeof(*items));
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
			hook_backup t = items[k];
			items[k] = items[k - 1];
			items[k - 1] = t;
		}
	*out = items;
	*n_out = n;
}

void hook_backups_free(hook_backup *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].session);
		free(items[i].file);
		free(items[i].transcript);
	}
	free(items);
}
