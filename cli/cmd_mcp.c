/* SPDX-License-Identifier: MIT */
/*
 * cmv mcp [--http ADDR]: the MCP server (server/, docs/mcp.md) on stdio or
 * Streamable HTTP. cmv mcp install|uninstall --claude|--codex|--gemini:
 * the server in an agent's configuration, and for Claude Code the hook
 * that imports the live session as it grows. cmv mcp hook: that hook
 * (always exits 0: it must never get in Claude Code's way).
 *
 * Invariants: install adds one entry per file, marked as ours, and
 * uninstall removes exactly that (a cmv entry someone else wrote is left
 * alone and reported); a file that is not what it should be (not a JSON
 * object) is left untouched. The hook costs a stat when the session has
 * not grown since its last import.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/base.h"
#include "cmd.h"
#include "hook.h"
#include "hook_input.h"
#include "server/mcp.h"
#include "sessions.h"

static const char *m_action, *m_http, *m_model, *m_config;
static bool m_claude, m_codex, m_gemini, m_json;
const cli_opt opts_mcp[] = {
	{ OPT_ARG_OPT, "ACTION", 0, NULL, "install, uninstall or hook (none: serve)", &m_action, NULL },
	{ OPT_VALUE, "http", 0, "ADDR", "serve Streamable HTTP on PORT or HOST:PORT at /mcp (default host 127.0.0.1; :PORT is every interface; another host needs $CMV_MCP_TOKEN)", &m_http, NULL },
	{ OPT_VALUE, "model", 'm', "MODEL", "whose tokens the budgets count (default claude-sonnet-4-5)", &m_model, NULL },
	{ OPT_FLAG, "claude", 0, NULL, "install/uninstall: Claude Code (its MCP config and the live-session hook)", NULL, &m_claude },
	{ OPT_FLAG, "codex", 0, NULL, "install/uninstall: Codex (config.toml [mcp_servers.cmv])", NULL, &m_codex },
	{ OPT_FLAG, "gemini", 0, NULL, "install/uninstall: Gemini CLI (settings.json mcpServers)", NULL, &m_gemini },
	{ OPT_VALUE, "config", 0, "DIR", "install/uninstall: the agent's folder (default: $CLAUDE_CONFIG_DIR, $CODEX_HOME, ~/.gemini)", &m_config, NULL },
	{ OPT_FLAG, "json", 0, NULL, "print as JSON", NULL, &m_json },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

#define MCP_MARK "mcp hook" /* how our hook entries are told from others' */
#define TOML_BEGIN "# >>> cmv mcp install (cmv mcp uninstall removes this block)"
#define TOML_END "# <<< cmv mcp install"

static int open_store(cmv_repo **repo, cmv_buf *path, cli_ctx *ctx)
{
	int rc = ctx->store_arg ? cmv_buf_puts(path, ctx->store_arg) : cmv_repo_discover(path, NULL);
	if (rc < 0 || cmv_repo_open(repo, path->ptr, 0) < 0)
		return cli_fail("cannot open the store");
	return EXIT_OK;
}

/* ---- serving --------------------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_ready(unsigned int port, void *payload)
{
	const char *host = payload;
	/* stdout, one line: a script that started it with port 0 reads where it went */
	printf("cmv mcp: listening on http://%s:%u/mcp\n", host, port);
	fflush(stdout);
}

static int serve(cli_ctx *ctx)
{
	cmv_repo *repo = NULL;
	cmv_buf path = CMV_BUF_INIT(PATH_MAX);
	mcp_server *s = NULL;
	const char *token = getenv("CMV_MCP_TOKEN");
	char host[256] = "127.0.0.1";
	int rc;

	if (token && !*token)
		token = NULL;
	if (m_http) {
		if (srv_listen_setup(host, m_http, "--http", &stop_flag) < 0)
			return cli_usage_error(cli_find("mcp"), "%s", cmv_error_last()->message);
		if (!mcp_host_is_loopback(host) && !token)
			return cli_usage_error(cli_find("mcp"), "--http %s is not a loopback address: set CMV_MCP_TOKEN (a bearer token every client must send)", m_http);
	}
	if ((rc = open_store(&repo, &path, ctx)) != EXIT_OK) {
		cmv_buf_dispose(&path);
		return rc;
	}
	mcp_config cfg = { path.ptr, m_model };
	if (mcp_server_new(&s, repo, &cfg) < 0) {
		rc = cli_fail("cannot start the server");
	} else if (m_http) {
		if (mcp_serve_http(s, m_http, token, &stop_flag, on_ready, host) < 0)
			rc = cli_fail("cannot serve HTTP");
	} else if (mcp_serve_stdio(s, stdin, stdout) < 0) {
		rc = cli_fail("serving stdio");
	}
	mcp_server_free(s);
	cmv_repo_free(repo);
	cmv_buf_dispose(&path);
	return rc;
}

