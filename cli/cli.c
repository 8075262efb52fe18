/* SPDX-License-Identifier: MIT */
/* Option parsing, usage text and output helpers shared by every command. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cmd.h"
#include "base/base.h"
#include "server/proxy.h"

const cli_cmd *cli_find(const char *name)
{
	for (const cli_cmd *c = cli_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void cli_usage(FILE *out, const cli_cmd *cmd, bool full)
{
	const cli_opt *o;

	fprintf(out, "usage: cmv %s", cmd->name);
	for (o = cmd->opts; o && o->kind != OPT_END; o++) {
		if (o->kind == OPT_ARG)
			fprintf(out, " %s", o->name);
		else if (o->kind == OPT_ARG_OPT)
			fprintf(out, " [%s]", o->name);
	}
	for (o = cmd->opts; o && o->kind != OPT_END; o++) {
		if (o->kind == OPT_FLAG)
			fprintf(out, " [--%s]", o->name);
		else if (o->kind == OPT_VALUE)
			fprintf(out, " [--%s %s]", o->name, o->value_name ? o->value_name : "VALUE");
	}
	fputc('\n', out);
	if (!full)
		return;
	fprintf(out, "\n%s\n", cmd->summary);
	if (cmd->opts && cmd->opts->kind != OPT_END)
		fputc('\n', out);
	for (o = cmd->opts; o && o->kind != OPT_END; o++) {
		char left[96];
		if (o->kind == OPT_ARG || o->kind == OPT_ARG_OPT)
			snprintf(left, sizeof(left), "%s", o->name);
		else if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
				 o->kind == OPT_VALUE ? " " : "",
				 o->kind == OPT_VALUE ? (o->value_name ? o->value_name : "VALUE") : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->kind == OPT_VALUE ? " " : "",
				 o->kind == OPT_VALUE ? (o->value_name ? o->value_name : "VALUE") : "");
		fprintf(out, "    %-26s %s\n", left, o->help ? o->help : "");
	}
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("cmv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_usage(stderr, cmd, false);
	return EXIT_USAGE;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv)
{
	const cli_opt *o;
	bool only_args = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_args && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			cli_usage(stdout, cmd, true);
			return -1;
		}
		if (!only_args && !strcmp(a, "--")) {
			only_args = true;
			continue;
		}
		if (!only_args && a[0] == '-' && a[1]) {
			const char *name = NULL, *inline_val = NULL;
			size_t name_len = 0;
			char sh = 0;
			if (a[1] == '-') {
				name = a + 2;
				const char *eq = strchr(name, '=');
				name_len = eq ? (size_t)(eq - name) : strlen(name);
				inline_val = eq ? eq + 1 : NULL;
			} else {
				sh = a[1];
				if (a[2])
					inline_val = a + 2;
			}
			for (o = cmd->opts; o && o->kind != OPT_END; o++) {
				if (o->kind != OPT_FLAG && o->kind != OPT_VALUE)
					continue;
				if (name ? (strlen(o->name) == name_len && !strncmp(o->name, name, name_len))
					 : (o->short_name == sh))
					break;
			}
			if (!o || o->kind == OPT_END)
				return cli_usage_error(cmd, "unknown option '%s'", a);
			if (o->kind == OPT_FLAG) {
				if (inline_val)
					return cli_usage_error(cmd, "option '--%s' takes no value", o->name);
				*o->flag = true;
			} else {
				if (!inline_val) {
					if (i + 1 >= argc)
						return cli_usage_error(cmd, "option '--%s' needs a value", o->name);
					inline_val = argv[++i];
				}
				*o->value = inline_val;
			}
			continue;
		}
		/* A positional: the next unfilled one. */
		for (o = cmd->opts; o && o->kind != OPT_END; o++)
			if ((o->kind == OPT_ARG || o->kind == OPT_ARG_OPT) && !*o->value)
				break;
		if (!o || o->kind == OPT_END)
			return cli_usage_error(cmd, "unexpected argument '%s'", a);
		*o->value = a;
	}
	for (o = cmd->opts; o && o->kind != OPT_END; o++)
		if (o->kind == OPT_ARG && !*o->value)
			return cli_usage_error(cmd, "missing %s", o->name);
	return 0;
}

int cli_fail(const char *fallback)
{
	const cmv_error *e = cmv_error_last();

	fprintf(stderr, "cmv: %s\n", e && e->message && *e->message ? e->message : fallback);
	return EXIT_ERROR;
}

