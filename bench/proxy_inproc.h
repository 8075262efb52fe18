/* SPDX-License-Identifier: MIT */
/*
 * What the proxy benches (bench_proxy.c, bench_proxy_switch.c) share: the
 * proxy served in this process on a thread of its own, and a scripted
 * upstream (libmicrohttpd, in this process, on loopback) that answers each
 * request with what the bench writes for it.
 */
#ifndef CMV_BENCH_PROXY_INPROC_H
#define CMV_BENCH_PROXY_INPROC_H

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include "bench.h"
#include "server/proxy.h"

typedef struct {
	proxy *p;
	volatile sig_atomic_t stop;
	unsigned int port; /* where the proxy listens, once it does */
	int rc;            /* proxy_serve's */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
} bench_proxy_run;

/* Serves p on 127.0.0.1, an ephemeral port, until bench_proxy_run_stop; 0 once it listens, else proxy_serve's error. */
int bench_proxy_run_start(bench_proxy_run *r, proxy *p);
/* Stops the serving and waits for it (p is the caller's to free). */
/* Stops it; proxy_serve's result: an error it met while serving is negative. */
int bench_proxy_run_stop(bench_proxy_run *r);

/* The upstream's answer to one request (a 200 event stream): into out, from its url, headers (c) and body. */
typedef void (*bench_upstream_reply)(cmv_buf *out, struct MHD_Connection *c, const char *url, const cmv_buf *body);
typedef struct {
	struct MHD_Daemon *d;
	unsigned int port;
	bench_upstream_reply reply;
} bench_upstream;
/* The scripted upstream on 127.0.0.1, an ephemeral port (u->port); 0, or -1 if it could not start. */
int bench_upstream_start(bench_upstream *u, bench_upstream_reply reply);
void bench_upstream_stop(bench_upstream *u);

#endif
