/* SPDX-License-Identifier: MIT */
/*
 * cmv hook install | uninstall | status | restore: the Claude Code hooks
 * that run cmv auto-trim (cmd_auto_trim.c), and the way back from what
 * they did.
 *
 * Invariants: the settings are edited only through hook_settings.c, which
 * touches no entry but ours. restore puts a session's newest backup back,
 * after keeping what is there now as a backup too: a restore can be undone
 * like a trim.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/base.h"
#include "hook.h"

static const char *h_action, *h_arg, *h_settings, *h_threshold, *h_size, *h_growth;
static bool h_json, h_list;
const cli_opt opts_hook[] = {
	{ OPT_ARG, "ACTION", 0, NULL, "install, uninstall, status or restore", &h_action, NULL },
	{ OPT_ARG_OPT, "SESSION", 0, NULL, "restore: the session whose newest backup to put back (default: the newest of all)", &h_arg, NULL },
	{ OPT_VALUE, "settings", 0, "FILE", "Claude Code's settings file (default: $CLAUDE_CONFIG_DIR or ~/.claude, settings.json)", &h_settings, NULL },
	{ OPT_VALUE, "threshold", 't', "CHARS", "install: the trim threshold the hooks use (default 500)", &h_threshold, NULL },
	{ OPT_VALUE, "size", 0, "BYTES", "install: the session size that makes the after-tool-use hook trim (default 600000)", &h_size, NULL },
	{ OPT_VALUE, "growth", 0, "BYTES", "install: how much the session must grow after a trim before the after-tool-use hook trims again (default 65536)", &h_growth, NULL },
	{ OPT_FLAG, "list", 'l', NULL, "restore: list the backups instead", NULL, &h_list },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &h_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

/* Put the newest backup (of a session, or of all) back in place of its transcript; --list lists them instead. */
static int hook_restore(cli_ctx *ctx)
{
	hook_backup *items;
	size_t n;
	int rc = EXIT_OK, lock = -1;
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31), cur = CMV_BUF_INIT((size_t)1 << 31);
	cJSON *o = h_json ? cJSON_CreateObject() : NULL, *arr = o ? cJSON_AddArrayToObject(o, "backups") : NULL;

	if (h_arg && !hook_session_id_ok(h_arg))
		return cli_usage_error(cli_find("hook"), "'%s' is not a session id", h_arg);
	hook_backups_list(&items, &n, ctx->store_path, h_arg);
	if (h_list) {
		for (size_t i = n; i-- > 0;) {
			struct stat st;
			long long size = stat(items[i].file, &st) == 0 ? (long long)st.st_size : -1;
			if (arr) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "session", items[i].session);
				cJSON_AddStringToObject(x, "file", items[i].file);
				cJSON_AddStringToObject(x, "transcript", items[i].transcript);
				cJSON_AddNumberToObject(x, "bytes", (double)size);
				cJSON_AddItemToArray(arr, x);
			} else {
				printf("%s  %10lld bytes  %s\n", items[i].session, size, items[i].file);
			}
		}
		goto done;
	}
	if (!n) {
		rc = cli_failf("no backups%s%s in %s/backups", h_arg ? " of session " : "", h_arg ? h_arg : "", ctx->store_path);
		goto done;
	}
	const hook_backup *b = &items[n - 1];
	if (!b->transcript[0]) {
		rc = cli_failf("%s: the session file it came from is not recorded", b->file);
		goto done;
	}
	/* only over a session file in Claude Code's projects folder, never through a link */
	char projects[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
	struct stat st;
	unsigned int mode = 0600;
	snprintf(dir, sizeof(dir), "%s", b->transcript);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	if (!hook_projects_dir(projects) || !realpath(dir, real) ||
	    strcmp(real, dir) || !hook_path_below(b->transcript, projects)) {
		rc = cli_failf("%s: not a session file in Claude Code's projects folder; not restored", b->transcript);
		goto done;
	}
	if (lstat(b->transcript, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			rc = cli_failf("%s: not a regular file; not restored", b->transcript);
			goto done;
		}
		mode = st.st_mode & 07777; /* the agent's choice of mode stays */
	}
	if ((lock = hook_lock(ctx->store_path)) < 0) {
		rc = cli_failf("an auto-trim is running on this store; try again");
		goto done;
	}
	if (cmv__read_file(&body, b->file) < 0) {
		rc = cli_fail("cannot read the backup");
		goto done;
	}
	/* what is there now becomes a backup too: a restore can be undone like a trim */
	if (cmv__read_file(&cur, b->transcript) == 0) {
		char stamp[32], save[PATH_MAX];
		hook_stamp_now(stamp);
		snprintf(save, sizeof(save), "%.*s/%s-before-restore.jsonl",
			 (int)(strrchr(b->file, '/') - b->file), b->file, stamp);
		int fd = open(save, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0 || write(fd, cur.ptr, cur.size) != (ssize_t)cur.size || fsync(fd) != 0) {
			if (fd >= 0)
				close(fd);
			rc = cli_failf("cannot keep the current session as %s: %s", save, strerror(errno));
			goto done;
		}
		close(fd);
	}
	cmv_error_clear();
	if (cmv__file_write_atomic(b->transcript, body.ptr, body.size, mode) < 0) {
		rc = cli_fail("cannot restore the transcript");
		goto done;
	}
	/*
	 * The session's branch follows the file back, so --latest commands stay
	 * a step forward from it; the state makes --check-size wait for growth
	 * past what was restored (PreCompact still trims).
	 */
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;
	io.flags = CMV_IMPORT_FORCE;
	if (cmv_import_file(&res, ctx->repo, b->transcript, "claude-code", &io) < 0) {
		fprintf(stderr, "cmv: restored, but the session's branch was not moved back: %s\n",
			cmv_error_last() ? cmv_error_last()->message : "import failed");
		cmv_error_clear();
	}
	if (stat(b->transcript, &st) == 0)
		hook_state_write(ctx->store_path, b->session, &st);
	if (o) {
		cJSON_AddStringToObject(o, "restored", b->transcript);
		cJSON_AddStringToObject(o, "from", b->file);
		cJSON_AddNumberToObject(o, "bytes", (double)body.size);
	} else {
		printf("restored %s from %s (%zu bytes)\n", b->transcript, b->file, body.size);
	}
done:
	if (o && rc == EXIT_OK)
		rc = cli_print_json(o);
	else
		cJSON_Delete(o);
	if (lock >= 0)
		close(lock);
	hook_backups_free(items, n);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&cur);
	return rc;
}

