/* SPDX-License-Identifier: MIT */
/* What the proxy's files share (proxy.c: HTTP and upstream; proxy_turn.c: sessions and paging). */
#ifndef CMV_SERVER_PROXY_PRIV_H
#define CMV_SERVER_PROXY_PRIV_H

#include <pthread.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "proxy.h"

#define PROXY_MAX_MODELS 16
#define PROXY_IDLE_HANDLES 16 /* idle upstream handles kept; more calls at once each close their own */

struct proxy {
	cmv_repo *repo;
	pthread_mutex_t lock; /* the store, the model handles, the counters */
	proxy_config cfg;
	char *anthropic_url, *openai_url, *token;
	struct {
		char *name;
		cmv_model_handle *h;
	} models[PROXY_MAX_MODELS];
	size_t n_models;
	struct fk_cache *fkc; /* the fault records of window items, by their bytes (proxy_turn.c) */
	struct td_cache *tdc; /* what the client's tool definitions page to, by their bytes (proxy_turn.c) */
	/*
	 * Idle upstream handles, each with its kept-alive connections: a call
	 * takes one and gives it back, so a connection serves one thread at a
	 * time (a curl share of connections across threads is not thread-safe
	 * in libcurl 7.88: helgrind saw races inside it).
	 */
	CURL *idle[PROXY_IDLE_HANDLES];
	size_t n_idle;
	pthread_mutex_t idle_mu;
	/*
	 * The jobs whose workers run (their threads are detached): proxy_serve
	 * cancels them and waits for none to be left before it returns, since
	 * a worker uses the proxy (its lock, caches, handles) and the store to
	 * its last step. No job starts once `stopping` is set.
	 */
	pthread_mutex_t jobs_mu;
	pthread_cond_t jobs_cv;
	struct job *jobs; /* a list, through job.next_job / prev_job */
	size_t n_jobs;
	bool stopping;
};

/* Frees what proxy_turn.c keeps on the proxy (its caches). */
void proxy_turn_cache_free(proxy *p);

/* ---- JSON spans over raw text (cJSON has validated it first) ---- */
typedef struct {
	const char *p, *end;
} pspan;
const char *pjs_ws(const char *p, const char *end);
/* The end of the value starting at p, or NULL when it is not one. */
const char *pjs_skip(const char *p, const char *end);
/* The value of top-level member `key` of the object in `obj`: 1 found, 0 not. */
int pjs_member(pspan *out, pspan obj, const char *key);

/*
 * The client's request as proxy_turn_new parsed it, its messages left out
 * (borrowed; the other members as the client sent them).
 */
const cJSON *proxy_turn_client(const proxy_turn *t);

/* ---- translation between APIs (proxy_xlate.c) ---- */
typedef struct xlate xlate;
/*
 * A reply stream of API `from` written as API `to`'s events. `model` is
 * what the client's events name; `custom_tools` the client's Responses
 * custom tools, one name a line (their calls are written as custom tool
 * calls); chat_usage: a Chat client asked for the usage chunk.
 */
int xlate_new(xlate **out, proxy_api from, proxy_api to, const char *model, const char *custom_tools, bool chat_usage);
void xlate_free(xlate *x);
/* One upstream event's data (the text after "data:"): the client's events for it appended to out. */
int xlate_event(xlate *x, const char *data, size_t len, cmv_buf *out);
/* The stream ended: whatever end is owed (a Chat stream without [DONE]). */
int xlate_end(xlate *x, cmv_buf *out);
bool xlate_finished(const xlate *x);
/* A whole response body of API `from` as API `to`'s. */
int xlate_body(cmv_buf *out, proxy_api from, proxy_api to, const char *model, const char *custom_tools,
	       const char *body, size_t len);
/* The message of an error body of any of the APIs, in buf ("" when it has none). */
const char *xlate_error_message(const char *body, size_t len, char *buf, size_t n);
/*
 * The upstream body for API `to`: `mat` is the pager's request in that
 * API (its messages are taken from it), `client` the client's request
 * (system prompt, tool choice, output limit, sampling, stream), `tools`
 * the client's tool definitions as paged (the recall tool among them).
 * *custom_out: the client's custom tools (see xlate_new), or NULL;
 * *n_dropped: built-in tools the other API cannot carry.
 */
int xlate_request(cmv_buf *out, char **custom_out, size_t *n_dropped, const cJSON *client, proxy_api from,
		  cJSON *mat, proxy_api to, const char *model, const cJSON *tools, uint64_t max_output, bool tools_ok);

#endif
