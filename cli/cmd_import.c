/* SPDX-License-Identifier: MIT */
/* cmv import FILE|DIR | --session ID | --latest: sessions become (or update) branches. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cmd.h"
#include "sessions.h"

static const char *i_format, *i_branch, *i_file, *i_max_line, *i_session, *i_prefix;
static bool i_lenient, i_force, i_json, i_latest;
const cli_opt opts_import[] = {
	{ OPT_ARG_OPT, "FILE|DIR", 0, NULL, "a session file, or a folder of them (searched recursively)", &i_file, NULL },
	{ OPT_VALUE, "session", 's', "ID", "a Claude Code or Codex session of this machine (see cmv sessions)", &i_session, NULL },
	{ OPT_FLAG, "latest", 0, NULL, "the newest Claude Code or Codex session of this machine", NULL, &i_latest },
	{ OPT_VALUE, "format", 'f', "FORMAT", "claude-code, codex, copilot-cli, gemini-cli, swe-agent, openhands, anthropic, "
		   "openai-chat, openai-responses, gemini or cmv (default: told from the content)", &i_format, NULL },
	{ OPT_VALUE, "branch", 'b', "NAME", "the branch to import into (default: the session id or the file's name)", &i_branch, NULL },
	{ OPT_FLAG, "lenient", 0, NULL, "keep bad records as opaque events instead of failing, and list them", NULL, &i_lenient },
	{ OPT_FLAG, "force", 0, NULL, "move the branch even if it has diverged from the file", NULL, &i_force },
	{ OPT_VALUE, "max-line-bytes", 0, "N", "longest line accepted (default 67108864)", &i_max_line, NULL },
	{ OPT_VALUE, "prefix", 0, "P", "a bundle: put its snapshots and branches under P/", &i_prefix, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print what was imported as JSON", NULL, &i_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static const char *outcome_name(cmv_import_outcome o)
{
	switch (o) {
	case CMV_IMPORT_CREATED: return "created";
	case CMV_IMPORT_UPDATED: return "updated";
	case CMV_IMPORT_UNCHANGED: return "unchanged";
	case CMV_IMPORT_REPLACED: return "replaced";
	}
	return "?";
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files under dir that may hold sessions, sorted, recursively. */
static void collect(char ***files, size_t *n, size_t *cap, const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.')
			continue;
		cmv_buf path = CMV_BUF_INIT(4096);
		cmv_buf_printf(&path, "%s/%s", dir, e->d_name);
		/* an entry that cannot be stat'ed (a dangling link) is passed over, not judged by the last one's mode */
		bool ok = stat(path.ptr, &st) == 0;
		if (ok && S_ISDIR(st.st_mode) && depth < 16) {
			collect(files, n, cap, path.ptr, depth + 1);
		} else if (ok && S_ISREG(st.st_mode) &&
			   ((len > 6 && !strcmp(e->d_name + len - 6, ".jsonl")) || (len > 5 && !strcmp(e->d_name + len - 5, ".json")) ||
			    (len > 5 && !strcmp(e->d_name + len - 5, ".traj")))) {
			if (*n == *cap) {
				char **grown = realloc(*files, (*cap ? *cap * 2 : 64) * sizeof(**files));
				if (!grown) {
					cmv_buf_dispose(&path);
					break;
				}
				*files = grown;
				*cap = *cap ? *cap * 2 : 64;
			}
			(*files)[(*n)++] = cmv_buf_detach(&path);
		}
		cmv_buf_dispose(&path);
	}
	closedir(d);
}

static void maybe_checkout(cli_ctx *ctx, const char *branch)
{
	cmv_buf head = CMV_BUF_INIT(4096);
	/* The first import into a fresh store becomes the current branch... */
	if (cmv_head_get(&head, ctx->repo) == CMV_ENOTFOUND) {
		cmv_head_set(ctx->repo, branch);
	} else {
		cmv_ref *r = NULL;
		/* ...as it does when the current branch is the empty "main" of `cmv init`. */
		if (cmv_ref_lookup(&r, ctx->repo, head.ptr) == 0 && cmv_id_is_none(&r->target) && strcmp(head.ptr, branch))
			cmv_head_set(ctx->repo, branch);
		cmv_ref_free(r);
	}
	cmv_error_clear();
	cmv_buf_dispose(&head);
}