CMD(hook)
{
	char *path;
	size_t threshold = 0, size = 0, growth = HOOK_GROWTH_UNSET, removed = 0;
	int rc;

	CLI_PARSE("hook");
	if (strcmp(h_action, "install") && strcmp(h_action, "uninstall") && strcmp(h_action, "status") &&
	    strcmp(h_action, "restore"))
		return cli_usage_error(cli_find("hook"), "'%s' is not install, uninstall, status or restore", h_action);
	if (h_arg && strcmp(h_action, "restore"))
		return cli_usage_error(cli_find("hook"), "only restore takes a SESSION");
	if (cli_parse_threshold(&threshold, h_threshold) < 0)
		return cli_usage_error(cli_find("hook"), "--threshold needs a whole number of characters, at least %d, not '%s'",
				       CMV_TRIM_THRESHOLD_MIN, h_threshold);
	if (!hook_parse_count(&size, h_size, 0, 1))
		return cli_usage_error(cli_find("hook"), "--size needs a whole number of bytes, not '%s'", h_size);
	if (!hook_parse_count(&growth, h_growth, HOOK_GROWTH_UNSET, 0) || (h_growth && growth == HOOK_GROWTH_UNSET))
		return cli_usage_error(cli_find("hook"), "--growth needs a whole number of bytes, not '%s'", h_growth);
	if (!strcmp(h_action, "restore"))
		return hook_restore(ctx);
	if (!(path = hook_settings_path(h_settings)))
		return cli_failf("no $CLAUDE_CONFIG_DIR or $HOME to find Claude Code's settings in (use --settings)");
	if (!strcmp(h_action, "install")) {
		rc = hook_install(ctx, path, threshold, size, growth, h_json);
	} else if (!strcmp(h_action, "uninstall")) {
		rc = hook_uninstall(path, &removed);
		if (rc == EXIT_OK && !h_json)
			printf("%zu cmv hook%s removed from %s\n", removed, removed == 1 ? "" : "s", path);
	} else {
		rc = hook_status(ctx, path, h_json);
	}
	if (rc == EXIT_OK && h_json && strcmp(h_action, "status")) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "settings", path);
		cJSON_AddStringToObject(o, "action", h_action);
		if (!strcmp(h_action, "uninstall"))
			cJSON_AddNumberToObject(o, "removed", (double)removed);
		rc = cli_print_json(o);
	}
	free(path);
	return rc;
}