int cli_failf(const char *fmt, ...)
{
	va_list ap;

	fputs("cmv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

/*
 * Text as it may go into JSON: each byte that does not start a well-formed
 * UTF-8 sequence becomes U+FFFD. Stored content can hold any bytes (a tool's
 * binary output); cJSON prints strings as they are, and strict parsers refuse
 * invalid UTF-8, so every string the CLI prints as JSON passes here.
 */
static int utf8_repair(cmv_buf *out, const char *s, size_t len)
{
	size_t bad, at = 0;
	int error = 0;

	cmv_buf_clear(out);
	while (!error && at < len && !cmv_utf8_valid(s + at, len - at, &bad)) {
		if ((error = cmv_buf_put(out, s + at, bad)) == 0)
			error = cmv_buf_puts(out, "\xef\xbf\xbd");
		at += bad + 1;
	}
	return error ? error : cmv_buf_put(out, s + at, len - at);
}

static int json_repair_strings(cJSON *item)
{
	cmv_buf fixed = CMV_BUF_INIT(CMV_BUF_CONTENT);
	int error = 0;

	for (cJSON *c = item; c && !error; c = c->next) {
		if (cJSON_IsString(c) && c->valuestring && !cmv_utf8_valid(c->valuestring, strlen(c->valuestring), NULL) &&
		    (error = utf8_repair(&fixed, c->valuestring, strlen(c->valuestring))) == 0 &&
		    !cJSON_SetValuestring(c, fixed.ptr))
			error = cmv_error__oom();
		if (!error && c->string && !cmv_utf8_valid(c->string, strlen(c->string), NULL) &&
		    (error = utf8_repair(&fixed, c->string, strlen(c->string))) == 0) {
			char *k = strdup(fixed.ptr);
			if (!k) {
				error = cmv_error__oom();
			} else {
				if (!(c->type & cJSON_StringIsConst))
					free(c->string);
				c->string = k;
				c->type &= ~cJSON_StringIsConst;
			}
		}
		if (!error && c->child)
			error = json_repair_strings(c->child);
	}
	cmv_buf_dispose(&fixed);
	return error;
}

int cli_print_json(cJSON *doc)
{
	char *s = doc && json_repair_strings(doc) == 0 ? cJSON_Print(doc) : NULL;

	cJSON_Delete(doc);
	if (!s)
		return cli_failf("out of memory");
	fputs(s, stdout);
	fputc('\n', stdout);
	free(s);
	return EXIT_OK;
}

const char *cli_id(const cmv_id *id, char buf[CMV_ID_HEXSZ + 1])
{
	return cmv_id_tostr(buf, CMV_ID_HEXSZ, id);
}

const char *cli_short(const cmv_id *id, char buf[CMV_ID_HEXSZ + 1])
{
	return cmv_id_tostr(buf, 12, id);
}

const char *cli_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, 32, "%lld", (long long)t);
	return buf;
}

const char *cli_rfc3339(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "1970-01-01T00:00:00Z");
	return buf;
}

size_t cli_utf8_cut(const char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max)
		return len;
	/* back to the first byte of the character the cut falls in */
	for (n = max; n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80; n--)
		;
	return n;
}

int cli_read_stdin(cmv_buf *buf)
{
	char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (cmv_buf_put(buf, chunk, n) < 0)
			return cli_fail("cannot read standard input");
	if (ferror(stdin))
		return cli_failf("cannot read standard input: %s", strerror(errno));
	return 0;
}

char **cli_split_commas(const char *s, size_t *n_out)
{
	size_t n = 1, len = strlen(s);
	char **v, *copy;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	if (!(v = malloc(n * sizeof(char *) + len + 1)))
		return NULL;
	copy = (char *)(v + n);
	memcpy(copy, s, len + 1);
	n = 0;
	for (char *p = copy;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (*p)
			v[n++] = p;
		if (!comma)
			break;
		p = comma + 1;
	}
	*n_out = n;
	return v;
}

int cli_current_branch(cmv_buf *out, cli_ctx *ctx)
{
	if (cmv_head_get(out, ctx->repo) < 0)
		return cli_fail("no current branch");
	return 0;
}

/* The branch (or, with it gone, the last imported head) a session ref's manifest names. */
static int session_target(cmv_buf *out, cmv_repo *repo, const cmv_ref *ref)
{
	cmv_node *manifest = NULL;
	cmv_buf blob = CMV_BUF_INIT(1 << 24);
	cmv_ref *br = NULL;
	cJSON *info = NULL;
	int found = 0;

	if (cmv_node_read(&manifest, repo, &ref->target) < 0 || manifest->n_blocks != 1 ||
	    strcmp(manifest->blocks[0].type, "session") || cmv_blob_read(&blob, repo, &manifest->blocks[0].blob) < 0 ||
	    !(info = cJSON_ParseWithLength(blob.ptr, blob.size)))
		goto done;
	const char *branch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(info, "branch"));
	const char *head = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(info, "head"));
	if (branch && cmv_ref_lookup(&br, repo, branch) == 0 && br->type == CMV_REF_BRANCH &&
	    !cmv_id_is_none(&br->target))
		found = cmv_buf_puts(out, branch) == 0;
	else if (head && *head)
		found = cmv_buf_puts(out, head) == 0;
