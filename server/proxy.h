/* SPDX-License-Identifier: MIT */
/*
 * The proxy (docs/proxy.md): an agent's model API, served on loopback, that
 * keeps every session in the store and sends the provider the pager's
 * window of it. Beside the MCP server in the server layer; this header is
 * its face for the CLI, the benchmark and the fuzz target.
 *
 * Invariants:
 *  - a client request is read with a bounded size (PROXY_MAX_REQUEST); an
 *    upstream response is held to PROXY_MAX_RESPONSE; anything wrong with
 *    a request is an error response in the provider's shape, never the end
 *    of the proxy;
 *  - every message a client sends is appended to its session's branch once
 *    (a resent history is matched, not stored again), and every reply is
 *    appended before the client sees its end;
 *  - the request sent upstream counts at most the budget (--budget, else
 *    the model's input budget), system and tools included;
 *  - the client's API key is passed to its provider with the request and
 *    never stored or logged; the proxy's own token (a non-loopback listen
 *    needs one) is compared in constant time;
 *  - one store handle, one request on it at a time (a mutex); upstream
 *    calls run outside the lock, so sessions proceed side by side.
 */
#ifndef CMV_SERVER_PROXY_H
#define CMV_SERVER_PROXY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmv/cmv.h>

#define PROXY_MAX_REQUEST ((size_t)64 << 20)  /* bytes of one client request */
#define PROXY_MAX_RESPONSE ((size_t)64 << 20) /* bytes of one upstream response */
#define PROXY_MAX_ROUNDS 4                    /* upstream calls per client request (recall faults) */
#define PROXY_TOOL_RECENT 64                  /* a called tool is sent whole this many replies at first */
#define PROXY_TOOL_WINDOW_MAX 512             /* doubling per tool fault, up to this */
/* when a tool idle past its window is stubbed again (docs/proxy.md, "Tool definitions as pages") */
#define PROXY_DEMOTE_CHANGE 1 /* when the tools change anyway (a tool going whole) or the pager cut the prefix */
#define PROXY_DEMOTE_CUT 2    /* only when the pager cut the prefix (its cache is lost anyway) */
#define PROXY_DEMOTE_EAGER 3  /* at once */
#define PROXY_DEMOTE_DEFAULT PROXY_DEMOTE_CHANGE
#define PROXY_ANTHROPIC_URL "https://api.anthropic.com"
#define PROXY_OPENAI_URL "https://api.openai.com"
#define PROXY_BRANCH_PREFIX "proxy/"             /* a session's branch: proxy/SESSION_ID */

typedef enum {
	PROXY_API_NONE = 0,   /* passed through untouched */
	PROXY_API_ANTHROPIC,  /* /v1/messages */
	PROXY_API_CHAT,       /* /v1/chat/completions */
	PROXY_API_RESPONSES,  /* /v1/responses */
} proxy_api;

typedef struct proxy proxy;

typedef struct {
	const char *anthropic_url; /* NULL: PROXY_ANTHROPIC_URL */
	const char *openai_url;    /* NULL: PROXY_OPENAI_URL */
	uint64_t budget;           /* tokens every upstream request may count; 0: the model's input budget */
	const char *token;         /* required of every client when not NULL (X-Cmv-Token, or a /t/TOKEN path prefix) */
	bool no_tool_paging;       /* send every tool definition whole */
	size_t tool_window;        /* replies a called tool stays whole; 0: PROXY_TOOL_RECENT */
	int tool_demote;           /* when an idle tool is stubbed again: a PROXY_DEMOTE_ (0: PROXY_DEMOTE_DEFAULT) */
	/*
	 * Page tools for the window's tokens, not the prompt cache: a called
	 * tool whole for tool_window replies (0: 1), no doubling, stubbed again
	 * at once. Every flip rewrites the cache (docs/proxy.md).
	 */
	bool tool_tokens;
	bool no_recall;            /* offer no recall tool upstream */
	bool quiet;                /* no line per request on stderr */
	const char *fallback;      /* models to fail over to, comma-separated, in order (NULL: none) */
	unsigned int timeout_s;    /* an upstream silent this long fails (and fails over); 0: none */
	unsigned int retry_primary_s; /* after a failover, the first model is tried again at most this often */
} proxy_config;

/*
 * Where a request goes: the session's model (the branch's, once switched;
 * else the client's own), or a fallback. Translated when its API is not
 * the client's: the client still speaks, and is answered in, its own.
 */
