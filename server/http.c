/* SPDX-License-Identifier: MIT */
/* The HTTP plumbing of the server layer (http.h): shared by the MCP transport and the proxy. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "base/base.h"
#include "http.h"
#include "mcp.h"

int srv_addr_parse(char host[256], char port[16], const char *addr, const char *what)
{
	const char *colon = strrchr(addr, ':'), *h = addr;

	snprintf(host, 256, "127.0.0.1");
	if (colon == addr) {
		/*
		 * ":PORT" is every interface, as most servers read it; no loopback,
		 * so the callers require a token (docs/proxy.md, docs/mcp.md).
		 */
		snprintf(host, 256, "0.0.0.0");
		if (strlen(colon + 1) >= 16)
			return cmv_error__set(CMV_EINVALID, "%s %s: expected PORT or HOST:PORT", what, addr);
		snprintf(port, 16, "%s", colon + 1);
	} else if (colon) {
		size_t n = (size_t)(colon - addr);
		if (n && h[0] == '[' && h[n - 1] == ']')
			h++, n -= 2;
		if (!n || n >= 256)
			return cmv_error__set(CMV_EINVALID, "%s %s: expected PORT or HOST:PORT", what, addr);
		memcpy(host, h, n);
		host[n] = '\0';
		if (strlen(colon + 1) >= 16)
			return cmv_error__set(CMV_EINVALID, "%s %s: expected PORT or HOST:PORT", what, addr);
		snprintf(port, 16, "%s", colon + 1);
	} else {
		if (strlen(addr) >= 16)
			return cmv_error__set(CMV_EINVALID, "%s %s: expected PORT or HOST:PORT", what, addr);
		snprintf(port, 16, "%s", addr);
	}
	return 0;
}

static volatile sig_atomic_t *srv_stop;

static void srv_on_signal(int sig)
{
	(void)sig;
	*srv_stop = 1;
}

int srv_listen_setup(char host[256], const char *addr, const char *what, volatile sig_atomic_t *stop)
{
	char port[16];
	struct sigaction sa;
	int error;

	if ((error = srv_addr_parse(host, port, addr, what)) < 0)
		return error;
	srv_stop = stop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = srv_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

bool srv_secret_equal(const char *a, const char *b)
{
	/* constant time over the longer: the token's length leaks, not its bytes */
	size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
	unsigned char d = la != lb;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)(i < lb ? b[i] : 0);
	return d == 0;
}

bool srv_origin_ok(const char *o)
{
	char host[256];
	const char *p = strstr(o, "://");
	if (!strcmp(o, "null"))
		return false;
	if (!p)
		return false;
	p += 3;
	size_t n = 0;
	if (*p == '[') {
		p++;
		while (p[n] && p[n] != ']' && n + 1 < sizeof(host))
			n++;
	} else {
		while (p[n] && p[n] != ':' && p[n] != '/' && n + 1 < sizeof(host))
			n++;
	}
	memcpy(host, p, n);
	host[n] = '\0';
	return mcp_host_is_loopback(host);
}

struct MHD_Daemon *srv_daemon_start(unsigned int *port_out, const char *host, const char *port, unsigned int flags,
				    MHD_AccessHandlerCallback handler, void *cls, struct MHD_OptionItem *options)
{
	struct addrinfo hints, *ai = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		cmv_error__set(CMV_EINVALID, "%s:%s: %s", host, port, gai_strerror(rc));
		return NULL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, handler, cls, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
						MHD_OPTION_ARRAY, options, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!d) {
		cmv_error__set(CMV_EIO, "cannot listen on %s:%s: %s", host, port, strerror(errno));
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info ? info->port : 0;
	return d;
}