static cJSON *result_json(const char *file, const cmv_import_result *res)
{
	char hex[CMV_ID_HEXSZ + 1];
	cJSON *o = cJSON_CreateObject(), *skipped;
	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddStringToObject(o, "branch", res->branch);
	if (res->session[0])
		cJSON_AddStringToObject(o, "session", res->session);
	else
		cJSON_AddNullToObject(o, "session");
	cJSON_AddStringToObject(o, "format", res->format ? res->format : "?");
	cJSON_AddNumberToObject(o, "records", (double)res->records);
	cJSON_AddStringToObject(o, "outcome", outcome_name(res->outcome));
	cJSON_AddStringToObject(o, "head", cli_id(&res->head, hex));
	cJSON_AddNumberToObject(o, "skipped", (double)res->skipped);
	cJSON_AddBoolToObject(o, "partial_tail", res->partial_tail);
	cJSON_AddNumberToObject(o, "saved_outputs", (double)res->saved_outputs);
	cJSON_AddNumberToObject(o, "saved_missing", (double)res->saved_missing);
	skipped = cJSON_AddArrayToObject(o, "skipped_lines");
	for (size_t k = 0; k < res->skipped && k < CMV_IMPORT_SKIPPED_LISTED; k++)
		cJSON_AddItemToArray(skipped, cJSON_CreateNumber((double)res->skipped_lines[k]));
	return o;
}

static void print_result(const char *file, const cmv_import_result *res)
{
	char hex[CMV_ID_HEXSZ + 1];
	bool lines = res->format && strcmp(res->format, "cmv");
	printf("%s: %s, %zu %s, branch '%s' %s at %s\n", file, res->format ? res->format : "?", res->records,
	       lines ? "records" : "messages", res->branch, outcome_name(res->outcome), cli_short(&res->head, hex));
	size_t bad = res->skipped - res->partial_tail;
	if (res->partial_tail)
		fprintf(stderr, "cmv: %s: the last line is incomplete (the session is still being written); "
				"it will be imported next time\n", file);
	if (bad) {
		fprintf(stderr, "cmv: %s: kept %zu bad record%s as opaque events, at line%s", file, bad,
			bad == 1 ? "" : "s", bad == 1 ? "" : "s");
		for (size_t k = 0; k < bad && k < CMV_IMPORT_SKIPPED_LISTED; k++)
			fprintf(stderr, "%s %zu", k ? "," : "", res->skipped_lines[k]);
		fprintf(stderr, "%s\n", bad > CMV_IMPORT_SKIPPED_LISTED ? ", ..." : "");
	}
	if (res->saved_missing)
		fprintf(stderr, "cmv: %s: %zu tool output%s sent as a <persisted-output> preview: the saved file is not "
				"beside the session (<id>/tool-results/); the preview is kept, the whole output is not\n",
			file, res->saved_missing, res->saved_missing == 1 ? "" : "s");
}

/*
 * A session that records what its calls were billed feeds the calibration of
 * its models (docs/tokenizers.md). It never fails the import: a session cmv
 * cannot learn from is said so on stderr and the import stands.
 */
static bool calibrate(size_t *pairs, cli_ctx *ctx, const cmv_import_result *res)
{
	static cmv_models *models;

	if (!res->format || (strcmp(res->format, "claude-code") && strcmp(res->format, "codex")) ||
	    res->outcome == CMV_IMPORT_UNCHANGED)
		return false;
	if ((!models && cmv_models_load(&models, NULL) < 0) ||
	    cmv_calibrate(pairs, ctx->repo, &res->head, res->session[0] ? res->session : NULL, models) < 0) {
		fprintf(stderr, "cmv: %s: not used for calibration: %s\n", res->branch,
			cmv_error_last() ? cmv_error_last()->message : "unknown error");
		cmv_error_clear();
		return false;
	}
	return true;
}

/* Import one file; for a folder, a file of no known format is passed over (reported), not an error. */
static int import_one(cli_ctx *ctx, const char *file, const cmv_import_options *opts, cJSON *json_out, bool in_dir,
		      size_t *n_ok)
{
	cmv_import_result res;
	const char *format = i_format;
	if (!format && cmv_format_detect(&format, file) < 0) {
		if (in_dir) {
			if (!json_out)
				fprintf(stderr, "cmv: %s: not a session (%s); passed over\n", file,
					cmv_error_last() ? cmv_error_last()->message : "unknown format");
			cmv_error_clear();
			return EXIT_OK;
		}
		return cli_fail("cannot tell the format");
	}
	if (cmv_import_file(&res, ctx->repo, file, format, opts) < 0)
		return cli_fail("import failed");
	maybe_checkout(ctx, res.branch);
	(*n_ok)++;
	size_t pairs = 0;
	bool calibrated = calibrate(&pairs, ctx, &res);
	if (json_out) {
		cJSON *o = result_json(file, &res);
		if (calibrated)
			cJSON_AddNumberToObject(o, "calibration_pairs", (double)pairs);
		cJSON_AddItemToArray(json_out, o);
	} else {
		print_result(file, &res);
	}
	return EXIT_OK;
}

