/* SPDX-License-Identifier: MIT */
/*
 * The LLM client (include/cmv/llm.h): two wire protocols over a transport
 * interface, libcurl or a replaying fake.
 *
 * The key is read from the environment at the moment of each call, copied
 * into the one header line that carries it, and that line is wiped before
 * it is freed: nothing that outlives the call holds it, and no error
 * message, log or store row is built from it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include "base/base.h"
#include <cmv/llm.h>

void cmv_llm_options_init(cmv_llm_options *opts)
{
	static const cmv_llm_options init = CMV_LLM_OPTIONS_INIT;
	*opts = init;
}

#define DEFAULT_TIMEOUT_MS 120000
#define DEFAULT_RETRIES 4
#define DEFAULT_BACKOFF_MS 500
#define DEFAULT_MAX_WAIT_MS 60000
#define DEFAULT_MAX_RESPONSE ((size_t)8 << 20)
#define DEFAULT_MAX_TOKENS 4096
/* An error body is quoted in the message up to this many bytes. */
#define QUOTE_MAX 300

static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

/* ---- libcurl ------------------------------------------------------------ */

typedef struct {
	cmv_llm_transport base;
} curl_transport;

typedef struct {
	cmv_http_response *resp;
	size_t max;
	bool too_big, oom;
} curl_sink;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	curl_sink *s = userdata;
	size_t n = size * nmemb;
	if (s->resp->body.size + n > s->max) {
		s->too_big = true;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (cmv_buf_put(&s->resp->body, ptr, n) < 0) {
		s->oom = true;
		return 0;
	}
	return n;
}

static long parse_retry_after(const char *v)
{
	char *end;
	while (*v == ' ' || *v == '\t')
		v++;
	errno = 0;
	long secs = strtol(v, &end, 10);
	if (end != v && errno == 0 && secs >= 0) {
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (!*end)
			return secs > LONG_MAX / 1000 ? LONG_MAX : secs * 1000;
	}
	char date[128];
	size_t n = strcspn(v, "\r\n");
	if (n >= sizeof(date))
		return -1;
	memcpy(date, v, n);
	date[n] = '\0';
	time_t when = curl_getdate(date, NULL);
	if (when < 0)
		return -1;
	time_t now = time(NULL);
	return when <= now ? 0 : (long)(when - now) * 1000;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	curl_sink *s = userdata;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";
	if (n > sizeof(name) - 1 && n < 256 && !strncasecmp(ptr, name, sizeof(name) - 1)) {
		char v[256];
		memcpy(v, ptr + sizeof(name) - 1, n - (sizeof(name) - 1));
		v[n - (sizeof(name) - 1)] = '\0';
		s->resp->retry_after_ms = parse_retry_after(v);
	}
	return n;
}

static int curl_send(cmv_llm_transport *t, const cmv_http_request *req, cmv_http_response *resp)
{
	struct curl_slist *hdrs = NULL, *tmp;
	curl_sink sink = { resp, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE, false, false };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *h;
	CURLcode rc;
	int error = 0;

	(void)t;
	resp->status = 0;
	resp->retry_after_ms = -1;
	cmv_buf_clear(&resp->body);
	if (!(h = curl_easy_init()))
		return cmv_error__oom();
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!(tmp = curl_slist_append(hdrs, req->headers[i]))) {
			error = cmv_error__oom();
			goto done;
		}
		hdrs = tmp;
	}
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cmv/" CMV_VERSION);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	} else if (sink.oom) {
		error = cmv_error__oom();
	} else if (sink.too_big) {
		error = cmv_error__set(CMV_ETOOBIG, "%s: the response is larger than %zu bytes", req->url, sink.max);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		error = cmv_error__set(CMV_ETRANSPORT, "%s: timed out after %ld ms", req->url, timeout);
	} else if (rc == CURLE_COULDNT_CONNECT) {
		error = cmv_error__set(CMV_ETRANSPORT, "%s: connection refused (is the server running?)", req->url);
	} else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
		error = cmv_error__set(CMV_ETRANSPORT, "%s: cannot resolve the host", req->url);
	} else if (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING) {
		error = cmv_error__set(CMV_ETRANSPORT, "%s: the response was cut short (%s)", req->url,
				       *errbuf ? errbuf : curl_easy_strerror(rc));
	} else {
		error = cmv_error__set(CMV_ETRANSPORT, "%s: %s", req->url, *errbuf ? errbuf : curl_easy_strerror(rc));
	}
done:
	/* the key's header line is the caller's to wipe; curl's copies go with the list */
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return error;
}

static void curl_free_transport(cmv_llm_transport *t)
{
	free(t);
}

