/* SPDX-License-Identifier: MIT */
/*
 * cmv proxy --listen ADDR [--upstream PROVIDER=URL]... [--budget N]: the
 * proxy (server/proxy.c, docs/proxy.md) an agent reaches through its base
 * URL. Loopback by default; another host needs $CMV_PROXY_TOKEN.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "cmd.h"
#include "server/mcp.h"
#include "server/proxy.h"

static const char *p_listen, *p_upstream, *p_budget, *p_fallback, *p_timeout, *p_retry, *p_tool_window, *p_tool_paging;
static bool p_no_tools, p_no_recall, p_quiet;
const cli_opt opts_proxy[] = {
	{ OPT_VALUE, "listen", 0, "ADDR", "PORT or HOST:PORT (default host 127.0.0.1; :PORT is every interface; another host needs $CMV_PROXY_TOKEN)", &p_listen, NULL },
	{ OPT_VALUE, "upstream", 0, "PROVIDER=URL", "where a provider's requests go (anthropic, openai; repeatable; default: the providers' own)", &p_upstream, NULL },
	{ OPT_VALUE, "budget", 0, "N", "tokens every upstream request may count (default: the model's input budget)", &p_budget, NULL },
	{ OPT_VALUE, "fallback", 0, "MODEL,...", "on 429, 5xx, a dropped connection or a timeout, the request goes to these models in turn (recorded as switches)", &p_fallback, NULL },
	{ OPT_VALUE, "timeout", 0, "SECONDS", "an upstream silent this long has failed (default 300; 1 to 86400)", &p_timeout, NULL },
	{ OPT_VALUE, "retry-primary", 0, "SECONDS", "after a failover, try the model failed over from again at most this often (default 30)", &p_retry, NULL },
	{ OPT_FLAG, "no-tool-paging", 0, NULL, "send every tool definition whole (--tool-paging off)", NULL, &p_no_tools },
	{ OPT_VALUE, "tool-paging", 0, "HOW", "cache (default: idle tools stubbed when the prompt cache is lost anyway), tokens (a called tool whole for one reply: fewest tokens, the cache rewritten often), off", &p_tool_paging, NULL },
	{ OPT_VALUE, "tool-window", 0, "N", "replies a called tool stays whole at first (default 64; doubles each time it is called as a stub again)", &p_tool_window, NULL },
	{ OPT_FLAG, "no-recall", 0, NULL, "offer no recall tool upstream", NULL, &p_no_recall },
	{ OPT_FLAG, "quiet", 'q', NULL, "no line per request on stderr", NULL, &p_quiet },
	{ OPT_END, NULL, 0, NULL, NULL, NULL, NULL },
};

static volatile sig_atomic_t stop_flag;

static void on_ready(unsigned int port, void *payload)
{
	const char *host = payload;
	/* stdout, one line: a script that started it with port 0 reads where it went */
	printf("cmv proxy: listening on http://%s:%u\n", host, port);
	fflush(stdout);
}