/* ---- the hook: import the live session's new tail -------------------------------- */

static long read_stdin(void *payload, char *buf, size_t n, const char **err)
{
	(void)payload;
	for (;;) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, 5000);
		if (r == 0) {
			*err = "no hook input within 5 seconds";
			return -1;
		}
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t k = r < 0 ? -1 : read(STDIN_FILENO, buf, n);
		if (k < 0) {
			*err = "cannot read standard input";
			return -1;
		}
		return (long)k;
	}
}

static int hook_says(const char *what, const char *detail)
{
	fprintf(stderr, "cmv mcp hook: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return EXIT_OK;
}

/* Where the last import of a session left it: "<size> <mtime ns>" in <store>/mcp-hook/<session>. */
static void state_path(char *out, size_t cap, const char *store, const char *sid)
{
	snprintf(out, cap, "%s/mcp-hook/%s", store, sid);
}

static int hook_run(cli_ctx *ctx)
{
	hook_input in;
	const char *err;
	char real[PATH_MAX], projects[PATH_MAX], state[PATH_MAX * 2], now[64], was[64] = "";
	struct stat st;
	cmv_buf store = CMV_BUF_INIT(PATH_MAX);
	cmv_repo *repo = NULL;

	if (isatty(STDIN_FILENO))
		return hook_says("standard input is a terminal, not a hook's input", NULL);
	memset(&in, 0, sizeof(in));
	if ((err = hook_input_parse(&in, read_stdin, NULL, (size_t)64 << 20)) != NULL)
		return hook_says("bad hook input", err);
	if (!(in.seen & HOOK_IN_SESSION_ID) || !(in.seen & HOOK_IN_TRANSCRIPT) || !hook_session_id_ok(in.session_id))
		return hook_says("the hook input has no session id or transcript path", NULL);
	/* only a session file of Claude Code's own, never through a link out of its folder */
	if (!realpath(in.transcript_path, real) || !hook_projects_dir(projects) || !hook_path_below(real, projects))
		return hook_says("not a session below Claude Code's projects folder", in.transcript_path);
	if (stat(real, &st) != 0)
		return hook_says("cannot stat the session", strerror(errno));
	if ((ctx->store_arg ? cmv_buf_puts(&store, ctx->store_arg) : cmv_repo_discover(&store, NULL)) < 0) {
		cmv_error_clear();
		cmv_buf_dispose(&store);
		return hook_says("no store", NULL);
	}
	snprintf(now, sizeof(now), "%lld %lld", (long long)st.st_size,
		 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
	state_path(state, sizeof(state), store.ptr, in.session_id);
	FILE *f = fopen(state, "r");
	if (f) {
		if (!fgets(was, sizeof(was), f))
			was[0] = '\0';
		fclose(f);
	}
	if (!strcmp(was, now)) {
		cmv_buf_dispose(&store);
		return EXIT_OK; /* nothing new: a stat and a small read */
	}
	if (cmv_repo_open(&repo, store.ptr, 0) < 0) {
		hook_says("cannot open the store", cmv_error_last() ? cmv_error_last()->message : NULL);
		cmv_error_clear();
		cmv_buf_dispose(&store);
		return EXIT_OK;
	}
	cmv_import_options io = CMV_IMPORT_OPTIONS_INIT;
	cmv_import_result res;
	memset(&res, 0, sizeof(res));
	if (cmv_import_claude_code_file(&res, repo, real, &io) < 0) {
		hook_says("import failed", cmv_error_last() ? cmv_error_last()->message : NULL);
		cmv_error_clear();
	} else {
		/* the branch search means when a call names none */
		if (cmv_store_note_set(repo, "mcp.live", res.branch) < 0)
			cmv_error_clear();
		char dir[PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s/mcp-hook", store.ptr);
		/* a tail still being written is left for the next import: then the state must not say done */
		if (!res.partial_tail && cli_mkdirs(dir) == 0 && (f = fopen(state, "w"))) {
			fputs(now, f);
			fclose(f);
		}
	}
	cmv_repo_free(repo);
	cmv_buf_dispose(&store);
	return EXIT_OK;
}

/* ---- install / uninstall --------------------------------------------------------- */

static cJSON *json_load(const char *path, bool *bad)
{
	cmv_buf b = CMV_BUF_INIT((size_t)64 << 20);
	int error = cmv__read_file(&b, path);
	cJSON *j = NULL;
	*bad = false;
	if (error == CMV_ENOTFOUND) {
		cmv_error_clear();
		j = cJSON_CreateObject();
	} else if (error < 0) {
		cli_fail("cannot read the configuration");
		*bad = true;
	} else if (!cJSON_IsObject(j = cJSON_ParseWithLength(b.ptr ? b.ptr : "", b.size))) {
		cli_failf("%s: not a JSON object; left as it is", path);
		cJSON_Delete(j);
		j = NULL;
		*bad = true;
	}
	cmv_buf_dispose(&b);
	return j;
}

static int text_save(const char *path, const char *text)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	if (strrchr(dir, '/'))
		*strrchr(dir, '/') = '\0';
	if (strchr(path, '/') && cli_mkdirs(dir) != 0)
		return cli_failf("cannot write %s: %s", path, strerror(errno));
	if (cmv__file_write_atomic(path, text, strlen(text), 0600) < 0)
		return cli_fail("cannot write the configuration");
	return EXIT_OK;
}

static int json_save(const char *path, cJSON *j)
{
	char *t = cJSON_Print(j);
	int rc = t ? text_save(path, t) : cli_fail("out of memory");
	cJSON_free(t);
	return rc;
}

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

/* An mcpServers entry is ours when it runs a cmv with "mcp" as its last argument and our --store. */
static bool server_is_ours(const cJSON *e)
{
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
	const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "command"));
	int n = cJSON_GetArraySize(args);
	return cmd && strstr(cmd, "cmv") && n == 3 && !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(args, 0)) ?: "", "--store") &&
	       !strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(args, 2)) ?: "", "mcp");
}