int cmv_llm_transport_curl(cmv_llm_transport **out)
{
	static bool started;
	curl_transport *t;

	*out = NULL;
	if (!started) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return cmv_error__set(CMV_EUNSUPPORTED, "libcurl failed to start");
		started = true;
	}
	if (!(t = cmv__calloc(1, sizeof(*t))))
		return cmv_error__oom();
	t->base = (cmv_llm_transport){ CMV_LLM_TRANSPORT_VERSION, curl_send, curl_free_transport };
	*out = &t->base;
	return 0;
}

/* ---- the replaying fake ---------------------------------------------------- */

typedef struct {
	cmv_llm_transport base;
	cJSON *exchanges; /* array */
	size_t next;
	char **requests;
	size_t n_requests;
	char *path;
} replay_transport;

static int replay_send(cmv_llm_transport *t, const cmv_http_request *req, cmv_http_response *resp)
{
	replay_transport *r = (replay_transport *)t;
	char **grown;
	char *copy;

	resp->status = 0;
	resp->retry_after_ms = -1;
	cmv_buf_clear(&resp->body);
	if (!(grown = cmv__realloc(r->requests, (r->n_requests + 1) * sizeof(*grown))))
		return cmv_error__oom();
	r->requests = grown;
	if (!(copy = cmv__malloc(req->body_len + 1)))
		return cmv_error__oom();
	memcpy(copy, req->body, req->body_len);
	copy[req->body_len] = '\0';
	r->requests[r->n_requests++] = copy;

	const cJSON *ex = cJSON_GetArrayItem(r->exchanges, (int)r->next);
	if (!ex)
		return cmv_error__set(CMV_ETRANSPORT, "%s: no recorded exchange left for request %zu (%s)", req->url,
				      r->next + 1, r->path);
	r->next++;
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(ex, "error");
	if (cJSON_IsString(err)) {
		if (!strcmp(err->valuestring, "timeout"))
			return cmv_error__set(CMV_ETRANSPORT, "%s: timed out after %ld ms", req->url, req->timeout_ms);
		return cmv_error__set(CMV_ETRANSPORT, "%s: connection refused (is the server running?)", req->url);
	}
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(ex, "status");
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(ex, "retry_after");
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(ex, "body");
	resp->status = cJSON_IsNumber(status) ? (long)status->valuedouble : 200;
	if (cJSON_IsNumber(ra))
		resp->retry_after_ms = (long)(ra->valuedouble * 1000);
	if (cJSON_IsString(body)) {
		if (cmv_buf_puts(&resp->body, body->valuestring) < 0)
			return cmv_error__oom();
	} else if (body) {
		char *text = cJSON_PrintUnformatted(body);
		int error = text ? cmv_buf_puts(&resp->body, text) : cmv_error__oom();
		cJSON_free(text);
		if (error < 0)
			return error;
	}
	size_t max = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
	if (resp->body.size > max)
		return cmv_error__set(CMV_ETOOBIG, "%s: the response is larger than %zu bytes", req->url, max);
	return 0;
}

static void replay_free(cmv_llm_transport *t)
{
	replay_transport *r = (replay_transport *)t;
	if (!r)
		return;
	for (size_t i = 0; i < r->n_requests; i++)
		free(r->requests[i]);
	free(r->requests);
	cJSON_Delete(r->exchanges);
	free(r->path);
	free(r);
}

int cmv_llm_transport_replay(cmv_llm_transport **out, const char *path)
{
	cmv_buf file = CMV_BUF_INIT(CMV_BUF_CONTENT);
	replay_transport *r = NULL;
	int error;

	*out = NULL;
	if ((error = cmv__read_file(&file, path)) < 0)
		return error;
	if (!(r = cmv__calloc(1, sizeof(*r))) || !(r->exchanges = cJSON_CreateArray()) ||
	    !(r->path = cmv__strdup(path))) {
		error = cmv_error__oom();
		goto fail;
	}
	r->base = (cmv_llm_transport){ CMV_LLM_TRANSPORT_VERSION, replay_send, replay_free };
	size_t line = 0;
	for (char *p = file.ptr, *end = file.ptr + file.size; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (len && !(len == 1 && *p == '\r')) {
			cJSON *j = cJSON_ParseWithLength(p, len);
			if (!cJSON_IsObject(j)) {
				cJSON_Delete(j);
				error = cmv_error__set(CMV_EINVALID, "%s:%zu: not a JSON object", path, line);
				goto fail;
			}
			cJSON_AddItemToArray(r->exchanges, j);
		}
		p += len + (nl ? 1 : 0);
	}
	cmv_buf_dispose(&file);
	*out = &r->base;
	return 0;
fail:
	cmv_buf_dispose(&file);
	replay_free(r ? &r->base : NULL);
	return error;
}

