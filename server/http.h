/* SPDX-License-Identifier: MIT */
/*
 * The HTTP plumbing the MCP transport (transport.c) and the proxy
 * (proxy.c) share: where to listen, the token check, the Origin check,
 * and starting a libmicrohttpd daemon. Private to server/.
 */
#ifndef CMV_SERVER_HTTP_H
#define CMV_SERVER_HTTP_H

#include <stdbool.h>
#include <microhttpd.h>

/*
 * Split "PORT", "HOST:PORT", "[V6]:PORT" or ":PORT" (HOST default 127.0.0.1;
 * ":PORT" is every interface, 0.0.0.0).
 * `what` names the option in the error ("--http", "--listen").
 */
int srv_addr_parse(char host[256], char port[16], const char *addr, const char *what);

/* Whether two secrets are equal, in time that depends on their lengths only. */
bool srv_secret_equal(const char *a, const char *b);

/* An Origin a browser on this machine would send: http(s)://localhost, 127.x, [::1], any port. */
bool srv_origin_ok(const char *origin);

/*
 * Start a daemon listening on host:port with `flags` (an IPv6 host adds
 * MHD_USE_IPv6) and the options given as MHD_OPTION_ARRAY items (ending
 * with MHD_OPTION_END). *port_out gets the bound port.
 */
struct MHD_Daemon *srv_daemon_start(unsigned int *port_out, const char *host, const char *port, unsigned int flags,
				    MHD_AccessHandlerCallback handler, void *cls, struct MHD_OptionItem *options);

#endif
