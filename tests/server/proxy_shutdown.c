/* SPDX-License-Identifier: MIT */
/*
 * Shutdown with requests in flight (docs/proxy.md, "Keys and security"):
 * the proxy's workers are detached threads, and a stopped proxy is freed
 * by its caller, the store after it (cli/cmd_proxy.c). Six requests (turns
 * and requests passed through) go through a proxy served in this process
 * to an upstream that reads them and never finishes an answer (a turn's
 * gets a stream's first event); with each worker inside its upstream call,
 * the proxy is stopped and freed, the store closed. A worker still running
 * then uses freed memory: run under valgrind or ASan, this test is how that
 * is seen. It asserts that the stop ended every client and every upstream
 * call, a stream begun included.
 */
#define _GNU_SOURCE
#include "test.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include "server/proxy.h"

#define N_CLIENTS 6
#define MAX_CONNS 32

/* ---- an upstream that reads each request and never finishes an answer ---- */

#define STREAM_START                                                                                                 \
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"                                                  \
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","   \
	"\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"                   \
	"\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"

typedef struct {
	int lfd;
	unsigned int port;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fds[MAX_CONNS];
	bool answered[MAX_CONNS];
	size_t accepted, requests, closed;
	volatile sig_atomic_t stop;
} stall_upstream;

static void *stall_run(void *arg)
{
	stall_upstream *u = arg;
	while (!u->stop) {
		struct pollfd pf[MAX_CONNS + 1];
		size_t n = 0;
		pf[n++] = (struct pollfd){ .fd = u->lfd, .events = POLLIN };
		for (size_t i = 0; i < u->accepted; i++)
			pf[n++] = (struct pollfd){ .fd = u->fds[i], .events = POLLIN };
		if (poll(pf, n, 50) <= 0)
			continue;
		if ((pf[0].revents & POLLIN) && u->accepted < MAX_CONNS) {
			int fd = accept(u->lfd, NULL, NULL);
			if (fd >= 0) {
				pthread_mutex_lock(&u->mu);
				u->fds[u->accepted++] = fd;
				pthread_mutex_unlock(&u->mu);
			}
		}
		for (size_t i = 1; i < n; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			size_t k = i - 1;
			char buf[65536];
			ssize_t r = read(u->fds[k], buf, sizeof(buf));
			pthread_mutex_lock(&u->mu);
			if (r <= 0) {
				close(u->fds[k]);
				u->fds[k] = -1;
				u->closed++;
			} else if (!u->answered[k]) {
				/* a stream's start for a turn (a POST); nothing at all for the rest */
				u->answered[k] = true;
				u->requests++;
				if (!strncmp(buf, "POST", 4))
					assert_true(write(u->fds[k], STREAM_START, strlen(STREAM_START)) > 0);
			}
			pthread_cond_broadcast(&u->cv);
			pthread_mutex_unlock(&u->mu);
		}
		/* closed ones leave the poll set */
		pthread_mutex_lock(&u->mu);
		for (size_t i = 0; i < u->accepted;) {
			if (u->fds[i] < 0) {
				u->fds[i] = u->fds[u->accepted - 1];
				u->answered[i] = u->answered[u->accepted - 1];
				u->accepted--;
			} else {
				i++;
			}
		}
		pthread_mutex_unlock(&u->mu);
	}
	return NULL;
}

static void stall_start(stall_upstream *u)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(u->lfd >= 0);
	assert_int_equal(bind(u->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(u->lfd, 64), 0);
	assert_int_equal(getsockname(u->lfd, (struct sockaddr *)&a, &al), 0);
	u->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&u->th, NULL, stall_run, u), 0);
}

/* Waits (up to a minute: valgrind is slow) until *count reaches want; false if it never does. */
static bool stall_wait(stall_upstream *u, size_t *count, size_t want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	pthread_mutex_lock(&u->mu);
	while (*count < want && pthread_cond_timedwait(&u->cv, &u->mu, &ts) == 0)
		;
	bool ok = *count >= want;
	pthread_mutex_unlock(&u->mu);
	return ok;
}

static void stall_stop(stall_upstream *u)
{
	u->stop = 1;
	pthread_join(u->th, NULL);
	for (size_t i = 0; i < u->accepted; i++)
		close(u->fds[i]);
	close(u->lfd);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
}

/* ---- the proxy, served on a thread ---- */

typedef struct {
	proxy *p;
	volatile sig_atomic_t stop;
	unsigned int port;
	int rc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
} served;