const char *cmv_llm_replay_request(cmv_llm_transport *t, size_t i)
{
	replay_transport *r = (replay_transport *)t;
	return t && t->send == replay_send && i < r->n_requests ? r->requests[i] : NULL;
}

size_t cmv_llm_replay_count(cmv_llm_transport *t)
{
	return t && t->send == replay_send ? ((replay_transport *)t)->n_requests : 0;
}

/* ---- client --------------------------------------------------------------- */

struct cmv_llm {
	const cmv_model *model;
	cmv_llm_options opts;
	cmv_llm_transport *transport;
	bool own_transport;
	bool anthropic;
	char *endpoint;
	char *key_env;
	uint64_t rng;
};

static const char *default_base(const cmv_model *m)
{
	if (!strcmp(m->provider, "openai"))
		return "https://api.openai.com/v1";
	if (!strcmp(m->provider, "anthropic"))
		return "https://api.anthropic.com/v1";
	if (!strcmp(m->provider, "google"))
		return "https://generativelanguage.googleapis.com/v1beta/openai";
	return NULL;
}

static const char *default_key_env(const cmv_model *m)
{
	if (!strcmp(m->provider, "openai"))
		return "OPENAI_API_KEY";
	if (!strcmp(m->provider, "anthropic"))
		return "ANTHROPIC_API_KEY";
	if (!strcmp(m->provider, "google"))
		return "GEMINI_API_KEY";
	return "CMV_LLM_API_KEY";
}

int cmv_llm_new(cmv_llm **out, const cmv_model *model, const cmv_llm_options *opts)
{
	cmv_llm_options defaults = CMV_LLM_OPTIONS_INIT;
	cmv_llm *llm;
	int error;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	const char *base = opts->base_url ? opts->base_url : model->base_url ? model->base_url : default_base(model);
	if (!base)
		return cmv_error__set(CMV_EINVALID,
				      "no endpoint is known for %s (provider %s): give its base URL (--llm-url, or "
				      "base_url in its profile)", model->id, model->provider);
	if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
		return cmv_error__set(CMV_EINVALID, "'%s' is not an http:// or https:// URL", base);
	if (!(llm = cmv__calloc(1, sizeof(*llm))))
		return cmv_error__oom();
	llm->model = model;
	llm->opts = *opts;
	llm->anthropic = model->api == CMV_API_ANTHROPIC;
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	const char *path = llm->anthropic ? "/messages" : "/chat/completions";
	const char *env = opts->api_key_env ? opts->api_key_env : model->api_key_env ? model->api_key_env
										       : default_key_env(model);
	if (!(llm->endpoint = cmv__malloc(blen + strlen(path) + 1)) || !(llm->key_env = cmv__strdup(env))) {
		cmv_llm_free(llm);
		return cmv_error__oom();
	}
	memcpy(llm->endpoint, base, blen);
	memcpy(llm->endpoint + blen, path, strlen(path) + 1);
	if (opts->transport) {
		llm->transport = opts->transport;
	} else if ((error = cmv_llm_transport_curl(&llm->transport)) < 0) {
		cmv_llm_free(llm);
		return error;
	} else {
		llm->own_transport = true;
	}
	llm->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)llm;
	*out = llm;
	return 0;
}

void cmv_llm_free(cmv_llm *llm)
{
	if (!llm)
		return;
	if (llm->own_transport)
		llm->transport->free(llm->transport);
	free(llm->endpoint);
	free(llm->key_env);
	free(llm);
}

void cmv_llm_set_max_tokens(cmv_llm *llm, uint32_t max_tokens)
{
	llm->opts.max_tokens = max_tokens;
}

const char *cmv_llm_endpoint(const cmv_llm *llm)
{
	return llm->endpoint;
}

