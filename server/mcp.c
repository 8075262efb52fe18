/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC and MCP: reading a message, the lifecycle, sessions, and the
 * dispatch to the tools (tools.c) and resources. Transports (transport.c)
 * hand each message here and send back what it writes.
 *
 * Protocol versions: 2025-11-25 (and the 2025-06-18 and 2025-03-26 it
 * extends) through initialize; 2026-07-28's stateless form when the client
 * asks for it: in the MCP-Protocol-Version header over HTTP, in
 * params._meta["io.modelcontextprotocol/protocolVersion"] on any request,
 * or in initialize. A stateless request needs no handshake and opens no
 * session. docs/mcp.md says why each choice.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include "mcp_priv.h"

#define MAX_SESSIONS 1024

static const char *const versions[] = { MCP_PROTOCOL_STATELESS, "2025-11-25", "2025-06-18", "2025-03-26", NULL };

static bool version_known(const char *v)
{
	for (const char *const *p = versions; v && *p; p++)
		if (!strcmp(*p, v))
			return true;
	return false;
}

int mcp_server_new(mcp_server **out, cmv_repo *repo, const mcp_config *cfg)
{
	mcp_server *s = calloc(1, sizeof(*s));
	const char *name = cfg && cfg->model ? cfg->model : "claude-sonnet-4-5";
	int error;
	*out = NULL;
	if (!s)
		return cmv_error__oom();
	s->repo = repo;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->slock, NULL);
	if (cfg && cfg->store_path && !(s->store_path = strdup(cfg->store_path))) {
		mcp_server_free(s);
		return cmv_error__oom();
	}
	if ((error = cmv_models_load(&s->models, NULL)) < 0 || (error = cmv_models_resolve(&s->model, s->models, name)) < 0 ||
	    (error = cmv_tok_load(&s->tok, s->model->tokenizer, NULL)) < 0) {
		mcp_server_free(s);
		return error;
	}
	*out = s;
	return 0;
}

void mcp_server_free(mcp_server *s)
{
	if (!s)
		return;
	cmv_tok_free(s->tok);
	cmv_models_free(s->models);
	free(s->store_path);
	free(s->sessions);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->slock);
	free(s);
}

/* ---- sessions (2025-11-25 over HTTP) ------------------------------------------- */

static bool session_open(mcp_server *s, char out[40])
{
	unsigned char r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return false;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	pthread_mutex_lock(&s->slock);
	/* past the cap the oldest goes: a client that comes back initializes again (404 tells it) */
	if (s->n_sessions == MAX_SESSIONS) {
		memmove(s->sessions, s->sessions + 1, (MAX_SESSIONS - 1) * sizeof(*s->sessions));
		s->n_sessions--;
	}
	if (!s->sessions && !(s->sessions = calloc(MAX_SESSIONS, sizeof(*s->sessions)))) {
		pthread_mutex_unlock(&s->slock);
		return false;
	}
	memcpy(s->sessions[s->n_sessions++], out, 33);
	pthread_mutex_unlock(&s->slock);
	return true;
}

bool mcp_session_known(mcp_server *s, const char *id)
{
	bool found = false;
	pthread_mutex_lock(&s->slock);
	for (size_t i = 0; i < s->n_sessions && !found; i++)
		found = !strcmp(s->sessions[i], id);
	pthread_mutex_unlock(&s->slock);
	return found;
}

bool mcp_session_close(mcp_server *s, const char *id)
{
	bool found = false;
	pthread_mutex_lock(&s->slock);
	for (size_t i = 0; i < s->n_sessions && !found; i++)
		if (!strcmp(s->sessions[i], id)) {
			memmove(s->sessions + i, s->sessions + i + 1, (s->n_sessions - i - 1) * sizeof(*s->sessions));
			s->n_sessions--;
			found = true;
		}
	pthread_mutex_unlock(&s->slock);
	return found;
}

/* ---- JSON-RPC ------------------------------------------------------------------ */

/* The nesting of a JSON text, strings skipped; stops counting past max. */
static size_t json_depth(const char *p, size_t len, size_t max)
{
	size_t d = 0, deepest = 0;
	bool in_str = false;
	for (size_t i = 0; i < len && deepest <= max; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++d > deepest)
				deepest = d;
		} else if ((c == ']' || c == '}') && d) {
			d--;
		}
	}
	return deepest;
}

