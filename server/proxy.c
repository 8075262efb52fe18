/* SPDX-License-Identifier: MIT */
/*
 * The proxy's HTTP side (docs/proxy.md): libmicrohttpd in, libcurl out.
 *
 * Each client request gets a job: a worker thread builds the upstream body
 * (proxy_turn.c), calls the upstream with libcurl, and passes what comes
 * back to the client through a bounded queue that the connection's thread
 * drains. A full queue stalls the upstream read (backpressure); a client
 * that goes away cancels the upstream call (curl's progress callback).
 * Streams are filtered on the way: the recall tool's calls never reach the
 * client, and when the model called only the recall tool the proxy
 * answers, calls the upstream again, and the client's stream goes on as
 * one message (indices renumbered, one start, one end).
 *
 * One thread per connection: a streamed reply is long-lived, and each
 * connection's thread blocks on its job only. Workers are detached, and
 * counted: shutdown cancels them and waits for the last (jobs_stop).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "base/base.h"
#include "pager/pager_int.h"
#include "http.h"
#include "mcp.h"
#include "proxy_priv.h"

#define QUEUE_MAX ((size_t)4 << 20) /* bytes waiting for a slow client before the upstream read stalls */
#define MAX_HEADERS 64

/* An upstream handle: an idle one (its connections kept alive), else a new one. */
static CURL *handle_take(proxy *p)
{
	CURL *h = NULL;
	pthread_mutex_lock(&p->idle_mu);
	if (p->n_idle)
		h = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->idle_mu);
	return h ? h : curl_easy_init();
}

