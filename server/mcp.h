/* SPDX-License-Identifier: MIT */
/*
 * The MCP server (docs/mcp.md): cmv's store as tools and resources for an
 * agent, over stdio or Streamable HTTP. The layer above compaction and
 * below cli: it uses the public API (and the base), never a layer's
 * internals. This header is the layer's one face for the CLI and bench.
 *
 * Invariants:
 *  - a request is read with a bounded size (MCP_MAX_REQUEST) and depth
 *    (MCP_MAX_DEPTH); anything wrong with it is a JSON-RPC error, never the
 *    end of the server;
 *  - every tool result is counted in the server's model tokens and held to
 *    the budget the caller gave (default MCP_DEFAULT_BUDGET, at most
 *    MCP_MAX_BUDGET: under Claude Code's 25,000-token cap);
 *  - one store handle, used by one request at a time (a mutex): a lock held
 *    by another process (a hook's import) is waited for and retried, never
 *    passed to a client as an error;
 *  - the bearer token is compared in constant time and never logged.
 */
#ifndef CMV_SERVER_MCP_H
#define CMV_SERVER_MCP_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <cmv/cmv.h>

#define MCP_MAX_REQUEST ((size_t)1 << 20) /* bytes of one JSON-RPC message */
#define MCP_MAX_DEPTH 32                   /* nesting of arrays and objects */
#define MCP_DEFAULT_BUDGET 4096            /* tokens, when a call gives none */
#define MCP_MAX_BUDGET 20000               /* tokens, whatever a call asks */
#define MCP_PROTOCOL_LATEST "2025-11-25"
#define MCP_PROTOCOL_STATELESS "2026-07-28"

typedef struct mcp_server mcp_server;

typedef struct {
	const char *store_path; /* the .cmv folder (the hook's live-session note is read from the store) */
	const char *model;      /* whose tokens budgets count (NULL: claude-sonnet-4-5) */
} mcp_config;

/* What a transport knows of a request beyond its body. */
typedef struct {
	const char *protocol_header; /* HTTP MCP-Protocol-Version (NULL: none, or stdio) */
	const char *session;         /* HTTP Mcp-Session-Id (NULL: none) */
	bool http;
	/* out */
	char new_session[40];        /* set when initialize opened an HTTP session */
	int http_status;             /* 0: 200 (or 202 for no reply); else the status to send */
} mcp_request;

int mcp_server_new(mcp_server **out, cmv_repo *repo, const mcp_config *cfg);
void mcp_server_free(mcp_server *s);

/*
 * One JSON-RPC message: its reply in out (empty for a notification).
 * Returns 0, or a negative CMV_E* only for memory.
 */
int mcp_handle(mcp_server *s, cmv_buf *out, const char *in, size_t len, mcp_request *rq);

/* Whether an HTTP session id is open; closing it (DELETE). */
bool mcp_session_known(mcp_server *s, const char *id);
bool mcp_session_close(mcp_server *s, const char *id);

/* Serve newline-delimited JSON-RPC on in/out until in ends. */
int mcp_serve_stdio(mcp_server *s, FILE *in, FILE *out);

/*
 * Serve Streamable HTTP on addr ("PORT", "HOST:PORT"; HOST default
 * 127.0.0.1) at /mcp until *stop. token: required as "Authorization:
 * Bearer TOKEN" when not NULL. ready (may be NULL) is called with the port
 * bound (PORT 0 picks one).
 */
int mcp_serve_http(mcp_server *s, const char *addr, const char *token, volatile sig_atomic_t *stop,
		   void (*ready)(unsigned int port, void *payload), void *payload);

/* Whether a host string is a loopback address (127.0.0.0/8, ::1, localhost). */
bool mcp_host_is_loopback(const char *host);

/*
 * Ready to serve on `addr` ("PORT", "HOST:PORT", "[V6]:PORT"), as `cmv mcp
 * --http` and `cmv proxy` are (server/http.c): `host` gets the host part
 * (127.0.0.1 when there is none: for the loopback check and the "listening
 * on" line); from now on SIGINT and SIGTERM set *stop, which the serve loop
 * polls, and SIGPIPE is ignored (a client gone mid-reply fails that write,
 * not the process). CMV_EINVALID names `what` for an address that is not one.
 */
int srv_listen_setup(char host[256], const char *addr, const char *what, volatile sig_atomic_t *stop);

#endif
