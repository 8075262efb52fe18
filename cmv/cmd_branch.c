/* SPDX-License-Identifier: MIT */
/*
 * cmv branch NAME [--from REF | --at NODE]: a new branch; one row, whatever
 * the history size. From a snapshot it is a trimmed branch unless
 * --no-trim (claude-code-cmv's `branch <snapshot>` since its 2.0; so is
 * `cmv branch SNAPSHOT`, which names the branch after it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cmd.h"
#include "sessions.h"

static const char *b_name, *b_from, *b_at, *b_threshold;
static bool b_checkout, b_json, b_claude, b_codex, b_launch, b_trim, b_no_trim;
const cli_opt opts_branch[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the new branch's name", &b_name, NULL },
	{ OPT_VALUE, "from", 0, "REF", "start from a branch or snapshot (default: the current branch)", &b_from, NULL },
	{ OPT_VALUE, "at", 0, "NODE", "start at a node (an id prefix, or REF~N)", &b_at, NULL },
	{ OPT_FLAG, "trim", 0, NULL, "trim it (the default from a snapshot)", NULL, &b_trim },
	{ OPT_FLAG, "no-trim", 0, NULL, "a raw copy, even from a snapshot", NULL, &b_no_trim },
	{ OPT_VALUE, "threshold", 't', "CHARS", "with trimming: stub content over this many characters (default 500)", &b_threshold, NULL },
	{ OPT_FLAG, "checkout", 'c', NULL, "make the new branch the current one", NULL, &b_checkout },
	{ OPT_FLAG, "claude", 0, NULL, "also write it as a new Claude Code session, resumable with claude --resume", NULL, &b_claude },
	{ OPT_FLAG, "codex", 0, NULL, "also write it as a new Codex rollout, resumable with codex resume", NULL, &b_codex },
	{ OPT_FLAG, "launch", 0, NULL, "with --claude or --codex: resume it now", NULL, &b_launch },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &b_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

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
	cmv_buf idx = CMV_BUF_INIT(4096), tmp = CMV_BUF_INIT(4096), text = CMV_BUF_INIT(1 << 28);
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
	/* written beside it and renamed over it: a reader never sees half a file */
	cmv_buf_printf(&tmp, "%s.cmv-tmp", idx.ptr);
	if (!out || !(fp = fopen(tmp.ptr, "wb")) || fputs(out, fp) < 0 || fclose(fp) != 0 || rename(tmp.ptr, idx.ptr) != 0)
		rc = cli_failf("cannot update %s: %s", idx.ptr, strerror(errno));
	free(out);
	cJSON_Delete(doc);
	cmv_buf_dispose(&idx);
	cmv_buf_dispose(&tmp);
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
	const char *key;                   /* JSON: <key>_session, <key>_file */
	const char *env, *home_dir;        /* its folder: $env, else ~/home_dir */
	const char *program, *resume;      /* program resume <id> */
	bool has_index;                    /* keeps a sessions-index.json beside the sessions */
	int (*write)(cmv_buf *out, char new_id[37], cmv_buf *cwd_out, cmv_repo *repo, const cmv_id *tip);
	void (*place)(cmv_buf *dir, cmv_buf *path, const char *root, const char *id, const char *cwd);
} agent;

static const agent claude_agent = { "Claude Code", "claude", "CLAUDE_CONFIG_DIR", ".claude", "claude", "--resume",
				    true, cmv_claude_session_write, claude_place };
static const agent codex_agent = { "Codex", "codex", "CODEX_HOME", ".codex", "codex", "resume",
				   false, cmv_codex_session_write, codex_place };

