/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
/* The replaying HTTP server of http_replay.h: one thread, one connection at a time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "http_replay.h"

#define MAX_REQUESTS 64

struct http_replay {
	int fd;
	char url[64];
	pthread_t thread;
	cJSON *exchanges;
	pthread_mutex_t lock;
	size_t n;
	char *bodies[MAX_REQUESTS], *heads[MAX_REQUESTS];
	volatile int stop;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Read one request (head, then Content-Length bytes of body). */
static int read_request(int fd, char **head_out, char **body_out)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	char *end = NULL;
	size_t want = 0;
	while (buf) {
		if (len == cap) {
			char *g = realloc(buf, cap * 2 + 1);
			if (!g)
				break;
			buf = g;
			cap *= 2;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "\r\ncontent-length:");
			want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
		}
		if (end && len >= (size_t)(end - buf) + 4 + want) {
			size_t hl = (size_t)(end - buf);
			*head_out = strndup(buf, hl);
			*body_out = strndup(end + 4, want);
			free(buf);
			return 0;
		}
	}
	free(buf);
	return -1;
}

static void serve(http_replay *s, int c, const cJSON *ex)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(ex, "status");
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(ex, "retry_after");
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(ex, "body");
	const cJSON *action = cJSON_GetObjectItemCaseSensitive(ex, "action");
	const char *act = cJSON_IsString(action) ? action->valuestring : "";
	char *text = cJSON_IsString(body) ? strdup(body->valuestring) : body ? cJSON_PrintUnformatted(body) : strdup("");
	char head[512];
	size_t blen = strlen(text);

	if (!strcmp(act, "hang")) {
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(ex, "ms");
		long left = cJSON_IsNumber(ms) ? (long)ms->valuedouble : 3000;
		for (; left > 0 && !s->stop; left -= 50)
			sleep_ms(50);
	}
	if (!strcmp(act, "big")) {
		const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(ex, "bytes");
		blen = cJSON_IsNumber(bytes) ? (size_t)bytes->valuedouble : 1 << 20;
		free(text);
		text = malloc(blen + 1);
		memset(text, 'x', blen);
		text[blen] = '\0';
	}
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d Replayed\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n",
			 cJSON_IsNumber(status) ? (int)status->valuedouble : 200,
			 !strcmp(act, "truncate") ? blen * 2 + 100 : blen);
	if (cJSON_IsNumber(ra))
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Retry-After: %d\r\n", (int)ra->valuedouble);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	send_all(c, head, (size_t)n);
	send_all(c, text, blen);
	free(text);
}

static void *run(void *arg)
{
	http_replay *s = arg;
	size_t next = 0;
	while (!s->stop) {
		struct pollfd p = { s->fd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		char *head = NULL, *body = NULL;
		if (read_request(c, &head, &body) == 0) {
			pthread_mutex_lock(&s->lock);
			if (s->n < MAX_REQUESTS) {
				s->heads[s->n] = head;
				s->bodies[s->n] = body;
				s->n++;
			} else {
				free(head);
				free(body);
			}
			pthread_mutex_unlock(&s->lock);
			const cJSON *ex = cJSON_GetArrayItem(s->exchanges, (int)next++);
			if (ex)
				serve(s, c, ex);
			else
				send_all(c, "HTTP/1.1 599 No exchange left\r\nContent-Length: 0\r\n\r\n", 52);
		}
		shutdown(c, SHUT_WR);
		close(c);
	}
	return NULL;
}

http_replay *http_replay_start(const char *path)
{
	http_replay *s = calloc(1, sizeof(*s));
	cmv_buf file = CMV_BUF_INIT(CMV_BUF_CONTENT);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	assert_non_null(s);
	test_read_file(&file, path);
	s->exchanges = cJSON_CreateArray();
	for (char *line = file.ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (!*line)
			continue;
		cJSON *j = cJSON_Parse(line);
		if (!j)
			fail_msg("%s: a line that is not JSON: %.80s", path, line);
		cJSON_AddItemToArray(s->exchanges, j);
	}
	cmv_buf_dispose(&file);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pthread_create(&s->thread, NULL, run, s), 0);
	return s;
}

const char *http_replay_url(const http_replay *s)
{
	return s->url;
}

size_t http_replay_count(http_replay *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

const char *http_replay_body(http_replay *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	const char *b = i < s->n ? s->bodies[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	return b;
}

const char *http_replay_head(http_replay *s, size_t i)
{
	pthread_mutex_lock(&s->lock);
	const char *h = i < s->n ? s->heads[i] : NULL;
	pthread_mutex_unlock(&s->lock);
	return h;
}

void http_replay_stop(http_replay *s)
{
	if (!s)
		return;
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->fd);
	for (size_t i = 0; i < s->n; i++) {
		free(s->bodies[i]);
		free(s->heads[i]);
	}
	cJSON_Delete(s->exchanges);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int http_replay_dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd); /* bound, never listened, closed: a connect is refused */
	return ntohs(a.sin_port);
}