/* Back to the idle ones, its options cleared (curl_easy_reset keeps the connections and DNS answers). */
static void handle_give(proxy *p, CURL *h)
{
	if (!h)
		return;
	curl_easy_reset(h);
	pthread_mutex_lock(&p->idle_mu);
	if (p->n_idle < PROXY_IDLE_HANDLES) {
		p->idle[p->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&p->idle_mu);
	curl_easy_cleanup(h);
}

int proxy_new(proxy **out, cmv_repo *repo, const proxy_config *cfg)
{
	proxy *p = calloc(1, sizeof(*p));
	*out = NULL;
	if (!p)
		return cmv_error__oom();
	/* first: proxy_free, on the failures below too, waits on the jobs */
	pthread_mutex_init(&p->jobs_mu, NULL);
	pthread_cond_init(&p->jobs_cv, NULL);
	p->repo = repo;
	if (cfg)
		p->cfg = *cfg;
	/*
	 * CMV_PAGER_SPLICE=0: every window is the pager's whole work, never a
	 * kept request grown (docs/proxy.md, "How a request is handled"): the
	 * tests compare the two, and an operator can rule the short way out.
	 */
	const char *splice = getenv("CMV_PAGER_SPLICE");
	if (splice && !strcmp(splice, "0"))
		cmv__pager_splice = false;
	p->anthropic_url = strdup(p->cfg.anthropic_url ? p->cfg.anthropic_url : PROXY_ANTHROPIC_URL);
	p->openai_url = strdup(p->cfg.openai_url ? p->cfg.openai_url : PROXY_OPENAI_URL);
	p->token = p->cfg.token ? strdup(p->cfg.token) : NULL;
	if (!p->anthropic_url || !p->openai_url || (p->cfg.token && !p->token)) {
		proxy_free(p);
		return cmv_error__oom();
	}
	p->cfg.anthropic_url = p->anthropic_url;
	p->cfg.openai_url = p->openai_url;
	p->cfg.token = p->token;
	pthread_mutex_init(&p->lock, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/*
	 * Upstream handles are kept for the next request (handle_take): a
	 * request made its own connection (and, to a provider, its own TLS
	 * handshake) before its body could go.
	 */
	pthread_mutex_init(&p->idle_mu, NULL);
	*out = p;
	return 0;
}

static void jobs_stop(proxy *p);

void proxy_free(proxy *p)
{
	if (!p)
		return;
	jobs_stop(p); /* none are left once proxy_serve has returned: a guard, free as such */
	for (size_t i = 0; i < p->n_models; i++) {
		free(p->models[i].name);
		cmv_model_handle_free(p->models[i].h);
	}
	free(p->anthropic_url);
	free(p->openai_url);
	if (p->token) {
		memset(p->token, 0, strlen(p->token));
		free(p->token);
	}
	proxy_turn_cache_free(p);
	for (size_t i = 0; i < p->n_idle; i++)
		curl_easy_cleanup(p->idle[i]);
	pthread_mutex_destroy(&p->idle_mu);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->jobs_mu);
	pthread_cond_destroy(&p->jobs_cv);
	free(p);
}

proxy_api proxy_api_of(const char *path)
{
	size_t n = strcspn(path, "?");
	if (n >= 12 && !strncmp(path + n - 12, "/v1/messages", 12))
		return PROXY_API_ANTHROPIC;
	if (n >= 20 && !strncmp(path + n - 20, "/v1/chat/completions", 20))
		return PROXY_API_CHAT;
	if (n >= 13 && !strncmp(path + n - 13, "/v1/responses", 13))
		return PROXY_API_RESPONSES;
	return PROXY_API_NONE;
}

/* ---- a job: one client request, its upstream calls, and the queue between ---------------- */

typedef struct {
	/* the filter's state across upstream rounds */
	int map[256];           /* upstream index -> client index (-1: a recall call, hidden) */
	int next;               /* the next client index */
	long seq;               /* Responses: the client's sequence numbers */
	bool rewrite;           /* events are re-serialized (a hidden call was seen, or a later round) */
	bool ended;             /* the round's end event was seen (a stream cut short has none) */
	cmv_buf held;           /* the end events, held until the round is known to be the last */
	cmv_buf line;           /* an event being read */
	cJSON *start_usage;     /* Anthropic: this round's message_start usage (its delta may lack input counts) */
} sse_filter;

typedef struct job {
	proxy *p;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	struct job *next_job, *prev_job; /* p->jobs, while the worker runs */
	/* the request */
	char *method, *path;
	char *body;
	size_t len, cap; /* cap: body's allocation, from the Content-Length where there is one */
	bool over;
	char *headers[MAX_HEADERS];
	size_t n_headers;
	char *session_hint;
	bool has_key;
	proxy_api api;
	int fd; /* the client's socket, watched for a hang-up */
	/* the answer */
	bool status_ready, done, cancelled, stream;
	long status;
	char ctype[128];
	char *resp_headers[MAX_HEADERS];
	size_t n_resp_headers;
	cmv_buf q;   /* bytes for the client */
	size_t q_off;
	/* the upstream call in progress */
	cmv_buf resp;         /* a whole (non-streamed or error) body, or the stream's raw bytes for the record */
	bool pass;            /* the upstream's bytes go to the client as they are */
	sse_filter f;
	cmv_reply_stream *rs;
	const proxy_target *tg; /* where the call goes (the turn's; NULL: passed through) */
	xlate *xl;              /* the upstream's events as the client's API's (a translated target) */
	char xerr[256];         /* the upstream's stream failed (an error event, or unreadable) */
	char client_model[256];
	bool chat_usage;        /* a Chat client asked for the usage chunk */
	long up_status;
	struct timespec t0;
	double ttfb_ms;
	cJSON *usage_acc;     /* the usage of the rounds before this one (recall faults): the client is billed all */
} job;

static void job_unref(job *j)
{
	pthread_mutex_lock(&j->mu);
	int left = --j->refs;
	pthread_mutex_unlock(&j->mu);
	if (left)
		return;
	free(j->method);
	free(j->path);
	free(j->body);
	for (size_t i = 0; i < j->n_headers; i++) {
		/* headers may hold the client's key: wiped before they are freed */
		memset(j->headers[i], 0, strlen(j->headers[i]));
		free(j->headers[i]);
	}
	for (size_t i = 0; i < j->n_resp_headers; i++)
		free(j->resp_headers[i]);
	free(j->session_hint);
	cmv_buf_dispose(&j->q);
	cmv_buf_dispose(&j->resp);
	cmv_buf_dispose(&j->f.held);
	cmv_buf_dispose(&j->f.line);
	cJSON_Delete(j->f.start_usage);
	cJSON_Delete(j->usage_acc);
	cmv_reply_stream_free(j->rs);
	xlate_free(j->xl);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void job_cancel(job *j)
{
	pthread_mutex_lock(&j->mu);
	j->cancelled = true;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* A worker starts: false when the proxy is stopping (no job starts then). */
static bool jobs_enter(proxy *p, job *j)
{
	pthread_mutex_lock(&p->jobs_mu);
	bool ok = !p->stopping;
	if (ok) {
		j->prev_job = NULL;
		j->next_job = p->jobs;
		if (p->jobs)
			p->jobs->prev_job = j;
		p->jobs = j;
		p->n_jobs++;
	}
	pthread_mutex_unlock(&p->jobs_mu);
	return ok;
}

/* The worker's last use of the proxy: after this, p may be freed under it. */
static void jobs_leave(proxy *p, job *j)
{
	pthread_mutex_lock(&p->jobs_mu);
	if (j->prev_job)
		j->prev_job->next_job = j->next_job;
	else
		p->jobs = j->next_job;
	if (j->next_job)
		j->next_job->prev_job = j->prev_job;
	j->next_job = j->prev_job = NULL;
	p->n_jobs--;
	pthread_cond_broadcast(&p->jobs_cv);
	pthread_mutex_unlock(&p->jobs_mu);
}

/*
 * Shutdown: no job starts, every running one is cancelled, and this waits
 * until none runs. A cancelled worker ends on its own: its upstream call
 * aborts at curl's next progress callback (about once a second, an
 * unanswered connect included; the connect is given up after 30 s at the
 * most), a full queue or a status wait wakes on the cancel, and the paging
 * in between is CPU work that ends. The wait has no deadline: giving up
 * would leave workers using the proxy and the store after they are freed.
 */
static void jobs_stop(proxy *p)
{
	pthread_mutex_lock(&p->jobs_mu);
	p->stopping = true;
	for (job *j = p->jobs; j; j = j->next_job)
		job_cancel(j); /* j->mu under jobs_mu: the one order the two are taken in */
	while (p->n_jobs)
		pthread_cond_wait(&p->jobs_cv, &p->jobs_mu);
	pthread_mutex_unlock(&p->jobs_mu);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Bytes for the client; waits while the queue is full. Returns false when the client is gone. */
static bool job_emit(job *j, const char *data, size_t n)
{
	bool ok;
	pthread_mutex_lock(&j->mu);
	if (!j->ttfb_ms && n)
		j->ttfb_ms = ms_since(&j->t0);
	while (!j->cancelled && j->q.size - j->q_off > QUEUE_MAX)
		pthread_cond_wait(&j->cv, &j->mu);
	if ((ok = !j->cancelled)) {
		if (j->q_off && j->q_off == j->q.size) {
			cmv_buf_clear(&j->q);
			j->q_off = 0;
		}
		ok = cmv_buf_put(&j->q, data, n) == 0;
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return ok;
}

static void job_status(job *j, long status, const char *ctype)
{
	pthread_mutex_lock(&j->mu);
	if (!j->status_ready) {
		j->status = status;
		snprintf(j->ctype, sizeof(j->ctype), "%s", ctype ? ctype : "application/json");
		j->status_ready = true;
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* An error in the provider's shape, as the client's SDK reads one. */
static void job_error(job *j, long status, const char *kind, const char *msg)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char *text;
	if (j->api == PROXY_API_ANTHROPIC) {
		cJSON_AddStringToObject(o, "type", "error");
		e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "type", kind);
		cJSON_AddStringToObject(e, "message", msg);
	} else {
		e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "message", msg);
		cJSON_AddStringToObject(e, "type", kind);
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	pthread_mutex_lock(&j->mu);
	bool sent = j->status_ready;
	pthread_mutex_unlock(&j->mu);
	if (!sent) {
		job_status(j, status, "application/json");
		if (text)
			job_emit(j, text, strlen(text));
	} else if (text) {
		/* the stream is under way: the error is its last event */
		cmv_buf ev = CMV_BUF_INIT((size_t)1 << 20);
		if (j->api == PROXY_API_ANTHROPIC)
			cmv_buf_printf(&ev, "event: error\ndata: %s\n\n", text);
		else
			cmv_buf_printf(&ev, "data: %s\n\n", text);
		job_emit(j, ev.ptr, ev.size);
		cmv_buf_dispose(&ev);
	}
	cJSON_free(text);
}

/* ---- usage across rounds ---------------------------------------------------------------- */

/* Add every count of `u` into `acc` (members matched by name, nested objects too). */
static void usage_sum(cJSON *acc, const cJSON *u)
{
	for (const cJSON *m = u ? u->child : NULL; m && acc; m = m->next) {
		cJSON *a = m->string ? cJSON_GetObjectItemCaseSensitive(acc, m->string) : NULL;
		if (cJSON_IsNumber(m)) {
			if (cJSON_IsNumber(a))
				cJSON_SetNumberValue(a, a->valuedouble + m->valuedouble);
			else if (!a && m->string)
				cJSON_AddNumberToObject(acc, m->string, m->valuedouble);
		} else if (cJSON_IsObject(m) && m->string) {
			if (!a)
				a = cJSON_AddObjectToObject(acc, m->string);
			if (cJSON_IsObject(a))
				usage_sum(a, m);
		}
	}
}

/* Replace `holder`'s usage with the earlier rounds' sum plus its own (`base` first, `u` over it). */
static void usage_patch(job *j, cJSON *holder, const cJSON *base)
{
	cJSON *u = cJSON_GetObjectItemCaseSensitive(holder, "usage");
	cJSON *sum = cJSON_Duplicate(j->usage_acc, 1);
	if (!cJSON_IsObject(u) || !sum) {
		cJSON_Delete(sum);
		return;
	}
	cJSON *cur = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
	/* this round's counts: the start's, each overridden by the later event's */
	for (const cJSON *m = u->child; cur && m; m = m->next)
		if (m->string) {
			cJSON_DeleteItemFromObjectCaseSensitive(cur, m->string);
			cJSON_AddItemToObject(cur, m->string, cJSON_Duplicate(m, 1));
		}
	usage_sum(sum, cur);
	cJSON_Delete(cur);
	cJSON_ReplaceItemInObjectCaseSensitive(holder, "usage", sum);
}

/* ---- the stream filter ------------------------------------------------------------------ */

static void filter_round(sse_filter *f, int round)
{
	for (size_t i = 0; i < sizeof(f->map) / sizeof(f->map[0]); i++)
		f->map[i] = -2; /* not seen */
	if (round > 0)
		f->rewrite = true;
	f->ended = false;
}

static int map_index(sse_filter *f, cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 256)
		return 0;
	int i = (int)v->valuedouble;
	if (f->map[i] == -2)
		f->map[i] = f->next++;
	if (f->map[i] == -1)
		return -1;
	if (f->map[i] != i)
		f->rewrite = true;
	cJSON_SetNumberValue(v, f->map[i]);
	return 1;
}

static bool is_recall(const cJSON *o)
{
	const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
	return n && !strcmp(n, "cmv_recall");
}

/* What to do with one event: 0 drop, 1 pass (as `o` says when rewritten), 2 hold. */
static int filter_decide(job *j, cJSON *o, int round)
{
	sse_filter *f = &j->f;
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
	if (j->api == PROXY_API_ANTHROPIC) {
		if (!type)
			return 1;
		if (!strcmp(type, "message_start")) {
			cJSON_Delete(f->start_usage);
			f->start_usage = cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "message"), "usage"), 1);
			return round == 0;
		}
		if (!strcmp(type, "message_delta") && j->usage_acc)
			usage_patch(j, o, f->start_usage);
		if (!strcmp(type, "message_stop"))
			f->ended = true;
		if (!strcmp(type, "message_delta") || !strcmp(type, "message_stop"))
			return 2;
		if (!strcmp(type, "content_block_start")) {
			const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "content_block");
			const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "index");
			const char *bt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
			if (bt && !strcmp(bt, "tool_use") && is_recall(b) && cJSON_IsNumber(idx) && idx->valuedouble >= 0 &&
			    idx->valuedouble < 256) {
				f->map[(int)idx->valuedouble] = -1;
				f->rewrite = true;
				return 0;
			}
		}
		return map_index(f, o, "index") < 0 ? 0 : 1;
	}
	if (j->api == PROXY_API_RESPONSES) {
		if (!type)
			return 1;
		if (!strcmp(type, "response.created") || !strcmp(type, "response.in_progress"))
			return round == 0;
		if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete") ||
		    !strcmp(type, "response.failed")) {
			f->ended = true;
			cJSON *out = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "response"), "output");
			for (cJSON *it = out ? out->child : NULL, *next; it; it = next) {
				next = it->next;
				if (is_recall(it))
					cJSON_Delete(cJSON_DetachItemViaPointer(out, it));
			}
			if (j->usage_acc)
				usage_patch(j, cJSON_GetObjectItemCaseSensitive(o, "response"), NULL);
			return 2;
		}
		if (!strcmp(type, "response.output_item.added")) {
			const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "item");
			const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "output_index");
			if (is_recall(it) && cJSON_IsNumber(idx) && idx->valuedouble >= 0 && idx->valuedouble < 256) {
				f->map[(int)idx->valuedouble] = -1;
				f->rewrite = true;
				return 0;
			}
		}
		return map_index(f, o, "output_index") < 0 ? 0 : 1;
	}
	/* Chat Completions: chunks; the tool calls of the first choice, the finish and usage held */
	cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "usage")) && j->usage_acc)
		usage_patch(j, o, NULL);
	if (!choice)
		return cJSON_GetObjectItemCaseSensitive(o, "usage") ? 2 : 1;
	const cJSON *fin = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
	cJSON *tcs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "delta"), "tool_calls");
	for (cJSON *tc = tcs ? tcs->child : NULL, *next; tc; tc = next) {
		next = tc->next;
		const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
		if (is_recall(cJSON_GetObjectItemCaseSensitive(tc, "function")) && cJSON_IsNumber(idx) &&
		    idx->valuedouble >= 0 && idx->valuedouble < 256) {
			f->map[(int)idx->valuedouble] = -1;
			f->rewrite = true;
		}
		if (map_index(f, tc, "index") < 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(tcs, tc));
	}
	if (tcs && !cJSON_GetArraySize(tcs)) {
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "delta"), "tool_calls");
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(choice, "delta");
		if (!d || !d->child)
			return cJSON_IsString(fin) ? 2 : 0;
	}
	return cJSON_IsString(fin) ? 2 : 1;
}