done:
	cmv_error_clear();
	cJSON_Delete(info);
	cmv_ref_free(br);
	cmv_node_free(manifest);
	cmv_buf_dispose(&blob);
	return found;
}

const char *cli_ref_canon(cmv_buf *out, cli_ctx *ctx, const char *spec)
{
	const char *tilde;
	cmv_ref *ref = NULL;
	cmv_buf base = CMV_BUF_INIT(CMV_BUF_SMALL);

	cmv_buf_clear(out);
	if (!spec)
		return NULL;
	tilde = strrchr(spec, '~');
	cmv_buf_put(&base, spec, tilde ? (size_t)(tilde - spec) : strlen(spec));
	/*
	 * import prints a session as its ref (cc/<id>), which names the record
	 * list; whoever passes it back means the conversation: its branch.
	 */
	int found = cmv_ref_name_is_valid(base.ptr) ? cmv_ref_lookup(&ref, ctx->repo, base.ptr) : CMV_EINVALID;
	if (found == CMV_ENOTFOUND) {
		/* a session id the proxy keeps and no import has named: the proxy's branch (docs/proxy.md) */
		cmv_buf_clear(out);
		cmv_buf_printf(out, PROXY_BRANCH_PREFIX "%s", base.ptr);
		if (cmv_ref_name_is_valid(out->ptr) && cmv_ref_lookup(&ref, ctx->repo, out->ptr) == 0 &&
		    ref->type == CMV_REF_BRANCH) {
			cmv_buf_puts(out, tilde ? tilde : "");
			goto done;
		}
	}
	if (found < 0 || ref->type != CMV_REF_SESSION || !session_target(out, ctx->repo, ref)) {
		cmv_buf_clear(out);
		cmv_buf_puts(out, spec);
	} else if (tilde) {
		cmv_buf_puts(out, tilde);
	}
done:
	cmv_error_clear();
	cmv_ref_free(ref);
	cmv_buf_dispose(&base);
	return out->ptr;
}

/* cli_ref_arg's strings, kept until the command ends (cli_ref_args_free) */
static char *ref_args[16];
static size_t n_ref_args;

const char *cli_ref_arg(cli_ctx *ctx, const char *spec)
{
	cmv_buf canon = CMV_BUF_INIT(CMV_BUF_SMALL);
	const char *ret = spec;

	if (spec && n_ref_args < sizeof(ref_args) / sizeof(*ref_args) && cli_ref_canon(&canon, ctx, spec) &&
	    strcmp(canon.ptr, spec))
		ret = ref_args[n_ref_args++] = cmv_buf_detach(&canon);
	cmv_buf_dispose(&canon);
	return ret;
}

const char *cli_ref_arg_keep(char *s)
{
	if (s && n_ref_args < sizeof(ref_args) / sizeof(*ref_args))
		return ref_args[n_ref_args++] = s;
	free(s);
	return NULL;
}

void cli_ref_args_free(void)
{
	while (n_ref_args)
		free(ref_args[--n_ref_args]);
}

int cli_resolve(cmv_id *out, cli_ctx *ctx, const char *spec)
{
	cmv_buf canon = CMV_BUF_INIT(CMV_BUF_SMALL);
	int rc = 0;

	if (cmv_resolve(out, ctx->repo, spec ? cli_ref_canon(&canon, ctx, spec) : "HEAD") < 0)
		rc = cli_fail("cannot resolve the ref");
	cmv_buf_dispose(&canon);
	return rc;
}