static const char *const hook_events[] = { "UserPromptSubmit", "PostToolUse", "Stop" };

static size_t hooks_remove(cJSON *hooks)
{
	size_t n = 0;
	for (size_t i = 0; i < CMV_ARRAY_SIZE(hook_events); i++) {
		cJSON *groups = cJSON_GetObjectItemCaseSensitive(hooks, hook_events[i]), *g, *next;
		for (g = cJSON_IsArray(groups) ? groups->child : NULL; g; g = next) {
			cJSON *list = cJSON_GetObjectItemCaseSensitive(g, "hooks"), *h, *hn;
			next = g->next;
			for (h = cJSON_IsArray(list) ? list->child : NULL; h; h = hn) {
				const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, "command"));
				hn = h->next;
				if (cmd && strstr(cmd, "cmv") && strstr(cmd, " " MCP_MARK)) {
					cJSON_Delete(cJSON_DetachItemViaPointer(list, h));
					n++;
				}
			}
			if (cJSON_IsArray(list) && !list->child)
				cJSON_Delete(cJSON_DetachItemViaPointer(groups, g));
		}
		if (cJSON_IsArray(groups) && !groups->child)
			cJSON_DeleteItemFromObjectCaseSensitive(hooks, hook_events[i]);
	}
	return n;
}

/* mcpServers.cmv in a JSON file (Claude Code's .claude.json, Gemini's settings.json). */
static int json_server(const char *path, const char *exe, const char *store, bool install, bool claude, cJSON *report)
{
	bool bad;
	cJSON *j = json_load(path, &bad), *servers, *e;
	int rc = EXIT_OK;
	if (!j)
		return EXIT_ERROR;
	servers = cJSON_GetObjectItemCaseSensitive(j, "mcpServers");
	e = cJSON_GetObjectItemCaseSensitive(servers, "cmv");
	if (e && !server_is_ours(e)) {
		cJSON_Delete(j);
		return cli_failf("%s: mcpServers.cmv is not one cmv mcp install wrote; left as it is", path);
	}
	if (install) {
		if (!cJSON_IsObject(servers)) {
			cJSON_DeleteItemFromObjectCaseSensitive(j, "mcpServers");
			servers = cJSON_AddObjectToObject(j, "mcpServers");
		}
		cJSON_DeleteItemFromObjectCaseSensitive(servers, "cmv");
		e = cJSON_AddObjectToObject(servers, "cmv");
		if (claude)
			cJSON_AddStringToObject(e, "type", "stdio");
		cJSON_AddStringToObject(e, "command", exe);
		cJSON *args = cJSON_AddArrayToObject(e, "args");
		cJSON_AddItemToArray(args, cJSON_CreateString("--store"));
		cJSON_AddItemToArray(args, cJSON_CreateString(store));
		cJSON_AddItemToArray(args, cJSON_CreateString("mcp"));
		rc = json_save(path, j);
	} else if (e) {
		cJSON_DeleteItemFromObjectCaseSensitive(servers, "cmv");
		if (!servers->child)
			cJSON_DeleteItemFromObjectCaseSensitive(j, "mcpServers");
		rc = json_save(path, j);
	}
	cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(report, "changed"), cJSON_CreateString(path));
	cJSON_Delete(j);
	return rc;
}