/*
 * The data and event fields of one whole event (its lines, without the
 * blank line that ended it); the last of each counts. NULL where it has none.
 */
static void event_fields(const char *ev, size_t n, const char **data, size_t *data_len, const char **name,
			 size_t *name_len)
{
	*data = *name = NULL;
	*data_len = *name_len = 0;
	for (const char *p = ev, *end = ev + n; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
		if (l && p[l - 1] == '\r')
			l--;
		if (l >= 5 && !strncmp(p, "data:", 5)) {
			*data = p + 5 + (l > 5 && p[5] == ' ');
			*data_len = l - (size_t)(*data - p);
		} else if (l >= 6 && !strncmp(p, "event:", 6)) {
			*name = p + 6 + (l > 6 && p[6] == ' ');
			*name_len = l - (size_t)(*name - p);
		}
		p = e ? e + 1 : end;
	}
}

/* One whole event (its lines, without the blank line that ended it). */
static bool filter_event(job *j, const char *ev, size_t n, int round)
{
	const char *data, *name;
	size_t data_len, name_len;
	event_fields(ev, n, &data, &data_len, &name, &name_len);
	if (!data)
		return job_emit(j, ev, n) && job_emit(j, "\n\n", 2);
	if (data_len == 6 && !strncmp(data, "[DONE]", 6)) {
		j->f.ended = true;
		return cmv_buf_put(&j->f.held, "data: [DONE]\n\n", 14) == 0;
	}
	cJSON *o = cJSON_ParseWithLength(data, data_len);
	if (!o)
		return job_emit(j, ev, n) && job_emit(j, "\n\n", 2);
	int what = filter_decide(j, o, round);
	bool ok = true;
	if (what) {
		cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
		char *text = NULL;
		if (j->api == PROXY_API_RESPONSES) {
			cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "sequence_number");
			if (cJSON_IsNumber(s) && s->valuedouble != (double)j->f.seq) {
				cJSON_SetNumberValue(s, (double)j->f.seq);
				j->f.rewrite = true;
			}
			j->f.seq++;
		}
		if (j->f.rewrite || what == 2) {
			text = cJSON_PrintUnformatted(o);
			if (name)
				cmv_buf_printf(&out, "event: %.*s\n", (int)name_len, name);
			cmv_buf_printf(&out, "data: %s\n\n", text ? text : "{}");
		} else {
			cmv_buf_put(&out, ev, n);
			cmv_buf_puts(&out, "\n\n");
		}
		if (what == 2)
			ok = cmv_buf_put(&j->f.held, out.ptr, out.size) == 0;
		else
			ok = job_emit(j, out.ptr, out.size);
		cJSON_free(text);
		cmv_buf_dispose(&out);
	}
	cJSON_Delete(o);
	return ok;
}