static int build_body(char **out, cmv_llm *llm, const char *system, const char *user)
{
	const cmv_model *m = llm->model;
	uint32_t max_tokens = llm->opts.max_tokens;
	cJSON *body = cJSON_CreateObject(), *msgs, *msg;

	*out = NULL;
	if (!max_tokens)
		max_tokens = m->max_output && m->max_output < DEFAULT_MAX_TOKENS ? (uint32_t)m->max_output
										 : DEFAULT_MAX_TOKENS;
	if (!body || !cJSON_AddStringToObject(body, "model", m->id))
		goto oom;
	/* reasoning models take max_completion_tokens and only their default temperature */
	bool reasoning = m->api == CMV_API_OPENAI_RESPONSES;
	if (!cJSON_AddNumberToObject(body, reasoning ? "max_completion_tokens" : "max_tokens", max_tokens) ||
	    (!reasoning && !cJSON_AddNumberToObject(body, "temperature", 0)))
		goto oom;
	if (llm->anthropic && system && *system && !cJSON_AddStringToObject(body, "system", system))
		goto oom;
	if (!(msgs = cJSON_AddArrayToObject(body, "messages")))
		goto oom;
	if (!llm->anthropic && system && *system) {
		if (!(msg = cJSON_CreateObject()))
			goto oom;
		cJSON_AddItemToArray(msgs, msg);
		if (!cJSON_AddStringToObject(msg, "role", "system") || !cJSON_AddStringToObject(msg, "content", system))
			goto oom;
	}
	if (!(msg = cJSON_CreateObject()))
		goto oom;
	cJSON_AddItemToArray(msgs, msg);
	if (!cJSON_AddStringToObject(msg, "role", "user") || !cJSON_AddStringToObject(msg, "content", user))
		goto oom;
	if (!(*out = cJSON_PrintUnformatted(body)))
		goto oom;
	cJSON_Delete(body);
	return 0;
oom:
	cJSON_Delete(body);
	return cmv_error__oom();
}

/* A short, printable quote of an error body: its error.message when it has one. */
static void quote_body(char *dst, size_t cap, const cmv_buf *body)
{
	cJSON *j = body->size ? cJSON_ParseWithLength(body->ptr, body->size) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *msg = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
	const char *src = cJSON_IsString(msg) ? msg->valuestring : body->size ? body->ptr : "(empty body)";
	size_t n = 0;
	for (; src[n] && n + 1 < cap && n < QUOTE_MAX; n++)
		dst[n] = (src[n] >= 0x20 && src[n] < 0x7f) ? src[n] : ' ';
	dst[n] = '\0';
	cJSON_Delete(j);
}

/* A token count as the endpoint reported it: anything but a whole number in range is 0, never a cast out of range. */
static uint64_t reported_count(const cJSON *n)
{
	return cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble < 9.2e18 ? (uint64_t)n->valuedouble : 0;
}

static int parse_reply(cmv_buf *out, cmv_llm_usage *usage, cmv_llm *llm, const cmv_buf *body)
{
	cJSON *j = cJSON_ParseWithLength(body->ptr, body->size);
	int error = 0;

	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return cmv_error__set(CMV_ETRANSPORT, "%s: the reply is not a JSON object (%zu bytes%s)", llm->endpoint,
				      body->size, body->size ? ", malformed or truncated" : "");
	}
	cmv_buf_clear(out);
	if (llm->anthropic) {
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content"), *b;
		bool any = false;
		cJSON_ArrayForEach(b, content) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
			if (cJSON_IsString(t)) {
				any = true;
				if ((error = cmv_buf_puts(out, t->valuestring)) < 0)
					break;
			}
		}
		if (!error && !any)
			error = cmv_error__set(CMV_ETRANSPORT, "%s: the reply has no text content", llm->endpoint);
		const cJSON *stop = cJSON_GetObjectItemCaseSensitive(j, "stop_reason");
		usage->truncated = cJSON_IsString(stop) && !strcmp(stop->valuestring, "max_tokens");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "input_tokens");
		const cJSON *outt = cJSON_GetObjectItemCaseSensitive(u, "output_tokens");
		usage->input_tokens = reported_count(in);
		usage->output_tokens = reported_count(outt);
	} else {
		const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
		if (cJSON_IsString(content))
			error = cmv_buf_puts(out, content->valuestring);
		else
			error = cmv_error__set(CMV_ETRANSPORT, "%s: the reply has no choices[0].message.content",
					       llm->endpoint);
		const cJSON *fin = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
		usage->truncated = cJSON_IsString(fin) && !strcmp(fin->valuestring, "length");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
		const cJSON *outt = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
		usage->input_tokens = reported_count(in);
		usage->output_tokens = reported_count(outt);
	}
	cJSON_Delete(j);
	/* the text becomes a summary node: bytes that are not UTF-8 (raw, or a lone surrogate escaped) are refused */
	if (!error && !cmv__utf8_valid(out->ptr, out->size, NULL))
		error = cmv_error__set(CMV_ETRANSPORT, "%s: the reply's text is not valid UTF-8", llm->endpoint);
	return error;
}

