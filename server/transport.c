/* SPDX-License-Identifier: MIT */
/*
 * The transports: newline-delimited JSON-RPC on stdio, and Streamable HTTP
 * (one endpoint, /mcp: POST a message, get its reply as application/json;
 * DELETE ends a session) on libmicrohttpd.
 *
 * Why libmicrohttpd: it is a C library packaged by Debian (libmicrohttpd-dev
 * 0.9.75), made to embed an HTTP/1.1 server in a program, with its own
 * threads, limits on connections, memory and time per connection, and no
 * dependency beyond libc (TLS only if asked; a loopback server needs none).
 * Debian 12 also has libcivetweb-dev (a web server with CGI, Lua, file
 * serving: far more surface than one JSON endpoint needs), libh2o-dev
 * (HTTP/2, an event loop to adopt), libulfius-dev (a REST framework built
 * on libmicrohttpd itself) and libevent's evhttp (a loop of our own to run
 * and fewer limits built in). A server written here would be the riskiest
 * code in the tree: a parser of hostile input.
 *
 * Security: the default bind is 127.0.0.1. Any other host needs a bearer
 * token (the CLI refuses to start without one); with a token every request
 * must carry it. A request with an Origin header that is not a loopback
 * origin is refused (DNS rebinding). The token is never logged.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "base/base.h"
#include "http.h"
#include "mcp_priv.h"

/* ---- stdio ------------------------------------------------------------------------ */

int mcp_serve_stdio(mcp_server *s, FILE *in, FILE *out)
{
	cmv_buf reply = CMV_BUF_INIT((size_t)1 << 30);
	char *line = malloc(MCP_MAX_REQUEST + 2);
	int error = 0;
	if (!line)
		return cmv_error__oom();
	/* a failure leaves SQLite's own checkpoints, inside commits: slower, as safe */
	cmv_repo_checkpoint_background(s->repo, 1);
	for (;;) {
		size_t n = 0;
		bool over = false;
		int c;
		while ((c = getc(in)) != EOF && c != '\n') {
			if (n <= MCP_MAX_REQUEST)
				line[n++] = (char)c;
			else
				over = true; /* the rest of an oversize line is read and dropped */
		}
		if (c == EOF && !n)
			break;
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (!n && !over)
			continue;
		mcp_request rq;
		memset(&rq, 0, sizeof(rq));
		if ((error = mcp_handle(s, &reply, line, over ? MCP_MAX_REQUEST + 1 : n, &rq)) < 0)
			break;
		if (reply.size) {
			fwrite(reply.ptr, 1, reply.size, out);
			fputc('\n', out);
			fflush(out);
		}
		if (c == EOF)
			break;
	}
	cmv_repo_checkpoint_background(s->repo, 0);
	free(line);
	cmv_buf_dispose(&reply);
	return error;
}

/* ---- HTTP ------------------------------------------------------------------------- */

bool mcp_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

typedef struct {
	mcp_server *s;
	const char *token;
} http_ctx;

typedef struct {
	char *body;
	size_t len;
	bool over;
} conn;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *body, const char *session,
			    bool json)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(body ? strlen(body) : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (json && body && *body)
		MHD_add_response_header(r, "Content-Type", "application/json");
	else if (body && *body)
		MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (session && *session)
		MHD_add_response_header(r, "Mcp-Session-Id", session);
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	if (status == 405)
		MHD_add_response_header(r, "Allow", "POST, DELETE");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	http_ctx *h = cls;
	conn *k = *con_cls;
	(void)version;
	if (!k) {
		/* the first call is for the headers alone: refuse early what needs no body */
		if (!(k = calloc(1, sizeof(*k))))
			return MHD_NO;
		*con_cls = k;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!k->over && k->len + *upload_size <= MCP_MAX_REQUEST) {
			char *nb = realloc(k->body, k->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			k->body = nb;
			memcpy(k->body + k->len, upload, *upload_size);
			k->len += *upload_size;
		} else {
			k->over = true; /* read and dropped: the answer is a 413 */
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/mcp"))
		return respond(c, 404, "not found: the MCP endpoint is /mcp\n", NULL, false);
	if (h->token) {
		const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		if (!auth || strncasecmp(auth, "Bearer ", 7) || !srv_secret_equal(auth + 7, h->token))
			return respond(c, 401, "a bearer token is required\n", NULL, false);
	}
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	if (origin && !srv_origin_ok(origin))
		return respond(c, 403, "forbidden: requests from this Origin are refused\n", NULL, false);
	const char *session = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Session-Id");
	if (!strcmp(method, "DELETE")) {
		if (!session)
			return respond(c, 400, "DELETE needs an Mcp-Session-Id\n", NULL, false);
		return respond(c, mcp_session_close(h->s, session) ? 200 : 404, "", NULL, false);
	}
	if (strcmp(method, "POST"))
		return respond(c, 405, "this server answers POST (and DELETE to end a session)\n", NULL, false);
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (!ct || !strcasestr(ct, "application/json"))
		return respond(c, 415, "the body must be application/json\n", NULL, false);

	mcp_request rq;
	memset(&rq, 0, sizeof(rq));
	rq.http = true;
	rq.session = session;
	rq.protocol_header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
	if (mcp_handle(h->s, &out, k->body ? k->body : "", k->over ? MCP_MAX_REQUEST + 1 : k->len, &rq) < 0) {
		cmv_error_clear();
		cmv_buf_dispose(&out);
		return respond(c, 500, "out of memory\n", NULL, false);
	}
	enum MHD_Result ret = out.size ? respond(c, rq.http_status ? (unsigned)rq.http_status : 200, out.ptr, rq.new_session, true)
				       : respond(c, 202, "", NULL, false);
	cmv_buf_dispose(&out);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
	conn *k = *con_cls;
	(void)cls;
	(void)c;
	(void)why;
	if (k) {
		free(k->body);
		free(k);
		*con_cls = NULL;
	}
}

int mcp_serve_http(mcp_server *s, const char *addr, const char *token, volatile sig_atomic_t *stop,
		   void (*ready)(unsigned int port, void *payload), void *payload)
{
	char host[256], port[16];
	unsigned int bound = 0;
	http_ctx h = { s, token };
	int error;

	if ((error = srv_addr_parse(host, port, addr, "--http")) < 0)
		return error;
	/*
	 * A pool of threads that each poll: 16 clients at once are served by 8
	 * threads; the tools run one at a time on the store, the rest (parsing,
	 * counting, writing) runs beside them.
	 */
	struct MHD_OptionItem options[] = {
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_done, NULL },
		{ MHD_OPTION_THREAD_POOL_SIZE, 8, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, 256, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 256 * 1024, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_Daemon *d = srv_daemon_start(&bound, host, port, MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
						 on_request, &h, options);
	if (!d)
		return cmv_error_last()->code;
	/* WAL checkpoints off the request path (docs/store.md); a failure leaves SQLite's own */
	pthread_mutex_lock(&s->lock);
	cmv_repo_checkpoint_background(s->repo, 1);
	pthread_mutex_unlock(&s->lock);
	if (ready)
		ready(bound, payload);
	while (!*stop)
		usleep(100000);
	MHD_stop_daemon(d);
	pthread_mutex_lock(&s->lock);
	cmv_repo_checkpoint_background(s->repo, 0);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