/* Events in the client's API, whole ("...\n\n" each), through the filter. */
static bool client_events(job *j, const cmv_buf *evs, int round)
{
	for (size_t at = 0; at < evs->size;) {
		const char *e = memmem(evs->ptr + at, evs->size - at, "\n\n", 2);
		size_t n = e ? (size_t)(e - (evs->ptr + at)) : evs->size - at;
		if (n && !filter_event(j, evs->ptr + at, n, round))
			return false;
		at += n + 2;
	}
	return true;
}

/* One upstream event of another API: written as the client's, then filtered as the client's own. */
static bool translate_event(job *j, const char *ev, size_t n, int round)
{
	const char *data, *name;
	size_t data_len, name_len;
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 30);
	bool ok = true;
	event_fields(ev, n, &data, &data_len, &name, &name_len);
	if (data && xlate_event(j->xl, data, data_len, &out) < 0) {
		snprintf(j->xerr, sizeof(j->xerr), "%s", cmv_error_last()->message);
		cmv_error_clear();
		ok = false;
	}
	if (ok && out.size)
		ok = client_events(j, &out, round);
	cmv_buf_dispose(&out);
	return ok;
}

/* ---- the upstream call -------------------------------------------------------------------- */

typedef struct {
	job *j;
	int round;
} call_ctx;

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	call_ctx *c = ud;
	job *j = c->j;
	size_t len = size * n;
	static const char *keep[] = { "content-type:", "request-id:", "x-request-id:", "retry-after:", "anthropic-",
				      "openai-", "x-ratelimit-", NULL };
	if (len > 5 && !strncmp(buf, "HTTP/", 5)) {
		/* "HTTP/1.1 200 OK" and "HTTP/2 200": the code follows the first space */
		const char *sp = memchr(buf, ' ', len);
		j->up_status = sp && (size_t)(sp - buf) + 4 <= len ? strtol(sp + 1, NULL, 10) : 0;
		return len;
	}
	if (c->round > 0 || j->n_resp_headers >= MAX_HEADERS)
		return len;
	/* another provider's headers mean nothing to the client: its content type only (read, not passed) */
	if (j->tg && j->tg->translated && strncasecmp(buf, "content-type:", 13))
		return len;
	for (int i = 0; keep[i]; i++)
		if (!strncasecmp(buf, keep[i], strlen(keep[i]))) {
			size_t l = len;
			while (l && (buf[l - 1] == '\r' || buf[l - 1] == '\n'))
				l--;
			if ((j->resp_headers[j->n_resp_headers] = strndup(buf, l)))
				j->n_resp_headers++;
			break;
		}
	return len;
}

static const char *resp_header(job *j, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < j->n_resp_headers; i++)
		if (!strncasecmp(j->resp_headers[i], name, n) && j->resp_headers[i][n] == ':') {
			const char *v = j->resp_headers[i] + n + 1;
			while (*v == ' ')
				v++;
			return v;
		}
	return NULL;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
	call_ctx *c = ud;
	job *j = c->j;
	size_t len = size * n;
	if (j->resp.size + len > PROXY_MAX_RESPONSE)
		return 0; /* over the limit: curl stops with a write error */
	if (!j->pass && j->up_status != 200) {
		/* held: the request may fail over, or its error be written in the client's API */
		return cmv_buf_put(&j->resp, buf, len) == 0 ? len : 0;
	}
	if (j->pass || j->up_status != 200) {
		/* passed as it comes; an error body is also kept, for the log's reason */
		if (c->round == 0) {
			const char *ct = resp_header(j, "content-type");
			job_status(j, j->up_status, ct);
			return job_emit(j, buf, len) ? len : 0;
		}
		return cmv_buf_put(&j->resp, buf, len) == 0 ? len : 0;
	}
	if (!j->stream)
		return cmv_buf_put(&j->resp, buf, len) == 0 ? len : 0;
	job_status(j, 200, "text/event-stream");
	if (cmv_reply_stream_feed(j->rs, buf, len) < 0)
		cmv_error_clear(); /* the record is checked once the stream ends */
	/* split into events at blank lines */
	if (cmv_buf_put(&j->f.line, buf, len) < 0)
		return 0;
	size_t start = 0;
	for (size_t i = 0; i + 1 < j->f.line.size; i++) {
		const char *p = j->f.line.ptr;
		size_t skip = 0;
		if (p[i] == '\n' && p[i + 1] == '\n')
			skip = 2;
		else if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < j->f.line.size && p[i + 2] == '\n')
			skip = 3;
		if (!skip)
			continue;
		size_t l = i - start;
		if (l && p[start + l - 1] == '\r')
			l--;
		if (l && !(j->xl ? translate_event(j, p + start, l, c->round) : filter_event(j, p + start, l, c->round)))
			return 0;
		start = i + skip;
		i = start - 1;
	}
	if (start) {
		memmove(j->f.line.ptr, j->f.line.ptr + start, j->f.line.size - start);
		j->f.line.size -= start;
		j->f.line.ptr[j->f.line.size] = '\0';
	}
	return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	call_ctx *c = ud;
	(void)a, (void)b, (void)c2, (void)d;
	pthread_mutex_lock(&c->j->mu);
	bool gone = c->j->cancelled;
	pthread_mutex_unlock(&c->j->mu);
	return gone; /* non-zero aborts the transfer */
}

