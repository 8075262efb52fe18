/* SPDX-License-Identifier: MIT */
/*
 * A replaying HTTP server on 127.0.0.1 for the LLM client's tests: it
 * answers each connection with the next recorded exchange of a JSON Lines
 * file (the format cmv_llm_transport_replay reads) and keeps what it was
 * sent. An exchange may also ask for misbehaviour, in "action":
 *   "hang"      wait "ms" milliseconds before answering (a timeout);
 *   "truncate"  promise more body than is sent, then close;
 *   "big"       send a body of "bytes" bytes.
 */
#ifndef CMV_TEST_HTTP_REPLAY_H
#define CMV_TEST_HTTP_REPLAY_H

#include <stddef.h>

typedef struct http_replay http_replay;

/* Start serving `path` on a free port; fails the test on error. */
http_replay *http_replay_start(const char *path);
/* "http://127.0.0.1:PORT" */
const char *http_replay_url(const http_replay *s);
/* Requests served so far, and the i-th one's body and head (request line + headers). */
size_t http_replay_count(http_replay *s);
const char *http_replay_body(http_replay *s, size_t i);
const char *http_replay_head(http_replay *s, size_t i);
void http_replay_stop(http_replay *s);
/* A port on 127.0.0.1 that nothing listens on (for "connection refused"). */
int http_replay_dead_port(void);

#endif