static int reply(cmv_buf *out, cJSON *msg)
{
	char *t = cJSON_PrintUnformatted(msg);
	int error = t ? cmv_buf_puts(out, t) : cmv_error__oom();
	cJSON_free(t);
	cJSON_Delete(msg);
	return error;
}

static cJSON *envelope(const cJSON *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "jsonrpc", "2.0");
	cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
	return o;
}

int mcp_error(cmv_buf *out, const cJSON *id, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *o = envelope(id), *e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return reply(out, o);
}

static int result(cmv_buf *out, const cJSON *id, cJSON *res)
{
	cJSON *o = envelope(id);
	cJSON_AddItemToObject(o, "result", res);
	return reply(out, o);
}

/* ---- the methods ----------------------------------------------------------------- */

static const char instructions[] =
	"cmv keeps this agent's history (every session it imported, trimmed or not) in a store. "
	"search finds the turns that match a question within a token budget and answers with a compact index; "
	"get and recall bring pages back by id (a stub's id recalls exactly what it replaced); timeline shows a "
	"hit's neighbours; handoff writes a branch's handoff document; fit says which models a branch fits.";

static cJSON *initialize_result(const char *version)
{
	cJSON *r = cJSON_CreateObject(), *caps = cJSON_AddObjectToObject(r, "capabilities"), *info;
	cJSON_AddStringToObject(r, "protocolVersion", version);
	cJSON_AddBoolToObject(cJSON_AddObjectToObject(caps, "tools"), "listChanged", false);
	cJSON *res = cJSON_AddObjectToObject(caps, "resources");
	cJSON_AddBoolToObject(res, "listChanged", false);
	cJSON_AddBoolToObject(res, "subscribe", false);
	info = cJSON_AddObjectToObject(r, "serverInfo");
	cJSON_AddStringToObject(info, "name", "cmv");
	cJSON_AddStringToObject(info, "title", "cmv context memory");
	char v[32];
	snprintf(v, sizeof(v), "%d.%d.%d", CMV_VERSION_MAJOR, CMV_VERSION_MINOR, CMV_VERSION_PATCH);
	cJSON_AddStringToObject(info, "version", v);
	cJSON_AddStringToObject(r, "instructions", instructions);
	return r;
}

/* The version a request asks for in its _meta, if any. */
static const char *meta_version(const cJSON *params)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/protocolVersion"));
}

static int dispatch(mcp_server *s, cmv_buf *out, const cJSON *id, const char *method, const cJSON *params,
		    mcp_request *rq)
{
	const char *asked = rq->protocol_header ? rq->protocol_header : meta_version(params);
	bool stateless = asked && !strcmp(asked, MCP_PROTOCOL_STATELESS);

	if (asked && !version_known(asked)) {
		rq->http_status = 400;
		return mcp_error(out, id, MCP_INVALID_REQUEST, "unsupported protocol version '%s' (supported: %s, %s)",
				 asked, MCP_PROTOCOL_LATEST, MCP_PROTOCOL_STATELESS);
	}
	if (!strcmp(method, "initialize")) {
		const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, "protocolVersion"));
		if (!cJSON_IsObject(params) || !want)
			return mcp_error(out, id, MCP_INVALID_PARAMS, "initialize needs params.protocolVersion");
		/* a version we speak is echoed; else we offer our latest, and the client decides */
		const char *v = version_known(want) ? want : MCP_PROTOCOL_LATEST;
		if (rq->http && strcmp(v, MCP_PROTOCOL_STATELESS) && !session_open(s, rq->new_session))
			return mcp_error(out, id, MCP_INTERNAL_ERROR, "cannot open a session");
		return result(out, id, initialize_result(v));
	}
	/* over HTTP a stateful client names its session; a stateless one names the version instead */
	if (rq->http && !stateless) {
		if (!rq->session) {
			rq->http_status = 400;
			return mcp_error(out, id, MCP_INVALID_REQUEST,
					 "no Mcp-Session-Id: initialize first, or send MCP-Protocol-Version: %s",
					 MCP_PROTOCOL_STATELESS);
		}
		if (!mcp_session_known(s, rq->session)) {
			rq->http_status = 404;
			return mcp_error(out, id, MCP_INVALID_REQUEST, "unknown session (initialize again)");
		}
	}
	if (!strcmp(method, "ping"))
		return result(out, id, cJSON_CreateObject());
	if (!strcmp(method, "tools/list")) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddItemToObject(r, "tools", mcp_tools_list());
		return result(out, id, r);
	}
	if (params && !cJSON_IsObject(params))
		return mcp_error(out, id, MCP_INVALID_PARAMS, "params must be an object");
	if (!strcmp(method, "tools/call"))
		return mcp_tools_call(s, out, id, params);
	if (!strcmp(method, "resources/list") || !strcmp(method, "resources/read") ||
	    !strcmp(method, "resources/templates/list"))
		return mcp_resources(s, out, id, method, params);
	return mcp_error(out, id, MCP_METHOD_NOT_FOUND, "unknown method '%s'", method);
}