CMD(proxy)
{
	proxy_config cfg;
	proxy *p = NULL;
	char host[256];
	const char *token = getenv("CMV_PROXY_TOKEN");
	int rc = EXIT_OK;

	/* --upstream is repeatable: every one is read here, the parser keeps the last */
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--upstream"))
			continue;
		const char *v = argv[i + 1], *eq = strchr(v, '=');
		if (eq && !strncmp(v, "anthropic=", 10))
			cfg.anthropic_url = eq + 1;
		else if (eq && !strncmp(v, "openai=", 7))
			cfg.openai_url = eq + 1;
		else
			return cli_usage_error(cli_find("proxy"), "--upstream %s: expected anthropic=URL or openai=URL", v);
	}
	CLI_PARSE("proxy");
	if (!p_listen)
		return cli_usage_error(cli_find("proxy"), "--listen ADDR is required");
	if (p_budget && (!cli_parse_u64(&cfg.budget, p_budget) || !cfg.budget))
		return cli_usage_error(cli_find("proxy"), "--budget %s: expected a number of tokens", p_budget);
	uint64_t v;
	cfg.timeout_s = 300;
	cfg.retry_primary_s = 30;
	if (p_tool_window && (!cli_parse_u64(&v, p_tool_window) || !v || v > PROXY_TOOL_WINDOW_MAX))
		return cli_usage_error(cli_find("proxy"), "--tool-window %s: expected 1 to %d replies", p_tool_window,
				       PROXY_TOOL_WINDOW_MAX);
	cfg.tool_window = p_tool_window ? (size_t)v : 0;
	if (p_tool_paging && strcmp(p_tool_paging, "cache") && strcmp(p_tool_paging, "tokens") && strcmp(p_tool_paging, "off"))
		return cli_usage_error(cli_find("proxy"), "--tool-paging %s: expected cache, tokens or off", p_tool_paging);
	if (p_tool_paging && p_no_tools && strcmp(p_tool_paging, "off"))
		return cli_usage_error(cli_find("proxy"), "--tool-paging %s and --no-tool-paging: choose one", p_tool_paging);
	cfg.tool_tokens = p_tool_paging && !strcmp(p_tool_paging, "tokens");
	p_no_tools |= p_tool_paging && !strcmp(p_tool_paging, "off");
	if (p_timeout) {
		/* 0 once meant "never": an upstream that never answers then held its worker, and the client, forever */
		if (!cli_parse_u64(&v, p_timeout))
			return cli_usage_error(cli_find("proxy"), "--timeout %s: expected a number of seconds", p_timeout);
		if (!v)
			return cli_usage_error(cli_find("proxy"),
					       "--timeout %s: an upstream that never answers would hold its request forever; "
					       "give 1 to 86400 seconds (default 300)", p_timeout);
		cfg.timeout_s = (unsigned int)(v > 86400 ? 86400 : v);
	}
	if (p_retry) {
		if (!cli_parse_u64(&v, p_retry) && strcmp(p_retry, "0"))
			return cli_usage_error(cli_find("proxy"), "--retry-primary %s: expected a number of seconds", p_retry);
		cfg.retry_primary_s = strcmp(p_retry, "0") ? (unsigned int)(v > 86400 ? 86400 : v) : 0;
	}
	if (p_fallback) {
		/* every fallback must be a model cmv can call: found now, not at the first outage */
		for (const char *f = p_fallback; *f;) {
			size_t n = strcspn(f, ",");
			char name[512];
			cmv_model_handle *h = NULL;
			snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), f);
			if (n && cmv_model_handle_open(&h, ctx->repo, name) < 0)
				return cli_failf("--fallback %s: %s", name, cmv_error_last()->message);
			cmv_model_handle_free(h);
			f += n + (f[n] == ',');
		}
		cfg.fallback = p_fallback;
	}
	if (token && !*token)
		token = NULL;
	if (srv_listen_setup(host, p_listen, "--listen", &stop_flag) < 0)
		return cli_usage_error(cli_find("proxy"), "%s", cmv_error_last()->message);
	if (!mcp_host_is_loopback(host) && !token)
		return cli_usage_error(cli_find("proxy"), "--listen %s is not a loopback address: set CMV_PROXY_TOKEN (a token every client must send)", p_listen);
	/* a token the user set is checked on loopback too: the proxy adds the owner's keys to what it forwards */
	cfg.token = token && *token ? token : NULL;
	cfg.no_tool_paging = p_no_tools;
	cfg.no_recall = p_no_recall;
	cfg.quiet = p_quiet;
	if (proxy_new(&p, ctx->repo, &cfg) < 0)
		return cli_fail("cannot start the proxy");
	if (proxy_serve(p, p_listen, &stop_flag, on_ready, host) < 0)
		rc = cli_fail("cannot serve");
	proxy_free(p);
	return rc;
}