static int write_session(cli_ctx *ctx, const cmv_id *at, cJSON *json, const agent *a, const char *title, bool launch)
{
	cmv_buf body = CMV_BUF_INIT((size_t)1 << 31), cwd = CMV_BUF_INIT(4096), dir = CMV_BUF_INIT(4096),
		path = CMV_BUF_INIT(4096);
	char id[37], *root = cli_agent_home(a->env, a->home_dir);
	int rc = EXIT_OK, fd = -1;

	if (a->write(&body, id, &cwd, ctx->repo, at) < 0) {
		rc = cli_failf("cannot write the branch as a %s session: %s", a->label,
			       cmv_error_last() ? cmv_error_last()->message : "failed");
		goto done;
	}
	if (!root) {
		rc = cli_failf("no $%s or $HOME to find %s's sessions in", a->env, a->label);
		goto done;
	}
	a->place(&dir, &path, root, id, cwd.size ? cwd.ptr : "");
	if (cli_mkdirs(dir.ptr) != 0) {
		rc = cli_failf("cannot create %s: %s", dir.ptr, strerror(errno));
		goto done;
	}
	if ((fd = open(path.ptr, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
	    write(fd, body.ptr, body.size) != (ssize_t)body.size || fsync(fd) != 0) {
		rc = cli_failf("cannot write %s: %s", path.ptr, strerror(errno));
		goto done;
	}
	if (a->has_index) {
		size_t lines = 0;
		for (size_t i = 0; i < body.size; i++)
			lines += body.ptr[i] == '\n';
		if ((rc = update_index(dir.ptr, id, path.ptr, cwd.size ? cwd.ptr : "", lines, title)) != EXIT_OK)
			goto done;
	}
	if (json) {
		cmv_buf k = CMV_BUF_INIT(64);
		cmv_buf_printf(&k, "%s_session", a->key);
		cJSON_AddStringToObject(json, k.ptr, id);
		cmv_buf_clear(&k);
		cmv_buf_printf(&k, "%s_file", a->key);
		cJSON_AddStringToObject(json, k.ptr, path.ptr);
		cJSON_AddStringToObject(json, "cwd", cwd.size ? cwd.ptr : "");
		cmv_buf_dispose(&k);
	} else {
		printf("%s session %s written to %s\nresume it with: cd %s && %s %s %s\n", a->label, id, path.ptr,
		       cwd.size ? cwd.ptr : ".", a->program, a->resume, id);
	}
	if (launch) {
		fflush(stdout);
		if (cwd.size && chdir(cwd.ptr) != 0) {
			rc = cli_failf("cannot enter %s: %s", cwd.ptr, strerror(errno));
			goto done;
		}
		execlp(a->program, a->program, a->resume, id, (char *)NULL);
		rc = cli_failf("cannot run %s: %s (is %s installed?)", a->program, strerror(errno), a->label);
	}
done:
	if (fd >= 0)
		close(fd);
	free(root);
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&cwd);
	cmv_buf_dispose(&dir);
	cmv_buf_dispose(&path);
	return rc;
}

int cli_write_agent_session(cli_ctx *ctx, const cmv_id *at, cJSON *json, const char *agent_name, const char *title,
			    bool launch)
{
	return write_session(ctx, at, json, !strcmp(agent_name, "codex") ? &codex_agent : &claude_agent, title, launch);
}

CMD(branch)
{
	cmv_buf from = CMV_BUF_INIT(4096);
	cmv_ref *src = NULL;
	cmv_id at;
	char hex[CMV_ID_HEXSZ + 1];
	const char *from_ref = NULL;
	int rc = EXIT_OK;

	CLI_PARSE("branch");
	size_t threshold;
	char auto_name[CMV_REF_NAME_MAX + 1];
	if (b_trim && b_no_trim)
		return cli_usage_error(cli_find("branch"), "--trim or --no-trim, not both");
	if (cli_parse_threshold(&threshold, b_threshold) < 0)
		return cli_usage_error(cli_find("branch"), "--threshold needs a whole number of characters, at least %d, not '%s'",
				       CMV_TRIM_THRESHOLD_MIN, b_threshold);
	if (!b_from && !b_at && cmv_ref_lookup(&src, ctx->repo, b_name) == 0 && src->type == CMV_REF_SNAPSHOT) {
		/* `cmv branch SNAPSHOT`: a branch of it named SNAPSHOT-<date> */
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		snprintf(auto_name, sizeof(auto_name), "%.200s-%s", b_name, stamp);
		b_from = b_name;
		b_name = auto_name;
	}
	cmv_ref_free(src);
	src = NULL;
	cmv_error_clear();
	if (b_launch && !b_claude && !b_codex)
		return cli_usage_error(cli_find("branch"), "--launch goes with --claude or --codex");
	if (b_claude && b_codex)
		return cli_usage_error(cli_find("branch"), "--claude or --codex, not both");
	if (b_from && b_at)
		return cli_usage_error(cli_find("branch"), "--from and --at cannot be used together");
	if (b_at) {
		cmv_buf_puts(&from, b_at);
	} else if (b_from) {
		cmv_buf_puts(&from, b_from);
	} else if ((rc = cli_current_branch(&from, ctx)) != 0) {
		goto done;
	}
	if ((rc = cli_resolve(&at, ctx, from.ptr)) != 0)
		goto done;
	/* Lineage: the ref named, also when it is given as REF~N with --at. */
	if (b_at) {
		char *tilde = strrchr(from.ptr, '~');
		if (tilde)
			*tilde = '\0';
	}
	if (cmv_ref_lookup(&src, ctx->repo, from.ptr) == 0)
		from_ref = src->name;
	cmv_error_clear();
	bool trim = b_trim || (src && src->type == CMV_REF_SNAPSHOT && !b_at && !b_no_trim);
	cJSON *o = b_json ? cJSON_CreateObject() : NULL;
	if (trim) {
		cJSON *report = o ? cJSON_AddObjectToObject(o, "trim") : NULL;
		if ((rc = cli_trim(&at, ctx, &at, from_ref, b_name, NULL, threshold, NULL, false, report)) != EXIT_OK) {
			cJSON_Delete(o);
			goto done;
		}
	} else if (cmv_branch_create(ctx->repo, b_name, &at, from_ref) < 0) {
		cJSON_Delete(o);
		rc = cli_fail("cannot create the branch");
		goto done;
	}
	if (b_checkout && cmv_head_set(ctx->repo, b_name) < 0) {
		cJSON_Delete(o);
		rc = cli_fail("cannot check out the branch");
		goto done;
	}
	if (b_json) {
		cJSON_AddStringToObject(o, "branch", b_name);
		cJSON_AddStringToObject(o, "node", cli_id(&at, hex));
		if (from_ref)
			cJSON_AddStringToObject(o, "from", from_ref);
		else
			cJSON_AddNullToObject(o, "from");
	} else {
		printf("%sbranch '%s' at %s%s%s\n", trim ? "trimmed " : "", b_name, cli_short(&at, hex),
		       from_ref ? " from " : "", from_ref ? from_ref : "");
	}
	if ((b_claude || b_codex) && (rc = write_session(ctx, &at, o, b_claude ? &claude_agent : &codex_agent, b_name, b_launch)) != EXIT_OK) {
		cJSON_Delete(o);
		goto done;
	}
	if (o)
		rc = cli_print_json(o);
done:
	cmv_ref_free(src);
	cmv_buf_dispose(&from);
	return rc;
}
