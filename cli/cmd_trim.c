/* SPDX-License-Identifier: MIT */
/*
 * cmv trim [REF | --session ID | --latest]: snapshot, then a trimmed branch
 * of it, in one step (docs/trim.md), with a report counted in the tokens
 * the model is sent on resume. --claude writes the branch as a new Claude
 * Code session.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"
#include "sessions.h"

static const char *t_ref, *t_session, *t_threshold, *t_model, *t_name;
static bool t_latest, t_dry, t_json, t_claude, t_launch;
const cli_opt opts_trim[] = {
	{ OPT_ARG_OPT, "REF", 0, NULL, "what to trim (default: the current branch)", &t_ref, NULL },
	{ OPT_VALUE, "session", 's', "ID", "import this Claude Code session first, and trim it", &t_session, NULL },
	{ OPT_FLAG, "latest", 0, NULL, "import the newest session of this machine first, and trim it", NULL, &t_latest },
	{ OPT_VALUE, "threshold", 't', "CHARS", "stub content over this many characters (default 500, at least 50)", &t_threshold, NULL },
	{ OPT_VALUE, "model", 'm', "M", "count tokens for this model (default: the branch's, else claude-sonnet-4-5)", &t_model, NULL },
	{ OPT_VALUE, "name", 'n', "NAME", "the snapshot's name (default trim-<date>); the branch is NAME.trim", &t_name, NULL },
	{ OPT_FLAG, "dry-run", 0, NULL, "report what trim would do; change nothing", NULL, &t_dry },
	{ OPT_FLAG, "json", 0, NULL, "print the report as JSON", NULL, &t_json },
	{ OPT_FLAG, "claude", 0, NULL, "also write the trimmed branch as a new Claude Code session", NULL, &t_claude },
	{ OPT_FLAG, "launch", 0, NULL, "with --claude: resume it now", NULL, &t_launch },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(trim)
{
	cmv_buf from = CMV_BUF_INIT(4096), snap = CMV_BUF_INIT(256), branch = CMV_BUF_INIT(256);
	cmv_snapshot_options sopts = CMV_SNAPSHOT_OPTIONS_INIT;
	cmv_ref *src = NULL;
	cmv_id tip, head;
	size_t threshold;
	cJSON *o = NULL;
	int rc = EXIT_OK;

	CLI_PARSE("trim");
	if (!!t_ref + !!t_session + t_latest > 1)
		return cli_usage_error(cli_find("trim"), "give at most one of REF, --session and --latest");
	if (cli_parse_threshold(&threshold, t_threshold) < 0)
		return cli_usage_error(cli_find("trim"), "--threshold needs a whole number of characters, at least %d, not '%s'",
				       CMV_TRIM_THRESHOLD_MIN, t_threshold);
	if (t_launch && !t_claude)
		return cli_usage_error(cli_find("trim"), "--launch goes with --claude");
	if ((t_claude || t_launch) && t_dry)
		return cli_usage_error(cli_find("trim"), "--dry-run writes nothing: no --claude");
	if (t_name && !cmv_ref_name_is_valid(t_name))
		return cli_usage_error(cli_find("trim"), "'%s' is not a valid snapshot name", t_name);
	if (t_session || t_latest) {
		cmv_buf path = CMV_BUF_INIT(4096);
		cmv_import_result res;
		if ((rc = cli_session_path(&path, t_session)) == EXIT_OK)
			rc = cmv_import_file(&res, ctx->repo, path.ptr, NULL, NULL) < 0 ? cli_fail("import failed") : EXIT_OK;
		cmv_buf_dispose(&path);
		if (rc != EXIT_OK)
			goto done;
		cmv_buf_puts(&from, res.branch);
	} else if (t_ref) {
		cli_ref_canon(&from, ctx, t_ref);
	} else if ((rc = cli_current_branch(&from, ctx)) != 0) {
		goto done;
	}
	if ((rc = cli_resolve(&tip, ctx, from.ptr)) != 0)
		goto done;
	if (cmv_ref_lookup(&src, ctx->repo, from.ptr) < 0)
		cmv_error_clear();
	if (t_name) {
		cmv_buf_puts(&snap, t_name);
	} else {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
		cmv_buf_printf(&snap, "trim-%s", stamp);
	}
	cmv_buf_printf(&branch, "%s.trim", snap.ptr);
	if (t_json)
		o = cJSON_CreateObject();
	/* one transaction: the snapshot and the branch land together, or neither */
	if (cmv_repo_txn_begin(ctx->repo) < 0) {
		rc = cli_fail("cannot start a transaction");
		goto done;
	}
	sopts.description = "taken before a trim";
	static const char *const tags[] = { "trimmed" };
	sopts.tags = tags;
	sopts.n_tags = 1;
	if (!t_dry && cmv_snapshot_create(ctx->repo, snap.ptr, &tip, src ? src->name : NULL, &sopts) < 0) {
		rc = cli_fail("cannot create the snapshot");
		cmv_repo_txn_rollback(ctx->repo);
		goto done;
	}
	rc = cli_trim(&head, ctx, &tip, src ? src->name : NULL, branch.ptr, t_dry ? NULL : snap.ptr, threshold, t_model,
		      t_dry, o);
	/* with --claude the session write commits it: the trim and the session stand together */
	if (rc != EXIT_OK || (!t_dry && !t_claude && cmv_repo_txn_commit(ctx->repo) < 0)) {
		cmv_repo_txn_rollback(ctx->repo);
		rc = rc != EXIT_OK ? rc : cli_fail("cannot commit the trim");
		goto done;
	}
	if (t_dry)
		cmv_repo_txn_rollback(ctx->repo);
	if (o) {
		cJSON_AddStringToObject(o, "branch", t_dry ? "" : branch.ptr);
		cJSON_AddStringToObject(o, "snapshot", t_dry ? "" : snap.ptr);
		cJSON_AddStringToObject(o, "from", from.ptr);
	}
	cli_agent_session written;
	if (t_claude && (rc = cli_write_agent_session(&written, ctx, &head, o, "claude", branch.ptr, true, NULL)) != EXIT_OK)
		goto done;
	if (o) {
		rc = cli_print_json(o);
		o = NULL;
	}
	if (rc == EXIT_OK && t_launch)
		rc = cli_launch_agent_session(&written);
done:
	cJSON_Delete(o);
	cmv_ref_free(src);
	cmv_buf_dispose(&from);
	cmv_buf_dispose(&snap);
	cmv_buf_dispose(&branch);
	return rc;
}