static long backoff(cmv_llm *llm, unsigned int attempt, long retry_after_ms)
{
	long base = llm->opts.backoff_ms > 0 ? llm->opts.backoff_ms : DEFAULT_BACKOFF_MS;
	long cap = llm->opts.max_wait_ms > 0 ? llm->opts.max_wait_ms : DEFAULT_MAX_WAIT_MS;
	long wait = base;
	for (unsigned int i = 1; i < attempt && wait < cap; i++)
		wait *= 2;
	/* "equal jitter": half fixed, half random, so clients that failed together spread out */
	llm->rng ^= llm->rng << 13;
	llm->rng ^= llm->rng >> 7;
	llm->rng ^= llm->rng << 17;
	wait = wait / 2 + (long)(llm->rng % (uint64_t)(wait / 2 + 1));
	if (retry_after_ms > wait)
		wait = retry_after_ms;
	return wait > cap ? cap : wait;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * One exchange with retries: `body` to the endpoint with the key read now,
 * the 2xx response into resp (the caller disposes of its body).
 */
static int exchange(cmv_http_response *resp, unsigned int *attempts, cmv_llm *llm, const char *body, size_t len)
{
	char *auth = NULL;
	const char *headers[3];
	size_t n_headers = 0, auth_len = 0;
	int error;

	/* read at call time: a key set or rotated after the client was made is the one used */
	const char *key = getenv(llm->key_env);
	headers[n_headers++] = "Content-Type: application/json";
	if (llm->anthropic)
		headers[n_headers++] = "anthropic-version: 2023-06-01";
	if (key && *key) {
		const char *pre = llm->anthropic ? "x-api-key: " : "Authorization: Bearer ";
		auth_len = strlen(pre) + strlen(key) + 1;
		if (!(auth = cmv__malloc(auth_len)))
			return cmv_error__oom();
		snprintf(auth, auth_len, "%s%s", pre, key);
		headers[n_headers++] = auth;
	}
	cmv_http_request req = { llm->endpoint, headers, n_headers, body, len,
				 llm->opts.timeout_ms > 0 ? llm->opts.timeout_ms : DEFAULT_TIMEOUT_MS,
				 llm->opts.max_response ? llm->opts.max_response : DEFAULT_MAX_RESPONSE };
	unsigned int retries = llm->opts.retries == ~0u ? 0 : llm->opts.retries ? llm->opts.retries : DEFAULT_RETRIES;
	for (unsigned int attempt = 1;; attempt++) {
		*attempts = attempt;
		cmv_buf_clear(&resp->body);
		if ((error = llm->transport->send(llm->transport, &req, resp)) < 0)
			break;
		if (resp->status >= 200 && resp->status < 300)
			break;
		bool again = resp->status == 429 || resp->status >= 500;
		if (!again || attempt > retries) {
			char quote[QUOTE_MAX + 1], hint[128] = "";
			quote_body(quote, sizeof(quote), &resp->body);
			if (resp->status == 401 || resp->status == 403)
				snprintf(hint, sizeof(hint), " (%s $%s)", key && *key ? "check the key in" : "no key: set",
					 llm->key_env);
			error = cmv_error__set(CMV_ETRANSPORT, "%s: HTTP %ld%s: %s%s", llm->endpoint, resp->status,
					       again ? " (retries exhausted)" : "", quote, hint);
			break;
		}
		sleep_ms(backoff(llm, attempt, resp->retry_after_ms));
	}
	if (auth) {
		wipe(auth, auth_len);
		free(auth);
	}
	return error;
}

int cmv_llm_complete(cmv_buf *out, cmv_llm_usage *usage, cmv_llm *llm, const char *system, const char *user)
{
	cmv_llm_usage scratch;
	cmv_http_response resp = { 0, -1, CMV_BUF_INIT(CMV_BUF_CONTENT) };
	char *body = NULL;
	int error;

	if (!usage)
		usage = &scratch;
	memset(usage, 0, sizeof(*usage));
	if ((error = build_body(&body, llm, system, user)) < 0)
		return error;
	if ((error = exchange(&resp, &usage->attempts, llm, body, strlen(body))) == 0)
		error = parse_reply(out, usage, llm, &resp.body);
	cJSON_free(body);
	cmv_buf_dispose(&resp.body);
	return error;
}

int cmv_llm_send(cmv_buf *out, unsigned int *attempts, cmv_llm *llm, const char *body, size_t len)
{
	cmv_http_response resp = { 0, -1, CMV_BUF_INIT(CMV_BUF_CONTENT) };
	unsigned int scratch;
	int error;

	if ((error = exchange(&resp, attempts ? attempts : &scratch, llm, body, len)) == 0) {
		cmv_buf_clear(out);
		error = cmv_buf_put(out, resp.body.ptr ? resp.body.ptr : "", resp.body.size);
	}
	cmv_buf_dispose(&resp.body);
	return error;
}