int mcp_reply_result(cmv_buf *out, const cJSON *id, cJSON *res)
{
	return result(out, id, res);
}

int mcp_handle(mcp_server *s, cmv_buf *out, const char *in, size_t len, mcp_request *rq)
{
	cJSON *msg;
	const cJSON *id, *method, *params;
	int error;

	cmv_buf_clear(out);
	rq->http_status = 0;
	rq->new_session[0] = '\0';
	if (len > MCP_MAX_REQUEST) {
		rq->http_status = 413;
		return mcp_error(out, NULL, MCP_INVALID_REQUEST, "request of %zu bytes, over the %zu-byte limit", len,
				 MCP_MAX_REQUEST);
	}
	if (json_depth(in, len, MCP_MAX_DEPTH) > MCP_MAX_DEPTH) {
		rq->http_status = 400;
		return mcp_error(out, NULL, MCP_INVALID_REQUEST, "request nested deeper than %d", MCP_MAX_DEPTH);
	}
	if (!(msg = cJSON_ParseWithLength(in, len))) {
		rq->http_status = 400;
		return mcp_error(out, NULL, MCP_PARSE_ERROR, "not JSON (at byte %zu)",
				 cJSON_GetErrorPtr() && cJSON_GetErrorPtr() >= in ? (size_t)(cJSON_GetErrorPtr() - in) : 0);
	}
	id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	method = cJSON_GetObjectItemCaseSensitive(msg, "method");
	params = cJSON_GetObjectItemCaseSensitive(msg, "params");
	if (!cJSON_IsObject(msg)) {
		rq->http_status = 400;
		error = mcp_error(out, NULL, MCP_INVALID_REQUEST,
				  cJSON_IsArray(msg) ? "batches are not part of MCP since 2025-06-18: send one message"
						     : "a JSON-RPC message is an object");
	} else if (id && !cJSON_IsString(id) &&
		   /* within 2^53 before the cast (one out of range is undefined), then whole */
		   !(cJSON_IsNumber(id) && id->valuedouble >= -9007199254740992.0 && id->valuedouble <= 9007199254740992.0 &&
		     id->valuedouble == (double)(long long)id->valuedouble)) {
		rq->http_status = 400;
		error = mcp_error(out, NULL, MCP_INVALID_REQUEST, "id must be a string or an integer");
	} else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc")) ||
		   strcmp(cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc")->valuestring, "2.0")) {
		rq->http_status = 400;
		error = mcp_error(out, id, MCP_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
	} else if (!method && (cJSON_GetObjectItemCaseSensitive(msg, "result") || cJSON_GetObjectItemCaseSensitive(msg, "error"))) {
		error = 0; /* a response to nothing we asked: nothing to say */
	} else if (!cJSON_IsString(method)) {
		rq->http_status = 400;
		error = mcp_error(out, id, MCP_INVALID_REQUEST, "method must be a string");
	} else if (!id) {
		error = 0; /* a notification (initialized, cancelled, ...): no reply */
	} else {
		error = dispatch(s, out, id, method->valuestring, params, rq);
	}
	cJSON_Delete(msg);
	return error;
}
