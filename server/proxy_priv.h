/* SPDX-License-Identifier: MIT */
/* What the proxy's files share (proxy.c: HTTP and upstream; proxy_turn.c: sessions and paging). */
#ifndef CMV_SERVER_PROXY_PRIV_H
#define CMV_SERVER_PROXY_PRIV_H

#include <pthread.h>
#include <cjson/cJSON.h>
#include "proxy.h"

#define PROXY_MAX_MODELS 16

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
};

/* ---- JSON spans over raw text (cJSON has validated it first) ---- */
typedef struct {
	const char *p, *end;
} pspan;
const char *pjs_ws(const char *p, const char *end);
/* The end of the value starting at p, or NULL when it is not one. */
const char *pjs_skip(const char *p, const char *end);
/* The value of top-level member `key` of the object in `obj`: 1 found, 0 not. */
int pjs_member(pspan *out, pspan obj, const char *key);

#endif