/* The upstream URL: the provider's base and the client's path, one "/v1" between them. */
static int upstream_url(cmv_buf *out, job *j)
{
	const char *base = j->api == PROXY_API_ANTHROPIC || strstr(j->path, "/messages") ? j->p->anthropic_url
											  : j->p->openai_url;
	const char *path = j->path;
	const proxy_target *tg = j->tg;
	if (tg && (tg->translated || tg->base_url)) {
		/* another API, or the model's own endpoint: its path, none of the client's query */
		base = tg->base_url ? tg->base_url : tg->api == PROXY_API_ANTHROPIC ? j->p->anthropic_url : j->p->openai_url;
		path = tg->api == PROXY_API_ANTHROPIC ? "/v1/messages"
			: tg->api == PROXY_API_CHAT ? "/v1/chat/completions" : "/v1/responses";
	}
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	if (bl >= 3 && !strncmp(base + bl - 3, "/v1", 3) && !strncmp(path, "/v1", 3) && (path[3] == '/' || !path[3]))
		path += 3;
	return cmv_buf_printf(out, "%.*s%s", (int)bl, base, path);
}

/* Whether a client header goes upstream: all but hop-by-hop ones and the proxy's own. */
static bool forwarded(const char *name)
{
	static const char *drop[] = { "host", "content-length", "connection", "transfer-encoding", "accept-encoding",
				      "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection",
				      "x-cmv-token", "expect", NULL };
	for (int i = 0; drop[i]; i++)
		if (!strcasecmp(name, drop[i]))
			return false;
	return true;
}

