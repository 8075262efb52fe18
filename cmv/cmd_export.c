/* SPDX-License-Identifier: MIT */
/* cmv export [REF] [--format cmv] [-o FILE]: write a conversation out. */
#include <errno.h>
#include <string.h>
#include "cmd.h"

static const char *e_ref, *e_format, *e_out, *e_session;
const cli_opt opts_export[] = {
	{ OPT_VALUE, "session", 's', "NAME", "write an imported session back whole, byte for byte (cc/<id>)", &e_session, NULL },
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &e_ref, NULL },
	{ OPT_VALUE, "format", 'f', "FORMAT", "cmv (cmv's neutral JSONL; the default)", &e_format, NULL },
	{ OPT_VALUE, "output", 'o', "FILE", "write to FILE instead of standard output", &e_out, NULL },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static int write_file(const void *data, size_t len, void *payload)
{
	if (fwrite(data, 1, len, payload) != len)
		return cmv_error_last() ? CMV_EIO : CMV_EIO;
	return 0;
}

CMD(export)
{
	cmv_id tip;
	FILE *fp = stdout;
	int rc;

	CLI_PARSE("export");
	if (e_session) {
		if (e_ref || e_format)
			return cli_usage_error(cli_find("export"), "--session writes the session's own format; no REF or --format");
		if (e_out && !(fp = fopen(e_out, "wb")))
			return cli_failf("cannot write '%s': %s", e_out, strerror(errno));
		/* A bare session id is accepted too. */
		cmv_buf name = CMV_BUF_INIT(4096);
		cmv_buf_printf(&name, "%s%s", strncmp(e_session, "cc/", 3) ? "cc/" : "", e_session);
		rc = cmv_export_session(ctx->repo, name.ptr, write_file, fp) < 0 ? cli_fail("export failed") : EXIT_OK;
		cmv_buf_dispose(&name);
		if (fp != stdout && fclose(fp) != 0 && rc == EXIT_OK)
			rc = cli_failf("cannot write '%s': %s", e_out, strerror(errno));
		return rc;
	}
	if (e_format && strcmp(e_format, "cmv"))
		return cli_usage_error(cli_find("export"), "unknown format '%s' (known: cmv)", e_format);
	if ((rc = cli_resolve(&tip, ctx, e_ref)) != 0)
		return rc;
	if (e_out && !(fp = fopen(e_out, "wb")))
		return cli_failf("cannot write '%s': %s", e_out, strerror(errno));
	rc = cmv_export_cmv(ctx->repo, &tip, write_file, fp) < 0 ? cli_fail("export failed") : EXIT_OK;
	if (fp != stdout && fclose(fp) != 0 && rc == EXIT_OK)
		rc = cli_failf("cannot write '%s': %s", e_out, strerror(errno));
	return rc;
}