static void on_ready(unsigned int port, void *payload)
{
	served *s = payload;
	pthread_mutex_lock(&s->mu);
	s->port = port;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *serve(void *arg)
{
	served *s = arg;
	s->rc = proxy_serve(s->p, "127.0.0.1:0", &s->stop, on_ready, s);
	pthread_mutex_lock(&s->mu);
	s->port = s->port ? s->port : 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- the clients ---- */

typedef struct {
	unsigned int port;
	bool turn;   /* a POST /v1/messages (paged), else a GET passed through */
	bool stream; /* the turn asks for a stream */
	CURLcode rc;
	long status;
	size_t got;
	stall_upstream *u; /* told of the first bytes */
	size_t *streaming;
} client;

static size_t on_bytes(char *data, size_t size, size_t n, void *ud)
{
	client *c = ud;
	(void)data;
	pthread_mutex_lock(&c->u->mu);
	if (!c->got && size * n > 0)
		(*c->streaming)++;
	c->got += size * n;
	pthread_cond_broadcast(&c->u->cv);
	pthread_mutex_unlock(&c->u->mu);
	return size * n;
}

static void *client_run(void *arg)
{
	client *c = arg;
	CURL *h = curl_easy_init();
	char url[128];
	struct curl_slist *hd = NULL;
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"stream\":%s,\"system\":\"You help.\","
		 "\"tools\":[{\"name\":\"Read\",\"description\":\"Reads a file.\",\"input_schema\":{\"type\":\"object\","
		 "\"properties\":{\"path\":{\"type\":\"string\"}}}}],"
		 "\"messages\":[{\"role\":\"user\",\"content\":\"Look at the files.\"}]}",
		 c->stream ? "true" : "false");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/%s", c->port, c->turn ? "messages" : "models");
	hd = curl_slist_append(hd, "x-api-key: sk-test");
	hd = curl_slist_append(hd, "content-type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L); /* a proxy that never ends them fails the test, not hangs it */
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_bytes);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (c->turn)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	c->rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	return NULL;
}

/* Half the requests turns (streamed or not), half passed through; stopped and freed with all upstream. */
static void stop_in_flight(test_store *ts, bool streams)
{
	stall_upstream u;
	served s;
	client cs[N_CLIENTS];
	pthread_t th[N_CLIENTS];
	size_t streaming = 0;
	char up[64];
	proxy_config cfg = { 0 };

	stall_start(&u);
	snprintf(up, sizeof(up), "http://127.0.0.1:%u", u.port);
	cfg.quiet = true;
	cfg.budget = 100000;
	cfg.anthropic_url = up;
	cfg.openai_url = up;
	/* cfg.timeout_s 0: no low-speed limit, so only the stop can end the stalled calls */
	memset(&s, 0, sizeof(s));
	assert_cmv_ok(proxy_new(&s.p, ts->repo, &cfg));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	assert_int_equal(pthread_create(&s.th, NULL, serve, &s), 0);
	pthread_mutex_lock(&s.mu);
	while (!s.port)
		pthread_cond_wait(&s.cv, &s.mu);
	pthread_mutex_unlock(&s.mu);
	assert_int_equal(s.rc, 0);

	for (int i = 0; i < N_CLIENTS; i++) {
		cs[i] = (client){ .port = s.port, .turn = i % 2 == 0, .stream = streams, .u = &u, .streaming = &streaming };
		assert_int_equal(pthread_create(&th[i], NULL, client_run, &cs[i]), 0);
	}
	/* every request is upstream, and every turn's stream has begun at its client */
	assert_true(stall_wait(&u, &u.requests, N_CLIENTS));
	if (streams)
		assert_true(stall_wait(&u, &streaming, (N_CLIENTS + 1) / 2));

	s.stop = 1;
	pthread_join(s.th, NULL);
	assert_int_equal(s.rc, 0);
	/* what the CLI does next (cli/cmd_proxy.c), and the store after it (the teardown) */
	proxy_free(s.p);
	cmv_repo_free(ts->repo);
	ts->repo = NULL;

	for (int i = 0; i < N_CLIENTS; i++) {
		pthread_join(th[i], NULL);
		/* ended by the stop, not by their own time limit: a stream cut short, else no answer or an error */
		assert_int_not_equal(cs[i].rc, CURLE_OPERATION_TIMEDOUT);
		if (cs[i].turn && streams)
			assert_int_not_equal(cs[i].rc, CURLE_OK);
		else
			assert_false(cs[i].rc == CURLE_OK && cs[i].status == 200);
	}
	/* every upstream call was closed by the stop (none left to end later, on a freed proxy) */
	assert_true(stall_wait(&u, &u.closed, N_CLIENTS));
	/* a worker left running would now reach the freed proxy: given the time to, under ASan or valgrind */
	usleep(300 * 1000);
	stall_stop(&u);
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
}

/*
 * Answers not streamed: the connections end at once, and before jobs_stop
 * the proxy was freed under workers still in curl (valgrind: an invalid
 * read in handle_give).
 */
static void test_proxy_shutdown__workers_end_before_the_free(void **state)
{
	stop_in_flight(*state, false);
}

/* Streams begun: before jobs_stop, MHD_stop_daemon waited on them until the upstream's own timeout. */
static void test_proxy_shutdown__streams_begun_end_at_the_stop(void **state)
{
	stop_in_flight(*state, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proxy_shutdown__workers_end_before_the_free, test_store_setup,
						test_store_teardown),
		cmocka_unit_test_setup_teardown(test_proxy_shutdown__streams_begun_end_at_the_stop, test_store_setup,
						test_store_teardown),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