/* Append `len` bytes as one line (control characters become spaces); false if cut short. */
static bool put_flat(cmv_buf *out, const char *s, size_t len, size_t max_chars)
{
	size_t i;

	for (i = 0; i < len && out->size < max_chars; i++) {
		unsigned char c = (unsigned char)s[i];
		/* no control byte (an escape sequence in a tool's output) reaches the terminal */
		cmv_buf_putc(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	return i == len;
}

int cli_preview(cmv_buf *out, cli_ctx *ctx, const cmv_node *node, size_t max_chars)
{
	cmv_buf data = CMV_BUF_INIT(CMV_BUF_CONTENT);
	bool whole = true;
	int error = 0;

	cmv_buf_clear(out);
	for (size_t i = 0; i < node->n_blocks && whole; i++) {
		const cmv_block *b = &node->blocks[i];
		if (i)
			cmv_buf_puts(out, " ");
		if ((error = cmv_blob_read(&data, ctx->repo, &b->blob)) < 0)
			break;
		if (!strcmp(b->type, "text")) {
			whole = put_flat(out, data.ptr, data.size, max_chars);
		} else if (!strcmp(b->type, "tool_use")) {
			cmv_buf_printf(out, "[tool_use %s ", b->tool_name ? b->tool_name : "?");
			if ((whole = put_flat(out, data.ptr, data.size, max_chars)))
				cmv_buf_puts(out, "]");
		} else if (!strcmp(b->type, "tool_result")) {
			cmv_buf_printf(out, "[tool_result%s %zu bytes: ",
				       (b->flags & CMV_BLOCK_ERROR) ? " error" : "", data.size);
			if ((whole = put_flat(out, data.ptr, data.size, max_chars)))
				cmv_buf_puts(out, "]");
		} else {
			cmv_buf_printf(out, "[%s %zu bytes]", b->type, data.size);
		}
		if (out->size > max_chars)
			whole = false;
	}
	if (!whole) {
		/* Cut back to max_chars, then to the start of the character the cut falls in. */
		size_t n = out->size < max_chars ? out->size : max_chars, k = n;
		while (k > 0 && ((unsigned char)out->ptr[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (unsigned char)out->ptr[k - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)out->ptr[k - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (n - (k - 1) < need) /* the last character is not all there */
				n = k - 1;
		}
		out->size = n;
		out->ptr[n] = '\0';
		cmv_buf_puts(out, "...");
	}
	cmv_buf_dispose(&data);
	return error;
}

const char *cli_ref_type_name(cmv_ref_type type)
{
	switch (type) {
	case CMV_REF_BRANCH: return "branch";
	case CMV_REF_SNAPSHOT: return "snapshot";
	case CMV_REF_SESSION: return "session";
	}
	return "ref";
}

int cli_branch_model(cmv_buf *out, cli_ctx *ctx, const char *ref)
{
	cmv_buf name = CMV_BUF_INIT(CMV_BUF_SMALL);

	cmv_buf_clear(out);
	if (ref)
		cli_ref_canon(&name, ctx, ref);
	else if (cmv_head_get(&name, ctx->repo) < 0)
		cmv_buf_clear(&name);
	/* a snapshot (or a branch with none set) counts as what it was made from does */
	for (int hops = 0; hops < 16 && name.size && !out->size; hops++) {
		cmv_ref *r = NULL;
		char *tilde = strrchr(name.ptr, '~');
		if (tilde) {
			*tilde = '\0';
			name.size = (size_t)(tilde - name.ptr);
		}
		if (!cmv_ref_name_is_valid(name.ptr) || cmv_ref_lookup(&r, ctx->repo, name.ptr) < 0)
			break;
		if (r->type == CMV_REF_BRANCH && cmv_branch_llm_get(out, ctx->repo, r->name) < 0)
			cmv_buf_clear(out);
		/* an inline JSON descriptor is no registry key a count can use */
		if (out->size && out->ptr[0] == '{')
			cmv_buf_clear(out);
		cmv_buf_clear(&name);
		if (r->from_ref)
			cmv_buf_puts(&name, r->from_ref);
		cmv_ref_free(r);
	}
	cmv_error_clear();
	cmv_buf_dispose(&name);
	return out->size ? 1 : 0;
}

/* The store the running command opened, whose calibrations count for it (cli_model). */
static cmv_repo *calibrating_repo;

void cli_calibrate_with(cmv_repo *repo)
{
	calibrating_repo = repo;
}

int cli_model(const cmv_model **out, cmv_models *models, const char *name)
{
	/* a command resolves a few models: their calibrated copies live as long as the process */
	static cmv_model calibrated[32];
	static size_t n_calibrated;
	cmv_buf what = CMV_BUF_INIT(CMV_BUF_SMALL);
	int error = cmv_models_resolve(out, models, name);

	/* a count made on assumptions says so, where the person running it reads */
	if (error == 0 && (*out)->provisional && cmv_model_assumed(&what, *out) == 0)
		fprintf(stderr, "cmv: %s\n", what.ptr);
	cmv_buf_dispose(&what);
	/* counted as the store's calibration from billed usage says, when it has one (docs/tokenizers.md) */
	if (error == 0 && calibrating_repo) {
		for (size_t i = 0; i < n_calibrated; i++)
			if (!strcmp(calibrated[i].id, (*out)->id)) {
				*out = &calibrated[i];
				return 0;
			}
		if (n_calibrated == sizeof(calibrated) / sizeof(*calibrated))
			return cmv_error__set(CMV_ERROR, "more than %zu models in one command", n_calibrated);
		cmv_model *m = &calibrated[n_calibrated];
		if ((error = cmv_model_calibrated(m, NULL, *out, calibrating_repo)) < 0)
			return error;
		*out = m;
		n_calibrated++;
	}
	return error;
}

bool cli_parse_u64(uint64_t *out, const char *s)
{
	char *end;
	unsigned long long v;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno)
		return false;
	*out = v;
	return true;
}

int cli_mkdirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}