/* Claude Code's settings.json: our hook on UserPromptSubmit, PostToolUse and Stop. */
static int claude_hooks(const char *path, const char *exe, const char *store, bool install, cJSON *report)
{
	bool bad;
	cJSON *j = json_load(path, &bad), *hooks;
	size_t removed = 0;
	int rc = EXIT_OK;
	if (!j)
		return EXIT_ERROR;
	hooks = cJSON_GetObjectItemCaseSensitive(j, "hooks");
	if (cJSON_IsObject(hooks))
		removed = hooks_remove(hooks);
	if (install) {
		cmv_buf cmd = CMV_BUF_INIT(PATH_MAX * 3);
		if (!cJSON_IsObject(hooks)) {
			cJSON_DeleteItemFromObjectCaseSensitive(j, "hooks");
			hooks = cJSON_AddObjectToObject(j, "hooks");
		}
		sh_quote(&cmd, exe);
		cmv_buf_puts(&cmd, " --store ");
		sh_quote(&cmd, store);
		cmv_buf_puts(&cmd, " " MCP_MARK);
		for (size_t i = 0; i < CMV_ARRAY_SIZE(hook_events); i++) {
			cJSON *groups = cJSON_GetObjectItemCaseSensitive(hooks, hook_events[i]), *g, *list, *h;
			if (!cJSON_IsArray(groups))
				groups = cJSON_AddArrayToObject(hooks, hook_events[i]);
			g = cJSON_CreateObject();
			if (strcmp(hook_events[i], "UserPromptSubmit") && strcmp(hook_events[i], "Stop"))
				cJSON_AddStringToObject(g, "matcher", "");
			list = cJSON_AddArrayToObject(g, "hooks");
			h = cJSON_CreateObject();
			cJSON_AddStringToObject(h, "type", "command");
			cJSON_AddStringToObject(h, "command", cmd.ptr);
			cJSON_AddNumberToObject(h, "timeout", 30);
			cJSON_AddItemToArray(list, h);
			cJSON_AddItemToArray(groups, g);
		}
		cmv_buf_dispose(&cmd);
	} else if (cJSON_IsObject(hooks) && !hooks->child) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, "hooks");
	}
	if (install || removed) {
		rc = json_save(path, j);
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(report, "changed"), cJSON_CreateString(path));
	}
	cJSON_Delete(j);
	return rc;
}

/* A TOML string: basic, with \ and " escaped (paths have nothing else that needs it). */
static void toml_str(cmv_buf *out, const char *s)
{
	cmv_buf_putc(out, '"');
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			cmv_buf_putc(out, '\\');
		cmv_buf_putc(out, *s);
	}
	cmv_buf_putc(out, '"');
}

/* Codex's config.toml: our block between two marker lines, [mcp_servers.cmv] in it. */
static int codex_config(const char *path, const char *exe, const char *store, bool install, cJSON *report)
{
	cmv_buf b = CMV_BUF_INIT((size_t)16 << 20), out = CMV_BUF_INIT((size_t)16 << 20);
	int error = cmv__read_file(&b, path), rc = EXIT_OK;
	if (error == CMV_ENOTFOUND)
		cmv_error_clear();
	else if (error < 0)
		return cli_fail("cannot read the Codex configuration");
	const char *text = b.ptr ? b.ptr : "", *begin = strstr(text, TOML_BEGIN), *end = begin ? strstr(begin, TOML_END) : NULL;
	if (begin && !end) {
		cmv_buf_dispose(&b);
		return cli_failf("%s: our block has a begin line and no end line; left as it is", path);
	}
	/* what is not ours, kept byte for byte */
	if (begin) {
		const char *after = strchr(end, '\n');
		cmv_buf_put(&out, text, (size_t)(begin - text));
		cmv_buf_puts(&out, after ? after + 1 : "");
	} else {
		cmv_buf_puts(&out, text);
	}
	if (install && strstr(out.ptr ? out.ptr : "", "[mcp_servers.cmv]")) {
		cmv_buf_dispose(&b);
		cmv_buf_dispose(&out);
		return cli_failf("%s: has a [mcp_servers.cmv] that cmv mcp install did not write; left as it is", path);
	}
	if (install) {
		if (out.size && out.ptr[out.size - 1] != '\n')
			cmv_buf_putc(&out, '\n');
		cmv_buf_puts(&out, TOML_BEGIN "\n[mcp_servers.cmv]\ncommand = ");
		toml_str(&out, exe);
		cmv_buf_puts(&out, "\nargs = [\"--store\", ");
		toml_str(&out, store);
		cmv_buf_puts(&out, ", \"mcp\"]\n" TOML_END "\n");
	}
	if (install || begin) {
		rc = text_save(path, out.ptr ? out.ptr : "");
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(report, "changed"), cJSON_CreateString(path));
	}
	cmv_buf_dispose(&b);
	cmv_buf_dispose(&out);
	return rc;
}