/* One call upstream; its answer goes through the job. Returns the transfer's result. */
static CURLcode call_upstream(job *j, const char *body, size_t len, int round)
{
	CURL *h = handle_take(j->p);
	struct curl_slist *hdrs = NULL;
	cmv_buf url = CMV_BUF_INIT(1 << 16);
	call_ctx c = { j, round };
	CURLcode rc;
	char *keyhdr = NULL;

	if (!h || upstream_url(&url, j) < 0) {
		handle_give(j->p, h);
		cmv_buf_dispose(&url);
		return CURLE_OUT_OF_MEMORY;
	}
	const proxy_target *tg = j->tg;
	bool own = !tg || tg->own_key;
	proxy_api up = tg ? tg->api : j->api;
	for (size_t i = 0; i < j->n_headers; i++) {
		const char *hd = j->headers[i];
		/* the client's key goes only to its own provider, and no provider's headers to another */
		if (!own && (!strncasecmp(hd, "x-api-key:", 10) || !strncasecmp(hd, "authorization:", 14) ||
			     !strncasecmp(hd, "anthropic-", 10) || !strncasecmp(hd, "openai-", 7)))
			continue;
		hdrs = curl_slist_append(hdrs, hd);
	}
	if (!own && up == PROXY_API_ANTHROPIC)
		hdrs = curl_slist_append(hdrs, "anthropic-version: 2023-06-01");
	if (!j->has_key || !own) {
		/* the upstream's key from the environment (the model's profile may name the variable), read now, not kept */
		const char *var = tg && tg->key_env ? tg->key_env : up == PROXY_API_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
		const char *k = getenv(var);
		if (k && *k && asprintf(&keyhdr, up == PROXY_API_ANTHROPIC ? "x-api-key: %s" : "Authorization: Bearer %s", k) > 0)
			hdrs = curl_slist_append(hdrs, keyhdr);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (keyhdr) {
		memset(keyhdr, 0, strlen(keyhdr));
		free(keyhdr);
	}
	j->up_status = 0;
	cmv_buf_clear(&j->resp);
	cmv_buf_clear(&j->f.line);
	if (round == 0) {
		/* a model failed over from: its headers are not the answer's */
		for (size_t i = 0; i < j->n_resp_headers; i++)
			free(j->resp_headers[i]);
		j->n_resp_headers = 0;
	}
	curl_easy_setopt(h, CURLOPT_URL, url.ptr);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, j->method);
	if (strcmp(j->method, "GET") && strcmp(j->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (!strcmp(j->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (j->p->cfg.timeout_s) {
		/* an upstream silent this long has failed (and the request fails over) */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)j->p->cfg.timeout_s);
	}
	rc = curl_easy_perform(h);
	if (j->up_status == 0)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &j->up_status);
	/* the header copies curl made hold keys (the client's, the environment's): wiped before they are freed */
	for (struct curl_slist *e = hdrs; e; e = e->next)
		if (e->data)
			memset(e->data, 0, strlen(e->data));
	curl_slist_free_all(hdrs);
	handle_give(j->p, h);
	cmv_buf_dispose(&url);
	return rc;
}

static const char *api_format_name(proxy_api api)
{
	return api == PROXY_API_ANTHROPIC ? "anthropic" : api == PROXY_API_CHAT ? "openai-chat" : "openai-responses";
}

/* An upstream's error status as the client's API names its kind. */
static const char *error_kind(proxy_api api, long status)
{
	if (api == PROXY_API_ANTHROPIC)
		return status == 429 ? "rate_limit_error" : status == 529 ? "overloaded_error"
			: status == 401 ? "authentication_error" : status == 403 ? "permission_error"
			: status == 404 ? "not_found_error" : status >= 500 ? "api_error" : "invalid_request_error";
	return status == 429 ? "rate_limit_exceeded" : status == 401 ? "invalid_api_key"
		: status >= 500 ? "server_error" : "invalid_request_error";
}

static void log_line(job *j, proxy_turn *t, const char *what)
{
	if (j->p->cfg.quiet)
		return;
	if (!t) {
		/* the path without its query: a client may put a key there, and no key is logged */
		fprintf(stderr, "cmv proxy: %s %.*s: %ld%s%s\n", j->method, (int)strcspn(j->path, "?"), j->path, j->status,
			what ? ": " : "", what ? what : "");
		return;
	}
	const proxy_turn_stats *s = proxy_turn_stats_get(t);
	if (s->side) {
		fprintf(stderr, "cmv proxy: %s: %ld, passed through (not the session's line)\n", proxy_turn_branch(t), j->status);
		return;
	}
	const proxy_target *tg = proxy_turn_target(t);
	/* the rule the count followed: the last reply's bill, or cmv's own count and why */
	char rule[CMV_PAGER_WHY_MAX + 64];
	if (s->anchored)
		snprintf(rule, sizeof(rule), "anchored on the last bill (%+lld)", (long long)s->correction);
	else
		snprintf(rule, sizeof(rule), "counted plainly (%s)", s->unanchored[0] ? s->unanchored : "no anchor");
	fprintf(stderr,
		"cmv proxy: %s: %ld, %s%s%s%s, %zu failovers%s, +%zu messages, %llu/%llu tokens (%llu unpaged), %zu stubbed, "
		"%zu evicted, tools %zu/%zu stubbed, %zu faults, %zu recall rounds, window %s, %s, first byte %.1f ms%s%s\n",
		proxy_turn_branch(t), j->status, tg->model ? tg->model : "?", tg->translated ? " (translated to " : "",
		tg->translated ? api_format_name(tg->api) : "", tg->translated ? ")" : "", s->failovers,
		s->switched ? ", switch recorded" : "", s->appended, (unsigned long long)s->tokens, (unsigned long long)s->budget,
		(unsigned long long)s->tokens_full, s->stubbed, s->evicted, s->n_tools_stubbed, s->n_tools, s->faults,
		s->rounds, s->window == 'g' ? "grown" : s->window == 'w' ? "paged whole" : "as kept", rule, j->ttfb_ms,
		what ? ": " : "", what ? what : "");
}

static void *job_run(void *arg)
{
	job *j = arg;
	proxy_turn *t = NULL;
	const char *why = NULL;
	char whybuf[512];

	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	if (j->over) {
		job_error(j, 413, "request_too_large", "cmv proxy: the request is too large");
		goto done;
	}
	if (j->api == PROXY_API_NONE || strcmp(j->method, "POST")) {
		j->pass = true;
		CURLcode rc = call_upstream(j, j->body ? j->body : "", j->len, 0);
		if (rc != CURLE_OK && !j->status_ready)
			job_error(j, 502, "api_error", curl_easy_strerror(rc));
		goto done;
	}
	if (proxy_turn_new(&t, j->p, j->api, j->session_hint, j->body ? j->body : "", j->len) < 0) {
		const cmv_error *e = cmv_error_last();
		snprintf(whybuf, sizeof(whybuf), "cmv proxy: %s", e->message);
		job_error(j, e->code == CMV_EINVALID || e->code == CMV_EBUDGET || e->code == CMV_ETOOBIG ? 400 : 500,
			  "invalid_request_error", whybuf);
		why = whybuf;
		goto done;
	}
	j->stream = proxy_turn_streams(t);
	size_t len;
	const char *up = proxy_turn_upstream(t, &len);
	if (!up) {
		j->pass = true;
		CURLcode rc = call_upstream(j, j->body, j->len, 0);
		if (rc != CURLE_OK && !j->status_ready)
			job_error(j, 502, "api_error", curl_easy_strerror(rc));
		goto done;
	}
	j->tg = proxy_turn_target(t);
	{
		/* from the turn's parse, which left the messages out: parsing the whole body again was most of a turn's CPU */
		const cJSON *b = proxy_turn_client(t);
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "model"));
		snprintf(j->client_model, sizeof(j->client_model), "%s", m ? m : "");
		const cJSON *so = cJSON_GetObjectItemCaseSensitive(b, "stream_options");
		j->chat_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
	}
	for (int round = 0, tries = 0; round < PROXY_MAX_ROUNDS; round++) {
		bool again = false;
		j->tg = proxy_turn_target(t);
		cmv_reply_stream_free(j->rs);
		j->rs = NULL;
		xlate_free(j->xl);
		j->xl = NULL;
		j->xerr[0] = '\0';
		if ((j->stream && cmv_reply_stream_new(&j->rs, api_format_name(j->tg->api)) < 0) ||
		    (j->tg->translated && xlate_new(&j->xl, j->tg->api, j->api, j->client_model, j->tg->custom,
						    j->chat_usage) < 0)) {
			job_error(j, 500, "api_error", "cmv proxy: out of memory");
			break;
		}
		filter_round(&j->f, round);
		cmv_buf_clear(&j->f.held);
		CURLcode rc = call_upstream(j, up, len, round);
		pthread_mutex_lock(&j->mu);
		bool gone = j->cancelled, sent = j->status_ready;
		pthread_mutex_unlock(&j->mu);
		if (gone) {
			pthread_mutex_lock(&j->p->jobs_mu);
			why = j->p->stopping ? "the proxy is stopping: the upstream call was cancelled"
					     : "the client went away: the upstream call was cancelled";
			pthread_mutex_unlock(&j->p->jobs_mu);
			break;
		}
		if (rc == CURLE_OK && j->up_status == 200 && !j->xerr[0] && j->xl && j->stream) {
			/* a Chat stream that ended without [DONE]; a stream cut short has no end */
			cmv_buf tail = CMV_BUF_INIT((size_t)1 << 20);
			if (xlate_end(j->xl, &tail) == 0)
				client_events(j, &tail, round);
			cmv_buf_dispose(&tail);
		}
		if (rc == CURLE_OK && j->up_status == 200 && !j->xerr[0] && j->stream &&
		    (j->xl ? !xlate_finished(j->xl) : !j->f.ended && j->api != PROXY_API_CHAT))
			snprintf(j->xerr, sizeof(j->xerr), "the upstream's stream ended before its end event");
		if (rc != CURLE_OK || j->up_status != 200 || j->xerr[0]) {
			char msg[256] = "";
			bool retry = j->xerr[0] || j->up_status == 408 || j->up_status == 429 || j->up_status >= 500 ||
				     (rc != CURLE_OK && rc != CURLE_WRITE_ERROR && rc != CURLE_OUT_OF_MEMORY);
			if (j->xerr[0])
				snprintf(whybuf, sizeof(whybuf), "%s", j->xerr);
			else if (rc != CURLE_OK)
				snprintf(whybuf, sizeof(whybuf), "%s", curl_easy_strerror(rc));
			else
				snprintf(whybuf, sizeof(whybuf), "upstream %ld%s%s", j->up_status,
					 *xlate_error_message(j->resp.ptr ? j->resp.ptr : "", j->resp.size, msg, sizeof(msg)) ? ": " : "",
					 msg);
			why = whybuf;
			if (retry && !sent && tries < PROXY_MAX_MODELS && proxy_turn_next(t, whybuf) > 0) {
				/* nothing reached the client yet: the same request goes to the next model */
				tries++;
				up = proxy_turn_upstream(t, &len);
				round--;
				continue;
			}
			if (sent || round > 0) {
				/* partly streamed: never restarted silently; the stream ends with an error, and the
				   client's retry goes to the next model (a failover recorded now) */
				char m2[600];
				snprintf(m2, sizeof(m2), "cmv proxy: the upstream failed mid-answer (%s)%s", whybuf,
					 retry && proxy_turn_next(t, whybuf) > 0 && proxy_turn_settle(t, whybuf) == 0
						 ? "; the session fails over: retry the request" : "");
				job_error(j, 502, j->api == PROXY_API_ANTHROPIC ? "overloaded_error" : "server_error", m2);
			} else if (rc != CURLE_OK) {
				char m2[600];
				snprintf(m2, sizeof(m2), "cmv proxy: the upstream call failed: %s", whybuf);
				job_error(j, 502, "api_error", m2);
			} else if (!j->tg->translated) {
				/* the provider's own error, as it came */
				job_status(j, j->up_status, resp_header(j, "content-type"));
				job_emit(j, j->resp.ptr ? j->resp.ptr : "", j->resp.size);
			} else {
				job_error(j, j->up_status, error_kind(j->api, j->up_status), *msg ? msg : whybuf);
			}
			break;
		}
		if (round == 0 && proxy_turn_settle(t, NULL) < 0) {
			/* the answer stands; the record of the switch is the proxy's to report */
			snprintf(whybuf, sizeof(whybuf), "the switch was not recorded: %s", cmv_error_last()->message);
			why = whybuf;
			cmv_error_clear();
		}
		cmv_buf body = CMV_BUF_INIT(PROXY_MAX_RESPONSE * 2);
		int err = 0;
		if (j->stream)
			err = cmv_reply_stream_body(&body, j->rs);
		else
			err = cmv_buf_set(&body, j->resp.ptr, j->resp.size);
		if (!err)
			err = proxy_turn_reply(t, body.ptr, body.size, &again);
		if (err < 0) {
			/* the reply goes to the client all the same: the record's failure is the proxy's to report */
			snprintf(whybuf, sizeof(whybuf), "the reply was not recorded: %s", cmv_error_last()->message);
			why = whybuf;
			again = false;
		}
		if (again) {
			/* this round's usage is the client's too: added to what the last round reports */
			cJSON *rb = cJSON_ParseWithLength(body.ptr, body.size);
			if (!j->usage_acc)
				j->usage_acc = cJSON_CreateObject();
			usage_sum(j->usage_acc, cJSON_GetObjectItemCaseSensitive(rb, "usage"));
			cJSON_Delete(rb);
			cmv_buf_dispose(&body);
			up = proxy_turn_upstream(t, &len);
			continue;
		}
		if (j->stream) {
			job_emit(j, j->f.held.ptr, j->f.held.size);
		} else if (j->tg->translated) {
			cmv_buf out = CMV_BUF_INIT(PROXY_MAX_RESPONSE * 2);
			if (xlate_body(&out, j->tg->api, j->api, j->client_model, j->tg->custom, j->resp.ptr ? j->resp.ptr : "",
				       j->resp.size) < 0) {
				snprintf(whybuf, sizeof(whybuf), "cmv proxy: the upstream's reply could not be translated: %s",
					 cmv_error_last()->message);
				job_error(j, 502, "api_error", whybuf);
				why = whybuf;
			} else {
				job_status(j, 200, "application/json");
				job_emit(j, out.ptr, out.size);
			}
			cmv_buf_dispose(&out);
		} else {
			cJSON *rb = j->usage_acc ? cJSON_ParseWithLength(j->resp.ptr, j->resp.size) : NULL;
			char *text = NULL;
			if (rb) {
				usage_patch(j, rb, NULL);
				text = cJSON_PrintUnformatted(rb);
				cJSON_Delete(rb);
			}
			job_status(j, 200, resp_header(j, "content-type"));
			if (text)
				job_emit(j, text, strlen(text));
			else
				job_emit(j, j->resp.ptr, j->resp.size);
			cJSON_free(text);
		}
		cmv_buf_dispose(&body);
		break;
	}
