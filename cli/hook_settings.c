/* SPDX-License-Identifier: MIT */
/*
 * Claude Code's settings.json as cmv hook edits and reads it: our two
 * hooks (PreCompact, and PostToolUse with --check-size) installed,
 * removed and reported.
 *
 * Invariants: an entry is ours when its command runs cmv with HOOK_MARK;
 * only ours are added or removed (install removes ours first, so running
 * it again changes nothing), and every other member of the file is
 * written back. A file that is not a JSON object is left as it is; the
 * file is replaced whole, by rename, never half written.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/base.h"
#include "hook.h"
#include "sessions.h"

#define HOOK_MARK "auto-trim"            /* how our entries are told from others' */

char *hook_settings_path(const char *given)
{
	if (given)
		return cmv__strdup(given);
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

int hook_install(cli_ctx *ctx, const char *path, size_t threshold, size_t size, size_t growth, bool json)
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
		if (growth != HOOK_GROWTH_UNSET && our_hooks[i].args[0])
			cmv_buf_printf(&cmd, " --growth %zu", growth);
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
	if (rc == EXIT_OK && !json)
		printf("hooks installed in %s: PreCompact trims the session before Claude Code compacts it, "
		       "PostToolUse once it is over %zu bytes; the store is %s\n",
		       path, size ? size : (size_t)HOOK_SIZE_DEFAULT, store);
	return rc;
}

int hook_uninstall(const char *path, size_t *removed)
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

int hook_status(cli_ctx *ctx, const char *path, bool json)
{
	cJSON *j = settings_load(path), *hooks, *o = cJSON_CreateObject(), *ev = cJSON_AddObjectToObject(o, "hooks");
	hook_backup *items;
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
	hook_backups_list(&items, &n, ctx->store_path, NULL);
	cJSON_AddNumberToObject(o, "backups", (double)n);
	hook_backups_free(items, n);
	cJSON *last = hook_log_last(ctx->store_path);
	if (last)
		cJSON_AddItemToObject(o, "last_run", last);
	cJSON_Delete(j);
	if (json)
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
