/* SPDX-License-Identifier: MIT */
/* The proxy in this process and a scripted upstream, for the proxy benches (proxy_inproc.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "proxy_inproc.h"

static void on_ready(unsigned int port, void *payload)
{
	bench_proxy_run *r = payload;
	pthread_mutex_lock(&r->mu);
	r->port = port;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void *serve(void *arg)
{
	bench_proxy_run *r = arg;
	r->rc = proxy_serve(r->p, "127.0.0.1:0", &r->stop, on_ready, r);
	pthread_mutex_lock(&r->mu);
	r->port = r->port ? r->port : 1; /* wake the waiter on a failed start */
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int bench_proxy_run_start(bench_proxy_run *r, proxy *p)
{
	memset(r, 0, sizeof(*r));
	r->p = p;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->th, NULL, serve, r) != 0) {
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
		return -1;
	}
	pthread_mutex_lock(&r->mu);
	while (!r->port)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	if (r->rc < 0) {
		pthread_join(r->th, NULL);
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
	}
	return r->rc;
}

int bench_proxy_run_stop(bench_proxy_run *r)
{
	r->stop = 1;
	pthread_join(r->th, NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	return r->rc;
}

typedef struct {
	cmv_buf body;
} up_req;

static enum MHD_Result up_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	const bench_upstream *u = cls;
	up_req *r = *con_cls;
	(void)method, (void)version;
	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		cmv_buf_init(&r->body, (size_t)1 << 30);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		cmv_buf_put(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	cmv_buf out = CMV_BUF_INIT((size_t)1 << 20);
	u->reply(&out, c, url, &r->body);
	struct MHD_Response *resp = MHD_create_response_from_buffer(out.size, out.ptr, MHD_RESPMEM_MUST_COPY);
	cmv_buf_dispose(&out);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	enum MHD_Result ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void up_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
	up_req *r = *con_cls;
	(void)cls, (void)c, (void)why;
	if (r) {
		cmv_buf_dispose(&r->body);
		free(r);
		*con_cls = NULL;
	}
}

int bench_upstream_start(bench_upstream *u, bench_upstream_reply reply)
{
	u->reply = reply;
	u->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, up_handler,
				u, MHD_OPTION_NOTIFY_COMPLETED, up_done, NULL, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET,
									.sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
				MHD_OPTION_END);
	const union MHD_DaemonInfo *di = u->d ? MHD_get_daemon_info(u->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!di) {
		bench_upstream_stop(u);
		return -1;
	}
	u->port = di->port;
	return 0;
}

void bench_upstream_stop(bench_upstream *u)
{
	if (u->d)
		MHD_stop_daemon(u->d);
	u->d = NULL;
}