done:
	if (!j->status_ready)
		job_error(j, 502, "api_error", "cmv proxy: no answer from the upstream");
	pthread_mutex_lock(&j->mu);
	j->done = true;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	log_line(j, t, why);
	proxy_turn_free(t);
	jobs_leave(j->p, j);
	job_unref(j);
	return NULL;
}

/* ---- libmicrohttpd ---------------------------------------------------------------------- */

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	job *j = cls;
	ssize_t n;
	(void)pos;
	pthread_mutex_lock(&j->mu);
	while (j->q.size == j->q_off && !j->done && !j->cancelled) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&j->cv, &j->mu, &ts);
	}
	if (j->q.size > j->q_off) {
		size_t k = j->q.size - j->q_off;
		n = (ssize_t)(k < max ? k : max);
		memcpy(buf, j->q.ptr + j->q_off, (size_t)n);
		j->q_off += (size_t)n;
		if (j->q_off == j->q.size) {
			cmv_buf_clear(&j->q);
			j->q_off = 0;
		}
	} else {
		n = j->cancelled ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
	}
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return n;
}

static void reader_free(void *cls)
{
	job *j = cls;
	job_cancel(j); /* a no-op once the job is done; else the client left mid-stream */
	job_unref(j);
}

typedef struct {
	job *j;
	size_t url_skip; /* the /t/TOKEN prefix of the path, checked and never forwarded */
} conn;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	job *j = cls;
	(void)kind;
	if (!strcasecmp(key, "x-api-key") || !strcasecmp(key, "authorization"))
		j->has_key = true;
	if ((!strcasecmp(key, "session_id") || !strcasecmp(key, "conversation_id") ||
	     !strcasecmp(key, "x-claude-code-session-id")) && !j->session_hint)
		j->session_hint = strdup(value);
	if (forwarded(key) && j->n_headers < MAX_HEADERS) {
		char *h = NULL;
		if (asprintf(&h, "%s: %s", key, value ? value : "") > 0)
			j->headers[j->n_headers++] = h;
	}
	return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	job *j = cls;
	char *np = NULL;
	(void)kind;
	/* libmicrohttpd hands them decoded: encoded again, or a %26 in a value would become a new parameter */
	char *ek = curl_easy_escape(NULL, key, 0), *ev = value ? curl_easy_escape(NULL, value, 0) : NULL;
	if (ek && (!value || ev) &&
	    asprintf(&np, "%s%c%s%s%s", j->path, strchr(j->path, '?') ? '&' : '?', ek, value ? "=" : "", ev ? ev : "") > 0) {
		free(j->path);
		j->path = np;
	}
	curl_free(ek);
	curl_free(ev);
	return MHD_YES;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Whether the client's socket was closed (a hang-up while its answer is being made). */