typedef struct {
	proxy_api api;        /* the upstream's API */
	const char *model;    /* the model id sent upstream */
	const char *ref;      /* the model as the branch names it */
	const char *base_url; /* the profile's endpoint, or NULL: the proxy's upstream for the API */
	const char *key_env;  /* the variable holding the key (NULL: ANTHROPIC_API_KEY or OPENAI_API_KEY) */
	bool translated;      /* api is not the client's */
	bool own_key;         /* the client's key goes along (the same provider, its public endpoint) */
	const char *custom;   /* the client's custom tools, for the translator (NULL: none) */
} proxy_target;

int proxy_new(proxy **out, cmv_repo *repo, const proxy_config *cfg);
void proxy_free(proxy *p);

/*
 * Serve on addr ("PORT", "HOST:PORT"; HOST default 127.0.0.1) until *stop.
 * ready (may be NULL) is called with the port bound (PORT 0 picks one).
 * On *stop the requests in flight are cancelled (their upstream calls
 * aborted) and waited for: once this returns, nothing uses p or its repo.
 */
int proxy_serve(proxy *p, const char *addr, volatile sig_atomic_t *stop,
		void (*ready)(unsigned int port, void *payload), void *payload);

/* The API a request path is for (the query string ignored). */
proxy_api proxy_api_of(const char *path);

/* ---- one client request (what the server does between reading it and sending upstream) ---- */

typedef struct proxy_turn proxy_turn;

/*
 * Take a client request: find its session, append its new messages, and
 * build the upstream body (the pager's window, tool definitions paged, the
 * recall tool offered). `session_hint` is a session id from a header (may
 * be NULL). Takes the store lock.
 * @return 0, CMV_EINVALID (a request the provider would refuse: the
 *         message says why), CMV_EBUDGET, or the store's errors
 */
int proxy_turn_new(proxy_turn **out, proxy *p, proxy_api api, const char *session_hint, const char *body,
		   size_t len);
void proxy_turn_free(proxy_turn *t);
/* The body to send upstream (borrowed); NULL when the request is passed through unchanged. */
const char *proxy_turn_upstream(const proxy_turn *t, size_t *len);
const char *proxy_turn_branch(const proxy_turn *t);
bool proxy_turn_streams(const proxy_turn *t);

/*
 * The upstream's reply to the last body (a JSON response, or a stream's
 * events added up): appended to the branch. When the model called only
 * the recall tool, its calls are answered, the answers appended, and a
 * new upstream body built: *again is then true. Takes the store lock.
 */
int proxy_turn_reply(proxy_turn *t, const char *body, size_t len, bool *again);

/* Where the upstream body goes (valid until the next proxy_turn_next). */
const proxy_target *proxy_turn_target(const proxy_turn *t);

/*
 * The upstream failed (`why`): move to the next model that can take the
 * request (its API, window and capabilities) and build its body. Takes the
 * store lock. @return 1 moved, 0 none is left (the turn is as it was), <0
 */
int proxy_turn_next(proxy_turn *t, const char *why);

/*
 * The request was answered by the current model: when it is not the
 * branch's (a failover), or it is the model failed over from (a return),
 * the branch is switched to it, one switch event recording why. Takes the
 * store lock.
 */
int proxy_turn_settle(proxy_turn *t, const char *why);

/* Figures of one turn, for the log line and the benchmark. */
typedef struct {
	uint64_t budget, tokens, tokens_full; /* the upstream request's count, its budget, without paging */
	uint64_t tools_tokens, tools_tokens_full;
	size_t n_tools, n_tools_stubbed;
	size_t stubbed, evicted;
	size_t faults, rounds;
	size_t appended;                      /* client messages appended by this request */
	char window;                          /* how the pager made the last window: 'g' the kept one grown,
					       * 'w' the whole work, 'k' the kept one as it was */
	bool side;                            /* not the session's line: passed through unrecorded */
	size_t failovers;                     /* models given up on for this request */
	size_t tools_dropped;                 /* provider built-ins the upstream's API cannot take */
	bool switched;                        /* a switch event was recorded (a failover, or a return) */
	char why[512];                        /* what failed, for the log line and the switch event */
	/* the rule the count followed: anchored on the last reply's bill (by `correction`), or plain and why */
	bool anchored;
	int64_t correction;
	char unanchored[CMV_PAGER_WHY_MAX];
	size_t n_anchored;                    /* upstream requests of this turn counted anchored (recall rounds too) */
} proxy_turn_stats;
const proxy_turn_stats *proxy_turn_stats_get(const proxy_turn *t);

#endif
