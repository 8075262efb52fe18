/* SPDX-License-Identifier: MIT */
/*
 * cmv export [REF] [--format F] [--check] [-o FILE]: a branch's conversation
 * as cmv JSONL or as a provider's request body; cmv export --session ID: an
 * imported session, byte for byte.
 */
#include <errno.h>
#include <string.h>
#include "cmd.h"
#include "base/base.h"

static const char *e_ref, *e_format, *e_out, *e_session, *e_model, *e_bundle;
static bool e_check, e_pretty, e_full, e_plain, e_branches;
const cli_opt opts_export[] = {
	{ OPT_VALUE, "session", 's', "ID", "write an imported session back whole, byte for byte (cc/<id>, codex/<id>, ... or the id)", &e_session, NULL },
	{ OPT_ARG_OPT, "REF", 0, NULL, "branch, snapshot or node (default: the current branch)", &e_ref, NULL },
	{ OPT_VALUE, "format", 'f', "FORMAT", "cmv (neutral JSONL, the default), anthropic, openai-chat, openai-responses or gemini", &e_format, NULL },
	{ OPT_VALUE, "model", 'm', "ID", "the request's model member", &e_model, NULL },
	{ OPT_FLAG, "check", 0, NULL, "check the request against the provider's rules; fail on any problem", NULL, &e_check },
	{ OPT_FLAG, "full-history", 0, NULL, "render what came before the last compaction too", NULL, &e_full },
	{ OPT_FLAG, "no-decorations", 0, NULL, "no cache markers, reasoning includes or signature placeholders", NULL, &e_plain },
	{ OPT_FLAG, "pretty", 0, NULL, "indent the JSON", NULL, &e_pretty },
	{ OPT_VALUE, "output", 'o', "FILE", "write to FILE instead of standard output", &e_out, NULL },
	{ OPT_VALUE, "bundle", 0, "FILE", "write snapshot REF, its lineage and every object they reach as a portable bundle (cmv import FILE)", &e_bundle, NULL },
	{ OPT_FLAG, "with-branches", 0, NULL, "with --bundle: also the branches made from those snapshots (their trims)", NULL, &e_branches },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static int write_file(const void *data, size_t len, void *payload)
{
	if (fwrite(data, 1, len, payload) != len)
		return CMV_EIO;
	return 0;
}

/* The session ref for a name: the ref itself, or an id under any format's prefix. */
static int session_ref(cmv_buf *out, cli_ctx *ctx, const char *name)
{
	static const char *const prefixes[] = { "", "cc/", "codex/", "copilot/", "gemini-cli/", "swe-agent/",
						 "openhands/", "anthropic/", "chat/", "responses/", "gemini/" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
		cmv_ref *r = NULL;
		cmv_buf_clear(out);
		cmv_buf_printf(out, "%s%s", prefixes[i], name);
		if (cmv_ref_name_is_valid(out->ptr) && cmv_ref_lookup(&r, ctx->repo, out->ptr) == 0 && r->type == CMV_REF_SESSION) {
			cmv_ref_free(r);
			return EXIT_OK;
		}
		cmv_ref_free(r);
		cmv_error_clear();
	}
	return cli_failf("no imported session '%s' (see cmv list --sessions)", name);
}

static int close_out(FILE *fp, int rc)
{
	if (fp != stdout && fclose(fp) != 0 && rc == EXIT_OK)
		rc = cli_failf("cannot write '%s': %s", e_out, strerror(errno));
	return rc;
}

CMD(export)
{
	cmv_render_target target;
	cmv_id tip;
	FILE *fp = stdout;
	int rc;

	CLI_PARSE("export");
	if (e_branches && !e_bundle)
		return cli_usage_error(cli_find("export"), "--with-branches goes with --bundle");
	if (e_bundle) {
		cmv_bundle_stats bs;
		cmv__atomic_file af;
		if (!e_ref || e_session || e_format || e_out)
			return cli_usage_error(cli_find("export"), "--bundle FILE takes a SNAPSHOT, and no --session, --format or --output");
		/* through a temporary file: a failed export leaves no half bundle behind */
		if (cmv__atomic_open(&af, e_bundle, 0644) < 0)
			return cli_fail("cannot write the bundle");
		const char *snaps[1] = { e_ref };
		if (cmv_bundle_export(&bs, ctx->repo, snaps, 1, e_branches ? CMV_BUNDLE_WITH_BRANCHES : 0, write_file,
				      af.fp) < 0) {
			rc = cli_fail("export failed");
			cmv__atomic_abort(&af);
		} else {
			rc = cmv__atomic_commit(&af) < 0 ? cli_fail("cannot write the bundle") : EXIT_OK;
		}
		if (rc == EXIT_OK)
			fprintf(stderr, "cmv: bundle %s: %zu ref%s, %zu nodes, %zu blobs, %llu bytes\n", e_bundle, bs.refs,
				bs.refs == 1 ? "" : "s", bs.nodes, bs.blobs, (unsigned long long)bs.bytes);
		return rc;
	}
	if (e_session) {
		cmv_buf name = CMV_BUF_INIT(4096);
		if (e_ref || e_format)
			return cli_usage_error(cli_find("export"), "--session writes the session's own format; no REF or --format");
		if ((rc = session_ref(&name, ctx, e_session)) != EXIT_OK) {
			cmv_buf_dispose(&name);
			return rc;
		}
		if (e_out && !(fp = fopen(e_out, "wb"))) {
			cmv_buf_dispose(&name);
			return cli_failf("cannot write '%s': %s", e_out, strerror(errno));
		}
		rc = cmv_export_session(ctx->repo, name.ptr, write_file, fp) < 0 ? cli_fail("export failed") : EXIT_OK;
		cmv_buf_dispose(&name);
		return close_out(fp, rc);
	}
	bool neutral = !e_format || !strcmp(e_format, "cmv");
	if (!neutral && cmv_render_target_parse(&target, e_format) < 0)
		return cli_usage_error(cli_find("export"), "unknown format '%s' (cmv, anthropic, openai-chat, openai-responses, gemini)",
				       e_format);
	if (neutral && (e_check || e_model || e_full || e_plain || e_pretty))
		return cli_usage_error(cli_find("export"), "--check, --model, --full-history, --no-decorations and --pretty are for provider formats");
	if ((rc = cli_resolve(&tip, ctx, e_ref)) != 0)
		return rc;
	if (neutral) {
		if (e_out && !(fp = fopen(e_out, "wb")))
			return cli_failf("cannot write '%s': %s", e_out, strerror(errno));
		rc = cmv_export_cmv(ctx->repo, &tip, write_file, fp) < 0 ? cli_fail("export failed") : EXIT_OK;
		return close_out(fp, rc);
	}

	cmv_render_options ro = CMV_RENDER_OPTIONS_INIT;
	cmv_render_stats st;
	cmv_buf body = CMV_BUF_INIT(CMV_BUF_CONTENT), problems = CMV_BUF_INIT(1 << 20);
	ro.model = e_model;
	ro.flags = (e_full ? CMV_RENDER_FULL_HISTORY : 0) | (e_plain ? CMV_RENDER_NO_DECORATIONS : 0) |
		   (e_pretty ? CMV_RENDER_PRETTY : 0);
	if (cmv_render(&body, &st, ctx->repo, &tip, target, &ro) < 0) {
		rc = cli_fail("render failed");
		goto done;
	}
	if (e_check) {
		int n = cmv_check_request(&problems, target, body.ptr, body.size);
		if (n != 0) {
			fprintf(stderr, "%s", problems.size ? problems.ptr : "");
			rc = n < 0 ? cli_fail("check failed") : cli_failf("the %s request breaks %d rule%s", e_format, n, n == 1 ? "" : "s");
			goto done;
		}
		fprintf(stderr, "cmv: %s request checked: %zu messages from %zu records; %zu call%s answered for lack of a result, "
				"%zu orphan result%s kept as text, %zu thinking block%s dropped, %zu compaction%s crossed\n",
			e_format, st.messages, st.records, st.answered_calls, st.answered_calls == 1 ? "" : "s", st.orphan_results,
			st.orphan_results == 1 ? "" : "s", st.dropped_thinking, st.dropped_thinking == 1 ? "" : "s",
			st.compactions, st.compactions == 1 ? "" : "s");
	}
	if (e_out && !(fp = fopen(e_out, "wb"))) {
		rc = cli_failf("cannot write '%s': %s", e_out, strerror(errno));
		goto done;
	}
	rc = fwrite(body.ptr, 1, body.size, fp) == body.size ? EXIT_OK : cli_failf("write failed");
	rc = close_out(fp, rc);
done:
	cmv_buf_dispose(&body);
	cmv_buf_dispose(&problems);
	return rc;
}