static bool client_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
	return fd >= 0 && poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	proxy *p = cls;
	conn *k = *con_cls;
	(void)version;
	if (!k) {
		/*
		 * The first call has the headers only: every check that needs no body is made
		 * here, so a client without the token is refused before any body is read (a
		 * body is held whole, up to PROXY_MAX_REQUEST, on each connection).
		 */
		if (!(k = calloc(1, sizeof(*k))))
			return MHD_NO;
		*con_cls = k;
		/* a path is forwarded as base + path: it must be one ("@host/..." would name another host) */
		if (url[0] != '/')
			return respond_text(c, 400, "cmv proxy: the request target must be a path starting with /\n");
		/* the proxy's token: a header, or the first path segment /t/TOKEN (for clients that set a base URL only) */
		const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Cmv-Token");
		char given[256] = "";
		if (!strncmp(url, "/t/", 3)) {
			size_t n = strcspn(url + 3, "/");
			if (!tok)
				snprintf(given, sizeof(given), "%.*s", (int)(n < 255 ? n : 255), url + 3);
			k->url_skip = 3 + n; /* never forwarded, token or not: it is a secret in a path */
		}
		if (tok)
			snprintf(given, sizeof(given), "%s", tok);
		if (p->token && !srv_secret_equal(given, p->token))
			return respond_text(c, 401, "cmv proxy: a token is required (X-Cmv-Token, or a base URL ending in /t/TOKEN)\n");
		if (!p->token && k->url_skip)
			return respond_text(c, 404, "cmv proxy: /t/TOKEN given, but this proxy has no token (set CMV_PROXY_TOKEN)\n");
		const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
		if (origin && !srv_origin_ok(origin))
			return respond_text(c, 403, "cmv proxy: requests from this Origin are refused\n");
		return MHD_YES;
	}
	if (!k->j) {
		if (!(k->j = calloc(1, sizeof(*k->j))))
			return MHD_NO;
		k->j->p = p;
		k->j->refs = 1;
		k->j->fd = -1;
		pthread_mutex_init(&k->j->mu, NULL);
		pthread_cond_init(&k->j->cv, NULL);
		cmv_buf_init(&k->j->q, (size_t)1 << 31);
		cmv_buf_init(&k->j->resp, PROXY_MAX_RESPONSE + 1);
		cmv_buf_init(&k->j->f.held, (size_t)1 << 28);
		cmv_buf_init(&k->j->f.line, PROXY_MAX_RESPONSE + 1);
	}
	job *j = k->j;
	if (*upload_size) {
		if (!j->over && j->len + *upload_size <= PROXY_MAX_REQUEST) {
			if (j->len + *upload_size + 1 > j->cap) {
				/*
				 * Sized once from the Content-Length (a 566 KB body came in
				 * chunks and was copied again at each realloc), else doubled.
				 */
				const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
				unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
				size_t need = j->len + *upload_size + 1, nc = j->cap * 2 > need ? j->cap * 2 : need;
				if (!j->cap && want >= *upload_size && want <= PROXY_MAX_REQUEST)
					nc = (size_t)want + 1 > need ? (size_t)want + 1 : need;
				if (nc > PROXY_MAX_REQUEST + 1)
					nc = PROXY_MAX_REQUEST + 1;
				char *nb = realloc(j->body, nc);
				if (!nb)
					return MHD_NO;
				j->body = nb;
				j->cap = nc;
			}
			memcpy(j->body + j->len, upload, *upload_size);
			j->len += *upload_size;
			j->body[j->len] = '\0';
		} else {
			j->over = true; /* read and dropped: the answer is a 413 */
		}
		*upload_size = 0;
		return MHD_YES;
	}
	url += k->url_skip;
	if (!(j->method = strdup(method)) || !(j->path = strdup(url)))
		return MHD_NO;
	/* the query string (Claude Code's ?beta=true) goes upstream too */
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, j);
	j->api = proxy_api_of(url);
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, j);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	j->fd = ci ? ci->connect_fd : -1;

	pthread_t th;
	if (!jobs_enter(p, j))
		return respond_text(c, 503, "cmv proxy: shutting down\n");
	j->refs++; /* the worker's */
	if (pthread_create(&th, NULL, job_run, j) != 0) {
		j->refs--;
		jobs_leave(p, j);
		return respond_text(c, 503, "cmv proxy: cannot start a worker\n");
	}
	pthread_detach(th);
	/* wait for the status line (a stream) or the whole answer, watching for a hang-up */
	pthread_mutex_lock(&j->mu);
	while (!j->done && !j->cancelled && !(j->status_ready && j->stream && j->status == 200)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&j->cv, &j->mu, &ts);
		if (!j->done && client_gone(j->fd)) {
			j->cancelled = true;
			pthread_cond_broadcast(&j->cv);
		}
	}
	bool cancelled = j->cancelled, done = j->done;
	pthread_mutex_unlock(&j->mu);
	if (cancelled && !done)
		return MHD_NO;
	struct MHD_Response *r;
	if (done && !(j->stream && j->status == 200)) {
		r = MHD_create_response_from_buffer(j->q.size - j->q_off, j->q.ptr + j->q_off, MHD_RESPMEM_MUST_COPY);
	} else {
		j->refs++; /* the response's */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader, j, reader_free);
		if (!r)
			j->refs--;
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", j->ctype);
	for (size_t i = 0; i < j->n_resp_headers; i++) {
		char *colon = strchr(j->resp_headers[i], ':');
		if (!colon || !strncasecmp(j->resp_headers[i], "content-type:", 13))
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		MHD_add_response_header(r, j->resp_headers[i], v);
		*colon = ':';
	}
	if (j->stream)
		MHD_add_response_header(r, "Cache-Control", "no-cache");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned int)j->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
	conn *k = *con_cls;
	(void)cls;
	(void)c;
	if (k) {
		if (k->j) {
			if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK)
				job_cancel(k->j);
			job_unref(k->j);
		}
		free(k);
		*con_cls = NULL;
	}
}

int proxy_serve(proxy *p, const char *addr, volatile sig_atomic_t *stop,
		void (*ready)(unsigned int port, void *payload), void *payload)
{
	char host[256], port[16];
	unsigned int bound = 0;
	int error;

	if ((error = srv_addr_parse(host, port, addr, "--listen")) < 0)
		return error;
	if (!mcp_host_is_loopback(host) && !p->token)
		return cmv_error__set(CMV_EINVALID, "--listen %s is not a loopback address: a token is required", addr);
	struct MHD_OptionItem options[] = {
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_done, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, 512, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, 600, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 256 * 1024, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	/* a proxy served again: before the listener opens, or its first requests get 503s */
	pthread_mutex_lock(&p->jobs_mu);
	p->stopping = false;
	pthread_mutex_unlock(&p->jobs_mu);
	struct MHD_Daemon *d = srv_daemon_start(&bound, host, port,
						 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
							 MHD_USE_ERROR_LOG,
						 on_request, p, options);
	if (!d)
		return cmv_error_last()->code;
	/*
	 * WAL checkpoints off the request path (docs/store.md, "Checkpoints"):
	 * under the store's lock, as jobs (detached) use the connection under it.
	 * A failure leaves SQLite's own checkpoints: slower, as safe.
	 */
	pthread_mutex_lock(&p->lock);
	cmv_repo_checkpoint_background(p->repo, 1);
	pthread_mutex_unlock(&p->lock);
	if (ready)
		ready(bound, payload);
	while (!*stop)
		usleep(100000);
	/*
	 * The workers are detached: each is cancelled and waited for here, so
	 * that none uses the proxy or the store once this returns (the caller
	 * frees both). Before MHD_stop_daemon: the connections' threads, each
	 * waiting on its job, then end as their jobs do.
	 */
	jobs_stop(p);
	MHD_stop_daemon(d);
	pthread_mutex_lock(&p->lock);
	cmv_repo_checkpoint_background(p->repo, 0);
	pthread_mutex_unlock(&p->lock);
	return 0;
}
