/* SPDX-License-Identifier: MIT */
/* cmv snapshot NAME [--from REF] [-d TEXT] [-t TAG,...]: an immutable name for a point in a conversation. */
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "sessions.h"

static const char *sn_name, *sn_from, *sn_desc, *sn_tags, *sn_session;
static bool sn_json, sn_latest;
const cli_opt opts_snapshot[] = {
	{ OPT_ARG, "NAME", 0, NULL, "the snapshot's name", &sn_name, NULL },
	{ OPT_VALUE, "from", 0, "REF", "what to snapshot (default: the current branch)", &sn_from, NULL },
	{ OPT_VALUE, "session", 's', "ID", "import this Claude Code or Codex session first, and snapshot it", &sn_session, NULL },
	{ OPT_FLAG, "latest", 0, NULL, "import the newest session of this machine first, and snapshot it", NULL, &sn_latest },
	{ OPT_VALUE, "description", 'd', "TEXT", "a description", &sn_desc, NULL },
	{ OPT_VALUE, "tags", 't', "TAG,...", "comma-separated tags", &sn_tags, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print the result as JSON", NULL, &sn_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

CMD(snapshot)
{
	cmv_snapshot_options opts = CMV_SNAPSHOT_OPTIONS_INIT;
	cmv_buf from = CMV_BUF_INIT(4096);
	cmv_id at;
	char hex[CMV_ID_HEXSZ + 1];
	char **tags = NULL;
	size_t n_tags = 0;
	int rc;

	CLI_PARSE("snapshot");
	if (!!sn_from + !!sn_session + sn_latest > 1)
		return cli_usage_error(cli_find("snapshot"), "give at most one of --from, --session and --latest");
	if (sn_session || sn_latest) {
		/* import (or bring up to date) the session, then snapshot its branch */
		cmv_buf path = CMV_BUF_INIT(4096);
		cmv_import_result res;
		if ((rc = cli_session_path(&path, sn_session)) != EXIT_OK) {
			cmv_buf_dispose(&path);
			return rc;
		}
		rc = cmv_import_file(&res, ctx->repo, path.ptr, NULL, NULL) < 0 ? cli_fail("import failed") : EXIT_OK;
		cmv_buf_dispose(&path);
		if (rc != EXIT_OK)
			return rc;
		cmv_buf_puts(&from, res.branch);
	} else if (sn_from)
		cli_ref_canon(&from, ctx, sn_from);
	else if ((rc = cli_current_branch(&from, ctx)) != 0)
		return rc;
	if ((rc = cli_resolve(&at, ctx, from.ptr)) != 0)
		goto done;
	if (sn_tags && !(tags = cli_split_commas(sn_tags, &n_tags))) {
		rc = cli_failf("out of memory");
		goto done;
	}
	opts.description = sn_desc;
	opts.tags = (const char *const *)tags;
	opts.n_tags = n_tags;
	/* Record the ref it came from only when it is a ref, not a raw node id. */
	cmv_ref *src = NULL;
	bool is_ref = cmv_ref_lookup(&src, ctx->repo, from.ptr) == 0;
	cmv_ref_free(src);
	cmv_error_clear();
	if (cmv_snapshot_create(ctx->repo, sn_name, &at, is_ref ? from.ptr : NULL, &opts) < 0) {
		rc = cli_fail("cannot create the snapshot");
		goto done;
	}
	if (sn_json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "snapshot", sn_name);
		cJSON_AddStringToObject(o, "head", cli_id(&at, hex));
		cJSON_AddStringToObject(o, "from", from.ptr);
		rc = cli_print_json(o);
	} else {
		printf("snapshot '%s' of %s at %s\n", sn_name, from.ptr, cli_short(&at, hex));
		rc = EXIT_OK;
	}
done:
	free(tags);
	cmv_buf_dispose(&from);
	return rc;
}