static int install(cli_ctx *ctx, bool on)
{
	char exe[PATH_MAX], store[PATH_MAX];
	cmv_buf path = CMV_BUF_INIT(PATH_MAX), file = CMV_BUF_INIT(PATH_MAX * 2);
	cJSON *report = cJSON_CreateObject();
	int rc = EXIT_OK;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (m_claude + m_codex + m_gemini != 1)
		return cli_usage_error(cli_find("mcp"), "%s takes one of --claude, --codex, --gemini", on ? "install" : "uninstall");
	if (n <= 0)
		return cli_failf("cannot tell where cmv is: %s", strerror(errno));
	exe[n] = '\0';
	if ((ctx->store_arg ? cmv_buf_puts(&path, ctx->store_arg) : cmv_repo_discover(&path, NULL)) < 0 || !realpath(path.ptr, store)) {
		cmv_buf_dispose(&path);
		cJSON_Delete(report);
		return cli_fail("no store to serve (cmv init, or --store)");
	}
	cJSON_AddStringToObject(report, "agent", m_claude ? "claude" : m_codex ? "codex" : "gemini");
	cJSON_AddStringToObject(report, "action", on ? "install" : "uninstall");
	cJSON_AddStringToObject(report, "store", store);
	cJSON_AddArrayToObject(report, "changed");
	char *home = m_config ? strdup(m_config)
			      : m_claude ? cli_agent_home("CLAUDE_CONFIG_DIR", ".claude")
			      : m_codex  ? cli_agent_home("CODEX_HOME", ".codex")
					 : cli_agent_home("GEMINI_CLI_HOME", ".gemini");
	if (!home) {
		rc = cli_fail("cannot tell where the agent's configuration is ($HOME unset?)");
	} else if (m_claude) {
		/*
		 * Claude Code reads user-scope MCP servers from .claude.json: in
		 * $CLAUDE_CONFIG_DIR when set, else in the home folder beside ~/.claude.
		 */
		const char *cfgdir = getenv("CLAUDE_CONFIG_DIR");
		if (m_config || (cfgdir && *cfgdir)) {
			cmv_buf_printf(&file, "%s/.claude.json", home);
		} else {
			const char *h = getenv("HOME");
			cmv_buf_printf(&file, "%s/.claude.json", h ? h : home);
		}
		rc = json_server(file.ptr, exe, store, on, true, report);
		cmv_buf_clear(&file);
		cmv_buf_printf(&file, "%s/settings.json", home);
		if (rc == EXIT_OK)
			rc = claude_hooks(file.ptr, exe, store, on, report);
	} else if (m_codex) {
		cmv_buf_printf(&file, "%s/config.toml", home);
		rc = codex_config(file.ptr, exe, store, on, report);
	} else {
		cmv_buf_printf(&file, "%s/settings.json", home);
		rc = json_server(file.ptr, exe, store, on, false, report);
	}
	free(home);
	cmv_buf_dispose(&path);
	cmv_buf_dispose(&file);
	if (rc != EXIT_OK) {
		cJSON_Delete(report);
		return rc;
	}
	if (m_json)
		return cli_print_json(report);
	const cJSON *ch = cJSON_GetObjectItemCaseSensitive(report, "changed");
	for (const cJSON *c = ch->child; c; c = c->next)
		printf("%s: %s\n", on ? "installed in" : "removed from", c->valuestring);
	if (!ch->child)
		printf("nothing of cmv's to remove\n");
	cJSON_Delete(report);
	return EXIT_OK;
}

CMD(mcp)
{
	CLI_PARSE("mcp");
	if (!m_action)
		return serve(ctx);
	if (!strcmp(m_action, "install") || !strcmp(m_action, "uninstall"))
		return install(ctx, !strcmp(m_action, "install"));
	if (!strcmp(m_action, "hook"))
		return hook_run(ctx);
	return cli_usage_error(cli_find("mcp"), "unknown action '%s' (install, uninstall, hook; none to serve)", m_action);
}