CMD(import)
{
	cmv_import_options opts = CMV_IMPORT_OPTIONS_INIT;
	cmv_buf found = CMV_BUF_INIT(4096);
	cJSON *arr = NULL;
	struct stat st;
	size_t n_ok = 0;
	int rc = EXIT_OK;

	CLI_PARSE("import");
	if (!!i_file + !!i_session + i_latest != 1)
		return cli_usage_error(cli_find("import"), "give one of FILE|DIR, --session ID or --latest");
	if (i_max_line) {
		char *end;
		unsigned long long v = strtoull(i_max_line, &end, 10);
		if (*end || !v || i_max_line[0] == '-')
			return cli_usage_error(cli_find("import"), "--max-line-bytes needs a positive number");
		opts.max_line_bytes = (size_t)v;
	}
	if (i_file && cmv_bundle_detect(i_file)) {
		cmv_bundle_import_options bo = CMV_BUNDLE_IMPORT_OPTIONS_INIT;
		cmv_bundle_stats bs;
		if (i_format || i_branch || i_lenient || i_force || i_max_line)
			return cli_usage_error(cli_find("import"), "a bundle takes no --format, --branch, --lenient, --force or --max-line-bytes");
		bo.prefix = i_prefix;
		if (cmv_bundle_import(&bs, ctx->repo, i_file, &bo) < 0)
			return cli_fail("import failed");
		if (i_json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "bundle", i_file);
			cJSON_AddNumberToObject(o, "refs", (double)bs.refs);
			cJSON_AddNumberToObject(o, "unchanged", (double)bs.unchanged);
			cJSON_AddNumberToObject(o, "nodes", (double)bs.nodes);
			cJSON_AddNumberToObject(o, "blobs", (double)bs.blobs);
			return cli_print_json(o);
		}
		printf("bundle %s: %zu ref%s created, %zu already here; %zu nodes and %zu blobs verified\n", i_file, bs.refs,
		       bs.refs == 1 ? "" : "s", bs.unchanged, bs.nodes, bs.blobs);
		return EXIT_OK;
	}
	if (i_prefix)
		return cli_usage_error(cli_find("import"), "--prefix is for bundles");
	if (i_format) {
		bool known = false;
		for (const char *const *f = cmv_format_names(); *f; f++)
			known |= !strcmp(*f, i_format);
		if (!known)
			return cli_usage_error(cli_find("import"), "unknown format '%s'", i_format);
	}
	opts.branch = i_branch;
	opts.flags = (i_lenient ? CMV_IMPORT_LENIENT : 0) | (i_force ? CMV_IMPORT_FORCE : 0);
	if (i_json)
		arr = cJSON_CreateArray();
	if (i_session || i_latest) {
		if ((rc = cli_session_path(&found, i_session)) == EXIT_OK)
			rc = import_one(ctx, found.ptr, &opts, arr, false, &n_ok);
	} else if (stat(i_file, &st) == 0 && S_ISDIR(st.st_mode)) {
		char **files = NULL;
		size_t n = 0, cap = 0;
		if (i_branch) {
			cJSON_Delete(arr);
			return cli_usage_error(cli_find("import"), "--branch names one branch; a folder makes one per session");
		}
		collect(&files, &n, &cap, i_file, 0);
		if (n > 1)
			qsort(files, n, sizeof(*files), cmp_str);
		for (size_t i = 0; i < n; i++) {
			if (rc == EXIT_OK)
				rc = import_one(ctx, files[i], &opts, arr, true, &n_ok);
			free(files[i]);
		}
		free(files);
		if (rc == EXIT_OK && !n_ok && !arr)
			fprintf(stderr, "cmv: %s: no sessions found\n", i_file);
	} else {
		rc = import_one(ctx, i_file, &opts, arr, false, &n_ok);
	}
	cmv_buf_dispose(&found);
	if (arr) {
		if (rc == EXIT_OK)
			return cli_print_json(arr);
		cJSON_Delete(arr);
	}
	return rc;
}
